"""``MarkedRuns``: stretches of an equity curve kept as a formula over a price column.

Between fills, a strategy's equity on each candle is its cash (flat) or its cash
plus (long) or minus (short) its quantity times the candle's close. A backtest
passes over most candles in such stretches; keeping ``(cash, quantity, column,
rows)`` per stretch instead of a value per candle makes a curve of 100k
candles cost a few kilobytes. The values are computed when the curve is read,
by the same float operations in the same order, so they are bit for bit the
ones computed candle by candle.
"""

from __future__ import annotations

import math
from array import array

import numpy as np
import numpy.typing as npt

from tradekit.services.market.column_slice import ColumnSlice

_CONSTANT, _LONG, _SHORT = 0, 1, 2


class MarkedRuns:
    """The formula stretches of one equity curve, in the order they were added.

    Each stretch starts at a point of the curve (``at``); the curve's other points
    are its stored values, in order, in the gaps between stretches.
    """

    __slots__ = ("_at", "_cash", "_columns", "_counts", "_kinds", "_quantities", "_rows", "points")

    def __init__(self) -> None:
        self._at = array("q")
        self._counts = array("q")
        self._kinds = array("b")
        self._cash = array("d")
        self._quantities = array("d")
        self._rows = array("q")
        self._columns: list[npt.NDArray[np.float64] | None] = []
        self.points = 0
        """How many points the stretches hold in all."""

    def __len__(self) -> int:
        return len(self._counts)

    def add_constant(self, at: int, count: int, value: float) -> None:
        """``count`` points of ``value`` from point ``at`` of the curve."""
        if self._continues(at, _CONSTANT, value, 0.0, None, 0):
            self._counts[-1] += count
        else:
            self._append(at, count, _CONSTANT, value, 0.0, None, 0)
        self.points += count

    def add_marked(
        self, at: int, cash: float, quantity: float, closes: ColumnSlice, *, short: bool
    ) -> None:
        """One point per close from point ``at``: ``cash - quantity * close`` when ``short``,
        else ``cash + quantity * close``."""
        count = len(closes)
        kind = _SHORT if short else _LONG
        if self._continues(at, kind, cash, quantity, closes.column, closes.start):
            self._counts[-1] += count
        else:
            self._append(at, count, kind, cash, quantity, closes.column, closes.start)
        self.points += count

    def merged(self, stored: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Every point of the curve: the stretches' values, and ``stored`` in the gaps."""
        total = stored.size + self.points
        counts = np.asarray(self._counts, dtype=np.int64)
        run_firsts = np.cumsum(counts) - counts
        within = np.arange(self.points, dtype=np.int64) - np.repeat(run_firsts, counts)
        positions = np.repeat(np.asarray(self._at, dtype=np.int64), counts) + within
        values = np.empty(total, dtype=np.float64)
        in_gaps = np.ones(total, dtype=bool)
        in_gaps[positions] = False
        values[in_gaps] = stored
        kinds = np.asarray(self._kinds, dtype=np.int8)
        cash = np.asarray(self._cash, dtype=np.float64)
        quantities = np.asarray(self._quantities, dtype=np.float64)
        rows = np.asarray(self._rows, dtype=np.int64)
        derived = np.repeat(cash, counts)
        distinct = {id(column): column for column in self._columns if column is not None}
        for column in distinct.values():
            runs = np.array([held is column for held in self._columns], dtype=bool)
            points = np.repeat(runs, counts)
            closes = column[np.repeat(rows, counts)[points] + within[points]]
            worth = np.repeat(quantities, counts)[points] * closes
            short = np.repeat(kinds == _SHORT, counts)[points]
            # The same operations ``mark`` does: cash plus a long's worth, minus a short's.
            derived[points] = np.where(short, derived[points] - worth, derived[points] + worth)
        values[positions] = derived
        return values

    def _continues(
        self,
        at: int,
        kind: int,
        cash: float,
        quantity: float,
        column: npt.NDArray[np.float64] | None,
        row: int,
    ) -> bool:
        """Whether a stretch so described goes on from the last one without a gap."""
        if not self._counts:
            return False
        count = self._counts[-1]
        return (
            self._at[-1] + count == at
            and self._kinds[-1] == kind
            and _same(self._cash[-1], cash)
            and _same(self._quantities[-1], quantity)
            and self._columns[-1] is column
            and (column is None or self._rows[-1] + count == row)
        )

    def _append(
        self,
        at: int,
        count: int,
        kind: int,
        cash: float,
        quantity: float,
        column: npt.NDArray[np.float64] | None,
        row: int,
    ) -> None:
        self._at.append(at)
        self._counts.append(count)
        self._kinds.append(kind)
        self._cash.append(cash)
        self._quantities.append(quantity)
        self._rows.append(row)
        self._columns.append(column)


def _same(held: float, given: float) -> bool:
    """Equal floats of the same sign: 0.0 and -0.0 add differently to -0.0."""
    return held == given and (held != 0.0 or math.copysign(1.0, held) == math.copysign(1.0, given))


__all__ = ["MarkedRuns"]
