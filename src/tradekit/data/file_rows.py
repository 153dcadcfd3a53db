"""Row-level reading of candle files: timestamps, prices and the problems found in them.

Every check here is vectorized over the whole file and records problems by row
and column in a ``RowProblems``, which ``tradekit.data.files`` raises as one error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradekit.domain import EARLIEST_CANDLE_TIME, LATEST_CANDLE_TIME
from tradekit.errors import DataError
from tradekit.services.market.candles import PRICE_COLUMNS
from tradekit.timeframes import TIMEFRAME_SECONDS

US_PER_SECOND = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch numbers below 1e11 are seconds (1e11 s is in the year 5138), below 1e14
# milliseconds, below 1e17 microseconds, and nanoseconds beyond.
_EPOCH_LIMITS = np.array([1e11, 1e14, 1e17])
_EPOCH_UNITS = ("seconds", "milliseconds", "microseconds", "nanoseconds")
_EPOCH_TO_US = (1e6, 1e3, 1.0, 1e-3)

_EARLIEST_US = (EARLIEST_CANDLE_TIME - EPOCH) // timedelta(microseconds=1)
_LATEST_US = (LATEST_CANDLE_TIME - EPOCH) // timedelta(microseconds=1)

Mask = npt.NDArray[np.bool_]
Labels = npt.NDArray[np.object_]
Describe = Callable[[int], str]


class RowProblems:
    """Problems found in one file, kept in file order up to a limit and counted beyond it."""

    def __init__(self, path: Path, csv: bool, positions: npt.NDArray[np.int64], limit: int):
        self.path, self.csv, self.positions, self.limit = path, csv, positions, limit
        self.found: list[tuple[int, str]] = []
        self.total = 0

    def where(self, row: int) -> str:
        """Where table row ``row`` is in the file, as a person counts."""
        position = int(self.positions[row])
        return f"line {position + 2}" if self.csv else f"row {position + 1}"

    def rows(self, bad: npt.NDArray[Any], column: str | None, describe: Describe) -> None:
        """Record a problem in ``column`` for each flagged table row (a mask or row numbers)."""
        rows = np.flatnonzero(bad) if bad.dtype == np.bool_ else bad
        self.total += len(rows)
        for row in rows[: self.limit]:
            where = f"{self.where(int(row))}, column '{column}'"
            self.found.append((int(self.positions[row]), f"{where}: {describe(int(row))}"))

    def add(self, message: str) -> None:
        """Record a problem that belongs to no single row."""
        self.total += 1
        self.found.append((-1, message))

    def raise_if_any(self) -> None:
        """Raise one ``DataError`` listing the first problems found, if there are any."""
        if not self.total:
            return
        ordered = sorted(self.found, key=lambda item: item[0])[: self.limit]
        rule = (
            "the header is line 1, so the first data row is line 2"
            if self.csv
            else "rows count from 1 at the first data row"
        )
        lines = [f"{self.path}: {self.total} problem(s) in the candle data ({rule}):"]
        lines += [f"  - {message}" for _, message in ordered]
        if self.total > len(ordered):
            lines.append(f"  ... and {self.total - len(ordered)} more")
        raise DataError("\n".join(lines))


def text(column: pd.Series[Any]) -> pd.Series[str]:
    """A column's values as stripped strings, a missing value as the empty string."""
    return column.where(column.notna(), "").astype(str).str.strip()


def _cells(column: pd.Series[Any]) -> tuple[npt.NDArray[np.float64], Mask, Describe]:
    """A column as numbers (NaN where none), which cells are empty, and each cell as text.

    Numeric columns (as Parquet stores them) are taken as they are: turning them
    into text first would cost far more than reading them.
    """
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return numbers, np.isnan(numbers), lambda row: _number_text(float(numbers[row]))
    strings = text(column)
    numbers = pd.to_numeric(strings, errors="coerce").to_numpy(dtype=np.float64)
    return numbers, (strings == "").to_numpy(), lambda row: str(strings.iloc[row])


def _number_text(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def iso(us: int) -> str:
    """Epoch microseconds as an ISO 8601 UTC date-time."""
    return (EPOCH + timedelta(microseconds=int(us))).isoformat()


def parse_timestamps(
    raw: pd.DataFrame, columns: Mapping[str, str], label: str, problems: RowProblems
) -> tuple[npt.NDArray[np.int64], Mask]:
    """Epoch microseconds of every row and which rows have one; unreadable ones are problems."""
    values = raw[columns["ts"]]
    if pd.api.types.is_datetime64_any_dtype(values):
        index = pd.DatetimeIndex(values)
        index = index.tz_localize(UTC) if index.tz is None else index.tz_convert(UTC)
        index = index.as_unit("us")
        has = np.asarray(index.notna(), dtype=np.bool_)
        problems.rows(~has, label, lambda row: "the timestamp is empty")
        stamps = np.where(has, index.asi8, 0)
        return stamps, _within_supported_range(stamps, has, label, problems, index.astype(str))
    if "time" in columns:
        values = text(values) + " " + text(raw[columns["time"]])
    numbers, empty, shown = _cells(values)
    present = ~empty
    problems.rows(empty, label, lambda row: "the timestamp is empty")
    numeric = np.isfinite(numbers)
    if numeric.any() and 2 * numeric.sum() >= present.sum():
        magnitude = np.searchsorted(_EPOCH_LIMITS, np.abs(np.where(numeric, numbers, 0.0)))
        unit = int(np.bincount(magnitude[numeric], minlength=4).argmax())
        mismatched = numeric & (magnitude != unit)
        problems.rows(
            mismatched,
            label,
            lambda row: (
                f"timestamp {shown(row)} looks like epoch "
                f"{_EPOCH_UNITS[magnitude[row]]}, but the column holds epoch {_EPOCH_UNITS[unit]}"
            ),
        )
        expected = f"epoch {_EPOCH_UNITS[unit]} like the rest of the column"
        has = numeric & ~mismatched
        unreadable = present & ~numeric
        stamps = np.round(np.where(has, numbers, 0.0) * _EPOCH_TO_US[unit]).astype(np.int64)
    else:
        parsed = pd.to_datetime(text(values), utc=True, errors="coerce", format="ISO8601")
        index = pd.DatetimeIndex(parsed).as_unit("us")
        has = np.asarray(index.notna(), dtype=np.bool_)
        expected = "an ISO 8601 date-time such as 2024-01-01T00:00:00Z, or epoch seconds"
        stamps = np.where(has, index.asi8, 0)
        unreadable = present & ~has
    problems.rows(
        unreadable,
        label,
        lambda row: f"cannot read timestamp {shown(row)!r}; expected {expected}",
    )
    return stamps, _within_supported_range(stamps, has, label, problems, values)


def _within_supported_range(
    stamps: npt.NDArray[np.int64],
    has: Mask,
    label: str,
    problems: RowProblems,
    cells: pd.Series[Any] | pd.Index,
) -> Mask:
    """``has`` without the rows whose time is outside ``EARLIEST/LATEST_CANDLE_TIME``."""
    outside = has & ((stamps < _EARLIEST_US) | (stamps >= _LATEST_US))
    texts = np.asarray(cells, dtype=object)
    problems.rows(
        outside,
        label,
        lambda row: (
            f"timestamp {str(texts[row]).strip()!r} is outside the supported range "
            f"{EARLIEST_CANDLE_TIME:%Y-%m-%d} to {LATEST_CANDLE_TIME:%Y-%m-%d}; "
            "expected a real candle time"
        ),
    )
    return has & ~outside


def _number_column(
    raw: pd.DataFrame, field: str, column: str, problems: RowProblems
) -> tuple[npt.NDArray[np.float64], Mask]:
    """One OHLCV column's numbers and which of them are in range; bad ones are problems."""
    numbers, empty, shown = _cells(raw[column])
    unreadable = ~empty & np.isnan(numbers)
    volume = field == "volume"
    in_range = np.isfinite(numbers) & ((numbers >= 0) if volume else (numbers > 0))
    rule = "a finite number >= 0" if volume else "a finite number > 0"
    problems.rows(empty, column, lambda row: f"{field} is empty")
    problems.rows(unreadable, column, lambda row: f"{field} {shown(row)!r} is not a number")
    problems.rows(
        ~empty & ~unreadable & ~in_range,
        column,
        lambda row: f"{field} must be {rule}, got {float(numbers[row])!r}",
    )
    return numbers, in_range


def parse_values(
    raw: pd.DataFrame, columns: Mapping[str, str], problems: RowProblems
) -> dict[str, npt.NDArray[np.float64]]:
    """The OHLCV numbers of every row; empty, unreadable or out-of-range ones are problems."""
    values: dict[str, npt.NDArray[np.float64]] = {}
    usable: dict[str, Mask] = {}
    for field in PRICE_COLUMNS:
        values[field], usable[field] = _number_column(raw, field, columns[field], problems)
    open_, high, low, close = (values[name] for name in ("open", "high", "low", "close"))
    priced = usable["open"] & usable["high"] & usable["low"] & usable["close"]
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    problems.rows(
        priced & (high < top),
        columns["high"],
        lambda row: f"high {float(high[row])!r} is below max(open, close) = {float(top[row])!r}",
    )
    problems.rows(
        priced & (low > bottom),
        columns["low"],
        lambda row: f"low {float(low[row])!r} is above min(open, close) = {float(bottom[row])!r}",
    )
    return values


def infer_timeframes(
    symbols: Labels,
    timeframes: Labels,
    stamps: npt.NDArray[np.int64],
    has_ts: Mask,
    label: str,
    problems: RowProblems,
) -> None:
    """Fill in the timeframe of symbols that have none from the median spacing of their rows."""
    for symbol in sorted({str(s) for s in symbols[timeframes == ""]}):
        unlabeled = (symbols == symbol) & (timeframes == "")
        distinct = np.unique(stamps[unlabeled & has_ts])
        where = f"column '{label}': cannot infer the timeframe of {symbol}"
        if distinct.size < 2:
            problems.add(
                f"{where} from {distinct.size} timestamp(s); pass timeframe= or add a "
                "timeframe column"
            )
            continue
        median = float(np.median(np.diff(distinct))) / US_PER_SECOND
        found = next((tf for tf, seconds in TIMEFRAME_SECONDS.items() if seconds == median), None)
        if found is None:
            problems.add(
                f"{where}: the median spacing of its timestamps is {timedelta(seconds=median)} "
                f"({median:g} s), which matches no supported timeframe "
                f"({', '.join(TIMEFRAME_SECONDS)}); pass timeframe= or add a timeframe column"
            )
            continue
        timeframes[unlabeled] = found
