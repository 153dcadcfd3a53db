"""ClosedCandles: closed by venue candle times, each once, in order; gaps wait for back-fill."""

from __future__ import annotations

import random

import pytest

from tradekit.data.ccxt_feeds import Backoff
from tradekit.data.closed_candles import ClosedCandles
from tradekit.errors import DataError

STEP = 60_000


def row(index: int, close: float = 1.0) -> list[float]:
    return [index * STEP, 1.0, 2.0, 0.5, close, 3.0]


def opens(candles: list) -> list[int]:  # type: ignore[type-arg]
    return [int(candle.ts.timestamp() * 1000) // STEP for candle in candles]


class TestClosedCandles:
    def test_a_row_closes_when_a_later_one_appears(self) -> None:
        state = ClosedCandles("BTC/USDT", "1m", "venue")
        assert state.offer([row(1)]) == []
        assert opens(state.offer([row(2)])) == [1]

    def test_the_latest_version_of_a_row_is_delivered_once(self) -> None:
        state = ClosedCandles("BTC/USDT", "1m", "venue")
        state.offer([row(1, close=1.0)])
        (candle,) = state.offer([row(1, close=1.5), row(2)])
        assert candle.close == 1.5
        assert opens(state.offer([row(1), row(2), row(3)])) == [2]
        assert state.offer([row(1), row(2)]) == []

    def test_a_gap_holds_delivery_until_a_backfill(self) -> None:
        state = ClosedCandles("BTC/USDT", "1m", "venue")
        state.offer([row(1), row(2)])
        assert opens(state.offer([row(4), row(5)])) == [2]
        assert state.gap_from == 3 * STEP
        assert opens(state.offer([row(3), row(4), row(5)], complete=True)) == [3, 4]
        assert state.gap_from is None

    def test_a_backfill_accepts_times_the_venue_has_no_candle_for(self) -> None:
        state = ClosedCandles("BTC/USDT", "1m", "venue")
        state.offer([row(1), row(2)])
        assert opens(state.offer([row(1), row(2), row(4), row(5)], complete=True)) == [2, 4]

    def test_a_malformed_row_names_the_feed(self) -> None:
        with pytest.raises(DataError, match=r"venue BTC/USDT 1m: .*malformed row"):
            ClosedCandles("BTC/USDT", "1m", "venue").offer([["x", 1, 2, 3, 4, 5]])


def test_backoff_doubles_up_to_its_maximum_with_jitter_below_the_base() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, jitter=0.5)
    rng = random.Random(3)
    for failures, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        assert base * 0.5 <= backoff.delay(failures, rng) <= base
