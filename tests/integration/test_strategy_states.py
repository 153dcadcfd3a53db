"""One truth for each strategy's state: active, disabled, quarantined, through every path.

Disabled and quarantined strategies take no signals and no entries, yet their
protective exits keep managing what they hold; once flat they process nothing.
Rejected orders count as failures, and a rejected protective exit is retried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from ticker_strategies import ticker

from tradekit.config.strategy import StrategyConfig
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.domain import Candle
from tradekit.errors import StrategyError
from tradekit.events import (
    PositionClosed,
    PositionReduced,
    SignalGenerated,
    StrategyFailed,
    StrategyQuarantined,
    StrategyResumed,
)
from tradekit.runtime.engine import Engine
from tradekit.services.journal.store import SqlJournal
from tradekit.strategy_state import StrategyState
from tradekit.testing import (
    EventRecorder,
    FakeCandleSource,
    FakeExchange,
    shared_container_from_dict,
)

QUARANTINE_AFTER = 3


@dataclass
class Rig:
    """An engine over a fake exchange, with every event recorded."""

    engine: Engine
    exchange: FakeExchange
    events: EventRecorder

    def feed(self, candles: Sequence[Candle]) -> None:
        for candle in candles:
            self.engine.on_candle(candle)

    def processed(self, strategy_id: str) -> int:
        count: int = self.engine.health()[strategy_id]["candles_processed"]
        return count

    def orders(self, strategy_id: str) -> list[tuple[str, str]]:
        return [
            (order.side.value, order.reason)
            for order in self.exchange.orders
            if order.strategy_id == strategy_id
        ]

    def signals(self, strategy_id: str) -> list[SignalGenerated]:
        return [e for e in self.events.of_type(SignalGenerated) if e.strategy_id == strategy_id]


def make_rig(journal: SqlJournal | None = None) -> Rig:
    shared = shared_container_from_dict(
        {
            "exchange": {"kind": "paper", "fee_bps": 0.0, "slippage_bps": 0.0},
            "engine": {"failures_before_quarantine": QUARANTINE_AFTER},
        }
    )
    exchange = FakeExchange()
    shared.exchange.override(providers.Object(exchange))
    engine = Engine(TradingOrchestratorFactory(shared), journal=journal)
    return Rig(engine, exchange, EventRecorder(shared.event_bus()))


@pytest.fixture
def rig() -> Iterator[Rig]:
    made = make_rig()
    yield made
    made.engine.shutdown()


def closes(*values: float) -> list[Candle]:
    return list(FakeCandleSource.from_closes(values).stream())


def holder(strategy_id: str = "a", every: int = 100, **options: Any) -> StrategyConfig:
    """Buys on bar 0 (and every ``every`` bars), never sells on a signal: its 5% stop does."""
    return ticker(strategy_id, every=every, exit_offset=None, **options)


def trader(strategy_id: str = "a", **options: Any) -> StrategyConfig:
    """Buys on every even bar, sells on the odd bar after."""
    return ticker(strategy_id, every=2, exit_offset=1, **options)


class TestDisabledMeansDisabled:
    def test_loading_a_running_strategy_as_disabled_stops_its_signals_and_entries(
        self, rig: Rig
    ) -> None:
        stream = closes(*[100.0] * 8)
        rig.engine.load([trader()])
        rig.feed(stream[:2])
        assert rig.orders("a") == [("buy", "long score 0.50"), ("sell", "signal_exit")]
        signals_before = len(rig.signals("a"))

        rig.engine.load([trader(enabled=False)])
        processed = rig.processed("a")
        rig.feed(stream[2:])

        assert rig.engine.state("a") is StrategyState.DISABLED
        assert rig.engine.health()["a"]["state"] == "disabled"
        assert len(rig.orders("a")) == 2
        assert len(rig.signals("a")) == signals_before
        assert rig.processed("a") == processed

    def test_reloading_as_disabled_keeps_the_stop_and_then_processes_nothing(
        self, rig: Rig
    ) -> None:
        stream = closes(100, 100, 100, 90, 90, 90, 90)
        rig.engine.load([ticker("a", every=2, exit_offset=None)])
        rig.feed(stream[:1])
        rig.engine.reload(ticker("a", every=2, exit_offset=None, enabled=False))
        processed = rig.processed("a")
        rig.feed(stream[1:])

        assert rig.orders("a") == [("buy", "long score 1.00"), ("sell", "stop_loss")]
        closed = rig.events.of_type(PositionClosed)
        assert [(event.reason, event.exit_price) for event in closed] == [("stop_loss", 95.0)]
        assert rig.processed("a") == processed + 3  # bars 1 to 3; flat from bar 3 on
        assert rig.engine.health()["a"]["state"] == "disabled"

    def test_disable_and_enable_go_through_the_same_rule(self, rig: Rig) -> None:
        stream = closes(*[100.0] * 8)
        rig.engine.load([trader()])
        rig.feed(stream[:2])
        rig.engine.disable("a", reason="maintenance")
        rig.feed(stream[2:4])
        assert len(rig.orders("a")) == 2
        assert rig.engine.state("a") is StrategyState.DISABLED

        rig.engine.enable("a")
        rig.feed(stream[4:])
        assert rig.engine.state("a") is StrategyState.ACTIVE
        assert rig.orders("a")[2:] == [("buy", "long score 0.50"), ("sell", "signal_exit")] * 2

    def test_a_dormant_strategy_is_enabled_by_loading_it_enabled(self, rig: Rig) -> None:
        rig.engine.load([trader(enabled=False)])
        assert rig.engine.health()["a"]["state"] == "disabled"
        rig.engine.enable("a")
        rig.feed(closes(100, 100))
        assert rig.orders("a") == [("buy", "long score 0.50"), ("sell", "signal_exit")]


class TestHaltedEntriesStayHalted:
    def test_reload_does_not_reopen_entries_after_a_journal_failure(self, rig: Rig) -> None:
        rig.engine.load([trader()])
        rig.engine.halt_entries("journal commit failed")
        rig.engine.reload(trader(capital=20_000.0))
        rig.feed(closes(*[100.0] * 4))
        assert rig.orders("a") == []

    def test_enable_does_not_reopen_entries_either(self, rig: Rig) -> None:
        rig.engine.load([trader()])
        rig.engine.disable("a")
        rig.engine.halt_entries("journal commit failed")
        rig.engine.enable("a")
        rig.feed(closes(*[100.0] * 4))
        assert rig.orders("a") == []


class TestRejectedOrdersCount:
    def test_a_stop_rejected_seven_times_quarantines_and_is_retried_until_it_fills(
        self, rig: Rig
    ) -> None:
        stream = closes(100, *[90.0] * 8)
        rig.engine.load([holder()])
        rig.feed(stream[:1])
        rig.exchange.fail_next_submit("rejected: market closed", times=7)
        rig.feed(stream[1:])

        health = rig.engine.health()["a"]
        assert (health["state"], health["errors"]) == ("quarantined", 7)
        failed = rig.events.of_type(StrategyFailed)
        assert [(e.error_type, e.consecutive_failures) for e in failed] == [
            ("ActionFailed", n) for n in range(1, 8)
        ]
        assert "rejected: market closed" in failed[0].error
        quarantined = rig.events.of_type(StrategyQuarantined)
        assert [(e.ts, e.failures) for e in quarantined] == [(stream[3].close_ts, 3)]
        assert rig.orders("a") == [("buy", "long score 1.00"), *[("sell", "stop_loss")] * 8]
        closed = rig.events.of_type(PositionClosed)
        assert [(e.ts, e.reason, e.exit_price) for e in closed] == [
            (stream[8].close_ts, "stop_loss", 90.0)
        ]

    def test_a_rejected_stop_is_retried_even_when_the_price_came_back(self, rig: Rig) -> None:
        stream = closes(100, 96, 97, 97)
        stream[1] = dataclasses.replace(stream[1], low=94.0)  # touches the 95 stop, then recovers
        rig.engine.load([holder()])
        rig.feed(stream[:1])
        rig.exchange.fail_next_submit(times=1)
        rig.feed(stream[1:])
        closed = rig.events.of_type(PositionClosed)
        assert [(e.ts, e.reason, e.exit_price) for e in closed] == [
            (stream[2].close_ts, "stop_loss", 97.0)
        ]
        assert rig.engine.health()["a"]["consecutive_failures"] == 0

    def test_a_rejected_partial_take_profit_is_taken_when_touched_again(self, rig: Rig) -> None:
        stream = closes(100, 106, 106, 100)
        rig.engine.load(
            [holder(exit={"partial_take_profits": [{"profit_pct": 5, "close_pct": 50}]})]
        )
        rig.feed(stream[:1])
        rig.exchange.fail_next_submit(times=1)
        rig.feed(stream[1:])
        reduced = rig.events.of_type(PositionReduced)
        assert [(e.ts, e.reason, e.price) for e in reduced] == [
            (stream[2].close_ts, "partial_take_profit_1", 106.0)
        ]
        position = rig.engine.factory.get("a").position_lifecycle().position("BTC/USDT")
        assert position is not None
        assert position.partial_exits_done == 1


class TestResume:
    def quarantine(self, rig: Rig) -> list[Candle]:
        """``a`` is quarantined by three rejected stops, then closed by the retry: flat."""
        stream = closes(100, 90, 90, 90, 90, *[90.0] * 200)
        rig.engine.load([holder(every=2)])
        rig.feed(stream[:1])
        rig.exchange.fail_next_submit(times=QUARANTINE_AFTER)
        rig.feed(stream[1:5])
        assert rig.engine.state("a") is StrategyState.QUARANTINED
        return stream

    def test_a_flat_quarantined_strategy_processes_nothing(self, rig: Rig) -> None:
        stream = self.quarantine(rig)
        processed = rig.processed("a")
        rig.feed(stream[5:9])
        assert rig.processed("a") == processed
        assert rig.engine.factory.get("a").position_lifecycle().open_count() == 0

    def test_resume_makes_it_active_again_and_says_who_and_why(self, rig: Rig) -> None:
        stream = self.quarantine(rig)
        rig.engine.resume("a", by="ops@desk", reason="exchange maintenance over")
        rig.feed(stream[5:7])

        assert rig.engine.state("a") is StrategyState.ACTIVE
        assert rig.engine.health()["a"]["consecutive_failures"] == 0
        resumed = rig.events.of_type(StrategyResumed)
        assert [(e.strategy_id, e.by, e.reason) for e in resumed] == [
            ("a", "ops@desk", "exchange maintenance over")
        ]
        assert rig.orders("a")[-1] == ("buy", "long score 1.00")

    def test_only_a_quarantined_strategy_can_be_resumed(self, rig: Rig) -> None:
        rig.engine.load([trader()])
        with pytest.raises(StrategyError, match="'a' is active, not quarantined"):
            rig.engine.resume("a", by="ops", reason="why not")

    def test_enable_refuses_a_quarantined_strategy(self, rig: Rig) -> None:
        self.quarantine(rig)
        with pytest.raises(StrategyError, match="use resume"):
            rig.engine.enable("a")


class TestHealthTellsTheTruth:
    def test_every_state_is_reported(self, rig: Rig) -> None:
        stream = closes(100, 100, 100)
        rig.engine.load([trader("active"), holder("held"), trader("dormant", enabled=False)])
        rig.feed(stream[:1])
        rig.engine.disable("held")
        rig.feed(stream[1:])
        health = rig.engine.health()
        assert {key: entry["state"] for key, entry in health.items()} == {
            "active": "active",
            "held": "disabled",
            "dormant": "disabled",
        }
        assert health["held"]["open_positions"] == 1
        assert health["held"]["candles_processed"] == 3
        report = rig.engine.report()
        assert report["dormant"]["state"] == "disabled"
        assert report["held"]["state"] == "disabled"


class TestDisabledWithAJournal:
    def test_a_disabled_strategy_holding_a_position_is_built_to_manage_its_stop(
        self, tmp_path: Path
    ) -> None:
        url = f"sqlite:///{tmp_path / 'journal.db'}"
        stream = closes(100, 100, 90, 90)
        first_journal = SqlJournal(url)
        first = make_rig(first_journal)
        first.engine.load([holder()])
        first.feed(stream[:2])
        first_journal.close()  # the first run ends without a clean shutdown

        second = make_rig(SqlJournal(url))
        second.engine.load([holder(enabled=False)])
        second.feed(stream[2:])
        closed = second.events.of_type(PositionClosed)
        assert [(e.reason, e.exit_price) for e in closed] == [("stop_loss", 95.0)]
        assert second.engine.health()["a"]["state"] == "disabled"
        second.engine.shutdown()

    def test_a_disabled_strategy_with_nothing_journaled_stays_dormant(self, tmp_path: Path) -> None:
        made = make_rig(SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}"))
        made.engine.load([holder(enabled=False)])
        assert "a" not in made.engine.factory
        assert made.engine.health()["a"]["state"] == "disabled"
        made.engine.shutdown()
