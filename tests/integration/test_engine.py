"""``Engine`` over real containers: failures, quarantine, health, shutdown, threads and scale."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from ticker_strategies import ticker

from tradekit.config.loading import load_strategy_config
from tradekit.config.strategy import StrategyConfig
from tradekit.containers import SharedContainer
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.domain import Candle
from tradekit.errors import StrategyConflictError
from tradekit.events import (
    PositionClosed,
    StrategyFailed,
    StrategyLoaded,
    StrategyQuarantined,
    StrategyUnloaded,
)
from tradekit.protocols import BarView
from tradekit.runtime.engine import Engine
from tradekit.services.market.clock import ManualClock
from tradekit.services.positions.state import Trade
from tradekit.services.signals.analyzers import AnalyzerRegistry, Scores, build_analyzers
from tradekit.strategy_state import StrategyState
from tradekit.testing import (
    EventRecorder,
    FakeCandleSource,
    FakeExchange,
    settings_from_dict,
    shared_container_from_dict,
    strategy_config_from_dict,
)

ROOT = Path(__file__).resolve().parents[2]
QUARANTINE_AFTER = 2
FIXED_TIME = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def tradekit_settings_data() -> dict[str, Any]:
    """The plugin's defaults, with quarantine after two consecutive failures."""
    return {
        "exchange": {"kind": "paper", "fee_bps": 0.0, "slippage_bps": 0.0},
        "engine": {"failures_before_quarantine": QUARANTINE_AFTER},
    }


class FlakyAnalyzers:
    """An analyzer registry that raises on chosen bars and scores like ``config`` otherwise."""

    def __init__(self, config: StrategyConfig, failing_bars: Callable[[int], bool]) -> None:
        self._inner = AnalyzerRegistry(build_analyzers(config.analyzers, config.strategy_id))
        self._failing = failing_bars

    def evaluate(self, view: BarView) -> Scores:
        if self._failing(view.bar):
            raise RuntimeError(f"boom at bar {view.bar}")
        return self._inner.evaluate(view)


def closes(*values: float) -> list[Candle]:
    return list(FakeCandleSource.from_closes(values).stream())


def feed(engine: Engine, stream: Sequence[Candle]) -> list[int]:
    return [engine.on_candle(candle) for candle in stream]


class TestFailureIsolation:
    def test_a_strategy_that_always_fails_does_not_stop_the_others(
        self, tradekit_factory: TradingOrchestratorFactory, tradekit_engine: Engine
    ) -> None:
        broken, steady = ticker("broken"), ticker("steady")
        with tradekit_factory.overriding(
            broken, analyzer_registry=FlakyAnalyzers(broken, lambda bar: True)
        ):
            tradekit_engine.load([broken, steady])
            assert feed(tradekit_engine, closes(100, 101, 102, 103, 104)) == [1, 1, 1, 1, 1]
            assert tradekit_factory.get("steady").trading_orchestrator().candles_processed == 5
            steady_trades = tradekit_factory.get("steady").position_lifecycle().trades
            assert [trade.exit_reason for trade in steady_trades] == ["signal_exit"]

    def test_each_failure_is_published_with_its_consecutive_count(
        self,
        tradekit_factory: TradingOrchestratorFactory,
        tradekit_engine: Engine,
        tradekit_events: EventRecorder,
    ) -> None:
        config = ticker("flaky")
        stream = closes(100, 101, 102, 103, 104)
        flaky = FlakyAnalyzers(config, lambda bar: bar in (1, 3))
        with tradekit_factory.overriding(config, analyzer_registry=flaky):
            tradekit_engine.load([config])
            feed(tradekit_engine, stream)
        failed = tradekit_events.of_type(StrategyFailed)
        assert [
            (event.ts, event.error_type, event.error, event.consecutive_failures)
            for event in failed
        ] == [
            (stream[1].close_ts, "RuntimeError", "boom at bar 1", 1),
            (stream[3].close_ts, "RuntimeError", "boom at bar 3", 1),
        ]
        assert tradekit_events.of_type(StrategyQuarantined) == []


@pytest.fixture
def quarantined_run(
    tradekit_factory: TradingOrchestratorFactory,
    tradekit_engine: Engine,
    tradekit_events: EventRecorder,
) -> Iterator[tuple[Engine, FakeExchange, list[Candle]]]:
    """``flaky`` buys on bar 0, fails on bars 2 and 3, is stopped out on bar 4; ``steady`` runs."""
    flaky, steady = (
        ticker("flaky", every=2, exit_offset=None),
        ticker("steady", every=2, exit_offset=1),
    )
    exchange = FakeExchange(hold=True)
    stream = closes(100, 100, 100, 100, 90, 90, 90, 90)
    failing = FlakyAnalyzers(flaky, lambda bar: bar in (2, 3))
    with tradekit_factory.overriding(flaky, analyzer_registry=failing, shared_exchange=exchange):
        tradekit_engine.load([flaky, steady])
        feed(tradekit_engine, stream)
        yield tradekit_engine, exchange, stream


class TestQuarantine:
    def test_is_published_once_after_the_configured_consecutive_failures(
        self,
        quarantined_run: tuple[Engine, FakeExchange, list[Candle]],
        tradekit_events: EventRecorder,
    ) -> None:
        _, _, stream = quarantined_run
        failed = tradekit_events.of_type(StrategyFailed)
        assert [(event.ts, event.consecutive_failures) for event in failed] == [
            (stream[2].close_ts, 1),
            (stream[3].close_ts, 2),
        ]
        quarantined = tradekit_events.of_type(StrategyQuarantined)
        assert [(e.strategy_id, e.ts, e.failures, e.last_error) for e in quarantined] == [
            ("flaky", stream[3].close_ts, 2, "RuntimeError: boom at bar 3")
        ]

    def test_no_new_entries_after_quarantine_but_the_stop_still_closes_the_position(
        self,
        quarantined_run: tuple[Engine, FakeExchange, list[Candle]],
        tradekit_events: EventRecorder,
    ) -> None:
        engine, exchange, _ = quarantined_run
        assert [(order.order_id, order.side.value, order.reason) for order in exchange.orders] == [
            ("flaky-1", "buy", "long score 1.00"),
            ("flaky-2", "sell", "stop_loss"),
        ]
        closed = [e for e in tradekit_events.of_type(PositionClosed) if e.strategy_id == "flaky"]
        assert [(event.reason, event.exit_price, event.realized_pnl) for event in closed] == [
            ("stop_loss", 95.0, -5.0)
        ]
        assert engine.state("flaky") is StrategyState.QUARANTINED

    def test_the_other_strategy_keeps_entering(
        self, quarantined_run: tuple[Engine, FakeExchange, list[Candle]]
    ) -> None:
        engine, _, _ = quarantined_run
        steady = engine.factory.get("steady").position_lifecycle()
        assert engine.state("steady") is StrategyState.ACTIVE
        assert [trade.entry_ts.hour for trade in steady.trades] == [1, 3, 5]
        assert steady.open_count() == 1

    def test_health_shows_state_counts_and_last_errors(
        self, quarantined_run: tuple[Engine, FakeExchange, list[Candle]]
    ) -> None:
        engine, _, _ = quarantined_run
        health = engine.health()
        assert health["flaky"] == {
            "state": "quarantined",
            "errors": 2,
            "consecutive_failures": 0,
            "last_errors": ["RuntimeError: boom at bar 2", "RuntimeError: boom at bar 3"],
            "candles_processed": 3,  # bars 0, 1 and 4; quarantined and flat, it processes nothing
            "open_positions": 0,
            "realized_pnl": -5.0,
            "unrealized_pnl": 0.0,
        }
        assert health["steady"]["state"] == "active"
        assert health["steady"]["errors"] == 0
        assert health["steady"]["candles_processed"] == 8

    def test_health_keeps_only_the_last_five_errors(
        self, tradekit_factory: TradingOrchestratorFactory, tradekit_engine: Engine
    ) -> None:
        # A stop the exchange keeps rejecting fails on every candle, quarantined or not.
        config = ticker("broken", every=100, exit_offset=None)
        exchange = FakeExchange()
        stream = closes(100, *[90.0] * 7)
        with tradekit_factory.overriding(config, shared_exchange=exchange):
            tradekit_engine.load([config])
            feed(tradekit_engine, stream[:1])
            for attempt in range(7):
                exchange.fail_next_submit(f"rejected {attempt}")
            feed(tradekit_engine, stream[1:])
            health = tradekit_engine.health()["broken"]
        assert (health["errors"], health["consecutive_failures"]) == (7, 7)
        assert health["last_errors"] == [
            f"ActionFailed: ClosePercent BTC/USDT: ExchangeError: rejected {attempt}"
            for attempt in range(2, 7)
        ]


class TestLifecycleThroughTheEngine:
    def test_loading_a_running_strategy_again_changes_nothing(
        self,
        tradekit_engine: Engine,
        tradekit_events: EventRecorder,
    ) -> None:
        assert tradekit_engine.load([ticker("a")]) == ["a"]
        assert tradekit_engine.load([ticker("a")]) == []
        assert len(tradekit_events.of_type(StrategyLoaded)) == 1
        assert feed(tradekit_engine, closes(100)) == [1]

    def test_loading_another_config_under_a_running_id_is_refused(
        self, tradekit_engine: Engine
    ) -> None:
        tradekit_engine.load([ticker("a")])
        with pytest.raises(StrategyConflictError, match="use reload"):
            tradekit_engine.load([ticker("a", every=5)])

    def test_health_forgets_a_strategy_unloaded_through_the_factory(
        self, tradekit_factory: TradingOrchestratorFactory, tradekit_engine: Engine
    ) -> None:
        tradekit_engine.load([ticker("a"), ticker("b")])
        tradekit_factory.unload("a")
        assert sorted(tradekit_engine.health()) == ["b"]
        assert feed(tradekit_engine, closes(100)) == [1]

    def test_graceful_shutdown_unloads_every_strategy(
        self,
        tradekit_factory: TradingOrchestratorFactory,
        tradekit_engine: Engine,
        tradekit_events: EventRecorder,
    ) -> None:
        tradekit_engine.load([ticker("a"), ticker("b"), ticker("c")])
        feed(tradekit_engine, closes(100, 101))
        tradekit_engine.shutdown()
        unloaded = tradekit_events.of_type(StrategyUnloaded)
        assert [(event.strategy_id, event.reason) for event in unloaded] == [
            ("c", "shutdown"),
            ("b", "shutdown"),
            ("a", "shutdown"),
        ]
        assert len(tradekit_factory) == 0
        assert tradekit_engine.health() == {}
        assert feed(tradekit_engine, closes(100, 101, 102)[2:]) == [0]


def _fixed_clock_shared() -> SharedContainer:
    shared = shared_container_from_dict({"exchange": {"fee_bps": 10.0, "slippage_bps": 2.0}})
    shared.clock.override(providers.Object(ManualClock(FIXED_TIME)))
    return shared


def _rsi(strategy_id: str) -> StrategyConfig:
    return strategy_config_from_dict(
        {
            "strategy_id": strategy_id,
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "indicators": [{"name": "rsi", "params": {"length": 14}}],
            "analyzers": [
                {"type": "threshold", "params": {"source": "rsi", "below": 40, "above": 60}}
            ],
            "exit": {"stop_loss_pct": 3, "exit_on_opposite_signal": True},
        }
    )


Outcome = tuple[list[Trade], float, list[dict[str, Any]]]


def _outcome(engine: Engine, recorder: EventRecorder, strategy_id: str) -> Outcome:
    positions = engine.factory.get(strategy_id).position_lifecycle()
    events = [event.to_dict() for event in recorder.for_strategy(strategy_id)]
    return list(positions.trades), positions.equity(), events


def _run_with_churn(churned: Sequence[str], cycles: int) -> tuple[Outcome, Engine, list[str]]:
    """Feed ``steady`` and the ``churned`` strategies while each churned one is unloaded,
    reloaded and loaded again from its own thread, at most ``cycles`` times.

    The churn starts once the first candle is fed; a churned strategy none of whose
    cycles ended before the last candle is reported as a problem, since the run then
    proves nothing about churn during a feed."""
    shared = _fixed_clock_shared()
    engine = Engine(TradingOrchestratorFactory(shared))
    recorder = EventRecorder(shared.event_bus())
    engine.load([_rsi("steady"), *(_rsi(strategy_id) for strategy_id in churned)])
    stream = list(FakeCandleSource.generated("BTC/USDT", "1h", 300, seed=21).stream())
    done = threading.Event()
    feeding = threading.Event()
    fed = 0
    problems: list[str] = []
    cycles_during_feed = dict.fromkeys(churned, 0)

    def churn(strategy_id: str) -> None:
        config = _rsi(strategy_id)
        bigger = config.model_copy(update={"capital": 20_000.0})
        feeding.wait(timeout=60)
        try:
            for _ in range(cycles):
                if done.is_set():
                    break
                engine.unload(strategy_id)
                engine.load([config])
                engine.reload(bigger)
                engine.reload(config)
                if fed < len(stream):
                    cycles_during_feed[strategy_id] += 1
        except Exception as exc:
            problems.append(f"{strategy_id}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=churn, args=(strategy_id,)) for strategy_id in churned]
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so interleavings actually happen
    for thread in threads:
        thread.start()
    try:
        for candle in stream:
            engine.on_candle(candle)
            fed += 1
            feeding.set()
    except Exception as exc:
        problems.append(f"feeding: {type(exc).__name__}: {exc}")
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
        sys.setswitchinterval(switch_interval)
    problems.extend(f"{thread.name} still running" for thread in threads if thread.is_alive())
    problems.extend(
        f"{strategy_id}: no churn cycle ended before the last candle"
        for strategy_id, count in cycles_during_feed.items()
        if count == 0
    )
    return _outcome(engine, recorder, "steady"), engine, problems


class TestThreadSafety:
    def test_churning_another_strategy_from_a_thread_leaves_the_steady_one_unchanged(
        self,
    ) -> None:
        alone, _, _ = _run_with_churn([], cycles=0)
        churned, _, problems = _run_with_churn(["churned"], cycles=40)
        assert problems == []
        assert churned == alone

    def test_two_threads_churning_two_strategies_leave_routing_whole(self) -> None:
        alone, _, _ = _run_with_churn([], cycles=0)
        churned, engine, problems = _run_with_churn(["left", "right"], cycles=40)
        assert problems == []
        assert churned == alone
        after = FakeCandleSource.generated("BTC/USDT", "1h", 301, seed=21).candles(
            "BTC/USDT", "1h"
        )[-1]
        assert engine.on_candle(after) == 3
        assert sorted(engine.health()) == ["left", "right", "steady"]


SYMBOLS = tuple(
    f"{base}/USDT"
    for base in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LTC", "LINK", "AVAX")
)


def _hundred_strategies() -> tuple[dict[str, Any], list[StrategyConfig]]:
    """100 strategies of the five bundled kinds over 10 symbols, with no global exposure cap."""
    base = json.loads((ROOT / "config.json").read_text(encoding="utf-8"))
    base["risk"] = {}  # shared caps would couple the strategies; everything else is isolated
    settings = settings_from_dict(base)
    kinds = [
        load_strategy_config(path, settings)
        for path in sorted((ROOT / "strategies").glob("*.json"))
    ]
    configs = []
    for number in range(100):
        kind = kinds[number % len(kinds)]
        first = (number // len(kinds)) % len(SYMBOLS)
        symbols = [SYMBOLS[(first + offset) % len(SYMBOLS)] for offset in range(len(kind.symbols))]
        data = kind.model_dump()
        data.update(
            strategy_id=f"{kind.strategy_id}-{number:03d}",
            symbols=symbols,
            capital=10_000.0 + 100 * number,
        )
        configs.append(StrategyConfig.model_validate(data))
    return base, configs


def _replay(
    base: dict[str, Any], configs: Sequence[StrategyConfig], source: FakeCandleSource
) -> dict[str, Outcome]:
    shared = shared_container_from_dict(base)
    shared.clock.override(providers.Object(ManualClock(FIXED_TIME)))
    replay = source.preload(shared.candle_provider())
    engine = Engine(TradingOrchestratorFactory(shared))
    with EventRecorder(shared.event_bus()) as recorder:
        engine.load(configs)
        for candle, bar in replay:
            engine.on_bar(candle, bar)
        outcomes = {
            config.strategy_id: _outcome(engine, recorder, config.strategy_id) for config in configs
        }
    engine.shutdown()
    return outcomes


class TestHundredStrategies:
    @pytest.mark.slow
    def test_each_strategy_gives_the_same_results_as_when_run_alone(self) -> None:
        base, configs = _hundred_strategies()
        timeframes = sorted({config.timeframe for config in configs})
        source = FakeCandleSource.generated(SYMBOLS, timeframes, 300, seed=42)
        together = _replay(base, configs, source)
        assert len(together) == 100
        assert sum(len(trades) for trades, _, _ in together.values()) > 100
        for config in configs:
            mine = source.subset(config.symbols, [config.timeframe])
            alone = _replay(base, [config], mine)
            assert together[config.strategy_id] == alone[config.strategy_id], config.strategy_id
