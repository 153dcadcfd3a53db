"""``ColumnSlice``: consecutive values of a price column, read as a sequence without a copy.

A replay hands the closes of the candles a strategy passes over to its position
service; given as a slice of the whole column rather than a new list, the
equity curve can keep a reference to the column and compute those points when
they are read, instead of holding eight bytes per point.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt


class ColumnSlice(Sequence[float]):
    """Rows ``start`` up to ``stop`` of one column, held both as numpy and as Python floats.

    ``column`` and ``items`` hold the same values (``items == column.tolist()``)
    and must not change while a slice of them is in use.
    """

    __slots__ = ("column", "items", "start", "stop")

    def __init__(
        self, column: npt.NDArray[np.float64], items: Sequence[float], start: int, stop: int
    ) -> None:
        if not 0 <= start <= stop <= len(items) == len(column):
            raise ValueError(
                f"rows {start}..{stop} do not fit a column of {len(column)} values "
                f"({len(items)} items)"
            )
        self.column = column
        self.items = items
        self.start = start
        self.stop = stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[float]:
        return itertools.islice(self.items, self.start, self.stop)

    @overload
    def __getitem__(self, index: int) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> list[float]: ...
    def __getitem__(self, index: int | slice) -> float | list[float]:
        rows = range(self.start, self.stop)[index]  # raises IndexError as a list would
        if isinstance(rows, range):
            return [self.items[row] for row in rows]
        return self.items[rows]

    def __repr__(self) -> str:
        return f"ColumnSlice(rows {self.start}..{self.stop} of {len(self.column)})"


__all__ = ["ColumnSlice"]
