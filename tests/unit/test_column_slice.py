"""Tests for ``ColumnSlice``: a slice of a price column that reads like the list slice."""

from __future__ import annotations

import numpy as np
import pytest

from tradekit.services.market.column_slice import ColumnSlice

VALUES = [1.5, 2.25, 3.125, 4.0, 5.5, 6.75]


def column_slice(start: int, stop: int) -> ColumnSlice:
    return ColumnSlice(np.array(VALUES), start, stop)


class TestColumnSlice:
    @pytest.mark.parametrize(("start", "stop"), [(0, 6), (1, 4), (3, 3), (5, 6)])
    def test_reads_like_the_list_slice(self, start: int, stop: int) -> None:
        found, expected = column_slice(start, stop), VALUES[start:stop]
        assert len(found) == len(expected)
        assert list(found) == expected
        assert found[:] == expected
        assert found[1:-1] == expected[1:-1]
        assert found[::-2] == expected[::-2]
        for index in range(-len(expected), len(expected)):
            assert found[index] == expected[index]

    def test_an_index_past_the_slice_is_refused_as_a_list_refuses_it(self) -> None:
        with pytest.raises(IndexError):
            column_slice(1, 4)[3]
        with pytest.raises(IndexError):
            column_slice(1, 4)[-4]

    def test_rows_outside_the_column_are_refused(self) -> None:
        with pytest.raises(ValueError, match=r"rows 4\.\.7 do not fit a column of 6 values"):
            column_slice(4, 7)

    def test_reads_python_floats(self) -> None:
        found = column_slice(0, 6)
        assert all(type(value) is float for value in [*found, found[0], *found[1:3]])
