"""Tests for tradekit.orchestrators.filters: session, volume, volatility and trend entry filters."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeBarView, candle_at

from tradekit.config.strategy import FiltersConfig, IndicatorConfig
from tradekit.domain import Candle, Side
from tradekit.orchestrators.filters import (
    FILTER_ATR_ALIAS,
    FILTER_TREND_ALIAS,
    WARMING_UP,
    FilterOrchestrator,
)


def filters(**config: Any) -> FilterOrchestrator:
    return FilterOrchestrator(FiltersConfig.model_validate(config))


def view(candle: Candle | None = None, **values: float | None) -> FakeBarView:
    return FakeBarView({ref: [value] for ref, value in values.items()}, candle=candle)


class TestNoFilters:
    def test_everything_is_allowed_and_nothing_is_required(self) -> None:
        orchestrator = filters()
        assert orchestrator.allows_entry(view(), Side.LONG) is None
        assert orchestrator.allows_entry(view(), Side.SHORT) is None
        assert orchestrator.required_indicators() == []


class TestSession:
    """The session is judged at the candle's close, start inclusive, end exclusive."""

    @pytest.mark.parametrize(
        ("open_hour", "allowed"),
        [(7, False), (8, True), (12, True), (15, True), (16, False), (23, False)],
    )
    def test_day_session_on_hourly_candles(self, open_hour: int, allowed: bool) -> None:
        orchestrator = filters(session={"start": "09:00", "end": "17:00"})
        reason = orchestrator.allows_entry(view(candle_at(open_hour)), Side.LONG)
        assert reason == (None if allowed else "outside session 09:00-17:00 UTC")

    @pytest.mark.parametrize(
        ("open_hour", "open_minute", "allowed"),
        [
            (21, 0, True),  # closes 22:00, the start
            (20, 0, False),  # closes 21:00
            (23, 0, True),  # closes 00:00, past midnight
            (0, 0, True),  # closes 01:00
            (1, 0, False),  # closes 02:00, the end
            (12, 0, False),
        ],
    )
    def test_session_wrapping_midnight(
        self, open_hour: int, open_minute: int, allowed: bool
    ) -> None:
        orchestrator = filters(session={"start": "22:00", "end": "02:00"})
        reason = orchestrator.allows_entry(view(candle_at(open_hour, open_minute)), Side.SHORT)
        assert reason == (None if allowed else "outside session 22:00-02:00 UTC")

    def test_wrapping_session_on_15m_candles(self) -> None:
        orchestrator = filters(session={"start": "23:30", "end": "01:45"})
        allowed = {
            (hour, minute): orchestrator.allows_entry(
                view(candle_at(hour, minute, timeframe="15m")), Side.LONG
            )
            is None
            for hour, minute in [(23, 0), (23, 15), (0, 0), (1, 15), (1, 30), (2, 0)]
        }
        assert allowed == {
            (23, 0): False,  # closes 23:15
            (23, 15): True,  # closes 23:30
            (0, 0): True,
            (1, 15): True,  # closes 01:30
            (1, 30): False,  # closes 01:45
            (2, 0): False,
        }

    def test_equal_start_and_end_is_the_whole_day(self) -> None:
        orchestrator = filters(session={"start": "09:00", "end": "09:00"})
        assert all(
            orchestrator.allows_entry(view(candle_at(hour)), Side.LONG) is None
            for hour in range(24)
        )


class TestVolume:
    def test_volume_below_min_blocks(self) -> None:
        orchestrator = filters(min_volume=50)
        assert (
            orchestrator.allows_entry(view(candle_at(0, volume=12)), Side.LONG)
            == "volume 12 below min 50"
        )
        assert orchestrator.allows_entry(view(candle_at(0, volume=50)), Side.LONG) is None

    def test_large_volumes_are_shown_with_separators(self) -> None:
        orchestrator = filters(min_volume=2_500_000)
        reason = orchestrator.allows_entry(view(candle_at(0, volume=1_234_567)), Side.LONG)
        assert reason == "volume 1,234,567 below min 2,500,000"


class TestVolatility:
    def test_reads_atr_under_its_alias_as_percent_of_close(self) -> None:
        orchestrator = filters(volatility={"min_atr_pct": 0.2, "max_atr_pct": 5})
        close_100 = candle_at(0, close=100)
        assert (
            orchestrator.allows_entry(view(close_100, filter_atr=0.1), Side.LONG)
            == "ATR 0.1% below min 0.2%"
        )
        assert (
            orchestrator.allows_entry(view(close_100, filter_atr=6.5), Side.LONG)
            == "ATR 6.5% above max 5%"
        )
        assert orchestrator.allows_entry(view(close_100, filter_atr=1), Side.LONG) is None

    def test_not_ready_atr_blocks_as_warming_up(self) -> None:
        orchestrator = filters(volatility={"min_atr_pct": 0.2})
        assert orchestrator.allows_entry(view(filter_atr=None), Side.LONG) == WARMING_UP
        assert orchestrator.allows_entry(view(filter_atr=float("nan")), Side.LONG) == WARMING_UP

    def test_requires_atr_of_the_configured_length(self) -> None:
        orchestrator = filters(volatility={"atr_length": 20, "max_atr_pct": 3})
        assert orchestrator.required_indicators() == [
            IndicatorConfig(name="atr", params={"length": 20}, alias=FILTER_ATR_ALIAS)
        ]


class TestTrend:
    def test_long_needs_close_above_and_short_below(self) -> None:
        orchestrator = filters(trend={"ma": "ema", "length": 200})
        below = view(candle_at(0, close=95), filter_trend=100)
        above = view(candle_at(0, close=105), filter_trend=100)
        at = view(candle_at(0, close=100), filter_trend=100)
        assert orchestrator.allows_entry(below, Side.LONG) == "close below ema(200)"
        assert orchestrator.allows_entry(below, Side.SHORT) is None
        assert orchestrator.allows_entry(above, Side.LONG) is None
        assert orchestrator.allows_entry(above, Side.SHORT) == "close above ema(200)"
        assert orchestrator.allows_entry(at, Side.LONG) == "close at ema(200)"
        assert orchestrator.allows_entry(at, Side.SHORT) == "close at ema(200)"

    def test_not_ready_average_blocks_as_warming_up(self) -> None:
        orchestrator = filters(trend={"ma": "sma", "length": 50})
        assert orchestrator.allows_entry(view(filter_trend=None), Side.LONG) == "warming up"

    def test_requires_the_configured_average(self) -> None:
        orchestrator = filters(trend={"ma": "sma", "length": 50}, volatility={"atr_length": 7})
        assert orchestrator.required_indicators() == [
            IndicatorConfig(name="atr", params={"length": 7}, alias=FILTER_ATR_ALIAS),
            IndicatorConfig(name="sma", params={"length": 50}, alias=FILTER_TREND_ALIAS),
        ]


class TestAllFilters:
    def test_first_failing_check_gives_the_reason(self) -> None:
        orchestrator = filters(
            session={"start": "09:00", "end": "17:00"},
            min_volume=50,
            volatility={"min_atr_pct": 0.2},
            trend={"length": 200},
        )
        quiet = candle_at(3, close=100, volume=10)
        busy = candle_at(10, close=100, volume=80)
        assert orchestrator.allows_entry(view(quiet), Side.LONG) == (
            "outside session 09:00-17:00 UTC"
        )
        assert orchestrator.allows_entry(view(candle_at(10, volume=10)), Side.LONG) == (
            "volume 10 below min 50"
        )
        assert (
            orchestrator.allows_entry(view(busy, filter_atr=None, filter_trend=90), Side.LONG)
            == WARMING_UP
        )
        assert (
            orchestrator.allows_entry(view(busy, filter_atr=0.5, filter_trend=110), Side.LONG)
            == "close below ema(200)"
        )
        assert (
            orchestrator.allows_entry(view(busy, filter_atr=0.5, filter_trend=90), Side.LONG)
            is None
        )

    def test_required_indicators_is_a_fresh_list(self) -> None:
        orchestrator = filters(trend={"length": 20})
        orchestrator.required_indicators().clear()
        assert len(orchestrator.required_indicators()) == 1
