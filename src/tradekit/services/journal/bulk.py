"""Executing one statement for many buffered rows: on SQLite straight through the driver.

SQLAlchemy processes every parameter of every row (a type decorator and a
formatter per timestamp), which costs more than SQLite's own insert. On SQLite
the statement is compiled once per set of columns and the rows are handed to the
driver's ``executemany`` as tuples, inside the caller's transaction, with
timestamps written as SQLAlchemy writes them, so reads through SQLAlchemy parse
them as before. Other databases take SQLAlchemy's path.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Table
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeDecorator, TypeEngine

# The statements are compiled for this dialect: positional "?" parameters, as sqlite3 takes.
_SQLITE = SQLiteDialect_pysqlite()


class _DriverStatement:
    """A statement compiled for the SQLite driver: its SQL, and which row key fills each "?"."""

    __slots__ = ("keys", "sql", "timestamps")

    def __init__(self, statement: UpdateBase, keys: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=_SQLITE, column_keys=list(keys))
        self.sql = str(compiled)
        self.keys: tuple[str, ...] = tuple(compiled.positiontup or ())
        table = statement.table
        columns = table.columns if isinstance(table, Table) else ()
        stamped = {column.name for column in columns if _holds_datetime(column.type)}
        self.timestamps = tuple(i for i, key in enumerate(self.keys) if key in stamped)
        """Positions of the parameters that are timestamps: written as text."""


def _holds_datetime(column_type: TypeEngine[Any]) -> bool:
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    return isinstance(column_type, DateTime)


@functools.cache
def _driver_statement(statement: UpdateBase, keys: tuple[str, ...]) -> _DriverStatement:
    return _DriverStatement(statement, keys)


def execute_rows(
    connection: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Run ``statement`` once per row (all rows with the same keys); the rows it changed.

    ``statement`` must be built once and reused (it keys the compiled form); the count
    is what the driver reports, -1 when it cannot tell.
    """
    if not rows:
        return 0
    if connection.dialect.name != "sqlite":
        return connection.execute(statement, list(rows)).rowcount
    compiled = _driver_statement(statement, tuple(rows[0]))
    keys, timestamps = compiled.keys, compiled.timestamps
    texts: dict[datetime, str] = {}
    parameters = []
    for row in rows:
        values = [row[key] for key in keys]
        for index in timestamps:
            value = values[index]
            if value is not None:
                # The rows of one commit share a few timestamps: format each once.
                text = texts.get(value)
                if text is None:
                    text = texts[value] = sqlite_timestamp(value)
                values[index] = text
        parameters.append(tuple(values))
    return connection.exec_driver_sql(compiled.sql, parameters).rowcount


def sqlite_timestamp(value: datetime) -> str:
    """An aware datetime as the naive-UTC text SQLAlchemy stores in a SQLite DATETIME column."""
    if value.tzinfo is None:
        raise ValueError(f"datetime {value.isoformat()} has no time zone; expected aware UTC")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


__all__ = ["execute_rows", "sqlite_timestamp"]
