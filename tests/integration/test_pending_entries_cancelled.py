"""A strategy told to stop entering has no entry order left to fill.

An entry decided on a candle's close fills at the next candle's open. A
strategy disabled, quarantined or halted in between must not open (or add to)
a position on that fill: its pending entry orders are cancelled and what they
reserved is released. Its pending closes are left to fill.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from dependency_injector import providers
from ticker_strategies import ticker

from tradekit.config.strategy import StrategyConfig
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.domain import Candle, Order
from tradekit.events import OrderCancelled, PositionClosed, PositionIncreased, PositionOpened
from tradekit.runtime.engine import Engine
from tradekit.services.exchange.paper import PaperExchange
from tradekit.strategy_state import StrategyState
from tradekit.testing import (
    EventRecorder,
    FakeCandleSource,
    FakeExchange,
    shared_container_from_dict,
)

QUARANTINE_AFTER = 3
SYMBOL = "BTC/USDT"


@dataclass
class Rig:
    """An engine whose exchange keeps market orders pending until the next candle."""

    engine: Engine
    exchange: FakeExchange | PaperExchange
    events: EventRecorder

    def feed(self, candles: Sequence[Candle]) -> None:
        for candle in candles:
            self.engine.on_candle(candle)

    def pending(self, strategy_id: str) -> list[Order]:
        if isinstance(self.exchange, PaperExchange):
            return list(self.exchange.pending_orders(strategy_id))
        return [
            order
            for order in self.exchange.orders
            if order.strategy_id == strategy_id
            and order not in self.exchange.cancelled
            and not any(fill.order_id == order.order_id for fill in self.exchange.fills)
        ]

    def reserved(self) -> float:
        guard = self.engine.factory.shared.exposure_guard()
        total: float = guard.total_exposure()
        return total


def make_rig(kind: str) -> Rig:
    shared = shared_container_from_dict(
        {
            "exchange": {"kind": "paper", "fee_bps": 0.0, "slippage_bps": 0.0},
            "engine": {"failures_before_quarantine": QUARANTINE_AFTER},
            "risk": {"max_exposure_per_symbol": 1_000_000.0},
        }
    )
    exchange: FakeExchange | PaperExchange
    if kind == "fake":
        exchange = FakeExchange(hold=True)
        shared.exchange.override(providers.Object(exchange))
    else:
        exchange = shared.exchange()
        assert isinstance(exchange, PaperExchange)
    engine = Engine(TradingOrchestratorFactory(shared))
    return Rig(engine, exchange, EventRecorder(shared.event_bus()))


@pytest.fixture(params=["paper", "fake"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    made = make_rig(str(request.param))
    yield made
    made.engine.shutdown()


def closes(*values: float) -> list[Candle]:
    return list(FakeCandleSource.from_closes(values).stream())


def trader(strategy_id: str = "a", **options: Any) -> StrategyConfig:
    """Buys on every even bar, sells (a signal exit) on the odd bar after."""
    return ticker(strategy_id, every=2, exit_offset=1, **options)


def opened(rig: Rig) -> list[PositionOpened]:
    return rig.events.of_type(PositionOpened)


class TestDisable:
    def test_an_entry_pending_at_the_disable_never_fills(self, rig: Rig) -> None:
        stream = closes(*[100.0] * 6)
        rig.engine.load([trader()])
        rig.feed(stream[:1])  # bar 0 decides a buy that fills at bar 1's open
        assert [order.side.value for order in rig.pending("a")] == ["buy"]
        assert rig.reserved() > 0

        rig.engine.disable("a", reason="maintenance")
        rig.feed(stream[1:])

        assert opened(rig) == []
        assert rig.pending("a") == []
        assert rig.reserved() == 0
        assert rig.engine.open_positions("a") == 0
        cancelled = rig.events.of_type(OrderCancelled)
        assert [(e.strategy_id, e.side.value, e.symbol) for e in cancelled] == [
            ("a", "buy", SYMBOL)
        ]
        assert "disabled" in cancelled[0].reason

    def test_a_pending_close_still_fills_after_the_disable(self, rig: Rig) -> None:
        stream = closes(*[100.0] * 6)
        rig.engine.load([trader()])
        rig.feed(stream[:2])  # bar 1: the buy filled at its open, a sell is decided
        assert [order.side.value for order in rig.pending("a")] == ["sell"]

        rig.engine.disable("a")
        rig.feed(stream[2:])

        closed = rig.events.of_type(PositionClosed)
        assert [(e.reason, e.ts) for e in closed] == [("signal_exit", stream[2].ts)]
        assert len(opened(rig)) == 1
        assert rig.events.of_type(OrderCancelled) == []
        assert rig.engine.open_positions("a") == 0

    def test_a_pending_dca_add_is_cancelled_and_the_position_kept(self, rig: Rig) -> None:
        stream = closes(*[100.0] * 5)
        rig.engine.load(
            [ticker("a", every=1, exit_offset=None, dca={"safety_orders": 5, "trigger": "signal"})]
        )
        rig.feed(stream[:2])  # bar 1: the open filled, an add is decided
        assert [order.side.value for order in rig.pending("a")] == ["buy"]
        assert rig.engine.open_positions("a") == 1

        rig.engine.disable("a")
        rig.feed(stream[2:])

        assert rig.events.of_type(PositionIncreased) == []
        assert [e.side.value for e in rig.events.of_type(OrderCancelled)] == ["buy"]
        position = rig.engine.factory.handle("a").position_lifecycle.position(SYMBOL)
        assert position is not None
        assert position.entries == 1
        assert rig.pending("a") == []

    def test_reloading_as_disabled_cancels_the_pending_entry(self, rig: Rig) -> None:
        stream = closes(*[100.0] * 4)
        rig.engine.load([trader()])
        rig.feed(stream[:1])
        rig.engine.reload(trader(enabled=False), "disabled")
        rig.feed(stream[1:])
        assert opened(rig) == []
        assert rig.reserved() == 0


class TestQuarantine:
    def test_an_entry_pending_at_the_quarantine_never_fills(
        self, rig: Rig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        stream = closes(*[100.0] * 8)
        rig.engine.load([trader()])
        rig.feed(stream[:1])
        orchestrator = rig.engine.factory.handle("a").trading_orchestrator

        def broken(candle: Candle, bar: int) -> tuple[()]:
            raise RuntimeError("analyzer blew up")

        monkeypatch.setattr(orchestrator, "on_bar", broken)
        rig.feed(stream[1 : 1 + QUARANTINE_AFTER])
        monkeypatch.undo()
        assert rig.engine.state("a") is StrategyState.QUARANTINED
        rig.feed(stream[1 + QUARANTINE_AFTER :])

        assert opened(rig) == []
        assert rig.pending("a") == []
        assert rig.reserved() == 0
        cancelled = rig.events.of_type(OrderCancelled)
        assert [e.side.value for e in cancelled] == ["buy"]
        assert "quarantined" in cancelled[0].reason

    def test_a_pending_close_still_fills_after_the_quarantine(
        self, rig: Rig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        stream = closes(*[100.0] * 8)
        rig.engine.load([trader()])
        rig.feed(stream[:2])
        orchestrator = rig.engine.factory.handle("a").trading_orchestrator

        def broken(candle: Candle, bar: int) -> tuple[()]:
            raise RuntimeError("analyzer blew up")

        monkeypatch.setattr(orchestrator, "on_bar", broken)
        rig.feed(stream[2 : 2 + QUARANTINE_AFTER])
        monkeypatch.undo()
        assert rig.engine.state("a") is StrategyState.QUARANTINED
        rig.feed(stream[2 + QUARANTINE_AFTER :])

        closed = rig.events.of_type(PositionClosed)
        assert [e.reason for e in closed] == ["signal_exit"]
        assert rig.events.of_type(OrderCancelled) == []
        assert rig.engine.open_positions("a") == 0


class TestHaltedEntries:
    def test_an_entry_pending_when_entries_halt_never_fills(self, rig: Rig) -> None:
        stream = closes(*[100.0] * 4)
        rig.engine.load([trader()])
        rig.feed(stream[:1])
        rig.engine.halt_entries("journal commit failed")
        rig.feed(stream[1:])
        assert opened(rig) == []
        assert rig.reserved() == 0
        cancelled = rig.events.of_type(OrderCancelled)
        assert [e.side.value for e in cancelled] == ["buy"]
        assert "journal commit failed" in cancelled[0].reason
