"""The journal's tables as SQLModel classes, all keyed by ``strategy_id``, and the rows of them.

The tables live in their own SQLAlchemy registry, so ``SqlJournal`` creates exactly
these and never a table some other SQLModel user defined in the process.
Timestamps are stored as naive UTC (portable to every backend) and read back as
aware UTC; JSON documents are stored as text the journal serializes itself.
Domain values become plain row dicts when they are buffered, so a later change
to a mutable ``Position`` never leaks into what is written.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import registry
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from tradekit.domain import Fill, Order, OrderSide, OrderType, Position, Side
from tradekit.errors import EventError, StorageError
from tradekit.events import Event
from tradekit.services.journal.bulk import execute_rows


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC; a naive one is refused because its zone is a guess."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"datetime {value.isoformat()} has no time zone; expected aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A 64-bit integer everywhere, spelled INTEGER on SQLite so an id column stays the rowid alias.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class JournalModel(SQLModel, registry=registry()):
    """Base of the journal's tables: one private registry and metadata."""


class StrategyRecord(JournalModel, table=True):
    """One named strategy in the registry; ``status`` is a ``StrategyStatus`` value."""

    __tablename__ = "strategies"

    strategy_id: str = Field(primary_key=True)
    name: str
    kind: str
    config_json: str = Field(sa_type=Text)
    status: str = Field(index=True)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class RegistryChangeRecord(JournalModel, table=True):
    """One change asked of the registry: what, by whom, and what the runner made of it.

    ``id`` increases with every request, so a runner polls for ``id`` above the
    last one it saw. ``applied_at`` and ``outcome`` stay empty until a runner
    applies the change (or a run starting on the database takes it in).
    """

    __tablename__ = "registry_changes"

    id: int | None = Field(default=None, primary_key=True, sa_type=_BIG_ID)
    strategy_id: str = Field(index=True)
    action: str
    close_positions: bool = False
    by: str
    requested_at: datetime = Field(sa_type=UtcDateTime)
    applied_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    outcome: str | None = Field(default=None, sa_type=Text)


class RegistryVersionRecord(JournalModel, table=True):
    """One row whose ``version`` grows with every registry write, in that write's transaction.

    Readers that keep the registry in memory read this one number to know whether
    what they hold is still what the database says.
    """

    __tablename__ = "registry_version"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_type=BigInteger)


class EventRecord(JournalModel, table=True):
    """One journaled event; append-only, never updated. ``payload`` is ``Event.to_dict`` as JSON."""

    __tablename__ = "events"

    strategy_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    event_type: str
    ts: datetime = Field(sa_type=UtcDateTime)
    payload: str = Field(sa_type=Text)


class SnapshotRecord(JournalModel, table=True):
    """The latest state snapshot of one strategy, taken after event ``seq``."""

    __tablename__ = "snapshots"

    strategy_id: str = Field(primary_key=True)
    seq: int = Field(sa_type=BigInteger)
    ts: datetime = Field(sa_type=UtcDateTime)
    state: str = Field(sa_type=Text)


class PositionRecord(JournalModel, table=True):
    """One strategy's open position in one symbol, as ``domain.Position`` holds it."""

    __tablename__ = "positions"

    strategy_id: str = Field(primary_key=True)
    symbol: str = Field(primary_key=True)
    position_id: str
    side: str
    quantity: float
    avg_entry_price: float
    opened_at: datetime = Field(sa_type=UtcDateTime)
    fees_paid: float
    realized_pnl: float
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_distance_pct: float | None = None
    trailing_active: bool
    best_price: float
    entries: int
    bars_held: int
    initial_quantity: float
    last_entry_price: float
    partial_exits_done: int


class OrderRecord(JournalModel, table=True):
    """An order one strategy sent, recorded with its first fill; orders never change."""

    __tablename__ = "orders"

    strategy_id: str = Field(primary_key=True)
    order_id: str = Field(primary_key=True)
    symbol: str
    side: str
    order_type: str
    quantity: float
    limit_price: float | None = None
    reduce_only: bool
    reason: str
    created_at: datetime = Field(sa_type=UtcDateTime)


class FillRecord(JournalModel, table=True):
    """One execution of (part of) an order; ``id`` gives the order fills were recorded in."""

    __tablename__ = "fills"
    __table_args__ = (
        ForeignKeyConstraint(
            ["strategy_id", "order_id"], ["orders.strategy_id", "orders.order_id"]
        ),
        Index("ix_fills_strategy_order", "strategy_id", "order_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=_BIG_ID)
    strategy_id: str
    order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    ts: datetime = Field(sa_type=UtcDateTime)


class PriceMarkRecord(JournalModel, table=True):
    """The close of one candle of a series, sampled so equity can be valued over a run's life.

    ``ts`` is the candle's open time, as equity curves label their points.
    """

    __tablename__ = "price_marks"

    symbol: str = Field(primary_key=True)
    timeframe: str = Field(primary_key=True)
    ts: datetime = Field(primary_key=True, sa_type=UtcDateTime)
    close: float


JOURNAL_TABLES = (
    StrategyRecord,
    RegistryChangeRecord,
    RegistryVersionRecord,
    EventRecord,
    SnapshotRecord,
    PositionRecord,
    OrderRecord,
    FillRecord,
    PriceMarkRecord,
)
"""Every table the journal owns, parents before children."""


def table_of(model: type[JournalModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel for table=True
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


EVENTS, SNAPSHOTS, POSITIONS, ORDERS, FILLS, PRICE_MARKS = (
    table_of(model)
    for model in (
        EventRecord,
        SnapshotRecord,
        PositionRecord,
        OrderRecord,
        FillRecord,
        PriceMarkRecord,
    )
)

# Dialects with INSERT ... ON CONFLICT; any other database gets a check-then-write fallback.
NATIVE_INSERTS: dict[str, Callable[[Table], Any]] = {
    "sqlite": sqlite_insert,
    "postgresql": postgresql_insert,
}


def _key_clause(table: Table, row: Mapping[str, Any]) -> Any:
    return and_(*(column == row[column.name] for column in table.primary_key.columns))


@functools.cache
def _insert_new_statement(dialect: str, table: Table) -> Any:
    return NATIVE_INSERTS[dialect](table).on_conflict_do_nothing()


@functools.cache
def insert_statement(table: Table) -> Insert:
    """``table``'s plain INSERT, built once: ``execute_rows`` keys its compiled form by it."""
    return table.insert()


DELETE_POSITIONS = delete(POSITIONS).where(POSITIONS.c.strategy_id == bindparam("strategy_id"))
"""Deletes one strategy's stored positions; run once per strategy with ``execute_rows``."""


@functools.cache
def _upsert_statement(dialect: str, table: Table, newer: str | None) -> Any:
    # Built once per table: constructing one costs about a millisecond, every commit.
    statement = NATIVE_INSERTS[dialect](table)
    changes = {c.name: statement.excluded[c.name] for c in table.columns if not c.primary_key}
    guard = None if newer is None else table.c[newer] <= statement.excluded[newer]
    keys = [column.name for column in table.primary_key.columns]
    return statement.on_conflict_do_update(index_elements=keys, set_=changes, where=guard)


def insert_new(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert the rows whose primary key is not stored yet; stored rows stay untouched."""
    dialect = connection.dialect.name
    if dialect in NATIVE_INSERTS:
        execute_rows(connection, _insert_new_statement(dialect, table), rows)
        return
    for row in rows:
        if connection.execute(core_select(1).where(_key_clause(table, row))).first() is None:
            connection.execute(table.insert(), row)


def insert_events(connection: Connection, rows: list[dict[str, Any]]) -> list[str]:
    """Insert event rows; one already stored identically is skipped.

    Returns a description of each row whose ``(strategy_id, seq)`` holds a different
    stored event, and leaves the caller to roll back: such a write can never succeed.
    """
    if connection.dialect.name not in NATIVE_INSERTS:
        return _insert_events_one_by_one(connection, rows)
    inserted = execute_rows(
        connection, _insert_new_statement(connection.dialect.name, EVENTS), rows
    )
    if inserted == len(rows):
        return []
    # Some keys were stored already (or the driver cannot count): compare what is stored
    # under every key of the batch, the rows just inserted matching themselves. A
    # strategy's seqs in one batch are near each other: one primary-key range each.
    by_strategy: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_strategy.setdefault(row["strategy_id"], {})[row["seq"]] = row
    conflicts: list[str] = []
    for strategy_id, batch in by_strategy.items():
        statement = core_select(EVENTS.c.seq, EVENTS.c.event_type, EVENTS.c.payload).where(
            EVENTS.c.strategy_id == strategy_id,
            EVENTS.c.seq.between(min(batch), max(batch)),
        )
        for seq, event_type, payload in connection.execute(statement):
            written = batch.get(seq)
            if written is not None and not same_event(written, event_type, payload):
                conflicts.append(event_conflict(written, event_type, payload))
    return conflicts


def _insert_events_one_by_one(connection: Connection, rows: list[dict[str, Any]]) -> list[str]:
    conflicts = []
    for row in rows:
        statement = core_select(EVENTS.c.event_type, EVENTS.c.payload).where(
            _key_clause(EVENTS, row)
        )
        stored = connection.execute(statement).first()
        if stored is None:
            connection.execute(EVENTS.insert(), row)
        elif not same_event(row, stored.event_type, stored.payload):
            conflicts.append(event_conflict(row, stored.event_type, stored.payload))
    return conflicts


def same_event(row: Mapping[str, Any], event_type: str, payload: str) -> bool:
    """Whether ``row`` is the event stored as ``event_type`` / ``payload`` (a harmless re-write)."""
    if row["event_type"] != event_type:
        return False
    # Equal text is the usual case; parsing tolerates another version's key order.
    return bool(row["payload"] == payload or json.loads(row["payload"]) == json.loads(payload))


def event_conflict(row: Mapping[str, Any], event_type: str, payload: str) -> str:
    """How ``row`` collides with the event already held under its key."""
    held = event_type if event_type != row["event_type"] else f"another {event_type}"
    return (
        f"strategy {row['strategy_id']!r} seq {row['seq']} holds {held}; a different "
        f"{row['event_type']} cannot take its place"
    )


def upsert(
    connection: Connection, table: Table, rows: list[dict[str, Any]], newer: str | None = None
) -> None:
    """Insert or update rows by primary key; with ``newer``, never replace a higher value of it."""
    dialect = connection.dialect.name
    if dialect in NATIVE_INSERTS:
        execute_rows(connection, _upsert_statement(dialect, table, newer), rows)
        return
    for row in rows:
        key = _key_clause(table, row)
        stored = connection.execute(core_select(table).where(key)).first()
        if stored is None:
            connection.execute(table.insert(), row)
        elif newer is None or stored._mapping[newer] <= row[newer]:
            connection.execute(update(table).where(key).values(row))


# One compact encoder, reused: ``json.dumps`` with options builds a new one on every call.
_JSON = json.JSONEncoder(separators=(",", ":"))


def to_json(value: object) -> str:
    """``value`` as compact JSON text; ``TypeError`` or ``ValueError`` when it cannot be."""
    return _JSON.encode(value)


def require_aware(ts: datetime, where: str) -> datetime:
    if ts.tzinfo is None:
        raise StorageError(
            f"{where}: timestamp {ts.isoformat()} has no time zone; expected an aware UTC datetime"
        )
    return ts


def event_row(item: Event) -> dict[str, Any]:
    if not item.strategy_id or item.seq < 1:
        raise EventError(
            f"{_unjournaled(item)}: it is not stamped; publish it through its strategy's publisher"
        )
    if item.ts.tzinfo is None:
        raise EventError(
            f"{_unjournaled(item)}: ts {item.ts.isoformat()} has no time zone; expected an "
            "aware UTC datetime"
        )
    payload = item.to_dict()
    return {
        "strategy_id": item.strategy_id,
        "seq": item.seq,
        "event_type": payload["event_type"],
        "ts": item.ts,
        "payload": _JSON.encode(payload),
    }


def _unjournaled(item: Event) -> str:
    return f"cannot journal {item.event_type} seq {item.seq} of strategy {item.strategy_id!r}"


def order_row(order: Order) -> dict[str, Any]:
    return {
        "strategy_id": order.strategy_id,
        "order_id": order.order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "order_type": order.type.value,
        "quantity": order.quantity,
        "limit_price": order.limit_price,
        "reduce_only": order.reduce_only,
        "reason": order.reason,
        "created_at": require_aware(order.created_at, f"order {order.order_id}: created_at"),
    }


def order_from(record: OrderRecord) -> Order:
    return Order(
        order_id=record.order_id,
        strategy_id=record.strategy_id,
        symbol=record.symbol,
        side=OrderSide(record.side),
        quantity=record.quantity,
        created_at=record.created_at,
        type=OrderType(record.order_type),
        limit_price=record.limit_price,
        reduce_only=record.reduce_only,
        reason=record.reason,
    )


def fill_row(fill: Fill) -> dict[str, Any]:
    return {
        "strategy_id": fill.strategy_id,
        "order_id": fill.order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "quantity": fill.quantity,
        "price": fill.price,
        "fee": fill.fee,
        "ts": require_aware(fill.ts, f"fill of order {fill.order_id}: ts"),
    }


def fill_from(record: FillRecord) -> Fill:
    return Fill(
        order_id=record.order_id,
        strategy_id=record.strategy_id,
        symbol=record.symbol,
        side=OrderSide(record.side),
        quantity=record.quantity,
        price=record.price,
        fee=record.fee,
        ts=record.ts,
    )


# Position fields stored as they are; side and opened_at are converted, closed_at never stored.
_POSITION_FIELDS = (
    "position_id",
    "symbol",
    "quantity",
    "avg_entry_price",
    "fees_paid",
    "realized_pnl",
    "stop_loss",
    "take_profit",
    "trailing_distance_pct",
    "trailing_active",
    "best_price",
    "entries",
    "bars_held",
    "initial_quantity",
    "last_entry_price",
    "partial_exits_done",
)


def position_row(position: Position) -> dict[str, Any]:
    row = {name: getattr(position, name) for name in _POSITION_FIELDS}
    row["strategy_id"] = position.strategy_id
    row["side"] = position.side.value
    row["opened_at"] = require_aware(
        position.opened_at, f"position {position.position_id}: opened_at"
    )
    return row


def position_from(record: PositionRecord) -> Position:
    values = {name: getattr(record, name) for name in _POSITION_FIELDS}
    return Position(
        strategy_id=record.strategy_id,
        side=Side(record.side),
        opened_at=record.opened_at,
        **values,
    )


__all__ = [
    "DELETE_POSITIONS",
    "EVENTS",
    "FILLS",
    "JOURNAL_TABLES",
    "NATIVE_INSERTS",
    "ORDERS",
    "POSITIONS",
    "PRICE_MARKS",
    "SNAPSHOTS",
    "EventRecord",
    "FillRecord",
    "JournalModel",
    "OrderRecord",
    "PositionRecord",
    "PriceMarkRecord",
    "RegistryChangeRecord",
    "RegistryVersionRecord",
    "SnapshotRecord",
    "StrategyRecord",
    "UtcDateTime",
    "event_conflict",
    "event_row",
    "fill_from",
    "fill_row",
    "insert_events",
    "insert_new",
    "insert_statement",
    "order_from",
    "order_row",
    "position_from",
    "position_row",
    "require_aware",
    "same_event",
    "table_of",
    "to_json",
    "upsert",
]
