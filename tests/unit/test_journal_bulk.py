"""Rows written through the SQLite driver are stored exactly as SQLAlchemy stores them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

from tradekit.domain import Fill, Order, OrderSide, Position, Side
from tradekit.services.journal.bulk import execute_rows, sqlite_timestamp
from tradekit.services.journal.store import SqlJournal
from tradekit.services.journal.tables import (
    FILLS,
    ORDERS,
    JournalModel,
    UtcDateTime,
    fill_row,
    insert_statement,
    order_row,
    table_of,
)

PLUS_TWO = timezone(timedelta(hours=2))
TIMESTAMPS = [
    datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
    datetime(2024, 3, 1, 12, 0, 5, 123456, tzinfo=UTC),
    datetime(2024, 3, 1, 1, 30, tzinfo=PLUS_TWO),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
]


def order(ts: datetime, order_id: str = "o1") -> Order:
    return Order(order_id, "s1", "BTC/USDT", OrderSide.BUY, 0.5, ts)


def fill(ts: datetime, order_id: str = "o1") -> Fill:
    return Fill(order_id, "s1", "BTC/USDT", OrderSide.BUY, 0.5, 100.0, 0.05, ts)


class TestSqliteTimestamp:
    @pytest.mark.parametrize("ts", TIMESTAMPS, ids=str)
    def test_matches_what_sqlalchemy_stores(self, ts: datetime) -> None:
        dialect = SQLiteDialect_pysqlite()
        through_sqlalchemy = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
        assert through_sqlalchemy is not None
        assert sqlite_timestamp(ts) == through_sqlalchemy(ts)

    def test_refuses_a_naive_datetime(self) -> None:
        with pytest.raises(ValueError, match="no time zone"):
            sqlite_timestamp(datetime(2024, 3, 1, 12, 0))


class TestExecuteRows:
    def test_stores_the_same_text_as_sqlalchemy(self, tmp_path: Path) -> None:
        """A fill inserted through the driver and one through SQLAlchemy are stored alike."""
        database = tmp_path / "j.db"
        engine = create_engine(f"sqlite:///{database}")
        tables = [table_of(model) for model in JournalModel.__subclasses__()]
        JournalModel.metadata.create_all(engine, tables=tables)
        ts = TIMESTAMPS[2]
        with engine.begin() as connection:
            orders = [order_row(order(ts, "o1")), order_row(order(ts, "o2"))]
            connection.execute(ORDERS.insert(), orders)
            assert execute_rows(connection, insert_statement(FILLS), [fill_row(fill(ts))]) == 1
            connection.execute(FILLS.insert(), [fill_row(fill(ts, "o2"))])
        engine.dispose()
        with sqlite3.connect(database) as raw:
            stored = raw.execute("SELECT * FROM fills ORDER BY id").fetchall()
        assert [row[1:] for row in stored] == [
            ("s1", "o1", "BTC/USDT", "buy", 0.5, 100.0, 0.05, "2024-02-29 23:30:00.000000"),
            ("s1", "o2", "BTC/USDT", "buy", 0.5, 100.0, 0.05, "2024-02-29 23:30:00.000000"),
        ]

    def test_rows_read_back_through_sqlalchemy(self, tmp_path: Path) -> None:
        journal = SqlJournal(f"sqlite:///{tmp_path / 'j.db'}")
        ts = TIMESTAMPS[2]
        position = Position(
            position_id="p1",
            strategy_id="s1",
            symbol="BTC/USDT",
            side=Side.LONG,
            quantity=0.5,
            avg_entry_price=100.0,
            opened_at=ts,
        )
        journal.record_fill(order(ts), fill(ts))
        journal.upsert_positions("s1", [position])
        journal.save_snapshot("s1", 3, ts, {"cash": 1.0})
        journal.commit()
        assert journal.fills("s1") == [fill(ts.astimezone(UTC))]
        assert journal.orders("s1") == [order(ts.astimezone(UTC))]
        [stored] = journal.open_positions("s1")
        assert stored.opened_at == ts
        assert stored.opened_at.tzinfo is UTC
        assert journal.latest_snapshot("s1") == (3, {"cash": 1.0})
        journal.close()
