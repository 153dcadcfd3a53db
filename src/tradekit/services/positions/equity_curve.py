"""``EquityCurve``: one strategy's equity points in compact typed buffers, not Python objects.

A backtest adds one point per candle per strategy; held as ``(datetime, float)``
tuples that cost about 90 bytes a point (12.5 MB per 100k candles). Here a
value costs its 8 bytes, and the times, which move by a constant step from
candle to candle, are kept as runs ``(first, step, count)`` of epoch
microseconds: a series without gaps is one run. Both grow by amortized appends
to ``array.array`` buffers (C doubles and longs) and come out as numpy arrays.
Stretches of candles passed over in bulk, valued from a shared column of
closes, are not even stored: they are kept as formulas (``MarkedRuns``) and
computed when the curve is read.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import overload

import numpy as np
import numpy.typing as npt

from tradekit.services.market.column_slice import ColumnSlice
from tradekit.services.positions.equity_runs import MarkedRuns

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
MICROS_PER_SECOND = 1_000_000

# The last time converted and its microseconds: every strategy on a route is marked
# with the same candle, so its time is converted once, not once per strategy. One
# tuple, replaced whole, so a reader never pairs one time with another's microseconds.
_last_conversion: tuple[datetime, int] = (_EPOCH, 0)


def epoch_micros(ts: datetime) -> int:
    """Microseconds from the Unix epoch to the aware ``ts``."""
    global _last_conversion
    last = _last_conversion
    if last[0] is ts:
        return last[1]
    micros = (ts - _EPOCH) // _MICROSECOND
    _last_conversion = (ts, micros)
    return micros


class EquityCurve(Sequence[tuple[datetime, float]]):
    """``(time, equity)`` points of one strategy, oldest first; owned by its position service.

    Reads as a sequence of ``(datetime, float)`` tuples, but building those tuples
    is what this class avoids: use ``times_micros`` and ``values`` (numpy arrays)
    for whole curves. With ``limit`` only the latest ``limit`` points are kept
    (live runs, whose memory must stay flat); older ones are dropped in batches,
    so appends stay amortized O(1).
    """

    __slots__ = (
        "_counts",
        "_hidden",
        "_limit",
        "_marked",
        "_next",
        "_starts",
        "_steps",
        "_values",
    )

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1 or None, got {limit!r}")
        self._limit = limit
        self._values = array("d")
        self._starts = array("q")
        self._steps = array("q")
        self._counts = array("q")
        # The time that would extend the last run; None before a run has its step.
        self._next: int | None = None
        # Oldest points held but no longer part of the curve (``limit``): dropped in batches.
        self._hidden = 0
        # Stretches kept as formulas (unbounded curves only); their points are not in _values.
        self._marked: MarkedRuns | None = None

    @property
    def limit(self) -> int | None:
        return self._limit

    def __len__(self) -> int:
        marked = self._marked
        return len(self._values) - self._hidden + (marked.points if marked is not None else 0)

    def append(self, ts: datetime, value: float) -> None:
        """Add the point ``(ts, value)``; ``ts`` is an aware datetime."""
        micros = epoch_micros(ts)
        if micros == self._next:  # the common case, handled here without a further call
            self._counts[-1] += 1
            self._next = micros + self._steps[-1]
        else:
            self._add_time(micros)
        self._values.append(value)
        if self._limit is not None:
            self._drop_oldest()

    def extend(self, seconds: npt.NDArray[np.int64], values: Sequence[float]) -> None:
        """Add one point per entry of ``seconds`` (epoch seconds, ascending) and ``values``."""
        if len(seconds) != len(values):
            raise ValueError(f"{len(seconds)} times but {len(values)} values")
        if not len(seconds):
            return
        self._add_seconds(seconds)
        self._values.extend(values)
        if self._limit is not None:
            self._drop_oldest()

    def extend_constant(self, seconds: npt.NDArray[np.int64], value: float) -> None:
        """Add one point of equity ``value`` per entry of ``seconds`` (epoch seconds, ascending)."""
        if not len(seconds):
            return
        if self._limit is None:
            self._formulas().add_constant(len(self), len(seconds), value)
            self._add_seconds(seconds)
            return
        self._add_seconds(seconds)
        self._values.extend(array("d", (value,)) * len(seconds))
        self._drop_oldest()

    def extend_marked(
        self,
        seconds: npt.NDArray[np.int64],
        cash: float,
        quantity: float,
        closes: Sequence[float],
        *,
        short: bool,
    ) -> None:
        """Add one point per entry of ``seconds`` (epoch seconds, ascending) and ``closes``:
        ``cash - quantity * close`` when ``short``, else ``cash + quantity * close``.

        Given a ``ColumnSlice``, an unbounded curve keeps the formula, not the values.
        """
        if len(seconds) != len(closes):
            raise ValueError(f"{len(seconds)} times but {len(closes)} closes")
        if not len(seconds):
            return
        if self._limit is None and isinstance(closes, ColumnSlice):
            self._formulas().add_marked(len(self), cash, quantity, closes, short=short)
            self._add_seconds(seconds)
            return
        if short:
            values = [cash - quantity * close for close in closes]
        else:
            values = [cash + quantity * close for close in closes]
        self.extend(seconds, values)

    def bounded(self, limit: int | None) -> EquityCurve:
        """A curve with this one's latest ``limit`` points (all when ``None``) that keeps
        only its latest ``limit`` from then on."""
        curve = EquityCurve(limit)
        kept = len(self) if limit is None else min(limit, len(self))
        curve._add_times(self.times_micros()[len(self) - kept :])
        curve._values.frombytes(self.values()[len(self) - kept :].tobytes())
        return curve

    def values(self) -> npt.NDArray[np.float64]:
        """Every equity value, oldest first (a copy)."""
        stored = np.array(self._values[self._hidden :], dtype=np.float64)
        # (Formulas exist only in unbounded curves, which hide nothing.)
        return stored if self._marked is None else self._marked.merged(stored)

    def times_micros(self) -> npt.NDArray[np.int64]:
        """Every point's time in microseconds from the Unix epoch, oldest first."""
        counts = np.asarray(self._counts, dtype=np.int64)
        if not counts.size:
            return np.empty(0, dtype=np.int64)
        run_firsts = np.cumsum(counts) - counts
        offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(run_firsts, counts)
        starts = np.repeat(np.asarray(self._starts, dtype=np.int64), counts)
        times = starts + np.repeat(np.asarray(self._steps, dtype=np.int64), counts) * offsets
        return times[self._hidden :]

    def times_key(self) -> bytes:
        """Equal for two curves exactly when their times are equal (cheap: a few bytes a run)."""
        if self._hidden:
            return self.times_micros().tobytes()
        return self._starts.tobytes() + self._steps.tobytes() + self._counts.tobytes()

    def datetimes(self) -> list[datetime]:
        """Every point's time as an aware UTC datetime: one object per point, costly."""
        return [_EPOCH + timedelta(microseconds=micros) for micros in self.times_micros().tolist()]

    def points(self) -> list[tuple[datetime, float]]:
        """Every point as a ``(datetime, float)`` tuple: three objects per point, costly."""
        return list(zip(self.datetimes(), self.values().tolist(), strict=True))

    def __iter__(self) -> Iterator[tuple[datetime, float]]:
        return iter(self.points())

    @overload
    def __getitem__(self, index: int) -> tuple[datetime, float]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[datetime, float]]: ...
    def __getitem__(
        self, index: int | slice
    ) -> tuple[datetime, float] | list[tuple[datetime, float]]:
        if isinstance(index, slice):
            return self.points()[index]
        position = range(len(self))[index]  # raises IndexError as a list would
        if self._marked is None:
            value = self._values[self._hidden + position]
        else:
            value = float(self.values()[position])
        micros = int(self.times_micros()[position])
        return (_EPOCH + timedelta(microseconds=micros), value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EquityCurve):
            return self.times_key() == other.times_key() and bool(
                np.array_equal(self.values(), other.values())
            )
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(other) == len(self) and self.points() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        marked = f", {len(self._marked)} formula stretches" if self._marked is not None else ""
        return f"EquityCurve({len(self)} points, {len(self._counts)} time runs{marked})"

    def _formulas(self) -> MarkedRuns:
        if self._marked is None:
            self._marked = MarkedRuns()
        return self._marked

    def _add_time(self, micros: int) -> None:
        counts = self._counts
        if micros == self._next:
            counts[-1] += 1
            self._next = micros + self._steps[-1]
        elif self._next is None and counts and counts[-1] == 1:
            step = micros - self._starts[-1]
            self._steps[-1] = step
            counts[-1] = 2
            self._next = micros + step
        else:
            self._starts.append(micros)
            self._steps.append(0)
            counts.append(1)
            self._next = None

    def _add_seconds(self, seconds: npt.NDArray[np.int64]) -> None:
        """Add ascending epoch seconds; the common case, the next candles of the last run,
        is checked without numpy (a replay adds many short stretches)."""
        following = self._next
        step = self._steps[-1] if self._steps else 0
        if (
            following is not None
            and step > 0
            and not following % MICROS_PER_SECOND
            and not step % MICROS_PER_SECOND
        ):
            first, step_seconds = following // MICROS_PER_SECOND, step // MICROS_PER_SECOND
            stop = first + step_seconds * len(seconds)
            if seconds[0] == first and _evenly_spaced(seconds, first, stop, step_seconds):
                self._counts[-1] += len(seconds)
                self._next = following + step * len(seconds)
                return
        self._add_times(np.asarray(seconds, dtype=np.int64) * MICROS_PER_SECOND)

    def _add_times(self, micros: npt.NDArray[np.int64]) -> None:
        """Add ascending times in bulk, with the runs adding them one by one would make:
        a few Python steps per run, not per point."""
        times = micros.tolist()
        count = len(times)
        steps = np.diff(micros)
        # Indexes k where the step to the next time differs from the step before it.
        changes = (np.flatnonzero(steps[1:] != steps[:-1]) + 1).tolist()
        index = 0
        while index < count:
            if self._next is None or times[index] != self._next:
                self._add_time(times[index])
                index += 1
                continue
            # times[index] extends the last run; so do the next ones while the step holds.
            step = self._steps[-1]
            if index == 0:
                off = np.flatnonzero(steps != step)
                last = int(off[0]) if off.size else count - 1
            else:  # times[index - 1] was in the run too: the step holds up to a change
                at = bisect.bisect_left(changes, index)
                last = changes[at] if at < len(changes) else count - 1
            self._counts[-1] += last - index + 1
            self._next = times[last] + step
            index = last + 1

    def _drop_oldest(self) -> None:
        """Hide the points beyond ``limit``; free them once as many are hidden as kept."""
        assert self._limit is not None
        held = len(self._values)
        if held >= 2 * self._limit:
            self._hidden = 0
            bounded = self.bounded(self._limit)
            self._values = bounded._values
            self._starts, self._steps = bounded._starts, bounded._steps
            self._counts, self._next = bounded._counts, bounded._next
        else:
            self._hidden = max(0, held - self._limit)


def _evenly_spaced(seconds: npt.NDArray[np.int64], first: int, stop: int, step: int) -> bool:
    """Whether ``seconds`` are ``range(first, stop, step)``: short ones compared as lists,
    long ones in numpy (a stretch can be thousands of candles; a list of them is slow)."""
    if len(seconds) <= _SHORT_STRETCH:
        return bool(seconds.tolist() == list(range(first, stop, step)))
    return bool(np.array_equal(seconds, np.arange(first, stop, step, dtype=np.int64)))


_SHORT_STRETCH = 40
"""Up to this many times, comparing Python lists is cheaper than numpy's fixed cost."""


__all__ = ["MICROS_PER_SECOND", "EquityCurve", "epoch_micros"]
