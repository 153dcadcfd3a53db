"""The persistent journal of every strategy: events, snapshots, positions, orders, fills, registry.

``SqlJournal`` buffers what the engine records and writes it in one transaction per
``commit`` (once per candle batch), to SQLite in WAL mode by default or to any
SQLAlchemy database such as PostgreSQL.
"""

from __future__ import annotations

import bisect
import difflib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, bindparam, case, create_engine, event, inspect, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, col, func, select

from tradekit.domain import Fill, Order, OrderSide, Position
from tradekit.errors import EventError, JournalConflictError, StorageError
from tradekit.events import Event, event_from_dict
from tradekit.logs import log
from tradekit.services.journal.bulk import execute_rows
from tradekit.services.journal.lock import AdvisoryWriterLock, FileWriterLock, WriterLock
from tradekit.services.journal.marks import (
    NO_MARKS,
    SeriesMarks,
    added_by_count,
    added_by_rowid,
)
from tradekit.services.journal.rows import KeptRows
from tradekit.services.journal.sqlite import (
    WRITE_OPTION,
    begin_transaction,
    connection_setup,
    database_file,
    integrity_problems,
    is_damage,
    is_in_memory,
    prompt_transaction_begin,
    read_only_url,
    writer_lock_file,
)
from tradekit.services.journal.tables import (
    DELETE_POSITIONS,
    EVENTS,
    FILLS,
    JOURNAL_TABLES,
    ORDERS,
    POSITIONS,
    PRICE_MARKS,
    SNAPSHOTS,
    EventRecord,
    JournalModel,
    OrderRecord,
    PositionRecord,
    PriceMarkRecord,
    RegistryChangeRecord,
    RegistryVersionRecord,
    SnapshotRecord,
    StrategyRecord,
    event_conflict,
    event_row,
    fill_row,
    insert_events,
    insert_new,
    insert_statement,
    order_from,
    order_row,
    position_from,
    position_row,
    require_aware,
    same_event,
    table_of,
    to_json,
    upsert,
)
from tradekit.strategy_state import StrategyState

DEFAULT_BUSY_TIMEOUT_MS = 5000

READ_CONNECTIONS_KEPT = 48
"""Connections a SQLite file journal keeps open for reuse: more than the threads that read at
once in the bot service (its worker threads, its event loop and the engine), so no read pays
for opening one."""


StrategyStatus = StrategyState
"""Where a registered strategy stands (``removed`` keeps its journal): the engine's states."""


@dataclass(frozen=True, slots=True)
class StrategyInfo:
    """One registry entry as read back: a detached copy, safe to keep and pass around."""

    strategy_id: str
    name: str
    kind: str
    config_json: str
    status: StrategyStatus
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Registration:
    """What registering a strategy writes to its registry entry (``config_json``: its config
    as JSON)."""

    name: str
    kind: str
    config_json: str

    def check(self, strategy_id: str) -> None:
        """``StorageError`` unless ``strategy_id`` is given and ``config_json`` is JSON."""
        if not strategy_id:
            raise StorageError("cannot register a strategy with an empty strategy_id")
        try:
            json.loads(self.config_json)
        except ValueError as exc:
            raise StorageError(
                f"strategy {strategy_id!r}: config_json is not valid JSON ({exc})"
            ) from exc


@dataclass(frozen=True, slots=True)
class RegistryChange:
    """One change asked of the registry, as read back; ``applied_at`` is ``None`` while pending."""

    change_id: int
    strategy_id: str
    action: str
    close_positions: bool
    by: str
    requested_at: datetime
    applied_at: datetime | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class Registry:
    """The whole registry at one registry version, read in one transaction; never changed.

    ``version`` is ``None`` for an old read-only journal that has no version row:
    such a registry is read again on every call.
    """

    version: int | None
    strategies: tuple[StrategyInfo, ...]
    """Every registered strategy, removed ones included, by ``strategy_id``."""
    by_id: Mapping[str, StrategyInfo]
    latest_changes: Mapping[str, RegistryChange]
    """Each strategy's newest change asked of the registry."""


class EventStamp(NamedTuple):
    """One committed event's ``seq`` and time, and the event when it was asked for."""

    seq: int
    ts: datetime
    event: Event | None


class StrategyTail(NamedTuple):
    """What a strategy's journal holds past a point: its newer events and fills (by id), and
    its latest snapshot."""

    events: list[EventStamp]
    fills: list[tuple[int, Fill]]
    snapshot: StoredSnapshot | None


class StoredSnapshot(NamedTuple):
    """A strategy's latest snapshot: the ``seq`` of the last event it includes, and its state."""

    seq: int
    state: dict[str, Any]


@dataclass(slots=True)
class _Buffer:
    """Writes waiting for the next commit, as plain rows captured when they were recorded."""

    events: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    orders: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    price_marks: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    """Different events recorded under one key: the commit refuses the whole buffer."""

    def __len__(self) -> int:
        return (
            len(self.events)
            + len(self.orders)
            + len(self.fills)
            + len(self.positions)
            + len(self.snapshots)
            + len(self.price_marks)
        )


class SqlJournal:
    """The journal of every strategy in the process, on one SQLAlchemy engine; one per process.

    ``record``, ``record_fill``, ``upsert_positions`` and ``save_snapshot`` only
    buffer; ``commit`` writes the whole buffer in one transaction. A failed commit
    raises ``StorageError`` and keeps the buffer for a retry, so nothing recorded is
    lost. Registry calls (``register_strategy``, ``set_status``, ``remove_strategy``)
    write at once. Thread-safe; reads never see buffered writes.

    A process that runs strategies calls ``acquire_writer`` to be the database's only
    writer until ``close``; it opens its journal with ``prompt_writer=True``, so on
    SQLite its commits take the write lock the moment another connection (the API, a
    command) releases it, rather than after one of SQLite's backing-off sleeps.
    ``read_only=True`` opens a journal for reading only: it creates, converts and
    writes nothing, so a copy on read-only storage can be read.
    A SQLite file is checked for damage when opened.
    """

    def __init__(
        self,
        database_url: str,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        now: Callable[[], datetime] | None = None,
        read_only: bool = False,
        prompt_writer: bool = False,
    ) -> None:
        if busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be >= 0, got {busy_timeout_ms!r}")
        self._now = now or _utc_now
        self._lock = threading.RLock()
        self._buffer = _Buffer()
        self._closed = False
        self.read_only = read_only
        self._writer_lock: WriterLock | None = None
        self._has_changes = True
        self._has_marks = True
        self._has_version = True
        self._registry: Registry | None = None
        # What the last reading of the whole registry built, reused for the rows unchanged.
        self._strategy_rows = KeptRows(list(_STRATEGY_COLUMNS.selected_columns), _strategy_entry)
        self._change_rows = KeptRows(list(_CHANGE_COLUMNS.selected_columns), RegistryChange)
        self._marks: dict[tuple[str, str], SeriesMarks] = {}
        try:
            url = make_url(database_url)
        except ArgumentError as exc:
            raise StorageError(
                f"cannot open journal {database_url!r}: not a database URL ({exc})"
            ) from None
        self.url = url.render_as_string(hide_password=True)
        """The database URL, password hidden: safe to log."""
        sqlite = url.get_backend_name() == "sqlite"
        self._marks_have_rowid = sqlite
        # An in-memory database lives in one connection: share it between threads, one
        # caller at a time, and never drop it (that would drop the data).
        self._in_memory = sqlite and is_in_memory(url)
        self._database_file = database_file(url) if sqlite else None
        if self._database_file is not None:
            if read_only:
                url = read_only_url(url, self._database_file)
            else:
                self._prepare_sqlite_file(url)
        options: dict[str, Any] = {}
        if self._in_memory:
            options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        elif sqlite:
            options = {"pool_size": READ_CONNECTIONS_KEPT}
        try:
            self._engine = create_engine(url, **options)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise StorageError(f"cannot open journal {self.url}: {exc}") from exc
        except ImportError as exc:
            raise StorageError(
                f"cannot open journal {self.url}: its database driver is not installed ({exc})"
            ) from exc
        if sqlite:
            setup = connection_setup(busy_timeout_ms, read_only=read_only)
            event.listen(self._engine, "connect", setup)
            begin = prompt_transaction_begin(busy_timeout_ms) if prompt_writer else None
            event.listen(self._engine, "begin", begin or begin_transaction)
        # Transactions that write take the write lock up front (BEGIN IMMEDIATE on SQLite),
        # so they wait out busy_timeout instead of failing when a read would become a write.
        self._writer = self._engine.execution_options(**{WRITE_OPTION: True})
        try:
            self._open_schema()
        except SQLAlchemyError as exc:
            self._engine.dispose()
            if is_damage(exc):
                raise self._damaged(_reason(exc)) from exc
            raise StorageError(f"cannot open journal {self.url}: {_reason(exc)}") from exc
        except StorageError:
            self._engine.dispose()
            raise

    def _open_schema(self) -> None:
        """Check the file, then create missing tables in one transaction (never half a schema)."""
        tables = [table_of(model) for model in JOURNAL_TABLES]
        with self._engine.connect() as connection:
            if self._database_file is not None:
                problems = integrity_problems(connection)
                if problems:
                    raise self._damaged(f"integrity check: {'; '.join(problems)}")
            stored = set(inspect(connection).get_table_names())
            if self.read_only and _CHANGES_TABLE not in stored:
                # A journal written before registry changes existed reads as having none.
                self._has_changes = False
                stored.add(_CHANGES_TABLE)
            if self.read_only and _MARKS_TABLE not in stored:
                # Likewise a journal written before price marks: it reads as having none.
                self._has_marks = False
                stored.add(_MARKS_TABLE)
            if self.read_only and _VERSION_TABLE not in stored:
                # And one written before the registry version: its registry is never cached.
                self._has_version = False
                stored.add(_VERSION_TABLE)
            if {table.name for table in tables} <= stored:
                # Nothing to create: a read-only database opens, and fails only on commit.
                self._check_schema(connection)
                return
        if self.read_only:
            missing = ", ".join(table.name for table in tables if table.name not in stored)
            raise StorageError(
                f"cannot open journal {self.url}: not a tradekit journal; it has no "
                f"table(s) {missing}"
            )
        with self._writer.begin() as connection:
            JournalModel.metadata.create_all(connection, tables=tables)
            if connection.execute(core_select(REGISTRY_VERSION.c.id)).first() is None:
                connection.execute(REGISTRY_VERSION.insert().values(id=1, version=0))
            self._check_schema(connection)

    def _damaged(self, reason: str) -> StorageError:
        return StorageError(
            f"cannot open journal {self.url}: the file is damaged or is not a tradekit "
            f"journal ({reason}); restore it from a backup, or move it aside to start a new one"
        )

    def _prepare_sqlite_file(self, url: URL) -> None:
        database = url.database or ""
        if url.query.get("uri") or database.startswith("file:"):
            return
        path = Path(database)
        if path.is_dir():
            raise StorageError(
                f"cannot open journal {self.url}: {path} is a directory; expected a database file"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StorageError(
                f"cannot open journal {self.url}: cannot create directory {path.parent}; "
                "a file is in the way"
            ) from exc
        except OSError as exc:
            raise StorageError(
                f"cannot open journal {self.url}: cannot create directory {path.parent} "
                f"({exc.strerror or exc})"
            ) from exc

    def _check_schema(self, connection: Connection) -> None:
        inspector = inspect(connection)
        problems = []
        for model in JOURNAL_TABLES:
            table = table_of(model)
            if table.name == _CHANGES_TABLE and not self._has_changes:
                continue
            if table.name == _MARKS_TABLE and not self._has_marks:
                continue
            if table.name == _VERSION_TABLE and not self._has_version:
                continue
            stored = {column["name"] for column in inspector.get_columns(table.name)}
            missing = [column.name for column in table.columns if column.name not in stored]
            if missing:
                problems.append(f"table {table.name} lacks column(s) {', '.join(missing)}")
        if problems:
            raise StorageError(
                f"cannot open journal {self.url}: {'; '.join(problems)}; the database was "
                "written by another program or version"
            )

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._buffer)} pending"
        return f"SqlJournal({self.url!r}, {state})"

    def __enter__(self) -> SqlJournal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """How many buffered writes the next ``commit`` will make (rows, or position sets)."""
        return len(self._buffer)

    # -- the writer lock -------------------------------------------------------------------

    def acquire_writer(self) -> None:
        """Become the only process writing this database, until ``close``.

        ``StorageError`` naming the holder (pid, host, start, command) when another
        writer holds it. A lock left by a process that died is taken over, with a
        warning naming it. In-memory databases need no lock; databases other than
        SQLite files and PostgreSQL have none. Acquiring again does nothing.
        """
        with self._lock:
            self._require_writable()
            if self._writer_lock is not None or self._in_memory:
                return
            if self._database_file is not None:
                lock_file = writer_lock_file(self._database_file)
                self._writer_lock = FileWriterLock.acquire(lock_file, self.url)
            elif self._engine.dialect.name == "postgresql":
                self._writer_lock = AdvisoryWriterLock.acquire(self._engine, self.url)
            else:
                log.warning(
                    "journal {}: no writer lock for {} databases; make sure one process writes it",
                    self.url,
                    self._engine.dialect.name,
                )

    # -- buffered writes ----------------------------------------------------------------

    def record(self, events: Sequence[Event]) -> None:
        """Buffer stamped events; the same event recorded again (or stored) is written once.

        A different event under a ``(strategy_id, seq)`` already recorded makes the
        next ``commit`` raise ``JournalConflictError``.
        """
        rows = [event_row(item) for item in events]
        with self._lock:
            self._require_writable()
            for row in rows:
                held = self._buffer.events.setdefault((row["strategy_id"], row["seq"]), row)
                if held is not row and not same_event(row, held["event_type"], held["payload"]):
                    self._buffer.conflicts.append(
                        event_conflict(row, held["event_type"], held["payload"])
                    )

    def record_fill(self, order: Order, fill: Fill) -> None:
        """Buffer ``fill`` and, unless already stored, the ``order`` it executes."""
        if (fill.order_id, fill.strategy_id) != (order.order_id, order.strategy_id):
            raise StorageError(
                f"cannot record fill of order {fill.order_id!r} (strategy {fill.strategy_id!r}) "
                f"with order {order.order_id!r} (strategy {order.strategy_id!r}); pass the "
                "order the fill executes"
            )
        order_values = order_row(order)
        fill_values = fill_row(fill)
        with self._lock:
            self._require_writable()
            self._buffer.orders.setdefault((order.strategy_id, order.order_id), order_values)
            self._buffer.fills.append(fill_values)

    def upsert_positions(self, strategy_id: str, positions: Iterable[Position]) -> None:
        """Buffer ``strategy_id``'s open positions; stored ones not among them are deleted.

        Values are copied now: later changes to the ``Position`` objects are not written.
        """
        rows: dict[str, dict[str, Any]] = {}
        for position in positions:
            if position.strategy_id != strategy_id:
                raise StorageError(
                    f"strategy {strategy_id!r}: position {position.position_id!r} belongs to "
                    f"strategy {position.strategy_id!r}"
                )
            if position.symbol in rows:
                raise StorageError(
                    f"strategy {strategy_id!r}: two open positions in {position.symbol}"
                )
            if position.is_open:
                rows[position.symbol] = position_row(position)
        with self._lock:
            self._require_writable()
            self._buffer.positions[strategy_id] = list(rows.values())

    def save_snapshot(
        self, strategy_id: str, seq: int, ts: datetime, state: Mapping[str, Any]
    ) -> None:
        """Buffer ``state`` as ``strategy_id``'s snapshot after event ``seq``; the newest is kept.

        ``state`` is serialized now, so it must hold JSON types only.
        """
        where = f"strategy {strategy_id!r}: snapshot at seq {seq}"
        if seq < 0:
            raise StorageError(f"{where}: seq must be >= 0")
        try:
            document = to_json(state)
        except (TypeError, ValueError) as exc:
            raise StorageError(f"{where} is not JSON-serializable: {exc}") from exc
        row = {
            "strategy_id": strategy_id,
            "seq": seq,
            "ts": require_aware(ts, where),
            "state": document,
        }
        with self._lock:
            self._require_writable()
            held = self._buffer.snapshots.get(strategy_id)
            if held is None or held["seq"] <= seq:
                self._buffer.snapshots[strategy_id] = row

    def record_price_mark(self, symbol: str, timeframe: str, ts: datetime, close: float) -> None:
        """Buffer the close of the candle of ``symbol`` / ``timeframe`` opened at ``ts``.

        A mark already stored for that candle is kept (a resumed run delivers it again).
        """
        row = {
            "symbol": symbol,
            "timeframe": timeframe,
            "ts": require_aware(ts, f"price mark of {symbol} {timeframe}"),
            "close": close,
        }
        with self._lock:
            self._require_writable()
            self._buffer.price_marks.append(row)

    def commit(self) -> None:
        """Write everything buffered in one transaction; on failure keep it all for a retry.

        ``JournalConflictError`` when an event collides with a different one under the
        same ``(strategy_id, seq)``: nothing is stored, and retrying cannot help.
        """
        with self._lock:
            self._require_open()
            if not self._buffer:
                return
            if self._buffer.conflicts:
                raise self._conflict(self._buffer.conflicts)
            try:
                with self._writer.begin() as connection:
                    conflicts = _write(connection, self._buffer)
                    if conflicts:
                        raise self._conflict(conflicts)
            except SQLAlchemyError as exc:
                # A pooled connection may be stuck in its failed state (opened read-only,
                # a vanished file): drop them so a retry reconnects.
                if not self._in_memory:
                    self._engine.dispose()
                raise StorageError(
                    f"journal {self.url}: commit of {len(self._buffer)} buffered write(s) "
                    f"failed and stored nothing ({_reason(exc)}); they stay buffered for a retry"
                ) from exc
            self._buffer = _Buffer()

    def _conflict(self, conflicts: list[str]) -> JournalConflictError:
        return JournalConflictError(
            f"journal {self.url}: {'; '.join(conflicts)} (a seq used twice: a strategy "
            f"restarted its numbering, or a second process writes this journal); the commit "
            f"of {len(self._buffer)} buffered write(s) stored nothing"
        )

    # -- reads ----------------------------------------------------------------------------

    def events(
        self,
        strategy_id: str,
        after_seq: int = 0,
        *,
        limit: int | None = None,
        types: Iterable[type[Event]] | None = None,
    ) -> list[Event]:
        """``strategy_id``'s committed events with ``seq > after_seq``, in seq order; the
        first ``limit`` of them when given; only events of ``types`` when given (the others
        are never decoded, which is what makes such a read cheap)."""
        statement = (
            core_select(EVENTS.c.seq, EVENTS.c.payload)
            .where(EVENTS.c.strategy_id == strategy_id, EVENTS.c.seq > after_seq)
            .order_by(EVENTS.c.seq)
        )
        if types is not None:
            names = sorted({kind.__name__ for kind in types})
            statement = statement.where(EVENTS.c.event_type.in_(names))
        if limit is not None:
            statement = statement.limit(limit)
        with self._read_connection() as connection:
            rows = connection.execute(statement).all()
        return [self._decode_event(strategy_id, seq, payload) for seq, payload in rows]

    def event_count(self, strategy_id: str) -> int:
        """How many committed events ``strategy_id`` has (none decoded)."""
        statement = select(func.count()).where(EventRecord.strategy_id == strategy_id)
        with self._reading() as session:
            return int(session.exec(statement).one())

    def event_span(
        self, strategy_id: str, *, since: datetime | None = None
    ) -> tuple[datetime, datetime] | None:
        """The times of ``strategy_id``'s first and last committed events in seq order (with
        ``since``, of those at or after it); ``None`` when there are none."""
        statement = core_select(EVENTS.c.ts).where(EVENTS.c.strategy_id == strategy_id)
        if since is not None:
            statement = statement.where(EVENTS.c.ts >= require_aware(since, "events since"))
        first = statement.order_by(EVENTS.c.seq).limit(1)
        last = statement.order_by(EVENTS.c.seq.desc()).limit(1)
        with self._read_connection() as connection:
            found_first = connection.execute(first).scalar()
            found_last = connection.execute(last).scalar()
        if found_first is None or found_last is None:
            return None
        return found_first, found_last

    def _decode_event(self, strategy_id: str, seq: int, payload: str) -> Event:
        try:
            return event_from_dict(json.loads(payload))
        except (ValueError, EventError) as exc:
            raise StorageError(
                f"journal {self.url}: event {seq} of strategy {strategy_id!r} cannot be read "
                f"back: {exc}"
            ) from exc

    def last_seq(self, strategy_id: str) -> int:
        """The highest committed ``seq`` of ``strategy_id``; 0 when it has no events."""
        statement = select(func.max(EventRecord.seq)).where(EventRecord.strategy_id == strategy_id)
        with self._reading() as session:
            highest = session.exec(statement).one()
        return 0 if highest is None else int(highest)

    def latest_snapshot(self, strategy_id: str) -> StoredSnapshot | None:
        """``strategy_id``'s newest committed snapshot, or ``None``."""
        with self._read_connection() as connection:
            record = connection.execute(_snapshot_of(strategy_id)).first()
        return None if record is None else self._snapshot(strategy_id, record.seq, record.state)

    def _snapshot(self, strategy_id: str, seq: int, document: str) -> StoredSnapshot:
        try:
            state = json.loads(document)
        except ValueError as exc:
            raise StorageError(
                f"journal {self.url}: snapshot of strategy {strategy_id!r} cannot be read: {exc}"
            ) from exc
        return StoredSnapshot(seq, state)

    def open_positions(self, strategy_id: str) -> list[Position]:
        """``strategy_id``'s open positions as last upserted, by symbol."""
        statement = (
            select(PositionRecord)
            .where(PositionRecord.strategy_id == strategy_id)
            .order_by(col(PositionRecord.symbol))
        )
        with self._reading() as session:
            return [position_from(record) for record in session.exec(statement)]

    def orders(self, strategy_id: str) -> list[Order]:
        """``strategy_id``'s recorded orders, oldest first."""
        statement = (
            select(OrderRecord)
            .where(OrderRecord.strategy_id == strategy_id)
            .order_by(col(OrderRecord.created_at), col(OrderRecord.order_id))
        )
        with self._reading() as session:
            return [order_from(record) for record in session.exec(statement)]

    def fills(self, strategy_id: str) -> list[Fill]:
        """``strategy_id``'s fills in the order they were recorded."""
        statement = (
            core_select(*(FILLS.c[name] for name in _FILL_COLUMNS))
            .where(FILLS.c.strategy_id == strategy_id)
            .order_by(FILLS.c.id)
        )
        with self._read_connection() as connection:
            rows = connection.execute(statement).all()
        return [_fill(*row) for row in rows]

    def price_marks(
        self, symbol: str, timeframe: str, *, since: datetime | None = None
    ) -> list[tuple[datetime, float]]:
        """The sampled closes of ``symbol`` / ``timeframe`` as ``(ts, close)``, oldest first.

        With ``since``, only the marks at or after it.
        """
        marks = self.price_mark_series(symbol, timeframe)
        if since is None:
            return list(marks)
        start = bisect.bisect_left(marks, require_aware(since, "price marks since"), key=_ts)
        return list(marks[start:])

    def price_mark_series(self, symbol: str, timeframe: str) -> tuple[tuple[datetime, float], ...]:
        """Every price mark of ``symbol`` / ``timeframe`` as ``(ts, close)``, oldest first.

        Marks are only ever added, so each series is kept in memory and a call reads only
        the marks added since the last one (``tradekit.services.journal.marks``). The
        tuple is the one kept: while no mark is added, every call gives the same one back.
        """
        if not self._has_marks:
            return ()
        read_added = added_by_rowid if self._marks_have_rowid else added_by_count
        held = self._marks.get((symbol, timeframe), NO_MARKS)
        with self._read_connection() as connection:
            held = read_added(connection, symbol, timeframe, held)
        self._marks[(symbol, timeframe)] = held
        return held.marks

    def strategy_tail(
        self,
        strategy_id: str,
        *,
        after_seq: int,
        after_fill: int,
        types: Iterable[type[Event]],
    ) -> StrategyTail:
        """What ``strategy_id``'s journal holds past ``after_seq`` and fill ``after_fill``, and
        its latest snapshot, read in one transaction (so they agree with each other).

        Events are committed in seq order and fills in id order (one writer per database),
        so reading past the last ones read misses nothing.
        """
        names = sorted({kind.__name__ for kind in types})
        events = (
            core_select(
                EVENTS.c.seq,
                EVENTS.c.ts,
                case((EVENTS.c.event_type.in_(names), EVENTS.c.payload), else_=None),
            )
            .where(EVENTS.c.strategy_id == strategy_id, EVENTS.c.seq > after_seq)
            .order_by(EVENTS.c.seq)
        )
        fills = (
            core_select(FILLS.c.id, *(FILLS.c[name] for name in _FILL_COLUMNS))
            .where(FILLS.c.strategy_id == strategy_id, FILLS.c.id > after_fill)
            .order_by(FILLS.c.id)
        )
        with self._read_connection() as connection:
            event_rows = connection.execute(events).all()
            fill_rows = connection.execute(fills).all()
            snapshot = connection.execute(_snapshot_of(strategy_id)).first()
        return StrategyTail(
            [
                EventStamp(
                    seq,
                    ts,
                    None if payload is None else self._decode_event(strategy_id, seq, payload),
                )
                for seq, ts, payload in event_rows
            ],
            [(row[0], _fill(*row[1:])) for row in fill_rows],
            None if snapshot is None else self._snapshot(strategy_id, snapshot.seq, snapshot.state),
        )

    def strategy_ids(self) -> list[str]:
        """Every strategy with anything stored: registered, or with events, snapshots, positions."""
        ids: set[str] = set()
        with self._reading() as session:
            for model in (StrategyRecord, EventRecord, SnapshotRecord, PositionRecord):
                ids.update(session.exec(select(model.strategy_id).distinct()))
        return sorted(ids)

    # -- registry (written at once) -------------------------------------------------------

    def register_strategy(self, strategy_id: str, name: str, kind: str, config_json: str) -> None:
        """Add ``strategy_id`` as active, or update its name, kind and config.

        ``created_at`` and the status are kept, except that registering a removed
        strategy again makes it active.
        """
        registration = Registration(name, kind, config_json)
        registration.check(strategy_id)
        with self._registry_connection(f"register strategy {strategy_id!r}") as connection:
            self._register(connection, strategy_id, registration)

    def set_status(self, strategy_id: str, status: StrategyStatus | str) -> None:
        """Set a registered strategy's status; ``StorageError`` for an unknown id or status."""
        new_status = _status(strategy_id, status)
        with self._registry_connection(f"set status of strategy {strategy_id!r}") as connection:
            self._write_status(connection, strategy_id, new_status)

    def register_if_new(self, strategy_id: str, name: str, kind: str, config_json: str) -> bool:
        """Register ``strategy_id`` as active unless it is registered already; True if it was new.

        A registered strategy (removed ones included) is left exactly as it is: a
        run never changes what the registry says about a strategy it knows.
        """
        with self._writing(f"register strategy {strategy_id!r}") as session:
            if session.get(StrategyRecord, strategy_id) is not None:
                return False
        self.register_strategy(strategy_id, name, kind, config_json)
        return True

    def request_change(
        self,
        strategy_id: str,
        action: str,
        by: str,
        *,
        close_positions: bool = False,
        registration: Registration | None = None,
        status: StrategyStatus | str | None = None,
    ) -> int:
        """Record that ``by`` asked for ``action`` on ``strategy_id``; returns the change's id.

        With ``registration``, the strategy is registered first (``register_strategy``),
        and with ``status`` its status is set, all in the same transaction: the registry
        never holds a config or a status without the change that has a run apply it, nor
        the reverse. ``StorageError`` for an unknown id or status, and nothing is written.
        """
        new_status = None if status is None else _status(strategy_id, status)
        if registration is not None:
            registration.check(strategy_id)
        what = f"record a change of strategy {strategy_id!r}"
        with self._registry_connection(what) as connection:
            if registration is not None:
                self._register(connection, strategy_id, registration)
            if new_status is not None:
                self._write_status(connection, strategy_id, new_status)
            inserted = connection.execute(
                _INSERT_CHANGE,
                {
                    "strategy_id": strategy_id,
                    "action": action,
                    "close_positions": close_positions,
                    "by": by,
                    "requested_at": self._now(),
                },
            )
            key = inserted.inserted_primary_key
            if key is None or key[0] is None:
                raise StorageError(f"journal {self.url}: the database gave the change no id")
            return int(key[0])

    def last_change_id(self) -> int:
        """The id of the newest change asked of the registry; 0 when there is none (cheap)."""
        if not self._has_changes:
            return 0
        with self._read_connection() as connection:
            newest = connection.execute(_NEWEST_CHANGE).scalar()
        return int(newest or 0)

    def registry_changes(
        self, *, after_id: int = 0, pending_only: bool = False
    ) -> list[RegistryChange]:
        """Changes with an id above ``after_id`` in the order they were asked for."""
        if not self._has_changes:
            return []
        # Plain rows, not ORM objects: a run reads them on every change asked of it.
        statement = _PENDING_CHANGES_AFTER if pending_only else _CHANGES_AFTER
        with self._read_connection() as connection:
            rows = connection.execute(statement, {"after_id": after_id})
            return [RegistryChange(*row) for row in rows]

    def registry_change(self, change_id: int) -> RegistryChange | None:
        """Change ``change_id`` as it stands now; ``None`` when there is no such change."""
        if not self._has_changes:
            return None
        with self._read_connection() as connection:
            row = connection.execute(_CHANGE_BY_ID, {"change_id": change_id}).first()
        return None if row is None else RegistryChange(*row)

    def registry_change_and_entry(
        self, change_id: int
    ) -> tuple[RegistryChange, StrategyInfo | None] | None:
        """Change ``change_id`` as it stands now and its strategy's registry entry (``None``
        when not registered), read together; ``None`` when there is no such change."""
        if not self._has_changes:
            return None
        with self._read_connection() as connection:
            row = connection.execute(_CHANGE_AND_ENTRY, {"change_id": change_id}).first()
        if row is None:
            return None
        change = RegistryChange(*row[:_CHANGE_WIDTH])
        entry = row[_CHANGE_WIDTH:]
        return change, None if entry[0] is None else _strategy_entry(*entry)

    def latest_changes(self, strategy_id: str | None = None) -> dict[str, RegistryChange]:
        """Each strategy's newest change asked of the registry (only ``strategy_id``'s when
        given), by strategy id."""
        if not self._has_changes:
            return {}
        with self._reading() as session:
            return self._latest_changes_in(session.connection(), strategy_id)

    def _latest_changes_in(
        self, connection: Connection, strategy_id: str | None
    ) -> dict[str, RegistryChange]:
        if not self._has_changes:
            return {}
        newest = select(func.max(RegistryChangeRecord.id))
        if strategy_id is not None:
            newest = newest.where(RegistryChangeRecord.strategy_id == strategy_id)
        newest = newest.group_by(col(RegistryChangeRecord.strategy_id))
        if strategy_id is not None:
            statement = _CHANGE_COLUMNS.where(
                col(RegistryChangeRecord.id).in_(newest.scalar_subquery())
            )
            return {row.strategy_id: RegistryChange(*row) for row in connection.execute(statement)}
        # Every strategy's: this runs for every reading of the whole registry, where the
        # changes read before are mostly read again unchanged.
        raw = core_select(*self._change_rows.raw_columns).where(
            REGISTRY_CHANGES.c.id.in_(newest.scalar_subquery())
        )
        changes = self._change_rows.objects(connection.execute(raw), connection.dialect)
        return {change.strategy_id: change for change in changes}

    def settle_change(self, change_id: int, outcome: str, applied_at: datetime) -> None:
        """Record what a runner made of change ``change_id`` and when it applied it."""
        applied_at = require_aware(applied_at, f"registry change {change_id}")
        with self._registry_connection(f"settle registry change {change_id}") as connection:
            settled = connection.execute(
                _SETTLE_CHANGE,
                {"change_id": change_id, "settled_at": applied_at, "settled_as": outcome},
            )
            if settled.rowcount == 0:
                raise StorageError(f"journal {self.url}: no registry change {change_id}")

    def remove_strategy(self, strategy_id: str) -> None:
        """Mark ``strategy_id`` removed; its events, snapshots, orders and fills stay."""
        self.set_status(strategy_id, StrategyStatus.REMOVED)

    def strategy_info(self, strategy_id: str) -> StrategyInfo | None:
        """The registry entry of ``strategy_id``, or ``None`` when it is not registered."""
        with self._read_connection() as connection:
            row = connection.execute(_STRATEGY_BY_ID, {"strategy_id": strategy_id}).first()
        return None if row is None else _strategy_entry(*row)

    def registered(self, strategy_id: str) -> StrategyInfo:
        """The registry entry of ``strategy_id``; ``StorageError`` with a suggestion if unknown."""
        with self._reading() as session:
            record = session.get(StrategyRecord, strategy_id)
            if record is None:
                raise _unknown_strategy(session.connection(), strategy_id)
            return _strategy_info(record)

    def strategies(self) -> list[StrategyInfo]:
        """Every registered strategy, removed ones included, by ``strategy_id``."""
        # Plain rows, not ORM objects: this runs on every listing of the bots.
        statement = _STRATEGY_COLUMNS.order_by(STRATEGIES.c.strategy_id)
        with self._reading() as session:
            rows = session.connection().execute(statement).all()
        return [
            StrategyInfo(
                strategy_id, name, kind, config_json, StrategyStatus(status), created, updated
            )
            for strategy_id, name, kind, config_json, status, created, updated in rows
        ]

    def registry_version(self) -> int | None:
        """The registry's version: it grows with every registry write (cheap: one row)."""
        if not self._has_version:
            return None
        with self._read_connection() as connection:
            return self._version_in(connection)

    def registry(self) -> Registry:
        """The whole registry as it stands, with each strategy's newest change.

        Kept in memory and read again only once the registry version moved: a write
        through any journal on this database, in any process, is seen by the next call.
        A row read again unchanged gives back the entry (or change) built from it before.
        """
        with self._read_connection() as connection:
            version = self._version_in(connection) if self._has_version else None
            held = self._registry
            if version is not None and held is not None and held.version == version:
                return held
            # In the same read transaction as the version, so they agree.
            raw = core_select(*self._strategy_rows.raw_columns).order_by(STRATEGIES.c.strategy_id)
            rows = connection.execute(raw)
            strategies = tuple(self._strategy_rows.objects(rows, connection.dialect))
            changes = self._latest_changes_in(connection, None)
        registry = Registry(
            version,
            strategies,
            MappingProxyType({info.strategy_id: info for info in strategies}),
            MappingProxyType(changes),
        )
        if version is not None:
            with self._lock:
                if self._registry is None or (self._registry.version or 0) < version:
                    self._registry = registry
        return registry

    def _version_in(self, connection: Connection) -> int:
        found = connection.execute(_VERSION_COLUMN).scalar()
        return int(found or 0)

    def close(self) -> None:
        """Commit what is buffered, then release every connection; closing again does nothing.

        If that last commit fails, ``StorageError`` is raised and the journal stays open,
        unless it is a ``JournalConflictError``: no retry can store that buffer, so the
        journal closes without it and raises.
        """
        with self._lock:
            if self._closed:
                return
            try:
                self.commit()
            except JournalConflictError:
                self._release()
                raise
            self._release()

    def _release(self) -> None:
        self._closed = True
        if self._writer_lock is not None:
            self._writer_lock.release()
            self._writer_lock = None
        self._engine.dispose()

    # -- plumbing -------------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._closed:
            raise StorageError(f"journal {self.url} is closed")

    def _require_writable(self) -> None:
        self._require_open()
        if self.read_only:
            raise StorageError(f"journal {self.url} is opened read-only; it cannot be written")

    def _exclusive(self) -> AbstractContextManager[object]:
        """The lock for a single shared connection; separate pooled connections need none."""
        return self._lock if self._in_memory else nullcontext()

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        self._require_open()
        try:
            with self._exclusive(), Session(self._engine) as session:
                yield session
        except SQLAlchemyError as exc:
            raise StorageError(f"journal {self.url}: read failed ({_reason(exc)})") from exc

    @contextmanager
    def _read_connection(self) -> Iterator[Connection]:
        """A connection for reads in plain SQL statements: no ORM session, which cost as much
        as the query itself on the reads the bot service makes on every request."""
        self._require_open()
        try:
            with self._exclusive(), self._engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StorageError(f"journal {self.url}: read failed ({_reason(exc)})") from exc

    @contextmanager
    def _registry_connection(self, what: str) -> Iterator[Connection]:
        """A registry write in plain SQL statements, in one transaction that also moves the
        registry version: no ORM session, which cost more than the writes themselves."""
        self._require_writable()
        try:
            with self._exclusive(), self._writer.begin() as connection:
                yield connection
                connection.execute(_BUMP_VERSION)
        except SQLAlchemyError as exc:
            raise StorageError(f"journal {self.url}: cannot {what} ({_reason(exc)})") from exc

    def _register(
        self, connection: Connection, strategy_id: str, registration: Registration
    ) -> None:
        now = self._now()
        found = connection.execute(_STATUS_OF, {"strategy_id": strategy_id}).first()
        if found is None:
            connection.execute(
                _INSERT_STRATEGY,
                {
                    "strategy_id": strategy_id,
                    "name": registration.name,
                    "kind": registration.kind,
                    "config_json": registration.config_json,
                    "status": StrategyStatus.ACTIVE.value,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            return
        # Registering a removed strategy again makes it active; any other status stays.
        removed = found[0] == StrategyStatus.REMOVED.value
        status = StrategyStatus.ACTIVE.value if removed else found[0]
        connection.execute(
            _REREGISTER,
            {
                "of_strategy": strategy_id,
                "new_name": registration.name,
                "new_kind": registration.kind,
                "new_config": registration.config_json,
                "new_status": status,
                "changed_at": now,
            },
        )

    def _write_status(
        self, connection: Connection, strategy_id: str, status: StrategyStatus
    ) -> None:
        written = connection.execute(
            _SET_STATUS,
            {"of_strategy": strategy_id, "new_status": status.value, "changed_at": self._now()},
        )
        if written.rowcount == 0:
            raise _unknown_strategy(connection, strategy_id)

    @contextmanager
    def _writing(self, what: str) -> Iterator[Session]:
        self._require_writable()
        try:
            with (
                self._exclusive(),
                Session(self._writer, expire_on_commit=False) as session,
                session.begin(),
            ):
                yield session
        except SQLAlchemyError as exc:
            raise StorageError(f"journal {self.url}: cannot {what} ({_reason(exc)})") from exc


def _write(connection: Connection, buffer: _Buffer) -> list[str]:
    """Every buffered row, in an order that satisfies the fills -> orders foreign key.

    Returns the event collisions found, before writing anything else; the caller rolls back.
    """
    if buffer.events:
        conflicts = insert_events(connection, list(buffer.events.values()))
        if conflicts:
            return conflicts
    if buffer.orders:
        insert_new(connection, ORDERS, list(buffer.orders.values()))
    if buffer.fills:
        execute_rows(connection, insert_statement(FILLS), buffer.fills)
    if buffer.positions:
        # Each strategy's set replaces what is stored.
        owners = [{"strategy_id": strategy_id} for strategy_id in buffer.positions]
        execute_rows(connection, DELETE_POSITIONS, owners)
        rows = [row for held in buffer.positions.values() for row in held]
        execute_rows(connection, insert_statement(POSITIONS), rows)
    if buffer.snapshots:
        upsert(connection, SNAPSHOTS, list(buffer.snapshots.values()), newer="seq")
    if buffer.price_marks:
        insert_new(connection, PRICE_MARKS, buffer.price_marks)
    return []


STRATEGIES, REGISTRY_CHANGES = table_of(StrategyRecord), table_of(RegistryChangeRecord)
REGISTRY_VERSION = table_of(RegistryVersionRecord)
_VERSION_COLUMN = core_select(REGISTRY_VERSION.c.version).where(REGISTRY_VERSION.c.id == 1)
_BUMP_VERSION = (
    update(REGISTRY_VERSION)
    .where(REGISTRY_VERSION.c.id == 1)
    .values(version=REGISTRY_VERSION.c.version + 1)
)
# The columns of a StrategyInfo and of a RegistryChange (whose change_id is the id), in order.
_STRATEGY_COLUMNS = core_select(*(STRATEGIES.c[item.name] for item in fields(StrategyInfo)))
_CHANGE_COLUMNS = core_select(
    REGISTRY_CHANGES.c.id,
    *(REGISTRY_CHANGES.c[item.name] for item in fields(RegistryChange)[1:]),
)
# The registry's statements a bot service runs on every change, built once: building one
# cost more than running it.
_STRATEGY_BY_ID = _STRATEGY_COLUMNS.where(STRATEGIES.c.strategy_id == bindparam("strategy_id"))
_CHANGE_BY_ID = _CHANGE_COLUMNS.where(REGISTRY_CHANGES.c.id == bindparam("change_id"))
_CHANGES_AFTER = _CHANGE_COLUMNS.where(REGISTRY_CHANGES.c.id > bindparam("after_id")).order_by(
    REGISTRY_CHANGES.c.id
)
_PENDING_CHANGES_AFTER = _CHANGES_AFTER.where(REGISTRY_CHANGES.c.applied_at.is_(None))
_CHANGE_WIDTH = len(_CHANGE_COLUMNS.selected_columns)
_CHANGE_AND_ENTRY = (
    core_select(*_CHANGE_COLUMNS.selected_columns, *_STRATEGY_COLUMNS.selected_columns)
    .select_from(
        REGISTRY_CHANGES.outerjoin(
            STRATEGIES, STRATEGIES.c.strategy_id == REGISTRY_CHANGES.c.strategy_id
        )
    )
    .where(REGISTRY_CHANGES.c.id == bindparam("change_id"))
)
_NEWEST_CHANGE = core_select(func.max(REGISTRY_CHANGES.c.id))
_SET_STATUS = (
    update(STRATEGIES)
    .where(STRATEGIES.c.strategy_id == bindparam("of_strategy"))
    .values(status=bindparam("new_status"), updated_at=bindparam("changed_at"))
)
_INSERT_CHANGE = REGISTRY_CHANGES.insert()
_STATUS_OF = core_select(STRATEGIES.c.status).where(
    STRATEGIES.c.strategy_id == bindparam("strategy_id")
)
_INSERT_STRATEGY = STRATEGIES.insert()
_REREGISTER = (
    update(STRATEGIES)
    .where(STRATEGIES.c.strategy_id == bindparam("of_strategy"))
    .values(
        name=bindparam("new_name"),
        kind=bindparam("new_kind"),
        config_json=bindparam("new_config"),
        status=bindparam("new_status"),
        updated_at=bindparam("changed_at"),
    )
)
_SETTLE_CHANGE = (
    update(REGISTRY_CHANGES)
    .where(REGISTRY_CHANGES.c.id == bindparam("change_id"))
    .values(applied_at=bindparam("settled_at"), outcome=bindparam("settled_as"))
)
_FILL_COLUMNS = ("order_id", "strategy_id", "symbol", "side", "quantity", "price", "fee", "ts")
"""The columns of a ``Fill``, in the order of its fields."""
_CHANGES_TABLE = table_of(RegistryChangeRecord).name
_MARKS_TABLE = table_of(PriceMarkRecord).name
_VERSION_TABLE = REGISTRY_VERSION.name


def _reason(exc: BaseException) -> str:
    """The driver's own message when there is one: short, and the part a reader can act on."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig)
    return str(exc).splitlines()[0]


def _ts(mark: tuple[datetime, float]) -> datetime:
    return mark[0]


def _fill(
    order_id: str,
    strategy_id: str,
    symbol: str,
    side: str,
    quantity: float,
    price: float,
    fee: float,
    ts: datetime,
) -> Fill:
    return Fill(order_id, strategy_id, symbol, OrderSide(side), quantity, price, fee, ts)


def _snapshot_of(strategy_id: str) -> Select[tuple[int, str]]:
    return core_select(SNAPSHOTS.c.seq, SNAPSHOTS.c.state).where(
        SNAPSHOTS.c.strategy_id == strategy_id
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _status(strategy_id: str, status: StrategyStatus | str) -> StrategyStatus:
    try:
        return StrategyStatus(status)
    except ValueError:
        allowed = ", ".join(member.value for member in StrategyStatus)
        raise StorageError(
            f"strategy {strategy_id!r}: unknown status {status!r}; expected one of {allowed}"
        ) from None


def _unknown_strategy(connection: Connection, strategy_id: str) -> StorageError:
    known = list(connection.execute(core_select(STRATEGIES.c.strategy_id)).scalars())
    close = difflib.get_close_matches(strategy_id, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return StorageError(f"unknown strategy {strategy_id!r} in the registry{hint}")


def _strategy_entry(
    strategy_id: str,
    name: str,
    kind: str,
    config_json: str,
    status: str,
    created_at: datetime,
    updated_at: datetime,
) -> StrategyInfo:
    return StrategyInfo(
        strategy_id, name, kind, config_json, StrategyStatus(status), created_at, updated_at
    )


def _strategy_info(record: StrategyRecord) -> StrategyInfo:
    return StrategyInfo(
        strategy_id=record.strategy_id,
        name=record.name,
        kind=record.kind,
        config_json=record.config_json,
        status=StrategyStatus(record.status),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "READ_CONNECTIONS_KEPT",
    "EventStamp",
    "Registration",
    "Registry",
    "RegistryChange",
    "SqlJournal",
    "StoredSnapshot",
    "StrategyInfo",
    "StrategyStatus",
    "StrategyTail",
]
