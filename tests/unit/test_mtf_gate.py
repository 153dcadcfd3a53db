"""Tests for tradekit.orchestrators.mtf_gate: resampling, no look-ahead, averages and rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from fakes import START, candle_stream, make_candle

from tradekit.config.strategy import MTFConfig
from tradekit.domain import Candle, Side
from tradekit.errors import ConfigError, DataError
from tradekit.orchestrators.mtf_gate import WARMING_UP, MTFSnapshotGate

HOUR = timedelta(hours=1)


def gate(base: str = "1h", **config: Any) -> MTFSnapshotGate:
    settings = {"timeframe": "4h", **config}
    return MTFSnapshotGate(MTFConfig.model_validate(settings), base)


def feed(target: MTFSnapshotGate, candles: Iterable[Candle]) -> None:
    for candle in candles:
        target.update(candle)


def four_hour_closes(closes: Sequence[float], start_bucket: int = 0) -> list[Candle]:
    """A 1h stream in which each 4h period ends on the given close (flat inside the period)."""
    hourly = [close for close in closes for _ in range(4)]
    return candle_stream(hourly, start=START + start_bucket * 4 * HOUR)


class TestResampling:
    HOURLY = [
        make_candle(START, 104, open_=100, high=105, low=99, volume=10),
        make_candle(START + HOUR, 107, open_=104, high=108, low=103, volume=20),
        make_candle(START + 2 * HOUR, 96, open_=107, high=107.5, low=95, volume=30),
        make_candle(START + 3 * HOUR, 100, open_=96, high=101, low=94, volume=40),
    ]

    def test_htf_candle_is_open_first_max_high_min_low_close_last_sum_volume(self) -> None:
        target = gate(length=1, ma="sma")
        feed(target, self.HOURLY)
        snapshot = target.snapshot("BTC/USDT")
        assert snapshot is not None
        assert snapshot.candle == make_candle(
            START, 100, open_=100, high=108, low=94, volume=100, timeframe="4h"
        )
        assert snapshot.ma == 100
        assert snapshot.previous_ma is None

    def test_htf_candle_appears_only_when_its_last_base_candle_arrives(self) -> None:
        target = gate(length=1)
        for candle in self.HOURLY[:3]:
            target.update(candle)
            assert target.snapshot("BTC/USDT") is None
            assert target.allows_entry("BTC/USDT", Side.LONG) == WARMING_UP
        target.update(self.HOURLY[3])
        assert target.snapshot("BTC/USDT") is not None

    def test_stream_starting_inside_a_period_drops_that_partial_candle(self) -> None:
        target = gate(length=1)
        feed(target, candle_stream([50, 60, 70, 80, 90, 100], start=START + 2 * HOUR))
        snapshot = target.snapshot("BTC/USDT")
        assert snapshot is not None
        assert snapshot.candle.ts == START + 4 * HOUR
        assert (snapshot.candle.open, snapshot.candle.close) == (70, 100)

    def test_gap_completes_the_unfinished_candle_from_what_arrived(self) -> None:
        target = gate(length=1)
        stream = candle_stream([10, 20, 30, 40, 50])
        feed(target, [*stream[:3], stream[4]])  # the 03:00 candle is missing
        snapshot = target.snapshot("BTC/USDT")
        assert snapshot is not None
        assert snapshot.candle.ts == START
        assert (snapshot.candle.close, snapshot.candle.volume) == (30, 300)

    def test_weekly_from_daily_closes_on_sunday(self) -> None:
        target = gate("1d", timeframe="1w", length=1)
        days = candle_stream([100 + day for day in range(8)], timeframe="1d")
        feed(target, days[:6])
        assert target.snapshot("BTC/USDT") is None
        target.update(days[6])  # Sunday: closes at Monday 00:00, the weekly boundary
        snapshot = target.snapshot("BTC/USDT")
        assert snapshot is not None
        assert (snapshot.candle.ts, snapshot.candle.close) == (START, 106)

    def test_symbols_are_resampled_separately(self) -> None:
        target = gate(length=1)
        feed(target, candle_stream([10, 10, 10, 10], symbol="ETH/USDT"))
        feed(target, candle_stream([20, 20, 20], symbol="BTC/USDT"))
        eth = target.snapshot("ETH/USDT")
        assert eth is not None
        assert eth.candle.close == 10
        assert target.snapshot("BTC/USDT") is None


class TestNoLookAhead:
    def test_forming_candle_never_changes_the_answer(self) -> None:
        """Completed 4h closes 100, 110: SMA(2) 105, close above. The next 4h candle is forming
        at 60, 55, 50: counted early it would give SMA(2) 80 with close 50 below, and block."""
        target = gate(ma="sma", length=2, rule="close_above")
        feed(target, four_hour_closes([100, 110]))
        assert target.allows_entry("BTC/USDT", Side.LONG) is None
        forming = candle_stream([60, 55, 50, 52], start=START + 8 * HOUR)
        for candle in forming[:3]:
            target.update(candle)
            assert target.allows_entry("BTC/USDT", Side.LONG) is None
            snapshot = target.snapshot("BTC/USDT")
            assert snapshot is not None
            assert (snapshot.candle.close, snapshot.ma) == (110, 105)
        target.update(forming[3])
        assert target.allows_entry("BTC/USDT", Side.LONG) == "4h close below sma(2)"
        snapshot = target.snapshot("BTC/USDT")
        assert snapshot is not None
        assert (snapshot.candle.close, snapshot.ma) == (52, 81)

    def test_forming_rally_does_not_unblock_early(self) -> None:
        target = gate(ma="sma", length=2, rule="trend_agrees")
        feed(target, four_hour_closes([110, 100]))
        assert target.allows_entry("BTC/USDT", Side.LONG) == "4h close below sma(2)"
        rally = candle_stream([150, 160, 170, 180], start=START + 8 * HOUR)
        feed(target, rally[:3])
        assert target.allows_entry("BTC/USDT", Side.LONG) == "4h close below sma(2)"
        target.update(rally[3])
        assert target.allows_entry("BTC/USDT", Side.LONG) is None


class TestAverages:
    def test_ema_is_seeded_with_the_sma_then_updated(self) -> None:
        target = gate(ma="ema", length=3)
        feed(target, four_hour_closes([10, 20]))
        snapshot = target.snapshot("BTC/USDT")
        assert snapshot is not None
        assert snapshot.ma is None
        feed(target, four_hour_closes([30], start_bucket=2))
        snapshot = target.snapshot("BTC/USDT")
        assert snapshot is not None
        assert snapshot.ma == 20
        feed(target, four_hour_closes([40], start_bucket=3))
        snapshot = target.snapshot("BTC/USDT")
        assert snapshot is not None
        # alpha = 2 / (3 + 1) = 0.5: 20 + 0.5 * (40 - 20)
        assert (snapshot.ma, snapshot.previous_ma) == (30, 20)

    def test_sma_is_the_mean_of_the_last_length_closes(self) -> None:
        target = gate(ma="sma", length=3)
        feed(target, four_hour_closes([10, 20, 30, 70]))
        snapshot = target.snapshot("BTC/USDT")
        assert snapshot is not None
        assert (snapshot.ma, snapshot.previous_ma) == (40, 20)


class TestRules:
    def test_trend_agrees_depends_on_the_side(self) -> None:
        target = gate(ma="sma", length=2, rule="trend_agrees")
        feed(target, four_hour_closes([100, 110]))
        assert target.allows_entry("BTC/USDT", Side.LONG) is None
        assert target.allows_entry("BTC/USDT", Side.SHORT) == "4h close above sma(2)"

    def test_close_below_applies_to_either_side(self) -> None:
        target = gate(ma="ema", length=2, rule="close_below")
        feed(target, four_hour_closes([100, 110]))
        assert target.allows_entry("BTC/USDT", Side.LONG) == "4h close above ema(2)"
        assert target.allows_entry("BTC/USDT", Side.SHORT) == "4h close above ema(2)"

    def test_close_exactly_at_the_average_passes_neither_way(self) -> None:
        target = gate(ma="sma", length=1, rule="close_above")
        feed(target, four_hour_closes([100]))
        assert target.allows_entry("BTC/USDT", Side.LONG) == "4h close at sma(1)"

    def test_rising_and_falling_need_the_previous_average(self) -> None:
        rising = gate(ma="sma", length=2, rule="rising")
        falling = gate(ma="sma", length=2, rule="falling")
        for target in (rising, falling):
            feed(target, four_hour_closes([100, 110]))
            assert target.allows_entry("BTC/USDT", Side.LONG) == WARMING_UP
            feed(target, four_hour_closes([120], start_bucket=2))
        assert rising.allows_entry("BTC/USDT", Side.SHORT) is None
        assert falling.allows_entry("BTC/USDT", Side.LONG) == "4h sma(2) not falling"

    def test_unknown_symbol_is_warming_up(self) -> None:
        assert gate().allows_entry("ETH/USDT", Side.LONG) == WARMING_UP


class TestWithoutConfig:
    def test_no_config_always_allows(self) -> None:
        target = MTFSnapshotGate(None, "1h")
        feed(target, candle_stream([100, 90, 80, 70]))
        assert target.allows_entry("BTC/USDT", Side.LONG) is None
        assert target.allows_entry("BTC/USDT", Side.SHORT) is None
        assert target.snapshot("BTC/USDT") is None


class TestBadInput:
    def test_repeated_candle_is_counted_once(self) -> None:
        target = gate(length=1)
        stream = candle_stream([10, 10, 10, 10])
        feed(target, [stream[0], stream[0], *stream[1:]])
        snapshot = target.snapshot("BTC/USDT")
        assert snapshot is not None
        assert snapshot.candle.volume == 400

    def test_older_candle_is_refused(self) -> None:
        target = gate()
        stream = candle_stream([10, 11])
        feed(target, [stream[1]])
        with pytest.raises(DataError, match="older than the last one"):
            target.update(stream[0])

    def test_candle_of_another_timeframe_is_refused(self) -> None:
        target = gate()
        with pytest.raises(DataError, match="expected 1h candles, got a 4h candle"):
            target.update(make_candle(START, timeframe="4h"))

    def test_htf_must_be_a_higher_multiple_of_the_base(self) -> None:
        with pytest.raises(ConfigError, match="must be higher than the strategy timeframe"):
            MTFSnapshotGate(MTFConfig(timeframe="1h"), "4h")

    def test_unknown_base_timeframe(self) -> None:
        with pytest.raises(ConfigError, match="unknown timeframe '1hr'"):
            MTFSnapshotGate(None, "1hr")
