"""Skipping quiet bars gives exactly the backtest that runs every candle through every strategy.

Each scenario runs twice, ``skip_quiet_bars`` off and on, and everything a
backtest reports must be identical: the event log (hash and events), trades,
equity curves (timestamps and float values), statistics, the portfolio.
Scenarios cover the bundled strategies as they ship (they mostly need every
candle) and loosened so they can skip, the benchmark's ten RSI strategies,
both fill rules, fees, binding exposure caps, a user analyzer without a mask
and a failing strategy that ends up quarantined. Signals that cannot act on the
strategy's state (an entry signal while in a position, an exit signal while
flat) are only published, without the pipeline, failures included.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from tradekit.config import StrategyConfig, TradekitSettings, load_strategy_configs
from tradekit.data import synthetic_frame
from tradekit.domain import Direction, Signal
from tradekit.events import OrderFilled, SignalGenerated, StrategyFailed, StrategyQuarantined
from tradekit.protocols import BarView
from tradekit.runtime.backtest import BacktestResult, backtest
from tradekit.runtime.engine import Engine
from tradekit.services.positions.equity_curve import EquityCurve
from tradekit.services.signals.analyzers import ANALYZER_TYPES, AnalyzerType
from tradekit.services.signals.fire_masks import IndicatorColumns, masks_toward
from tradekit.testing import settings_from_dict

if TYPE_CHECKING:
    from tradekit.services.signals.fire_masks import BoolArray

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
BARS = {"15m": 4000, "1h": 2000, "4h": 800, "1d": 300}

Frames = dict[tuple[str, str], pd.DataFrame]


def frames(seed: int = 11, bars: Mapping[str, int] = BARS) -> Frames:
    return {
        (symbol, timeframe): synthetic_frame(symbol, timeframe, count, seed=seed)
        for symbol in SYMBOLS
        for timeframe, count in bars.items()
    }


def base_settings(**sections: Any) -> dict[str, Any]:
    """The repository's config.json with some sections replaced whole."""
    data: dict[str, Any] = json.loads((REPO / "config.json").read_text(encoding="utf-8"))
    data["storage"] = {"database_url": "sqlite://"}
    data.update(sections)
    return data


def loosened(config: StrategyConfig, number: int) -> list[StrategyConfig]:
    """Variants of a bundled strategy that may skip bars: no daily loss limit, fewer rules."""
    data = config.model_dump()
    no_limit = {**data, "strategy_id": f"{config.strategy_id}-free-{number}"}
    no_limit["risk"] = {**data["risk"], "daily_loss_limit_pct": None}
    bare = {**no_limit, "strategy_id": f"{config.strategy_id}-bare-{number}"}
    bare["symbols"] = [config.symbols[0]]
    bare["mtf"] = None
    bare["dca"] = None
    bare["entry"] = {**data["entry"], "sizing": {"mode": "fixed_quote", "quote_amount": 500}}
    bare["exit"] = {"exit_on_opposite_signal": True, "opposite_signal_min_score": 0.5}
    bare["risk"] = {**no_limit["risk"], "risk_per_trade_pct": 100}
    return [StrategyConfig.model_validate(no_limit), StrategyConfig.model_validate(bare)]


def bundled(settings: TradekitSettings) -> list[StrategyConfig]:
    return load_strategy_configs(REPO / "strategies", settings)


def rsi_ten() -> list[StrategyConfig]:
    """The benchmark's strategies: RSI(10..19) 30/70 crosses, fixed quote, signal exits only."""
    return [
        StrategyConfig.model_validate(
            {
                "strategy_id": f"rsi-{length}",
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "capital": 1_000_000.0,
                "indicators": [{"name": "rsi", "params": {"length": length}}],
                "analyzers": [
                    {
                        "type": "threshold",
                        "params": {"source": "rsi", "below": 30, "above": 70, "mode": "cross"},
                    }
                ],
                "entry": {"sizing": {"mode": "fixed_quote", "quote_amount": 1000}},
                "exit": {"exit_on_opposite_signal": True},
                "risk": {"max_open_positions": 1, "risk_per_trade_pct": 100},
            }
        )
        for length in range(10, 20)
    ]


def more_kinds() -> list[StrategyConfig]:
    """Analyzer kinds and rules the bundled strategies do not combine this way."""
    common: dict[str, Any] = {
        "symbols": ["ETH/USDT"],
        "timeframe": "1h",
        "entry": {"sizing": {"mode": "fixed_quote", "quote_amount": 800}},
        "risk": {"risk_per_trade_pct": 100, "max_open_positions": 1},
    }
    specs: list[dict[str, Any]] = [
        {
            "strategy_id": "trend-short",
            "indicators": [{"name": "ema", "params": {"length": 20}}],
            "analyzers": [
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
            "entry": {"side": "short", "sizing": {"mode": "fixed_quote", "quote_amount": 800}},
            "exit": {"exit_on_opposite_signal": True, "time_stop_bars": 40},
        },
        {
            "strategy_id": "band-level",
            "indicators": [{"name": "bbands", "params": {"length": 20, "std": 2.0}}],
            "analyzers": [
                {"type": "band_position", "params": {"source": "bbands.percent_b"}},
                {"type": "time_interval", "weight": 0.5, "params": {"every_bars": 50}},
            ],
            "entry": {"min_score": 0.6, "sizing": {"mode": "percent_equity", "equity_pct": 10}},
            "exit": {"exit_on_opposite_signal": True, "min_profit_pct_for_signal_exit": 0.2},
        },
        {
            "strategy_id": "rsi-both-sides",
            "indicators": [{"name": "rsi", "params": {"length": 7}}],
            "analyzers": [
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
            "entry": {"side": "both", "sizing": {"mode": "fixed_quote", "quote_amount": 800}},
            "exit": {"exit_on_opposite_signal": True},
        },
        {
            "strategy_id": "rsi-stops",
            "indicators": [{"name": "rsi", "params": {"length": 14}}],
            "analyzers": [
                {"type": "threshold", "params": {"source": "rsi", "below": 35, "above": 65}}
            ],
            "exit": {
                "stop_loss_pct": 2,
                "take_profit_pct": 3,
                "exit_on_opposite_signal": True,
            },
        },
    ]
    return [StrategyConfig.model_validate({**common, **spec}) for spec in specs]


def run_both(
    settings: TradekitSettings, configs: Sequence[StrategyConfig], data: Frames
) -> tuple[BacktestResult, BacktestResult]:
    slow = backtest(settings, configs, data, skip_quiet_bars=False)
    fast = backtest(settings, configs, data, skip_quiet_bars=True)
    return slow, fast


def same_float(left: float | None, right: float | None) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return left == right and type(left) is type(right)


def assert_identical(slow: BacktestResult, fast: BacktestResult) -> None:
    assert fast.candles_processed == slow.candles_processed
    fast_events = [event.to_dict() for event in fast.events]
    slow_events = [event.to_dict() for event in slow.events]
    for number, (mine, theirs) in enumerate(zip(fast_events, slow_events, strict=False)):
        assert mine == theirs, f"event {number} differs"
    assert len(fast_events) == len(slow_events)
    assert fast.event_log_hash == slow.event_log_hash
    assert list(fast.strategies) == list(slow.strategies)
    for strategy_id, expected in slow.strategies.items():
        found = fast.strategies[strategy_id]
        assert found.trades == expected.trades, strategy_id
        assert found.open_positions == expected.open_positions, strategy_id
        assert len(found.equity_curve) == len(expected.equity_curve), strategy_id
        for (ts, value), (expected_ts, expected_value) in zip(
            found.equity_curve, expected.equity_curve, strict=True
        ):
            assert ts == expected_ts, strategy_id
            assert ts.tzinfo is expected_ts.tzinfo, strategy_id
            assert value.hex() == expected_value.hex(), (strategy_id, ts)
        for name, value in vars(expected.stats).items():
            assert same_float(getattr(found.stats, name), value), (strategy_id, name)
    pd.testing.assert_series_equal(fast.portfolio_equity, slow.portfolio_equity, check_exact=True)
    assert fast.portfolio_equity.index.dtype == slow.portfolio_equity.index.dtype
    assert fast.portfolio_stats.keys() == slow.portfolio_stats.keys()
    for name, value in slow.portfolio_stats.items():
        assert same_float(fast.portfolio_stats[name], value), name


@pytest.fixture
def step_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The strategy id of every (strategy, candle) the engine ran, in order."""
    calls: list[str] = []
    step = Engine.step

    def counting(self: Engine, entry: Any, candle: Any, bar: int) -> bool:
        calls.append(entry.strategy_id)
        return step(self, entry, candle, bar)

    monkeypatch.setattr(Engine, "step", counting)
    return calls


class TestBundledStrategies:
    def test_as_shipped_the_same_with_and_without_skipping(self) -> None:
        settings = settings_from_dict(base_settings())
        assert_identical(*run_both(settings, bundled(settings), frames()))

    def test_loosened_so_they_skip_the_same_with_and_without_skipping(
        self, step_calls: list[str]
    ) -> None:
        settings = settings_from_dict(base_settings())
        configs = bundled(settings)
        configs += [variant for config in configs for variant in loosened(config, 1)]
        slow, fast = run_both(settings, configs, frames(seed=5))
        assert_identical(slow, fast)
        skipping = step_calls.count("rsi-btc-1h-bare-1") - BARS["1h"]  # less the slow run's
        assert skipping < BARS["1h"] / 4

    def test_loosened_with_fills_at_the_close_and_binding_caps(self) -> None:
        settings = settings_from_dict(
            base_settings(
                exchange={"kind": "paper", "fill_rule": "close", "fee_bps": 5, "slippage_bps": 1},
                risk={"max_exposure_per_symbol": 2500, "max_total_exposure": 4000},
            )
        )
        configs = bundled(settings)
        configs = [variant for config in configs for variant in loosened(config, 2)]
        configs += [
            config.model_copy(update={"strategy_id": f"{config.strategy_id}-again"})
            for config in more_kinds()
        ]
        configs += more_kinds()
        slow, fast = run_both(settings, configs, frames(seed=8))
        assert_identical(slow, fast)
        assert any(event.event_type == "RiskRejected" for event in slow.events)


class TestRsiBenchmarkStrategies:
    @pytest.mark.slow
    def test_ten_rsi_strategies_trade_the_same_with_and_without_skipping(
        self, step_calls: list[str]
    ) -> None:
        settings = TradekitSettings(
            _env_file=None,
            exchange={"kind": "paper", "fee_bps": 0.0, "slippage_bps": 0.0, "fill_rule": "close"},
        )
        bars = 20_000
        data = {("BTC/USDT", "1h"): synthetic_frame("BTC/USDT", "1h", bars, seed=7)}
        slow, fast = run_both(settings, rsi_ten(), data)
        assert_identical(slow, fast)
        assert sum(len(result.trades) for result in slow.strategies.values()) > 300
        assert len(step_calls) - 10 * bars < bars, "the fast run stepped through most candles"

    def test_the_other_kinds_with_next_open_fills(self) -> None:
        settings = settings_from_dict(base_settings(risk={}))
        data = frames(seed=3, bars={"1h": 3000})
        assert_identical(*run_both(settings, [*rsi_ten(), *more_kinds()], data))


class _Flaky:
    """A user analyzer with a mask: fires every 25 bars, raises on bars 300 to 309."""

    name = "flaky"
    references: tuple[str, ...] = ()

    def analyze(self, view: BarView) -> Signal | None:
        if 300 <= view.bar < 310:
            raise ValueError(f"flaky analyzer broke on bar {view.bar}")
        if view.bar % 25 == 0:
            return Signal(Direction.LONG if view.bar % 50 else Direction.EXIT, 1.0, "flaky")
        return None

    def could_fire(self, columns: IndicatorColumns) -> BoolArray:
        bars = columns.bars
        mask: BoolArray = (bars % 25 == 0) | ((bars >= 300) & (bars < 310))
        return mask


class _Maskless(_Flaky):
    """The same analyzer without ``could_fire``: its strategy sees every candle."""

    name = "maskless"
    could_fire = None  # type: ignore[assignment]


class _BrokenMask(_Flaky):
    """The same analyzer with a ``could_fire`` that raises: its strategy sees every candle."""

    name = "broken"

    def could_fire(self, columns: IndicatorColumns) -> BoolArray:
        raise RuntimeError("no mask today")


USER_KINDS = {"test_flaky": _Flaky, "test_maskless": _Maskless, "test_broken": _BrokenMask}


@pytest.fixture
def user_analyzers() -> Iterator[None]:
    for name, kind in USER_KINDS.items():
        ANALYZER_TYPES[name] = AnalyzerType(lambda params, kind=kind: kind())
    try:
        yield
    finally:
        for name in USER_KINDS:
            del ANALYZER_TYPES[name]


class TestUserAnalyzers:
    @pytest.mark.usefixtures("user_analyzers")
    def test_failures_quarantine_and_missing_masks_are_the_same_with_and_without_skipping(
        self, step_calls: list[str]
    ) -> None:
        settings = settings_from_dict(base_settings(risk={}))
        configs = [
            StrategyConfig.model_validate(
                {
                    "strategy_id": strategy_id,
                    "symbols": ["BTC/USDT"],
                    "timeframe": "1h",
                    "analyzers": [{"type": kind}],
                    "entry": {"sizing": {"mode": "fixed_quote", "quote_amount": 500}},
                    "exit": {"exit_on_opposite_signal": True},
                    "risk": {"risk_per_trade_pct": 100},
                }
            )
            for strategy_id, kind in (
                ("flaky", "test_flaky"),
                ("maskless", "test_maskless"),
                ("broken", "test_broken"),
            )
        ]
        bars = 1000
        data = {("BTC/USDT", "1h"): synthetic_frame("BTC/USDT", "1h", bars, seed=2)}
        slow, fast = run_both(settings, configs, data)
        assert_identical(slow, fast)
        for strategy_id in ("flaky", "maskless", "broken"):
            events = [event for event in fast.events if event.strategy_id == strategy_id]
            # Quarantined after the default 3 failures, it asks its analyzers nothing more.
            assert sum(isinstance(event, StrategyFailed) for event in events) == 3
            assert sum(isinstance(event, StrategyQuarantined) for event in events) == 1
        assert step_calls.count("maskless") == step_calls.count("broken") == 2 * bars
        assert step_calls.count("flaky") - bars < bars / 5


class _FlakyToward:
    """A user analyzer with masks per direction: long every 50 bars from bar 25, exit every
    50 bars from bar 0; raises on bars 60 and 64 (declared exit: flat then) and 80 and 84
    (declared long: in a position then), where its signals could not act."""

    name = "flaky-toward"
    references: tuple[str, ...] = ()
    raises_on = (60, 64, 80, 84)

    def analyze(self, view: BarView) -> Signal | None:
        if view.bar in self.raises_on:
            raise ValueError(f"flaky analyzer broke on bar {view.bar}")
        if view.bar % 50 == 25:
            return Signal(Direction.LONG, 1.0, "flaky long")
        if view.bar % 50 == 0:
            return Signal(Direction.EXIT, 1.0, "flaky exit")
        return None

    def could_fire_toward(self, columns: IndicatorColumns) -> dict[Direction, BoolArray]:
        bars = columns.bars
        return masks_toward(
            (Direction.LONG, (bars % 50 == 25) | (bars == 80) | (bars == 84)),
            (Direction.EXIT, (bars % 50 == 0) | (bars == 60) | (bars == 64)),
        )

    def could_fire(self, columns: IndicatorColumns) -> BoolArray:
        bars = columns.bars
        mask: BoolArray = (bars % 25 == 0) | np.isin(bars, self.raises_on)
        return mask


@pytest.fixture
def signals_only_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(strategy id, bar) of every candle the engine only asked for signals."""
    calls: list[tuple[str, int]] = []
    step_signals = Engine.step_signals

    def counting(self: Engine, entry: Any, candle: Any, bar: int, catch_up: Any) -> bool:
        calls.append((entry.strategy_id, bar))
        return step_signals(self, entry, candle, bar, catch_up)

    monkeypatch.setattr(Engine, "step_signals", counting)
    return calls


class TestSignalsThatCannotAct:
    def test_run_the_pipeline_only_where_something_happens(
        self, step_calls: list[str], signals_only_calls: list[tuple[str, int]]
    ) -> None:
        """Entry signals while in a position and exit signals while flat are only published."""
        settings = TradekitSettings(
            _env_file=None,
            exchange={"kind": "paper", "fee_bps": 0.0, "slippage_bps": 0.0, "fill_rule": "close"},
        )
        bars = 5_000
        data = {("BTC/USDT", "1h"): synthetic_frame("BTC/USDT", "1h", bars, seed=7)}
        slow, fast = run_both(settings, rsi_ten(), data)
        assert_identical(slow, fast)
        fast_steps = Counter(step_calls[10 * bars :])  # less the slow run's
        published = Counter(
            event.strategy_id for event in fast.events if isinstance(event, SignalGenerated)
        )
        fills = Counter(
            event.strategy_id for event in fast.events if isinstance(event, OrderFilled)
        )
        for strategy_id in fast.strategies:
            # Each fill's decision candle and the candle after it that settles it; no other.
            assert fast_steps[strategy_id] <= 2 * fills[strategy_id] + 1, strategy_id
            assert fast_steps[strategy_id] < published[strategy_id], strategy_id
        assert len(signals_only_calls) + len(step_calls) - 10 * bars >= sum(published.values())

    @pytest.mark.usefixtures("user_analyzers")
    def test_a_failure_there_is_the_same_as_in_the_pipeline(
        self, monkeypatch: pytest.MonkeyPatch, signals_only_calls: list[tuple[str, int]]
    ) -> None:
        monkeypatch.setitem(
            ANALYZER_TYPES, "test_flaky_toward", AnalyzerType(lambda _: _FlakyToward())
        )
        settings = settings_from_dict(base_settings(risk={}))
        config = StrategyConfig.model_validate(
            {
                "strategy_id": "flaky-toward",
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "analyzers": [{"type": "test_flaky_toward"}],
                "entry": {"sizing": {"mode": "fixed_quote", "quote_amount": 500}},
                "exit": {"exit_on_opposite_signal": True},
                "risk": {"risk_per_trade_pct": 100},
            }
        )
        data = {("BTC/USDT", "1h"): synthetic_frame("BTC/USDT", "1h", 300, seed=2)}
        slow, fast = run_both(settings, [config], data)
        assert_identical(slow, fast)
        only_signals = {bar for _, bar in signals_only_calls}
        assert set(_FlakyToward.raises_on) <= only_signals
        # Each failure is followed by a candle that runs cleanly: none is consecutive.
        failures = [event for event in fast.events if isinstance(event, StrategyFailed)]
        assert [event.consecutive_failures for event in failures] == [1, 1, 1, 1]


class TestTheComparison:
    def test_an_equity_value_one_ulp_off_is_reported(self) -> None:
        settings = settings_from_dict(base_settings(risk={}))
        data = {("BTC/USDT", "1h"): synthetic_frame("BTC/USDT", "1h", 300, seed=2)}
        result = backtest(settings, rsi_ten()[:1], data)
        nudged = copy.deepcopy(result)
        strategy = nudged.strategies["rsi-10"]
        values = strategy.equity.values()
        values[len(values) // 2] = np.nextafter(values[len(values) // 2], math.inf)
        strategy.equity = EquityCurve()
        strategy.equity.extend(result.strategies["rsi-10"].equity.times_micros() // 10**6, values)
        assert_identical(result, copy.deepcopy(result))
        with pytest.raises(AssertionError, match="rsi-10"):
            assert_identical(result, nudged)


class TestProgress:
    @pytest.mark.parametrize("skip", [False, True], ids=["every bar", "skipping"])
    def test_reports_about_a_hundred_times_and_last_when_complete(self, skip: bool) -> None:
        settings = settings_from_dict(base_settings(risk={}))
        data = frames(seed=3, bars={"1h": 1500, "4h": 400})
        calls: list[tuple[int, int]] = []
        result = backtest(
            settings, rsi_ten(), data, lambda *call: calls.append(call), skip_quiet_bars=skip
        )
        total = 3 * (1500 + 400)
        assert calls[-1] == (total, total) == (result.candles_processed, total)
        assert [done for done, _ in calls] == sorted({done for done, _ in calls})
        assert 10 <= len(calls) <= 101
