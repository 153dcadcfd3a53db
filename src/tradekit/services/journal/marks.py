"""Reading one series' price marks again, only what was added since the last read.

Marks are only ever added (never changed or deleted), mostly newer than the last,
but a replay of an earlier period may add older ones. Each read starts from what
the journal kept of the series:

- SQLite: the rows past the largest ``rowid`` read, found on the rowid range (new
  rows get larger rowids) instead of the series' primary-key index, which would
  walk the whole series; O(rows added since), however long the series.
- Other databases (no rowid): the series' count and newest time tell whether
  anything was added; only marks newer than the newest are read, and the whole
  series again when an older one was added.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, Connection, Integer, func, literal_column, text
from sqlalchemy import select as core_select

from tradekit.services.journal.tables import PRICE_MARKS

Mark = tuple[datetime, float]


class SeriesMarks(NamedTuple):
    """The price marks of one series as last read, oldest first, with what tells the next
    read where to start."""

    stored: int
    newest: datetime | None
    marks: tuple[Mark, ...]
    rowid: int = 0
    """SQLite: the largest rowid read (0: none)."""


NO_MARKS = SeriesMarks(0, None, ())

ADDED_ROWS_SQL = (
    "SELECT rowid, ts, close FROM price_marks"
    # The unary + keeps SQLite off the primary-key index, which would walk the whole series.
    " WHERE rowid > :after AND +symbol = :symbol AND +timeframe = :timeframe ORDER BY rowid"
)
"""SQLite: the rows of one series past a rowid, in the order they were added."""

_ADDED_ROWS = text(ADDED_ROWS_SQL).columns(
    literal_column("rowid", Integer), PRICE_MARKS.c.ts, PRICE_MARKS.c.close
)


def _ts(mark: Mark) -> datetime:
    return mark[0]


def added_by_rowid(
    connection: Connection, symbol: str, timeframe: str, held: SeriesMarks
) -> SeriesMarks:
    """SQLite: ``held`` with the marks added since it was read."""
    rows = connection.execute(
        _ADDED_ROWS, {"after": held.rowid, "symbol": symbol, "timeframe": timeframe}
    ).all()
    if not rows:
        return held
    added = [(ts, close) for _, ts, close in rows]
    marks = (*held.marks, *added)
    start = max(len(held.marks) - 1, 0)
    if any(marks[index][0] >= marks[index + 1][0] for index in range(start, len(marks) - 1)):
        marks = tuple(sorted(marks, key=_ts))  # an older mark was added
    return SeriesMarks(len(marks), marks[-1][0], marks, rows[-1][0])


def added_by_count(
    connection: Connection, symbol: str, timeframe: str, held: SeriesMarks
) -> SeriesMarks:
    """Databases without rowid: ``held`` with the marks added since it was read."""
    series: ColumnElement[bool] = (PRICE_MARKS.c.symbol == symbol) & (
        PRICE_MARKS.c.timeframe == timeframe
    )
    count, newest = connection.execute(
        core_select(func.count(), func.max(PRICE_MARKS.c.ts)).where(series)
    ).one()
    if held.stored == count and held.newest == newest:
        return held
    statement = core_select(PRICE_MARKS.c.ts, PRICE_MARKS.c.close).where(series)
    if held.newest is not None:
        statement = statement.where(PRICE_MARKS.c.ts > held.newest)
    rows = connection.execute(statement.order_by("ts"))
    marks = (*held.marks, *((ts, close) for ts, close in rows))
    if len(marks) != count:  # a mark older than the newest was added: read them all
        everything = core_select(PRICE_MARKS.c.ts, PRICE_MARKS.c.close).where(series)
        marks = tuple((ts, close) for ts, close in connection.execute(everything.order_by("ts")))
    return SeriesMarks(count, newest, marks)


__all__ = ["ADDED_ROWS_SQL", "NO_MARKS", "Mark", "SeriesMarks", "added_by_count", "added_by_rowid"]
