"""``WakingSource``: candles in order, one at a time, and idle wake-ups while none come."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fakes import candle_stream

from tradekit.domain import Candle
from tradekit.runtime.waking import IDLE, WakingSource

WAIT_SECONDS = 10.0


class GatedSource:
    """Hands over a candle only once the test opens the gate; counts what was asked of it."""

    def __init__(self, candles: list[Candle]) -> None:
        self.candles = candles
        self.gate = threading.Semaphore(0)
        self.asked = 0

    def __iter__(self) -> Iterator[Candle]:
        for candle in self.candles:
            self.asked += 1
            assert self.gate.acquire(timeout=WAIT_SECONDS)
            yield candle


class TestWakingSource:
    def test_wakes_up_idle_while_no_candle_comes_and_keeps_the_order(self) -> None:
        candles = candle_stream([100.0, 101.0, 102.0])
        source = GatedSource(candles)
        waking = WakingSource(source, timeout=0.01)
        arrivals = iter(waking)
        try:
            assert next(arrivals) is IDLE
            got = []
            for _ in candles:
                source.gate.release()
                got.append(next(item for item in arrivals if item is not IDLE))
            assert got == candles
            assert next(arrivals, None) is None
        finally:
            waking.close()

    def test_asks_the_source_for_a_candle_only_when_the_run_wants_one(self) -> None:
        candles = candle_stream([100.0, 101.0, 102.0])
        source = GatedSource(candles)
        for _ in candles:
            source.gate.release()
        waking = WakingSource(source, timeout=0.01)
        arrivals = iter(waking)
        try:
            assert next(arrivals) == candles[0]
            assert source.asked == 1
            assert next(arrivals) == candles[1]
            assert source.asked == 2
        finally:
            waking.close()

    def test_an_error_of_the_source_reaches_the_run(self) -> None:
        def broken() -> Iterator[Candle]:
            yield from candle_stream([100.0])
            raise ValueError("feed lost")

        waking = WakingSource(broken(), timeout=0.01)
        arrivals = iter(waking)
        try:
            assert next(arrivals) is not IDLE
            with pytest.raises(ValueError, match="feed lost"):
                list(arrivals)
        finally:
            waking.close()
