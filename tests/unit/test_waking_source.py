"""``WakingSource``: candles in order, one at a time, and idle wake-ups while none come."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fakes import candle_stream

from tradekit.domain import Candle
from tradekit.runtime.waking import IDLE, Doorbell, WakingSource

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


class TestDoorbell:
    def test_a_ring_before_the_wait_is_kept_and_rings_merge(self) -> None:
        doorbell = Doorbell()
        assert doorbell.wait(0) is False
        doorbell.ring()
        doorbell.ring()
        assert doorbell.wait(0) is True
        assert doorbell.wait(0) is False  # the two rings woke it once

    def test_a_ring_from_another_thread_ends_a_long_wait(self) -> None:
        doorbell = Doorbell()
        woke: list[bool] = []
        waiter = threading.Thread(target=lambda: woke.append(doorbell.wait(3600)))
        waiter.start()
        doorbell.ring()
        waiter.join(WAIT_SECONDS)
        assert woke == [True]


class TestWakingSourceRungFromOutside:
    def test_a_ring_without_a_candle_wakes_the_run_at_once(self) -> None:
        """A change asked while the run waits an hour for a candle: it wakes up now (IDLE),
        then still gets the candle when it comes."""
        candles = candle_stream([100.0])
        source = GatedSource(candles)
        doorbell = Doorbell()
        waking = WakingSource(source, timeout=3600, doorbell=doorbell)
        arrivals = iter(waking)
        got: list[object] = []
        reader = threading.Thread(target=lambda: got.append(next(arrivals)))
        try:
            reader.start()
            doorbell.ring()
            reader.join(WAIT_SECONDS)
            assert got == [IDLE]
            source.gate.release()
            assert next(arrivals) == candles[0]
        finally:
            waking.close()
