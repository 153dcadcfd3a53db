"""``Engine.route`` and ``Engine.step``: one strategy, one candle, its lock and its failures."""

from __future__ import annotations

from typing import Any

import pytest

from tradekit.config.strategy import StrategyConfig
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.domain import Candle
from tradekit.events import StrategyFailed
from tradekit.runtime.engine import Engine
from tradekit.strategy_state import StrategyState
from tradekit.testing import EventRecorder, FakeCandleSource, strategy_config_from_dict


@pytest.fixture
def tradekit_settings_data() -> dict[str, Any]:
    return {"engine": {"failures_before_quarantine": 2}}


def buyer(strategy_id: str) -> StrategyConfig:
    return strategy_config_from_dict(
        {
            "strategy_id": strategy_id,
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "analyzers": [{"type": "time_interval", "params": {"every_bars": 3}}],
        }
    )


def candles(count: int) -> list[Candle]:
    return list(FakeCandleSource.from_closes([100.0 + i for i in range(count)]).stream())


class TestRoutes:
    def test_entries_carry_the_factory_lock_of_their_strategy(
        self, tradekit_engine: Engine, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        tradekit_engine.load([buyer("a"), buyer("b")])
        route = tradekit_engine.route("BTC/USDT", "1h")
        assert [entry.strategy_id for entry in route] == ["a", "b"]
        for entry in route:
            assert entry.lock is tradekit_factory.lock(entry.strategy_id)
            container = tradekit_factory.get(entry.strategy_id)
            assert entry.orchestrator is container.trading_orchestrator()

    def test_an_unknown_route_is_empty(self, tradekit_engine: Engine) -> None:
        assert tradekit_engine.route("ETH/USDT", "1h") == ()


class TestStep:
    def test_runs_the_candle_under_the_strategy_lock(
        self, tradekit_engine: Engine, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        tradekit_engine.load([buyer("a")])
        (entry,) = tradekit_engine.route("BTC/USDT", "1h")
        held: list[bool] = []
        original = entry.orchestrator.on_bar

        def on_bar(candle: Candle, bar: int) -> None:
            held.append(entry.lock._is_owned())  # type: ignore[attr-defined]
            original(candle, bar)

        entry.orchestrator.on_bar = on_bar
        candle = candles(1)[0]
        bar = tradekit_factory.shared.candle_provider().append(candle)
        assert tradekit_engine.step(entry, candle, bar)
        assert held == [True]
        assert entry.orchestrator.candles_processed == 1
        assert not entry.lock._is_owned()  # type: ignore[attr-defined]

    def test_a_failure_is_isolated_counted_and_can_quarantine(
        self, tradekit_engine: Engine, tradekit_events: EventRecorder
    ) -> None:
        tradekit_engine.load([buyer("a")])
        (entry,) = tradekit_engine.route("BTC/USDT", "1h")

        def broken(candle: Candle, bar: int) -> None:
            raise RuntimeError("broken")

        healthy = entry.orchestrator.on_bar
        stream = candles(4)
        store = tradekit_engine.factory.shared.candle_provider()
        bars = [store.append(candle) for candle in stream]
        entry.orchestrator.on_bar = broken
        assert not tradekit_engine.step(entry, stream[0], bars[0])
        entry.orchestrator.on_bar = healthy
        assert tradekit_engine.step(entry, stream[1], bars[1])
        assert tradekit_engine.health()["a"]["consecutive_failures"] == 0
        entry.orchestrator.on_bar = broken
        assert not tradekit_engine.step(entry, stream[2], bars[2])
        assert not tradekit_engine.step(entry, stream[3], bars[3])
        assert tradekit_engine.state("a") is StrategyState.QUARANTINED
        assert [
            event.consecutive_failures for event in tradekit_events.of_type(StrategyFailed)
        ] == [1, 1, 2]

    def test_an_entry_no_longer_routed_is_left_alone(
        self, tradekit_engine: Engine, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        tradekit_engine.load([buyer("a")])
        (entry,) = tradekit_engine.route("BTC/USDT", "1h")
        tradekit_engine.unload("a")
        processed = entry.orchestrator.candles_processed
        assert not tradekit_engine.step(entry, candles(1)[0], 0)
        assert entry.orchestrator.candles_processed == processed
