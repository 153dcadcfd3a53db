"""Tests for the SQL journal, against real SQLite files: events, batching, snapshots, registry.

Nothing here mocks the database. Failures are produced for real: read-only files,
locks held by another connection, a trigger that aborts the transaction.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sqlalchemy_event

from tradekit.config import StrategyConfig
from tradekit.domain import Direction, Fill, Order, OrderSide, Position, Side
from tradekit.errors import EventError, JournalConflictError, StorageError
from tradekit.events import EVENT_TYPES, Event, PositionOpened, StrategyFailed
from tradekit.protocols import Journal
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher
from tradekit.services.journal import tables as journal_tables
from tradekit.services.journal.store import SqlJournal, StoredSnapshot, StrategyStatus
from tradekit.services.positions.lifecycle import PositionLifecycleService
from tradekit.services.positions.state import CloseIntent, OpenIntent, OrderIntent

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BTC, ETH = "BTC/USDT", "ETH/USDT"

# A plausible value for every field of every event; a new field must be added here.
PLAUSIBLE: dict[str, Any] = {
    "symbol": BTC,
    "strength": 0.75,
    "reason": "rsi crossed above 30",
    "source": "rsi",
    "position_id": "rsi-btc-pos-1",
    "quantity": 0.5,
    "price": 61_250.5,
    "fee": 30.63,
    "stop_loss": 59_000.0,
    "take_profit": None,
    "quantity_added": 0.25,
    "avg_entry_price": 60_500.0,
    "quantity_closed": 0.25,
    "quantity_remaining": 0.25,
    "realized_pnl": 187.5,
    "exit_price": 62_000.0,
    "fees": 61.2,
    "bars_held": 14,
    "old_stop": None,
    "new_stop": 60_000.0,
    "distance_pct": 1.5,
    "activation_price": 61_800.0,
    "action": "ClosePercent",
    "detail": "closed 50% at 62000",
    "error": "ZeroDivisionError('division by zero')",
    "order_id": "rsi-btc-ord-7",
    "rule": "max_exposure_per_symbol",
    "requested": 5_000.0,
    "allowed": 2_500.0,
    "name": "RSI on BTC",
    "symbols": (BTC, ETH),
    "timeframe": "1h",
    "error_type": "ZeroDivisionError",
    "consecutive_failures": 2,
    "failures": 3,
    "last_error": "ValueError('bad candle')",
    "by": "ops@desk",
    "asset": "BTC",
    "venue_amount": 0.75,
    "books_amount": 0.5,
    "quantity_change": 0.25,
    "change_id": 3,
    "outcome": "applied",
    "venue": "binance",
    "trade_id": "28457",
    "venue_order_id": "100234",
    "client_order_id": "TKrsi-btc-7",
}


# Enum-typed fields take a value of their declared enum, whatever their name.
PLAUSIBLE_ENUMS: dict[type[Enum], Enum] = {
    Side: Side.LONG,
    OrderSide: OrderSide.SELL,
    Direction: Direction.LONG,
}

STAMPED = ("ts", "strategy_id", "seq")


def plausible(event_type: type[Event], name: str) -> Any:
    hint = typing.get_type_hints(event_type)[name]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return PLAUSIBLE_ENUMS[hint]
    return PLAUSIBLE[name]


def make_event(event_type: type[Event], seq: int, strategy_id: str = "rsi-btc") -> Event:
    """One instance of ``event_type`` stamped as ``strategy_id``'s event ``seq``."""
    values = {
        item.name: plausible(event_type, item.name)
        for item in fields(event_type)
        if item.name not in STAMPED
    }
    ts = T0 + timedelta(hours=seq)
    return event_type(ts=ts, strategy_id=strategy_id, seq=seq, **values)


def failed(seq: int, strategy_id: str = "rsi-btc", error: str = "boom") -> StrategyFailed:
    return StrategyFailed(
        ts=T0 + timedelta(minutes=seq),
        strategy_id=strategy_id,
        seq=seq,
        error_type="RuntimeError",
        error=error,
        consecutive_failures=1,
    )


def error_of(event: Event) -> str:
    assert isinstance(event, StrategyFailed)
    return event.error


def order_and_fills(order_id: str = "o-1", strategy_id: str = "rsi-btc") -> tuple[Order, Fill]:
    order = Order(order_id, strategy_id, BTC, OrderSide.BUY, 1.0, T0, reason="entry")
    fill = Fill(order_id, strategy_id, BTC, OrderSide.BUY, 0.4, 60_000.0, 2.4, T0)
    return order, fill


def position(symbol: str = BTC, strategy_id: str = "rsi-btc", quantity: float = 0.5) -> Position:
    return Position(
        position_id=f"{strategy_id}-pos-{symbol}",
        strategy_id=strategy_id,
        symbol=symbol,
        side=Side.SHORT,
        quantity=quantity,
        avg_entry_price=60_000.0,
        opened_at=T0,
        fees_paid=3.0,
        stop_loss=62_000.0,
        trailing_distance_pct=1.5,
        trailing_active=True,
        best_price=59_000.0,
        entries=2,
        bars_held=7,
        partial_exits_done=1,
    )


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
def journal(db_path: Path) -> Iterator[SqlJournal]:
    opened = SqlJournal(url_of(db_path))
    yield opened
    opened.close()


@pytest.fixture(params=["native upsert", "portable fallback"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test over INSERT ... ON CONFLICT and over the check-then-write other databases get."""
    if request.param == "portable fallback":
        monkeypatch.setattr(journal_tables, "NATIVE_INSERTS", {})
    return str(request.param)


def journal_tables_in(path: Path) -> set[str]:
    with sqlite3.connect(path) as raw:
        rows = raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    raw.close()
    return {name for (name,) in rows}


def _chmod_blocks_writes(path: Path) -> bool:
    try:
        with path.open("r+b"):
            return False
    except PermissionError:
        return True


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable for real: chmod, or the immutable flag where chmod cannot (root).

    SQLite gives the -wal and -shm files the database's mode, so all three are
    made writable again afterwards, as an operator restoring access would.
    """
    path.chmod(0o444)
    if _chmod_blocks_writes(path):
        try:
            yield
        finally:
            for item in path.parent.glob(f"{path.name}*"):
                item.chmod(0o644)
        return
    path.chmod(0o644)
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
        pytest.skip("cannot make a file read-only here: chmod is overridden and chattr fails")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


class TestEventRoundTrip:
    @pytest.mark.parametrize("event_type", list(EVENT_TYPES.values()), ids=list(EVENT_TYPES))
    def test_every_event_type_comes_back_equal(
        self, journal: SqlJournal, event_type: type[Event]
    ) -> None:
        event = make_event(event_type, seq=1)
        journal.record([event])
        journal.commit()
        assert journal.events("rsi-btc") == [event]

    def test_all_event_types_in_one_batch_come_back_in_seq_order(self, journal: SqlJournal) -> None:
        events = [make_event(cls, seq) for seq, cls in enumerate(EVENT_TYPES.values(), start=1)]
        journal.record(list(reversed(events)))
        journal.commit()
        assert journal.events("rsi-btc") == events
        assert journal.last_seq("rsi-btc") == len(events)
        assert journal.events("rsi-btc", after_seq=10) == events[10:]

    def test_a_timestamp_keeps_its_utc_offset(self, journal: SqlJournal) -> None:
        event = replace(failed(1), ts=datetime(2024, 3, 1, 14, tzinfo=timezone(timedelta(hours=2))))
        journal.record([event])
        journal.commit()
        assert journal.events("rsi-btc")[0].ts.utcoffset() == timedelta(hours=2)

    def test_an_unstamped_event_is_refused_and_nothing_of_its_batch_is_buffered(
        self, journal: SqlJournal
    ) -> None:
        with pytest.raises(EventError, match="not stamped; publish it through"):
            journal.record([failed(1), replace(failed(2), strategy_id="")])
        assert journal.pending == 0

    def test_a_naive_timestamp_is_refused(self, journal: SqlJournal) -> None:
        with pytest.raises(EventError, match="has no time zone"):
            journal.record([replace(failed(1), ts=datetime(2024, 3, 1))])

    def test_a_strategy_without_events_has_last_seq_zero(self, journal: SqlJournal) -> None:
        assert journal.last_seq("nobody") == 0
        assert journal.events("nobody") == []


class TestIdempotence:
    def test_recording_the_same_stored_event_again_is_harmless(
        self, journal: SqlJournal, write_path: str
    ) -> None:
        journal.record([failed(1), failed(2)])
        journal.commit()
        journal.record([failed(1), failed(3)])
        journal.commit()
        assert [(e.seq, error_of(e)) for e in journal.events("rsi-btc")] == [
            (1, "boom"),
            (2, "boom"),
            (3, "boom"),
        ]

    def test_the_same_event_twice_in_one_batch_is_written_once(
        self, journal: SqlJournal, write_path: str
    ) -> None:
        journal.record([failed(1)])
        journal.record([failed(1)])
        assert journal.pending == 1
        journal.commit()
        assert [error_of(e) for e in journal.events("rsi-btc")] == ["boom"]

    def test_an_order_with_several_fills_is_stored_once(
        self, journal: SqlJournal, write_path: str
    ) -> None:
        order, fill = order_and_fills()
        journal.record_fill(order, fill)
        journal.commit()
        journal.record_fill(order, replace(fill, quantity=0.6, price=60_100.0))
        journal.commit()
        assert journal.orders("rsi-btc") == [order]
        assert [f.quantity for f in journal.fills("rsi-btc")] == [0.4, 0.6]


class TestSeqCollisions:
    def test_a_different_event_under_a_stored_seq_is_refused_naming_both(
        self, journal: SqlJournal, write_path: str
    ) -> None:
        journal.record([make_event(PositionOpened, 1), failed(2)])
        journal.commit()
        journal.record([failed(3), failed(1, error="reused seq")])
        with pytest.raises(JournalConflictError) as caught:
            journal.commit()
        message = str(caught.value)
        assert "'rsi-btc'" in message
        assert "seq 1" in message
        assert "PositionOpened" in message
        assert "StrategyFailed" in message
        assert [(e.seq, e.event_type) for e in journal.events("rsi-btc")] == [
            (1, "PositionOpened"),
            (2, "StrategyFailed"),
        ]
        with pytest.raises(JournalConflictError):
            journal.close()

    def test_nothing_of_a_colliding_batch_is_stored(
        self, journal: SqlJournal, write_path: str
    ) -> None:
        journal.record([failed(1)])
        journal.commit()
        order, fill = order_and_fills()
        journal.record([failed(1, error="other"), failed(2)])
        journal.record_fill(order, fill)
        journal.upsert_positions("rsi-btc", [position()])
        journal.save_snapshot("rsi-btc", 2, T0, {"cash": 1.0})
        with pytest.raises(JournalConflictError):
            journal.commit()
        assert journal.last_seq("rsi-btc") == 1
        assert journal.fills("rsi-btc") == []
        assert journal.orders("rsi-btc") == []
        assert journal.open_positions("rsi-btc") == []
        assert journal.latest_snapshot("rsi-btc") is None
        with pytest.raises(JournalConflictError):
            journal.close()

    def test_a_collision_fails_every_retry_and_is_a_storage_error(
        self, journal: SqlJournal
    ) -> None:
        journal.record([failed(1)])
        journal.commit()
        journal.record([failed(1, error="other")])
        for _ in range(2):
            with pytest.raises(StorageError, match="seq 1"):
                journal.commit()
        assert [error_of(e) for e in journal.events("rsi-btc")] == ["boom"]
        with pytest.raises(JournalConflictError):
            journal.close()

    def test_two_different_events_with_one_key_in_one_batch_are_refused(
        self, journal: SqlJournal
    ) -> None:
        journal.record([make_event(PositionOpened, 1), failed(2)])
        journal.record([failed(1, error="second")])
        with pytest.raises(JournalConflictError) as caught:
            journal.commit()
        message = str(caught.value)
        assert "'rsi-btc'" in message
        assert "seq 1" in message
        assert "PositionOpened" in message
        assert "StrategyFailed" in message
        assert journal.last_seq("rsi-btc") == 0
        with pytest.raises(JournalConflictError):
            journal.close()

    def test_closing_with_a_collision_raises_yet_closes_and_stores_nothing(
        self, journal: SqlJournal, db_path: Path
    ) -> None:
        journal.record([failed(1), failed(1, error="other"), failed(2)])
        with pytest.raises(JournalConflictError, match="seq 1"):
            journal.close()
        with pytest.raises(StorageError, match="is closed"):
            journal.record([failed(3)])
        with SqlJournal(url_of(db_path)) as reopened:
            assert reopened.last_seq("rsi-btc") == 0

    def test_the_same_seq_in_another_strategy_is_no_collision(self, journal: SqlJournal) -> None:
        journal.record([failed(1, "a")])
        journal.commit()
        journal.record([failed(1, "b", error="other")])
        journal.commit()
        assert journal.strategy_ids() == ["a", "b"]


class TestBatching:
    def test_nothing_is_visible_before_commit_and_everything_after(
        self, journal: SqlJournal, db_path: Path
    ) -> None:
        order, fill = order_and_fills()
        journal.record([failed(1), failed(2)])
        journal.record_fill(order, fill)
        journal.upsert_positions("rsi-btc", [position()])
        journal.save_snapshot("rsi-btc", 2, T0, {"cash": 1.0})
        other = SqlJournal(url_of(db_path))
        try:
            for reader in (journal, other):
                assert reader.events("rsi-btc") == []
                assert reader.fills("rsi-btc") == []
                assert reader.open_positions("rsi-btc") == []
                assert reader.latest_snapshot("rsi-btc") is None
            journal.commit()
            for reader in (journal, other):
                assert reader.last_seq("rsi-btc") == 2
                assert reader.fills("rsi-btc") == [fill]
                assert reader.open_positions("rsi-btc") == [position()]
                assert reader.latest_snapshot("rsi-btc") == StoredSnapshot(2, {"cash": 1.0})
        finally:
            other.close()
        assert journal.pending == 0

    def test_a_commit_is_one_transaction(self, journal: SqlJournal, db_path: Path) -> None:
        """A failure on the last table written leaves the events of the same batch unwritten."""
        with sqlite3.connect(db_path) as raw:
            raw.execute(
                "CREATE TRIGGER refuse_fills BEFORE INSERT ON fills "
                "BEGIN SELECT RAISE(ABORT, 'fills refused'); END"
            )
        raw.close()
        journal.record([failed(1)])
        journal.record_fill(*order_and_fills())
        with pytest.raises(StorageError, match="fills refused"):
            journal.commit()
        assert journal.events("rsi-btc") == []
        assert journal.orders("rsi-btc") == []
        with sqlite3.connect(db_path) as raw:
            raw.execute("DROP TRIGGER refuse_fills")
        raw.close()
        journal.commit()
        assert journal.last_seq("rsi-btc") == 1
        assert len(journal.fills("rsi-btc")) == 1

    def test_committing_an_empty_buffer_does_nothing(self, journal: SqlJournal) -> None:
        journal.commit()
        assert journal.strategy_ids() == []


class TestIsolation:
    def test_two_strategies_see_only_their_own_events(self, journal: SqlJournal) -> None:
        journal.record([failed(1, "a"), failed(1, "b"), failed(2, "a")])
        journal.commit()
        assert [(e.strategy_id, e.seq) for e in journal.events("a")] == [("a", 1), ("a", 2)]
        assert [(e.strategy_id, e.seq) for e in journal.events("b")] == [("b", 1)]
        assert (journal.last_seq("a"), journal.last_seq("b")) == (2, 1)
        assert journal.strategy_ids() == ["a", "b"]

    def test_positions_and_snapshots_are_kept_per_strategy(self, journal: SqlJournal) -> None:
        journal.upsert_positions("a", [position(strategy_id="a")])
        journal.upsert_positions("b", [position(strategy_id="b"), position(ETH, "b")])
        journal.save_snapshot("a", 5, T0, {"owner": "a"})
        journal.commit()
        journal.upsert_positions("b", [])
        journal.commit()
        assert [p.strategy_id for p in journal.open_positions("a")] == ["a"]
        assert journal.open_positions("b") == []
        assert journal.latest_snapshot("b") is None
        assert journal.strategy_ids() == ["a"]


class TestPositionsAndFills:
    def test_positions_are_replaced_by_the_latest_open_set(
        self, journal: SqlJournal, write_path: str
    ) -> None:
        journal.upsert_positions("rsi-btc", [position(BTC), position(ETH)])
        journal.commit()
        journal.upsert_positions("rsi-btc", [position(ETH, quantity=0.2)])
        journal.commit()
        assert journal.open_positions("rsi-btc") == [position(ETH, quantity=0.2)]

    def test_a_position_is_copied_when_upserted(self, journal: SqlJournal) -> None:
        live = position()
        journal.upsert_positions("rsi-btc", [live])
        live.quantity = 99.0
        journal.commit()
        assert journal.open_positions("rsi-btc")[0].quantity == 0.5

    def test_a_closed_position_is_not_stored(self, journal: SqlJournal) -> None:
        journal.upsert_positions("rsi-btc", [replace(position(), closed_at=T0, quantity=0.0)])
        journal.commit()
        assert journal.open_positions("rsi-btc") == []

    def test_another_strategys_position_is_refused(self, journal: SqlJournal) -> None:
        with pytest.raises(StorageError, match="belongs to strategy 'other'"):
            journal.upsert_positions("rsi-btc", [position(strategy_id="other")])

    def test_a_fill_with_a_foreign_order_is_refused(self, journal: SqlJournal) -> None:
        order, fill = order_and_fills()
        with pytest.raises(StorageError, match="pass the order the fill executes"):
            journal.record_fill(replace(order, order_id="o-2"), fill)
        assert journal.pending == 0


class TestSnapshots:
    def test_a_lifecycle_snapshot_restores_the_same_book_after_reopening(
        self, db_path: Path
    ) -> None:
        config = StrategyConfig.model_validate(
            {
                "strategy_id": "dca-btc",
                "symbols": [BTC, ETH],
                "timeframe": "1h",
                "capital": 10_000,
                "analyzers": [{"type": "threshold"}],
            }
        )
        bus = InMemoryEventBus()
        service = PositionLifecycleService("dca-btc", config, StrategyPublisher(bus, "dca-btc"))
        journal = SqlJournal(url_of(db_path))
        bus.subscribe(lambda event: journal.record([event]), strategy_id="dca-btc")
        submitted = []
        trades: list[tuple[OrderSide, float, OrderIntent, float]] = [
            (OrderSide.BUY, 2.0, OpenIntent(Side.LONG, stop_loss=90.0), 100.0),
            (OrderSide.SELL, 0.5, CloseIntent(50.0, "take profit"), 110.0),
        ]
        for side, quantity, intent, price in trades:
            order = Order(service.new_order_id(), "dca-btc", BTC, side, quantity, T0)
            service.register_intent(order, intent)
            fill = Fill(order.order_id, "dca-btc", BTC, side, quantity, price, 0.1, T0)
            service.apply_fills([fill])
            journal.record_fill(order, fill)
            submitted.append(order.order_id)
        pending = Order(service.new_order_id(), "dca-btc", ETH, OrderSide.SELL, 1.0, T0)
        service.register_intent(pending, OpenIntent(Side.SHORT))
        journal.commit()
        state = service.snapshot()
        last_seq = journal.last_seq("dca-btc")
        journal.save_snapshot("dca-btc", last_seq, T0, state)
        journal.upsert_positions("dca-btc", service.open_positions())
        journal.close()

        reopened = SqlJournal(url_of(db_path))
        try:
            stored = reopened.latest_snapshot("dca-btc")
            assert stored is not None
            fresh = PositionLifecycleService(
                "dca-btc", config, StrategyPublisher(InMemoryEventBus(), "dca-btc")
            )
            fresh.restore(stored.state)
            assert fresh.snapshot() == state
            assert fresh.open_positions() == service.open_positions()
            assert reopened.open_positions("dca-btc") == service.open_positions()
            # Two fills, each an OrderFilled then PositionOpened or PositionReduced.
            assert stored.seq == last_seq == 4
            assert [f.order_id for f in reopened.fills("dca-btc")] == submitted
        finally:
            reopened.close()

    def test_an_older_snapshot_never_replaces_a_newer_one(
        self, journal: SqlJournal, write_path: str
    ) -> None:
        journal.save_snapshot("rsi-btc", 9, T0, {"at": 9})
        journal.save_snapshot("rsi-btc", 4, T0, {"at": 4})
        journal.commit()
        journal.save_snapshot("rsi-btc", 7, T0, {"at": 7})
        journal.commit()
        assert journal.latest_snapshot("rsi-btc") == (9, {"at": 9})
        journal.save_snapshot("rsi-btc", 12, T0, {"at": 12})
        journal.commit()
        assert journal.latest_snapshot("rsi-btc") == (12, {"at": 12})

    def test_a_state_that_is_not_json_is_refused_at_once(self, journal: SqlJournal) -> None:
        with pytest.raises(StorageError, match="not JSON-serializable"):
            journal.save_snapshot("rsi-btc", 1, T0, {"when": T0})
        assert journal.pending == 0


class TestOpening:
    def test_sqlite_runs_in_wal_mode(self, journal: SqlJournal, db_path: Path) -> None:
        with sqlite3.connect(db_path) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        raw.close()

    def test_missing_folders_are_created(self, tmp_path: Path) -> None:
        path = tmp_path / "state" / "live" / "journal.db"
        SqlJournal(url_of(path)).close()
        assert {"events", "snapshots", "strategies"} <= journal_tables_in(path)

    def test_a_directory_instead_of_a_file(self, tmp_path: Path) -> None:
        with pytest.raises(StorageError, match="is a directory") as caught:
            SqlJournal(url_of(tmp_path))
        assert str(tmp_path) in str(caught.value)

    def test_a_folder_that_cannot_be_created(self, tmp_path: Path) -> None:
        blocker = tmp_path / "plain-file"
        blocker.write_text("not a folder")
        path = blocker / "journal.db"
        with pytest.raises(StorageError, match="a file is in the way") as caught:
            SqlJournal(url_of(path))
        assert str(path) in str(caught.value)

    def test_a_file_that_is_not_a_database_is_left_untouched(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.db"
        path.write_bytes(b"these are my notes, not a database\n" * 200)
        before = path.read_bytes()
        with pytest.raises(StorageError, match="file is not a database") as caught:
            SqlJournal(url_of(path))
        assert str(path) in str(caught.value)
        assert path.read_bytes() == before

    def test_a_locked_database_fails_without_writing_anything(self, tmp_path: Path) -> None:
        path = tmp_path / "locked.db"
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("CREATE TABLE other (x)")
            holder.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StorageError, match="database is locked") as caught:
                SqlJournal(url_of(path), busy_timeout_ms=50)
            assert str(path) in str(caught.value)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert journal_tables_in(path) == {"other"}

    def test_a_foreign_table_of_the_same_name_is_reported_and_nothing_created(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "foreign.db"
        with sqlite3.connect(path) as raw:
            raw.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT)")
        raw.close()
        with pytest.raises(StorageError, match="table events lacks column"):
            SqlJournal(url_of(path))
        assert journal_tables_in(path) == {"events"}

    def test_a_malformed_url(self) -> None:
        with pytest.raises(StorageError, match="not a database URL"):
            SqlJournal("journal.db")

    def test_a_password_never_appears_in_an_error(self) -> None:
        with pytest.raises(StorageError) as caught:
            SqlJournal("postgresql://trader:hunter2@127.0.0.1:1/journal")
        assert "hunter2" not in str(caught.value)
        assert "trader:***@127.0.0.1" in str(caught.value)

    def test_it_satisfies_the_journal_protocol(self, journal: SqlJournal) -> None:
        assert isinstance(journal, Journal)


def written_journal(path: Path) -> Path:
    """A journal as a run leaves it: registry, events of three strategies, orders, positions."""
    with SqlJournal(url_of(path)) as journal:
        for strategy in ("a", "b", "c"):
            journal.register_strategy(strategy, strategy.upper(), "rsi", "{}")
            journal.record([failed(seq, strategy, error="x" * 200) for seq in range(1, 151)])
            order, fill = order_and_fills(f"{strategy}-o-1", strategy)
            journal.record_fill(order, fill)
            journal.upsert_positions(strategy, [position(strategy_id=strategy)])
            journal.save_snapshot(strategy, 150, T0, {"cash": 1.0})
            journal.commit()
    return path


PAGE = 4096


def with_random_page(source: Path, target: Path, seed: int = 7) -> Path:
    """A copy of ``source`` with one page in its middle overwritten by random bytes."""
    data = bytearray(source.read_bytes())
    middle = len(data) // PAGE // 2
    data[middle * PAGE : (middle + 1) * PAGE] = random.Random(seed).randbytes(PAGE)
    target.write_bytes(bytes(data))
    return target


def files_in(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {item.name: (item.read_bytes(), item.stat().st_mtime_ns) for item in folder.iterdir()}


class TestIntegrity:
    @pytest.mark.parametrize("read_only", [False, True], ids=["writer", "reader"])
    def test_random_bytes_in_the_middle_are_refused_at_open(
        self, tmp_path: Path, read_only: bool
    ) -> None:
        sound = written_journal(tmp_path / "sound.db")
        damaged = with_random_page(sound, tmp_path / "damaged.db")
        before = damaged.read_bytes()
        with pytest.raises(StorageError, match="the file is damaged") as caught:
            SqlJournal(url_of(damaged), read_only=read_only)
        assert str(damaged) in str(caught.value)
        assert "\n" not in str(caught.value)
        assert damaged.read_bytes() == before

    def test_a_damaged_header_is_refused_as_not_a_journal(self, tmp_path: Path) -> None:
        damaged = tmp_path / "damaged.db"
        data = bytearray(written_journal(tmp_path / "sound.db").read_bytes())
        data[:100] = random.Random(3).randbytes(100)
        damaged.write_bytes(bytes(data))
        with pytest.raises(StorageError) as caught:
            SqlJournal(url_of(damaged))
        assert "damaged or is not a tradekit journal (file is not a database)" in str(caught.value)

    def test_a_sound_journal_opens_with_everything_in_it(self, tmp_path: Path) -> None:
        with SqlJournal(url_of(written_journal(tmp_path / "sound.db"))) as journal:
            assert journal.last_seq("b") == 150

    def test_another_programs_database_read_only_is_not_a_journal(self, tmp_path: Path) -> None:
        path = tmp_path / "other.db"
        with sqlite3.connect(path) as raw:
            raw.execute("CREATE TABLE notes (body TEXT)")
        raw.close()
        with pytest.raises(StorageError, match="not a tradekit journal; it has no table"):
            SqlJournal(url_of(path), read_only=True)
        assert journal_tables_in(path) == {"notes"}


class TestReadOnly:
    def test_reading_creates_and_changes_no_file(self, tmp_path: Path) -> None:
        path = written_journal(tmp_path / "journal.db")
        before = files_in(tmp_path)
        with SqlJournal(url_of(path), read_only=True) as journal:
            assert [info.strategy_id for info in journal.strategies()] == ["a", "b", "c"]
            assert len(journal.events("a")) == 150
            assert journal.open_positions("c") == [position(strategy_id="c")]
        assert files_in(tmp_path) == before

    def test_a_copy_in_a_read_only_folder_is_read_as_an_immutable_file(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / "archive"
        folder.mkdir()
        path = folder / "journal.db"
        shutil.copy(written_journal(tmp_path / "journal.db"), path)
        # Copied along with the journal: outside a read-only folder it would mean a writer.
        (folder / "journal.db.lock").write_text("{}")
        path.chmod(0o444)
        folder.chmod(0o555)
        try:
            before = files_in(folder)
            with SqlJournal(url_of(path), read_only=True) as journal:
                assert journal.last_seq("c") == 150
            assert files_in(folder) == before
        finally:
            folder.chmod(0o755)
            path.chmod(0o644)

    def test_writes_are_refused(self, tmp_path: Path) -> None:
        path = written_journal(tmp_path / "journal.db")
        with SqlJournal(url_of(path), read_only=True) as journal:
            with pytest.raises(StorageError, match="read-only"):
                journal.record([failed(151, "a")])
            with pytest.raises(StorageError, match="read-only"):
                journal.set_status("a", "disabled")
            with pytest.raises(StorageError, match="read-only"):
                journal.save_snapshot("a", 151, T0, {})
            assert journal.pending == 0
            assert [info.status.value for info in journal.strategies()] == ["active"] * 3
            assert journal.last_seq("a") == 150

    def test_a_journal_being_written_is_read_with_its_latest_commits(
        self, journal: SqlJournal, db_path: Path
    ) -> None:
        journal.acquire_writer()
        journal.record([failed(1), failed(2)])
        journal.commit()
        with SqlJournal(url_of(db_path), read_only=True) as reader:
            assert reader.last_seq("rsi-btc") == 2
            journal.record([failed(3)])
            journal.commit()
            assert reader.last_seq("rsi-btc") == 3


class TestFailedCommits:
    def test_a_read_only_uri_fails_the_commit_and_keeps_the_buffer(self, db_path: Path) -> None:
        SqlJournal(url_of(db_path)).close()
        reader = SqlJournal(f"sqlite:///file:{db_path}?mode=ro&uri=true")
        try:
            reader.record([failed(1), failed(2)])
            with pytest.raises(StorageError, match=r"readonly database.*stay buffered"):
                reader.commit()
            assert reader.pending == 2
            assert reader.events("rsi-btc") == []
        finally:
            with pytest.raises(StorageError, match="readonly"):
                reader.close()

    def test_a_read_only_file_fails_the_commit_and_a_retry_succeeds_once_writable(
        self, db_path: Path
    ) -> None:
        seed = SqlJournal(url_of(db_path))
        seed.record([failed(1)])
        seed.close()
        with read_only(db_path):
            journal = SqlJournal(url_of(db_path))
            journal.record([failed(2), failed(3)])
            journal.save_snapshot("rsi-btc", 3, T0, {"cash": 5.0})
            with pytest.raises(StorageError, match="readonly database") as caught:
                journal.commit()
            assert str(db_path) in str(caught.value)
            assert journal.pending == 3
        journal.commit()
        assert [e.seq for e in journal.events("rsi-btc")] == [1, 2, 3]
        assert journal.latest_snapshot("rsi-btc") == (3, {"cash": 5.0})
        journal.close()

    @pytest.mark.parametrize("prompt_writer", [False, True])
    def test_a_lock_held_past_the_busy_timeout_fails_the_commit_and_a_retry_succeeds(
        self, db_path: Path, prompt_writer: bool
    ) -> None:
        journal = SqlJournal(url_of(db_path), busy_timeout_ms=50, prompt_writer=prompt_writer)
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        journal.record([failed(1)])
        with pytest.raises(StorageError, match="database is locked"):
            journal.commit()
        holder.execute("ROLLBACK")
        holder.close()
        journal.commit()
        assert journal.last_seq("rsi-btc") == 1
        journal.close()


class TestRegistry:
    @pytest.fixture
    def clock(self) -> list[datetime]:
        return [T0]

    @pytest.fixture
    def registry(self, db_path: Path, clock: list[datetime]) -> Iterator[SqlJournal]:
        opened = SqlJournal(url_of(db_path), now=lambda: clock[0])
        yield opened
        opened.close()

    def test_a_new_strategy_is_active(self, registry: SqlJournal) -> None:
        registry.register_strategy("rsi-btc-1h", "RSI BTC", "rsi", '{"period": 14}')
        [info] = registry.strategies()
        assert (info.strategy_id, info.name, info.kind, info.status) == (
            "rsi-btc-1h",
            "RSI BTC",
            "rsi",
            StrategyStatus.ACTIVE,
        )
        assert info.config_json == '{"period": 14}'
        assert info.created_at == info.updated_at == T0

    def test_registering_again_updates_it_but_keeps_created_at_and_status(
        self, registry: SqlJournal, clock: list[datetime]
    ) -> None:
        registry.register_strategy("rsi-btc-1h", "RSI BTC", "rsi", "{}")
        registry.set_status("rsi-btc-1h", "disabled")
        clock[0] = T0 + timedelta(days=1)
        registry.register_strategy("rsi-btc-1h", "RSI BTC v2", "rsi", '{"period": 21}')
        [info] = registry.strategies()
        assert (info.name, info.config_json, info.status) == (
            "RSI BTC v2",
            '{"period": 21}',
            StrategyStatus.DISABLED,
        )
        assert (info.created_at, info.updated_at) == (T0, clock[0])

    def test_status_changes(self, registry: SqlJournal) -> None:
        registry.register_strategy("a", "A", "rsi", "{}")
        for status in (StrategyStatus.QUARANTINED, StrategyStatus.DISABLED, "active"):
            registry.set_status("a", status)
            assert registry.strategies()[0].status == status

    def test_an_unknown_id_suggests_the_closest(self, registry: SqlJournal) -> None:
        registry.register_strategy("rsi-btc-1h", "RSI BTC", "rsi", "{}")
        with pytest.raises(
            StorageError, match=r"unknown strategy 'rsi-btc-1d'.*did you mean 'rsi-btc-1h'\?"
        ):
            registry.set_status("rsi-btc-1d", StrategyStatus.DISABLED)
        with pytest.raises(StorageError, match="unknown strategy 'macd-eth'"):
            registry.remove_strategy("macd-eth")

    def test_an_unknown_status_lists_the_valid_ones(self, registry: SqlJournal) -> None:
        registry.register_strategy("a", "A", "rsi", "{}")
        with pytest.raises(StorageError, match=r"unknown status 'paused'.*active, disabled"):
            registry.set_status("a", "paused")

    def test_config_json_must_be_json(self, registry: SqlJournal) -> None:
        with pytest.raises(StorageError, match="config_json is not valid JSON"):
            registry.register_strategy("a", "A", "rsi", "{period: 14")

    def test_removing_keeps_the_journal_and_registering_again_reactivates(
        self, registry: SqlJournal
    ) -> None:
        registry.register_strategy("a", "A", "rsi", "{}")
        registry.record([failed(1, "a")])
        registry.commit()
        registry.remove_strategy("a")
        assert registry.strategies()[0].status is StrategyStatus.REMOVED
        assert registry.last_seq("a") == 1
        assert registry.strategy_ids() == ["a"]
        registry.register_strategy("a", "A", "rsi", "{}")
        assert registry.strategies()[0].status is StrategyStatus.ACTIVE


class TestSharing:
    def test_a_second_process_sees_committed_events_and_writes_its_own(
        self, journal: SqlJournal, db_path: Path
    ) -> None:
        journal.record([make_event(PositionOpened, 1, "a"), failed(2, "a")])
        journal.commit()
        journal.record([failed(3, "a")])
        script = (
            "import sys\n"
            "from datetime import UTC, datetime\n"
            "from tradekit.events import StrategyUnloaded\n"
            "from tradekit.services.journal.store import SqlJournal\n"
            "journal = SqlJournal(sys.argv[1])\n"
            "print(journal.last_seq('a'), [type(e).__name__ for e in journal.events('a')])\n"
            "ts = datetime(2024, 3, 1, tzinfo=UTC)\n"
            "journal.record([StrategyUnloaded(ts=ts, strategy_id='b', seq=1, reason='done')])\n"
            "journal.close()\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script, url_of(db_path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert result.stdout.strip() == "2 ['PositionOpened', 'StrategyFailed']"
        assert journal.strategy_ids() == ["a", "b"]
        assert journal.events("b")[0].event_type == "StrategyUnloaded"


class TestInMemory:
    def test_every_thread_sees_the_same_in_memory_database(self) -> None:
        with SqlJournal("sqlite://") as journal:
            journal.record([failed(1)])
            journal.commit()
            seen: list[int] = []
            worker = threading.Thread(target=lambda: seen.append(journal.last_seq("rsi-btc")))
            worker.start()
            worker.join()
            assert seen == [1]


class TestClosing:
    def test_close_commits_what_is_buffered_then_refuses_more(
        self, journal: SqlJournal, db_path: Path
    ) -> None:
        journal.record([failed(1)])
        journal.close()
        journal.close()
        with pytest.raises(StorageError, match="is closed"):
            journal.events("rsi-btc")
        with pytest.raises(StorageError, match="is closed"):
            journal.record([failed(2)])
        with SqlJournal(url_of(db_path)) as reopened:
            assert reopened.last_seq("rsi-btc") == 1


def test_every_event_field_has_a_plausible_value() -> None:
    """Guards the tables above: a new field or enum fails here, by name, not in a round trip."""
    missing = []
    for name, cls in EVENT_TYPES.items():
        for item in fields(cls):
            if item.name in STAMPED:
                continue
            try:
                plausible(cls, item.name)
            except KeyError:
                missing.append(f"{name}.{item.name}")
    assert missing == []


class TestRegistryChanges:
    def test_changes_get_increasing_ids_and_stay_pending_until_settled(
        self, journal: SqlJournal
    ) -> None:
        journal.register_strategy("a", "A", "rsi", "{}")
        first = journal.request_change("a", "disable", "ops@desk")
        second = journal.request_change("a", "remove", "api", close_positions=True)
        assert (first < second, journal.last_change_id()) == (True, second)

        journal.settle_change(first, "applied", T0)

        [pending] = journal.registry_changes(pending_only=True)
        assert (pending.change_id, pending.action, pending.by) == (second, "remove", "api")
        assert pending.close_positions
        [settled] = journal.registry_changes(after_id=0)[:1]
        assert (settled.outcome, settled.applied_at) == ("applied", T0)

    def test_a_change_is_read_with_its_strategys_entry(self, journal: SqlJournal) -> None:
        journal.register_strategy("a", "A", "rsi", "{}")
        change = journal.request_change("a", "disable", "api", status=StrategyStatus.DISABLED)
        journal.settle_change(change, "applied", T0)
        unregistered = journal.request_change("ghost", "add", "api")

        read = journal.registry_change_and_entry(change)
        assert read is not None
        assert read == (journal.registry_change(change), journal.strategy_info("a"))
        assert (read[0].outcome, read[1] and read[1].status) == (
            "applied",
            StrategyStatus.DISABLED,
        )
        assert journal.registry_change_and_entry(unregistered) == (
            journal.registry_change(unregistered),
            None,
        )
        assert journal.registry_change_and_entry(unregistered + 1) is None

    def test_register_if_new_leaves_a_known_strategy_as_it_is(self, journal: SqlJournal) -> None:
        journal.register_strategy("a", "A", "rsi", '{"v": 1}')
        journal.remove_strategy("a")

        assert not journal.register_if_new("a", "A2", "rsi", '{"v": 2}')
        assert journal.register_if_new("b", "B", "rsi", "{}")

        info = journal.registered("a")
        assert (info.status, info.name, info.config_json) == (
            StrategyStatus.REMOVED,
            "A",
            '{"v": 1}',
        )

    def test_a_journal_from_before_registry_changes_reads_as_having_none(
        self, db_path: Path
    ) -> None:
        SqlJournal(url_of(db_path)).close()
        with sqlite3.connect(db_path) as connection:
            connection.execute("DROP TABLE registry_changes")

        with SqlJournal(url_of(db_path), read_only=True) as old:
            assert (old.last_change_id(), old.registry_changes()) == (0, [])
        with SqlJournal(url_of(db_path)) as upgraded:
            assert upgraded.request_change("a", "add", "api") == 1


class TestRegistryCache:
    """``registry()`` keeps the registry in memory and reads it again once its version moved."""

    def test_each_registry_write_moves_the_version(self, journal: SqlJournal) -> None:
        versions = [journal.registry_version()]
        journal.register_strategy("a", "A", "rsi", "{}")
        versions.append(journal.registry_version())
        journal.set_status("a", StrategyStatus.DISABLED)
        versions.append(journal.registry_version())
        change = journal.request_change("a", "enable", "api")
        versions.append(journal.registry_version())
        journal.settle_change(change, "applied", T0)
        versions.append(journal.registry_version())
        journal.remove_strategy("a")
        versions.append(journal.registry_version())

        assert len(set(versions)) == 6
        assert versions == sorted(versions)

    def test_a_failed_registry_write_leaves_the_version(self, journal: SqlJournal) -> None:
        before = journal.registry_version()
        with pytest.raises(StorageError, match="unknown strategy"):
            journal.set_status("nobody", StrategyStatus.DISABLED)
        assert journal.registry_version() == before

    def test_an_unchanged_registry_is_not_read_again(self, journal: SqlJournal) -> None:
        journal.register_strategy("a", "A", "rsi", "{}")
        assert journal.registry() is journal.registry()

    def test_a_write_through_this_journal_is_seen_at_once(self, journal: SqlJournal) -> None:
        journal.register_strategy("a", "A", "rsi", "{}")
        journal.registry()
        change = journal.request_change("a", "disable", "api")
        journal.set_status("a", StrategyStatus.DISABLED)

        registry = journal.registry()
        assert registry.by_id["a"].status is StrategyStatus.DISABLED
        assert registry.latest_changes["a"].change_id == change

    def test_writes_through_another_journal_on_the_file_are_seen(self, db_path: Path) -> None:
        with SqlJournal(url_of(db_path)) as api, SqlJournal(url_of(db_path)) as other:
            other.register_strategy("a", "A", "rsi", "{}")
            assert [info.strategy_id for info in api.registry().strategies] == ["a"]
            change = other.request_change("a", "disable", "cli")
            assert api.registry().latest_changes["a"].applied_at is None

            other.settle_change(change, "applied", T0)
            other.set_status("a", StrategyStatus.DISABLED)
            other.register_strategy("a", "A renamed", "rsi", '{"v": 2}')

            registry = api.registry()
            assert registry.latest_changes["a"].outcome == "applied"
            assert (registry.by_id["a"].name, registry.by_id["a"].status) == (
                "A renamed",
                StrategyStatus.DISABLED,
            )

    def test_a_write_by_another_process_is_seen(self, db_path: Path) -> None:
        with SqlJournal(url_of(db_path)) as api:
            api.register_strategy("a", "A", "rsi", "{}")
            assert api.registry().by_id["a"].status is StrategyStatus.ACTIVE
            script = (
                "import sys; from tradekit.services.journal.store import SqlJournal\n"
                "with SqlJournal(sys.argv[1]) as other: other.set_status('a', 'disabled')"
            )
            subprocess.run([sys.executable, "-c", script, url_of(db_path)], check=True)

            assert api.registry().by_id["a"].status is StrategyStatus.DISABLED

    def test_rows_read_again_unchanged_keep_their_entries_and_changes(
        self, journal: SqlJournal
    ) -> None:
        journal.register_strategy("a", "A", "rsi", "{}")
        journal.register_strategy("b", "B", "rsi", "{}")
        journal.request_change("a", "add", "api")
        b_change = journal.request_change("b", "add", "api", close_positions=True)
        before = journal.registry()
        journal.set_status("a", StrategyStatus.DISABLED)

        after = journal.registry()
        assert after is not before
        assert after.by_id["b"] is before.by_id["b"]
        assert after.latest_changes["a"] is before.latest_changes["a"]
        assert after.by_id["a"].status is StrategyStatus.DISABLED
        assert after.by_id["a"].updated_at.tzinfo is not None
        assert after.latest_changes["b"].change_id == b_change
        assert after.latest_changes["b"].close_positions is True

    def test_a_changed_row_is_built_again_even_at_the_same_time(self, db_path: Path) -> None:
        with SqlJournal(url_of(db_path), now=lambda: T0) as frozen:
            frozen.register_strategy("a", "A", "rsi", "{}")
            change = frozen.request_change("a", "disable", "api")
            before = frozen.registry()
            frozen.set_status("a", StrategyStatus.DISABLED)
            frozen.settle_change(change, "applied", T0)

            after = frozen.registry()
            assert after.by_id["a"].status is StrategyStatus.DISABLED
            assert after.by_id["a"].updated_at == before.by_id["a"].updated_at == T0
            assert after.latest_changes["a"].applied_at == T0
            assert after.latest_changes["a"].outcome == "applied"

    def test_a_journal_from_before_the_registry_version_is_read_every_time(
        self, db_path: Path
    ) -> None:
        with SqlJournal(url_of(db_path)) as journal:
            journal.register_strategy("a", "A", "rsi", "{}")
        with sqlite3.connect(db_path) as connection:
            connection.execute("DROP TABLE registry_version")

        with SqlJournal(url_of(db_path), read_only=True) as old:
            first, second = old.registry(), old.registry()
            assert (first.version, [i.strategy_id for i in first.strategies]) == (None, ["a"])
            assert first is not second
        with SqlJournal(url_of(db_path)) as upgraded:
            before = upgraded.registry_version()
            upgraded.set_status("a", StrategyStatus.DISABLED)
            assert upgraded.registry_version() == (before or 0) + 1


class TestReadConnections:
    def test_connections_of_concurrent_reads_are_kept_for_the_next_ones(
        self, db_path: Path
    ) -> None:
        """As many connections as threads read at once are kept open, not closed and reopened."""
        opened: list[object] = []
        with SqlJournal(url_of(db_path)) as journal:
            engine = journal._engine
            sqlalchemy_event.listen(engine, "connect", lambda *_: opened.append(1))
            for _ in range(2):
                opened.clear()
                held = [engine.connect() for _ in range(30)]
                for connection in held:
                    connection.close()
        assert opened == []


class TestPriceMarksKept:
    """Each series' marks are kept in memory and only new ones read; answers stay the same."""

    def test_marks_added_later_are_read_even_older_ones(self, db_path: Path) -> None:
        hour = timedelta(hours=1)
        with SqlJournal(url_of(db_path)) as reader, SqlJournal(url_of(db_path)) as writer:
            for index in (0, 1):
                writer.record_price_mark(BTC, "1h", T0 + index * hour, 100.0 + index)
            writer.commit()
            assert [close for _, close in reader.price_marks(BTC, "1h")] == [100.0, 101.0]

            writer.record_price_mark(BTC, "1h", T0 + 2 * hour, 102.0)
            writer.commit()
            assert [close for _, close in reader.price_marks(BTC, "1h")] == [100.0, 101.0, 102.0]

            writer.record_price_mark(BTC, "1h", T0 - hour, 99.0)  # a back-filled gap
            writer.record_price_mark(ETH, "1h", T0, 5.0)
            writer.commit()
            assert [close for _, close in reader.price_marks(BTC, "1h")] == [
                99.0,
                100.0,
                101.0,
                102.0,
            ]
            assert reader.price_marks(BTC, "1h", since=T0 + hour) == [
                (T0 + hour, 101.0),
                (T0 + 2 * hour, 102.0),
            ]
            assert reader.price_marks(ETH, "1h") == [(T0, 5.0)]
            assert reader.price_marks(ETH, "4h") == []
