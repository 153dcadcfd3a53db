"""When the journal cannot commit (disk full, read-only database) the engine stops new
entries, says why, and loses nothing: the batch is kept and written once storage recovers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tradekit.config import StrategyConfig, TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.data import synthetic_candles
from tradekit.errors import StorageError
from tradekit.events import ActionExecuted, Event
from tradekit.runtime.engine import Engine
from tradekit.services.journal.store import SqlJournal


class FailingCommits:
    """The real SQLite journal, with commits that fail while ``broken`` is set."""

    def __init__(self, journal: SqlJournal) -> None:
        self.inner = journal
        self.broken = False

    def commit(self) -> None:
        if self.broken:
            raise StorageError("database or disk is full")
        self.inner.commit()

    def record(self, events: Sequence[Event]) -> None:
        self.inner.record(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def config() -> StrategyConfig:
    return StrategyConfig.model_validate(
        {
            "strategy_id": "every-bar",
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "analyzers": [{"type": "time_interval", "params": {"every_bars": 5}}],
            "exit": {"time_stop_bars": 2},
            "risk": {"risk_per_trade_pct": 100},
        }
    )


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Engine, FailingCommits, Path]:
    db = tmp_path / "journal.db"
    journal = FailingCommits(SqlJournal(f"sqlite:///{db}"))
    shared = SharedContainer(settings=TradekitSettings(_env_file=None))
    engine = Engine(TradingOrchestratorFactory(shared), journal=journal)  # type: ignore[arg-type]
    engine.load([config()])
    return engine, journal, db


class TestCommitFailure:
    def test_entries_stop_and_the_reason_is_given(
        self, setup: tuple[Engine, FailingCommits, Path]
    ) -> None:
        engine, journal, _ = setup
        candles = synthetic_candles("BTC/USDT", "1h", 40, seed=3)
        for candle in candles[:10]:
            engine.on_candle(candle)
        journal.broken = True
        engine.on_candle(candles[10])
        assert engine.entries_halted is not None
        assert "database or disk is full" in engine.entries_halted
        orchestrator = engine.factory.get("every-bar").trading_orchestrator()
        assert orchestrator.entries_enabled is False
        decided: list[ActionExecuted] = []
        engine.factory.shared.event_bus().subscribe(decided.append, ActionExecuted)
        for candle in candles[11:30]:
            engine.on_candle(candle)
        # Nothing new is opened after the failure; an entry it left pending was cancelled.
        assert [event.action for event in decided if event.action == "OpenPosition"] == []
        lifecycle = engine.factory.get("every-bar").position_lifecycle()
        assert lifecycle.open_count() == 0
        assert lifecycle.pending_entry_orders() == []

    def test_nothing_is_lost_once_storage_recovers(
        self, setup: tuple[Engine, FailingCommits, Path]
    ) -> None:
        engine, journal, _ = setup
        published: list[Event] = []
        engine.factory.shared.event_bus().subscribe(published.append)
        candles = synthetic_candles("BTC/USDT", "1h", 40, seed=3)
        for candle in candles[:10]:
            engine.on_candle(candle)
        journal.broken = True
        for candle in candles[10:20]:
            engine.on_candle(candle)
        journal.broken = False
        engine.on_candle(candles[20])
        stored = [event.seq for event in journal.inner.events("every-bar")]
        assert stored == list(range(1, len(stored) + 1))
        assert {event.seq for event in published} <= set(stored)
        assert len(published) > 5


class TestUnopenableDatabase:
    def test_a_folder_in_place_of_the_database_is_a_clear_error(self, tmp_path: Path) -> None:
        folder = tmp_path / "journal.db"
        folder.mkdir()
        with pytest.raises(StorageError, match=r"journal\.db"):
            SqlJournal(f"sqlite:///{folder}")
