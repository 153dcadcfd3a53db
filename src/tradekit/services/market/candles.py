"""Shared candle history: the bounded, numpy-backed series of each (symbol, timeframe).

Bars are numbered from 0 since a series began and keep their number forever;
only the last ``capacity`` bars are kept. Every strategy on a (symbol, timeframe)
reads the same ``CandleSeries`` through the process-wide ``CandleStore``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradekit.domain import (
    EARLIEST_CANDLE_TIME,
    LATEST_CANDLE_TIME,
    Candle,
    candle_time_problem,
)
from tradekit.errors import DataError
from tradekit.timeframes import TIMEFRAME_SECONDS, floor_timestamp, unknown_timeframe_message

DEFAULT_CAPACITY = 5_000
"""Bars kept per series unless told otherwise: enough for the live window of an EMA(200)."""

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
"""The float columns of a series, in OHLCV order; ``ts`` (int64 epoch seconds) comes first."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BarColumns:
    """Named numpy columns indexed by absolute bar, keeping at least the last ``capacity`` bars.

    Storage is trimmed in amortized steps rather than as a ring buffer: the kept
    bars are always one contiguous slice, so a window is a view, never a copy.
    Up to ``capacity // 4`` extra rows (the slack) sit in memory between trims,
    which costs about four row copies per appended bar on average.
    """

    __slots__ = ("_room", "_slack", "arrays", "base", "capacity", "end")

    def __init__(self, dtypes: Mapping[str, npt.DTypeLike], capacity: int, start: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._slack = max(capacity // 4, 16)
        self._room = 0
        self.arrays: dict[str, npt.NDArray[Any]] = {
            name: np.empty(0, dtype=dtype) for name, dtype in dtypes.items()
        }
        self.base = start  # absolute bar held in row 0
        self.end = start  # one past the last bar written

    @property
    def first(self) -> int:
        """The oldest bar still kept."""
        return max(self.base, self.end - self.capacity)

    def __len__(self) -> int:
        return self.end - self.first

    def extend(self, start: int, values: Mapping[str, npt.NDArray[Any]]) -> None:
        """Write rows for bars ``start``, ``start + 1``, ...; a jump past ``end`` drops the past."""
        count = len(next(iter(values.values())))
        if start < self.end:
            raise ValueError(f"bar {start} is already written (next bar is {self.end})")
        if count > self.capacity:
            skip = count - self.capacity
            values = {name: column[skip:] for name, column in values.items()}
            start += skip
            count = self.capacity
        if start > self.end or count == self.capacity:
            self.base = self.end = start
        used = self.end - self.base
        if used + count > self._room:
            used = self._make_room(used, count)
        for name, column in values.items():
            self.arrays[name][used : used + count] = column
        self.end = start + count

    def push(self, row: tuple[float, ...]) -> int:
        """Append one bar whose values come in column order; returns its bar index."""
        used = self.end - self.base
        if used >= self._room:
            used = self._make_room(used, 1)
        for array, value in zip(self.arrays.values(), row, strict=True):
            array[used] = value
        self.end += 1
        return self.end - 1

    def _make_room(self, used: int, count: int) -> int:
        drop = max(0, used + count - self.capacity)
        keep = used - drop
        needed = keep + count
        if needed > self._room:
            room = min(max(needed, 2 * self._room), self.capacity + self._slack)
            for name, array in self.arrays.items():
                grown = np.empty(room, dtype=array.dtype)
                grown[:keep] = array[drop:used]
                self.arrays[name] = grown
            self._room = room
        else:
            for array in self.arrays.values():
                array[:keep] = array[drop:used]
        self.base += drop
        return keep

    def view(self, name: str, first: int, stop: int) -> npt.NDArray[Any]:
        """Read-only view of column ``name`` for bars ``first`` up to (not including) ``stop``."""
        window = self.arrays[name][first - self.base : stop - self.base]
        window.flags.writeable = False
        return window


def _epoch_seconds(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(seconds=1)


def _alignment_offset(timeframe: str) -> int:
    """Seconds past a multiple of the timeframe length at which its candles open (weeks: Monday)."""
    step = TIMEFRAME_SECONDS[timeframe]
    anchor = floor_timestamp(_EPOCH + timedelta(seconds=10 * step), timeframe)
    return _epoch_seconds(anchor) % step


_TIME_COLUMNS = ("timestamp", "datetime", "open_time", "ts", "date", "time")


def time_index_problem(frame: pd.DataFrame) -> str | None:
    """What is wrong with ``frame``'s index as open times, and the call that fixes it; ``None``
    for a time-zone aware DatetimeIndex. ``pd.read_csv`` leaves the times in a column.
    """
    index = frame.index
    if isinstance(index, pd.DatetimeIndex):
        if index.tz is not None:
            return None
        fix = " without a time zone; use frame.tz_localize('UTC')"
    else:
        by_name = {str(name).lower(): name for name in frame.columns}
        column = next((by_name[name] for name in _TIME_COLUMNS if name in by_name), None)
        if column is None:
            fix = "; make the open times the index: frame.set_index(pd.to_datetime(..., utc=True))"
        else:
            unit = ""
            if pd.api.types.is_numeric_dtype(frame[column]):
                unit = "unit='ms', " if frame[column].abs().max() > 1e11 else "unit='s', "
            fix = f"; use frame.set_index(pd.to_datetime(frame[{column!r}], {unit}utc=True))"
    got = type(index).__name__
    return f"expected a time-zone aware DatetimeIndex of open times, got {got}{fix}"


def _iso(ts: int) -> str:
    return (_EPOCH + timedelta(seconds=int(ts))).isoformat()


class CandleSeries:
    """The bounded OHLCV history of one (symbol, timeframe).

    One per (symbol, timeframe) per process, shared read-only by every strategy
    on it and kept for the life of the process. ``append`` takes closed candles
    in time order; ``extend``/``from_arrays``/``from_frame`` load whole histories
    at once (backtests).
    """

    def __init__(self, symbol: str, timeframe: str, capacity: int = DEFAULT_CAPACITY) -> None:
        if timeframe not in TIMEFRAME_SECONDS:
            raise DataError(f"series {symbol}: {unknown_timeframe_message(timeframe)}")
        if capacity < 1:
            raise DataError(f"series {symbol} {timeframe}: capacity must be >= 1, got {capacity}")
        self.symbol = symbol
        self.timeframe = timeframe
        self.step = TIMEFRAME_SECONDS[timeframe]
        self._offset = _alignment_offset(timeframe)
        dtypes: dict[str, npt.DTypeLike] = {"ts": np.int64}
        dtypes.update(dict.fromkeys(PRICE_COLUMNS, np.float64))
        self._columns = BarColumns(dtypes, capacity)
        self._last: tuple[int, float, float, float, float, float] | None = None
        self.gaps = 0
        """How many times a bar opened more than one timeframe after the previous one."""

    @property
    def capacity(self) -> int:
        return self._columns.capacity

    @property
    def last_bar(self) -> int:
        """Index of the newest bar; -1 while the series is empty."""
        return self._columns.end - 1

    @property
    def first_kept_bar(self) -> int:
        """Index of the oldest bar still kept (equals ``last_bar + 1`` while empty)."""
        return self._columns.first

    def __len__(self) -> int:
        return len(self._columns)

    def __repr__(self) -> str:
        return (
            f"<CandleSeries {self.symbol} {self.timeframe} bars "
            f"{self.first_kept_bar}..{self.last_bar} capacity={self.capacity}>"
        )

    def append(self, candle: Candle) -> int:
        """Add one closed candle and return its bar index.

        A candle with the same open time as the last one is ignored when its
        values are identical (several strategies may each append the candle they
        received) and its existing index is returned; with different values it is
        a ``DataError``, as is a candle older than the last. A candle more than one
        timeframe after the last is accepted and counted in ``gaps``.
        """
        if candle.symbol != self.symbol or candle.timeframe != self.timeframe:
            raise DataError(
                f"series {self.symbol} {self.timeframe} cannot take a candle of "
                f"{candle.symbol} {candle.timeframe}"
            )
        row = (
            _epoch_seconds(candle.ts),
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
        )
        last = self._last
        if last is not None:
            if row[0] <= last[0]:
                return self._refuse_or_ignore(row, last)
            if row[0] - last[0] > self.step:
                self.gaps += 1
        self._last = row
        return self._columns.push(row)

    def _refuse_or_ignore(
        self,
        row: tuple[int, float, float, float, float, float],
        last: tuple[int, float, float, float, float, float],
    ) -> int:
        where = f"series {self.symbol} {self.timeframe}"
        if row[0] < last[0]:
            raise DataError(
                f"{where}: candle at {_iso(row[0])} is older than the last candle at "
                f"{_iso(last[0])}; candles must arrive in time order"
            )
        if row != last:
            raise DataError(
                f"{where}: a different candle at {_iso(row[0])} was already appended "
                f"(got open/high/low/close/volume {row[1:]}, have {last[1:]})"
            )
        return self.last_bar

    def extend(
        self,
        ts: npt.ArrayLike,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
    ) -> int:
        """Append many bars at once (epoch-second open times, strictly increasing).

        Every row is checked as ``Candle`` checks one candle; the first bad row is
        reported. Returns the new ``last_bar``.
        """
        stamps = np.asarray(ts, dtype=np.int64)
        columns = {"ts": stamps}
        for name, values in zip(PRICE_COLUMNS, (open, high, low, close, volume), strict=True):
            columns[name] = np.asarray(values, dtype=np.float64)
            if columns[name].shape != stamps.shape or stamps.ndim != 1:
                raise DataError(
                    f"series {self.symbol} {self.timeframe}: column {name} has shape "
                    f"{columns[name].shape}, expected {stamps.shape} like ts"
                )
        if stamps.size == 0:
            return self.last_bar
        self._check_rows(columns)
        steps = np.diff(stamps)
        self.gaps += int(np.count_nonzero(steps > self.step))
        if self._last is not None and stamps[0] - self._last[0] > self.step:
            self.gaps += 1
        self._columns.extend(self._columns.end, columns)
        self._last = (
            int(stamps[-1]),
            float(columns["open"][-1]),
            float(columns["high"][-1]),
            float(columns["low"][-1]),
            float(columns["close"][-1]),
            float(columns["volume"][-1]),
        )
        return self.last_bar

    def _check_rows(self, columns: Mapping[str, npt.NDArray[Any]]) -> None:
        stamps = np.asarray(columns["ts"], dtype=np.int64)
        open_, high, low, close, volume = (
            np.asarray(columns[name], dtype=np.float64) for name in PRICE_COLUMNS
        )
        before = self._last[0] if self._last is not None else np.iinfo(np.int64).min
        previous = np.concatenate(([before], stamps[:-1]))
        checks: list[tuple[npt.NDArray[np.bool_], str]] = [
            (stamps <= previous, "open time is not after the previous candle's"),
            (
                (stamps - self._offset) % self.step != 0,
                f"open time is not aligned to the {self.timeframe} timeframe",
            ),
            (~np.isfinite(volume) | (volume < 0), "volume must be a finite number >= 0"),
            (high < np.maximum(open_, close), "high is below max(open, close)"),
            (low > np.minimum(open_, close), "low is above min(open, close)"),
        ]
        for name, column in zip(PRICE_COLUMNS, (open_, high, low, close), strict=False):
            checks.append(
                (~np.isfinite(column) | (column <= 0), f"{name} must be a finite number > 0")
            )
        for bad, problem in checks:
            if bad.any():
                row = int(np.argmax(bad))
                raise DataError(
                    f"series {self.symbol} {self.timeframe}: row {row} "
                    f"(open time {_iso(int(stamps[row]))}): {problem}"
                )

    @classmethod
    def from_arrays(
        cls,
        symbol: str,
        timeframe: str,
        ts: npt.ArrayLike,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        capacity: int | None = None,
    ) -> CandleSeries:
        """A series holding the given history; ``capacity`` defaults to keeping all of it."""
        size = int(np.asarray(ts).size)
        series = cls(
            symbol, timeframe, max(size, DEFAULT_CAPACITY) if capacity is None else capacity
        )
        series.extend(ts, open, high, low, close, volume)
        return series

    @classmethod
    def from_frame(
        cls, symbol: str, timeframe: str, frame: pd.DataFrame, capacity: int | None = None
    ) -> CandleSeries:
        """A series from a frame with open/high/low/close/volume columns and a UTC DatetimeIndex."""
        missing = [name for name in PRICE_COLUMNS if name not in frame.columns]
        if missing:
            raise DataError(
                f"series {symbol} {timeframe}: frame lacks column(s) {', '.join(missing)}"
            )
        problem = time_index_problem(frame)
        if problem is not None:
            raise DataError(f"series {symbol} {timeframe}: {problem}")
        index = pd.DatetimeIndex(frame.index)
        outside = (index < pd.Timestamp(EARLIEST_CANDLE_TIME)) | (
            index >= pd.Timestamp(LATEST_CANDLE_TIME)
        )
        if outside.any():
            row = int(np.argmax(outside))
            problem = candle_time_problem(index[row])
            raise DataError(f"series {symbol} {timeframe}: row {row}: {problem}")
        nanoseconds = index.as_unit("ns").asi8
        if (nanoseconds % 1_000_000_000).any():
            raise DataError(f"series {symbol} {timeframe}: open times must be whole seconds")
        stamps = nanoseconds // 1_000_000_000
        open_, high, low, close, volume = (
            frame[name].to_numpy(dtype=np.float64) for name in PRICE_COLUMNS
        )
        return cls.from_arrays(
            symbol, timeframe, stamps, open_, high, low, close, volume, capacity=capacity
        )

    def _bar_range(self, first: int, stop: int) -> tuple[int, int]:
        kept = self._columns.first
        if first < kept or stop > self._columns.end or first > stop:
            raise IndexError(
                f"series {self.symbol} {self.timeframe}: bars {first}..{stop - 1} are outside "
                f"the kept history {kept}..{self.last_bar}"
            )
        return first, stop

    def columns(self, first: int, stop: int) -> dict[str, npt.NDArray[Any]]:
        """Read-only views of every column for bars ``first`` up to (not including) ``stop``."""
        first, stop = self._bar_range(first, stop)
        return {name: self._columns.view(name, first, stop) for name in self._columns.arrays}

    def close_at(self, bar: int) -> float:
        """The close of ``bar``; ``IndexError`` when it is not kept."""
        self._bar_range(bar, bar + 1)
        return float(self._columns.arrays["close"][bar - self._columns.base])

    def candle_at(self, bar: int) -> Candle:
        """Rebuild the ``Candle`` of ``bar`` (for replaying a bulk-loaded series)."""
        self._bar_range(bar, bar + 1)
        row = bar - self._columns.base
        arrays = self._columns.arrays
        return Candle(
            symbol=self.symbol,
            timeframe=self.timeframe,
            ts=_EPOCH + timedelta(seconds=int(arrays["ts"][row])),
            open=float(arrays["open"][row]),
            high=float(arrays["high"][row]),
            low=float(arrays["low"][row]),
            close=float(arrays["close"][row]),
            volume=float(arrays["volume"][row]),
        )

    def frame(self, last_n: int | None = None) -> pd.DataFrame:
        """A copy of the last ``last_n`` kept bars (all when ``None``), indexed by UTC open time."""
        stop = self._columns.end
        first = self._columns.first if last_n is None else max(self._columns.first, stop - last_n)
        columns = self.columns(first, stop)
        stamps = np.asarray(columns["ts"], dtype=np.int64)
        index = pd.DatetimeIndex(pd.to_datetime(stamps, unit="s", utc=True), name="ts")
        return pd.DataFrame({name: columns[name].copy() for name in PRICE_COLUMNS}, index=index)


class CandleStore:
    """Every ``CandleSeries`` of the process, by (symbol, timeframe); one per process.

    ``series`` creates a series on first use; ``add`` registers a bulk-loaded one
    before anything reads that (symbol, timeframe).
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise DataError(f"candle store capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._series: dict[tuple[str, str], CandleSeries] = {}
        self._lock = threading.Lock()

    def series(self, symbol: str, timeframe: str) -> CandleSeries:
        """The shared series of (symbol, timeframe), created empty on first use."""
        found = self._series.get((symbol, timeframe))
        if found is not None:
            return found
        with self._lock:
            return self._series.setdefault(
                (symbol, timeframe), CandleSeries(symbol, timeframe, self.capacity)
            )

    def add(self, series: CandleSeries) -> CandleSeries:
        """Register a prebuilt series; ``DataError`` when its (symbol, timeframe) is taken."""
        with self._lock:
            key = (series.symbol, series.timeframe)
            if key in self._series:
                raise DataError(
                    f"candle store already holds a series for {series.symbol} "
                    f"{series.timeframe}; extend that one instead"
                )
            self._series[key] = series
            return series

    def get(self, symbol: str, timeframe: str) -> CandleSeries | None:
        return self._series.get((symbol, timeframe))

    def append(self, candle: Candle) -> int:
        """Append ``candle`` to its series (see ``CandleSeries.append``); returns its bar index."""
        return self.series(candle.symbol, candle.timeframe).append(candle)

    def __len__(self) -> int:
        return len(self._series)


__all__ = [
    "DEFAULT_CAPACITY",
    "PRICE_COLUMNS",
    "BarColumns",
    "CandleSeries",
    "CandleStore",
]
