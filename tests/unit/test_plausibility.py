"""Live candles dated beyond the wall clock are refused before they reach a series.

A candle from far in the future used to be accepted, after which every real
candle of its series was refused (older than the last) for the rest of the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from loguru import logger

from tradekit import Candle, StrategyConfig, TradekitSettings
from tradekit.data.plausibility import plausible_candles
from tradekit.data.sources import FrameSource
from tradekit.data.synthetic import synthetic_frame
from tradekit.runtime.live import run_live
from tradekit.services.market.clock import ManualClock
from tradekit.timeframes import floor_timestamp

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def candle(ts: datetime, timeframe: str = "1h") -> Candle:
    return Candle("BTC/USDT", timeframe, ts, 100.0, 101.0, 99.0, 100.5, 1.0)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    messages: list[str] = []
    logger.enable("tradekit")
    sink_id = logger.add(lambda message: messages.append(str(message)), level="WARNING")
    yield messages
    logger.remove(sink_id)
    logger.disable("tradekit")


class TestPlausibleCandles:
    def test_candle_closing_in_the_future_is_refused_with_a_warning(
        self, warnings: list[str]
    ) -> None:
        future = candle(datetime(2200, 1, 1, tzinfo=UTC))
        real = [candle(NOW - timedelta(hours=2)), candle(NOW - timedelta(hours=1))]

        kept = list(plausible_candles([real[0], future, real[1]], ManualClock(NOW)))

        assert kept == real
        (warning,) = warnings
        assert "refused candle BTC/USDT 1h at 2200-01-01T00:00:00+00:00" in warning

    def test_candle_closing_within_the_skew_is_kept(self) -> None:
        just_closed = candle(NOW - timedelta(hours=1))
        clock = ManualClock(NOW - timedelta(seconds=4))

        kept = list(plausible_candles([just_closed], clock, timedelta(seconds=5)))

        assert kept == [just_closed]

    def test_candle_still_open_is_refused(self, warnings: list[str]) -> None:
        still_open = candle(NOW)

        assert list(plausible_candles([still_open], ManualClock(NOW))) == []
        assert len(warnings) == 1

    def test_the_clock_is_read_for_every_candle(self) -> None:
        clock = ManualClock(NOW - timedelta(hours=1))
        later = candle(NOW - timedelta(hours=1))

        def feed() -> Iterator[Candle]:
            clock.set(NOW)
            yield later

        assert list(plausible_candles(feed(), clock)) == [later]


class TestRunLive:
    def test_far_future_candle_changes_nothing_in_a_wall_clock_run(self) -> None:
        config = StrategyConfig.model_validate(
            {
                "strategy_id": "rsi",
                "symbols": ["BTC/USDT"],
                "timeframe": "1m",
                "indicators": [{"name": "rsi", "params": {"length": 14}}],
                "analyzers": [{"type": "threshold", "params": {"source": "rsi", "below": 45}}],
                "exit": {"take_profit_pct": 0.2, "stop_loss_pct": 0.2},
            }
        )
        start = floor_timestamp(datetime.now(UTC), "1m") - timedelta(minutes=400)
        frame = synthetic_frame("BTC/USDT", "1m", 300, start=start)
        real = list(FrameSource({("BTC/USDT", "1m"): frame}).stream())
        future = candle(datetime(2200, 1, 1, tzinfo=UTC), "1m")
        settings = TradekitSettings()

        clean = run_live(settings, [config], real, replay_clock=False)
        attacked = run_live(
            settings, [config], [*real[:50], future, *real[50:]], replay_clock=False
        )

        assert clean.report["rsi"]["candles_processed"] == 300
        assert attacked.report == clean.report
