"""Skipping quiet bars never changes a backtest, whatever the exit, DCA and risk rules.

A property test next to the fixed scenarios of ``test_backtest_fast_path.py``:
hypothesis draws one to three strategies with random analyzers, exits (stop
loss, take profit, trailing, time stop, partial take profits, signal exits),
DCA, sizing and risk limits (a daily loss limit among them), runs each draw
with ``skip_quiet_bars`` off and on over the same synthetic data, and requires
the same event log hash, events and trades. The search is derandomized, so
every run tries the same examples.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pandas as pd
import pytest
from hypothesis import strategies as st

from tradekit.config import StrategyConfig
from tradekit.data import synthetic_frame
from tradekit.runtime.backtest import backtest
from tradekit.testing import settings_from_dict

SYMBOL = "BTC/USDT"
TIMEFRAME = "1h"
BARS = 1500
DATA: dict[tuple[str, str], pd.DataFrame] = {
    (SYMBOL, TIMEFRAME): synthetic_frame(SYMBOL, TIMEFRAME, BARS, seed=13)
}

ANALYZERS: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "rsi-level": (
        [{"name": "rsi", "params": {"length": 14}}],
        [{"type": "threshold", "params": {"source": "rsi", "below": 35, "above": 65}}],
    ),
    "rsi-cross-both-sides": (
        [{"name": "rsi", "params": {"length": 7}}],
        [
            {
                "type": "threshold",
                "params": {
                    "source": "rsi",
                    "below": 25,
                    "above": 75,
                    "above_direction": "short",
                    "mode": "cross",
                },
            }
        ],
    ),
    "ema-cross": (
        [
            {"name": "ema", "params": {"length": 9}, "alias": "ema_fast"},
            {"name": "ema", "params": {"length": 21}, "alias": "ema_slow"},
        ],
        [{"type": "crossover", "params": {"fast": "ema_fast", "slow": "ema_slow"}}],
    ),
    "bands": (
        [{"name": "bbands", "params": {"length": 20, "std": 2.0}}],
        [{"type": "band_position", "params": {"source": "bbands.percent_b"}}],
    ),
    "trend-short": (
        [{"name": "ema", "params": {"length": 20}}],
        [
            {
                "type": "trend",
                "params": {
                    "source": "ema",
                    "lookback": 5,
                    "min_slope_pct": 0.8,
                    "up_direction": "exit",
                    "down_direction": "short",
                },
            }
        ],
    ),
    "every-n-bars": ([], [{"type": "time_interval", "params": {"every_bars": 37}}]),
}

percent = st.floats(min_value=0.5, max_value=12.0).map(lambda value: round(value, 1))


@st.composite
def exits(draw: st.DrawFn) -> dict[str, Any]:
    exit_rules: dict[str, Any] = {
        "exit_on_opposite_signal": draw(st.booleans()),
        "opposite_signal_min_score": draw(st.sampled_from([0.3, 0.5, 1.0])),
    }
    if draw(st.booleans()):
        exit_rules["stop_loss_pct"] = draw(percent)
    if draw(st.booleans()):
        exit_rules["take_profit_pct"] = draw(percent)
    if draw(st.booleans()):
        exit_rules["trailing_activation_pct"] = draw(percent)
        exit_rules["trailing_distance_pct"] = draw(percent)
    if draw(st.booleans()):
        exit_rules["time_stop_bars"] = draw(st.integers(min_value=1, max_value=60))
    if draw(st.booleans()):
        exit_rules["min_profit_pct_for_signal_exit"] = draw(
            st.floats(min_value=-2.0, max_value=3.0).map(lambda value: round(value, 1))
        )
    levels = draw(st.lists(percent, max_size=3, unique=True))
    exit_rules["partial_take_profits"] = [
        {"profit_pct": level, "close_pct": draw(st.integers(min_value=10, max_value=33))}
        for level in sorted(levels)
    ]
    return exit_rules


@st.composite
def dca(draw: st.DrawFn) -> dict[str, Any] | None:
    trigger = draw(st.sampled_from([None, "price_step", "signal"]))
    if trigger is None:
        return None
    rules: dict[str, Any] = {
        "safety_orders": draw(st.integers(min_value=1, max_value=4)),
        "trigger": trigger,
        "volume_scale": draw(st.sampled_from([1.0, 1.5, 2.0])),
    }
    if trigger == "price_step":
        rules["step_pct"] = draw(percent)
        rules["step_scale"] = draw(st.sampled_from([1.0, 1.2]))
    return rules


@st.composite
def strategy_configs(draw: st.DrawFn, number: int) -> StrategyConfig:
    indicators, analyzers = ANALYZERS[draw(st.sampled_from(sorted(ANALYZERS)))]
    sizing = draw(
        st.sampled_from(
            [
                {"mode": "fixed_quote", "quote_amount": 800},
                {"mode": "percent_equity", "equity_pct": 20},
                {"mode": "risk", "risk_pct": 1},
            ]
        )
    )
    exit_rules = draw(exits())
    if sizing["mode"] == "risk":
        exit_rules.setdefault("stop_loss_pct", draw(percent))  # risk sizing needs a stop
    return StrategyConfig.model_validate(
        {
            "strategy_id": f"drawn-{number}",
            "symbols": [SYMBOL],
            "timeframe": TIMEFRAME,
            "indicators": indicators,
            "analyzers": analyzers,
            "entry": {
                "side": draw(st.sampled_from(["long", "long", "short", "both"])),
                "min_score": draw(st.sampled_from([0.3, 0.5, 1.0])),
                "sizing": sizing,
            },
            "exit": exit_rules,
            "dca": draw(dca()),
            "risk": {
                "max_open_positions": draw(st.integers(min_value=1, max_value=3)),
                "risk_per_trade_pct": draw(st.sampled_from([10.0, 100.0])),
                "daily_loss_limit_pct": draw(st.sampled_from([None, None, 1.0, 3.0])),
            },
        }
    )


@st.composite
def portfolios(draw: st.DrawFn) -> list[StrategyConfig]:
    count = draw(st.integers(min_value=1, max_value=3))
    return [draw(strategy_configs(number)) for number in range(count)]


@st.composite
def settings_data(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "storage": {"database_url": "sqlite://"},
        "exchange": {
            "kind": "paper",
            "fill_rule": draw(st.sampled_from(["next_open", "close"])),
            "fee_bps": draw(st.sampled_from([0.0, 10.0])),
            "slippage_bps": draw(st.sampled_from([0.0, 2.0])),
        },
        "risk": draw(
            st.sampled_from([{}, {"max_exposure_per_symbol": 2500, "max_total_exposure": 4000}])
        ),
    }


@pytest.mark.slow
class TestSkippingQuietBarsOnDrawnStrategies:
    @hypothesis.settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[hypothesis.HealthCheck.too_slow],
    )
    @hypothesis.given(configs=portfolios(), settings=settings_data())
    def test_the_same_events_and_trades_with_and_without_skipping(
        self, configs: list[StrategyConfig], settings: dict[str, Any]
    ) -> None:
        run_settings = settings_from_dict(settings)
        every_bar = backtest(run_settings, configs, DATA, skip_quiet_bars=False)
        skipping = backtest(run_settings, configs, DATA, skip_quiet_bars=True)
        hypothesis.event(f"{len(every_bar.events)} events")
        found = [event.to_dict() for event in skipping.events]
        expected = [event.to_dict() for event in every_bar.events]
        assert found == expected
        assert skipping.event_log_hash == every_bar.event_log_hash
        for strategy_id, result in every_bar.strategies.items():
            assert skipping.strategies[strategy_id].trades == result.trades, strategy_id
            assert skipping.strategies[strategy_id].open_positions == result.open_positions
