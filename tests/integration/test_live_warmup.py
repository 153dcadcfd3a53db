"""Warm-up history of a live run: how much each series needs, and that it readies the
strategies' indicators and higher-timeframe gates without a single trade on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Candle
from tradekit.events import PositionOpened, SignalGenerated, StrategyLoaded
from tradekit.runtime.live import run_live
from tradekit.runtime.warmup import MIN_WARMUP_BARS, warmup_needs
from tradekit.services.indicators.catalog import INDICATORS
from tradekit.services.journal.store import SqlJournal
from tradekit.testing import settings_from_dict, strategy_config_from_dict

LIVE = 6


def config(strategy_id: str, **sections: Any) -> StrategyConfig:
    """A strategy that signals a buy on every candle its ``sma`` has a value for."""
    data: dict[str, Any] = {
        "strategy_id": strategy_id,
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "indicators": [{"name": "sma", "params": {"length": 20}}],
        "analyzers": [
            {
                "type": "threshold",
                "params": {
                    "source": "sma",
                    "above": 0,
                    "mode": "level",
                    "above_direction": "long",
                },
            }
        ],
        "exit": {"stop_loss_pct": 50},
        **sections,
    }
    return strategy_config_from_dict(data)


def candles(count: int) -> list[Candle]:
    """Hourly candles from midnight, each closing 1 above the one before."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        Candle("BTC/USDT", "1h", start + timedelta(hours=i), 100 + i, 101 + i, 99 + i, 100.5 + i, 5)
        for i in range(count)
    ]


class TestWarmupNeeds:
    def test_the_longest_indicator_window_of_the_strategies_on_a_series(self) -> None:
        sma = INDICATORS["sma"].window({"length": 20})
        atr = INDICATORS["atr"].window({"length": 30})
        needs = warmup_needs(
            [
                config("a"),
                config("b", filters={"volatility": {"atr_length": 30, "max_atr_pct": 50}}),
                config("c", symbols=["ETH/USDT"], timeframe="15m"),
            ]
        )
        assert needs == {("BTC/USDT", "1h"): max(sma, atr), ("ETH/USDT", "15m"): sma}

    def test_the_mtf_gate_needs_its_average_in_base_candles(self) -> None:
        gated = config("gated", mtf={"timeframe": "4h", "length": 10})
        # 10 four-hour candles, one more its start may fall inside, one more for rising/falling.
        assert warmup_needs([gated]) == {("BTC/USDT", "1h"): (10 + 2) * 4}

    def test_a_strategy_without_indicators_still_gets_a_little_history(self) -> None:
        bare = config("bare", indicators=[], analyzers=[
            {"type": "time_interval", "params": {"every_bars": 2}}
        ])  # fmt: skip
        assert warmup_needs([bare]) == {("BTC/USDT", "1h"): MIN_WARMUP_BARS}


def run_with_history(
    tmp_path: Path, strategy: StrategyConfig, history: list[Candle], live: list[Candle]
) -> list[Any]:
    journal = SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}")
    summary = run_live(settings_from_dict({}), [strategy], live, history=history, journal=journal)
    assert summary.candles == len(live)
    with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as reader:
        return reader.events(strategy.strategy_id)


class TestWarmupInTheRun:
    def test_indicators_are_ready_at_the_first_live_candle_and_warmup_is_not_traded(
        self, tmp_path: Path
    ) -> None:
        strategy = config("warm")
        bars = warmup_needs([strategy])[("BTC/USDT", "1h")]
        series = candles(bars + LIVE)
        history, live = series[:bars], series[bars:]
        events = run_with_history(tmp_path, strategy, history, live)
        signals = [event.ts for event in events if isinstance(event, SignalGenerated)]
        assert signals == [candle.close_ts for candle in live]
        first_live = live[0].close_ts
        assert all(
            event.ts >= first_live for event in events if not isinstance(event, StrategyLoaded)
        )

    def test_without_history_the_same_strategy_is_still_warming_up(self, tmp_path: Path) -> None:
        strategy = config("cold")
        live = candles(LIVE)
        events = run_with_history(tmp_path, strategy, [], live)
        assert not [event for event in events if isinstance(event, SignalGenerated)]

    @pytest.mark.parametrize(("whole_warmup", "opens"), [(False, False), (True, True)])
    def test_the_warmup_completes_the_mtf_gate_before_the_first_live_candle(
        self, tmp_path: Path, whole_warmup: bool, opens: bool
    ) -> None:
        strategy = config("gated", mtf={"timeframe": "4h", "length": 10, "rule": "close_above"})
        bars = warmup_needs([strategy])[("BTC/USDT", "1h")]
        sma_window = INDICATORS["sma"].window({"length": 20})
        assert bars > sma_window + LIVE
        series = candles(bars + LIVE)
        # The sma's window alone readies the signals but leaves the gate short of its average.
        history = series[:bars] if whole_warmup else series[bars - sma_window : bars]
        events = run_with_history(tmp_path, strategy, history, series[bars:])
        assert any(isinstance(event, SignalGenerated) for event in events)
        assert any(isinstance(event, PositionOpened) for event in events) is opens
