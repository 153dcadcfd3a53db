"""``KeptRows``: objects built from database rows, kept while their rows stay the same.

The bot service reads the whole registry again after every registry write (a
stop, a start, the engine settling a change), while most rows have not changed.
Reading a row's raw values is cheap; converting them (times parsed from text)
and building the object is what cost, so a row equal to one read before hands
back the object built then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Dialect, type_coerce
from sqlalchemy.types import NullType

Built = TypeVar("Built")


class KeptRows(Generic[Built]):
    """The objects of one kind of row, keyed by their raw values; one per kind, per journal.

    Only the rows of the latest reading are kept. Safe to use from several
    threads: a reading swaps the kept rows whole.
    """

    def __init__(self, columns: Sequence[ColumnElement[Any]], build: Callable[..., Built]) -> None:
        self.raw_columns = [
            type_coerce(column, NullType()).label(column.name) for column in columns
        ]
        """``columns`` as the driver returns them, unconverted: select these."""
        self._types = [column.type for column in columns]
        self._build = build
        self._kept: dict[tuple[Any, ...], Built] = {}

    def objects(self, rows: Iterable[Sequence[Any]], dialect: Dialect) -> list[Built]:
        """The objects of ``rows`` (raw values of ``raw_columns``), in order."""
        converters: list[Callable[[Any], Any] | None] | None = None
        kept, found = self._kept, {}
        objects = []
        for row in rows:
            key = tuple(row)
            built = kept.get(key)
            if built is None:
                if converters is None:
                    converters = [
                        kind.dialect_impl(dialect).result_processor(dialect, None)
                        for kind in self._types
                    ]
                values = [
                    value if convert is None or value is None else convert(value)
                    for value, convert in zip(key, converters, strict=True)
                ]
                built = self._build(*values)
            found[key] = built
            objects.append(built)
        self._kept = found
        return objects


__all__ = ["KeptRows"]
