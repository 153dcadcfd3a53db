"""``ColumnSlice``: consecutive values of a price column, read as a sequence without a copy.

A replay hands the prices of the candles a strategy passes over to its position
service; given as slices of whole columns rather than new lists, they cost
nothing to make, and the equity curve can keep a reference to the closes and
compute those points when they are read, instead of holding eight bytes per
point.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt


class ColumnSlice(Sequence[float]):
    """Rows ``start`` up to ``stop`` of one float64 column, read as Python floats.

    The column must not change while a slice of it is in use.
    """

    __slots__ = ("column", "start", "stop")

    def __init__(self, column: npt.NDArray[np.float64], start: int, stop: int) -> None:
        if not 0 <= start <= stop <= len(column):
            raise ValueError(f"rows {start}..{stop} do not fit a column of {len(column)} values")
        self.column = column
        self.start = start
        self.stop = stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[float]:
        return iter(self.column[self.start : self.stop].tolist())

    @overload
    def __getitem__(self, index: int) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> list[float]: ...
    def __getitem__(self, index: int | slice) -> float | list[float]:
        if isinstance(index, slice):
            values: list[float] = self.column[self.start : self.stop][index].tolist()
            return values
        row = range(self.start, self.stop)[index]  # raises IndexError as a list would
        return float(self.column[row])

    def __repr__(self) -> str:
        return f"ColumnSlice(rows {self.start}..{self.stop} of {len(self.column)})"


__all__ = ["ColumnSlice"]
