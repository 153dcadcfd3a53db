"""``SeriesReplay``: the candles of a bulk-loaded series, rebuilt cheaply for a replay.

A ``CandleSeries`` validated every row when it was loaded, so replaying it need
not check them again: each candle is assembled with ``Candle.trusted`` from
plain Python values. Only the columns read in bulk (closes, highs, lows) are
held as Python floats; a candle's open time, open and volume are converted when
the candle is built, since a replay builds candles for a fraction of the bars.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from tradekit.domain import Candle
from tradekit.services.market.candles import CandleSeries
from tradekit.services.market.column_slice import ColumnSlice

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SeriesReplay:
    """Every kept bar of one series as candles, open times and price columns; one per replay.

    Holds the bars kept when it was built (``first`` up to ``stop``); the series
    must not change while it is in use. ``candle(bar)`` equals ``series.candle_at(bar)``.
    """

    __slots__ = (
        "_open",
        "_volume",
        "close_seconds",
        "closes",
        "first",
        "highs",
        "lows",
        "open_seconds",
        "series",
        "stop",
        "symbol",
        "timeframe",
    )

    def __init__(self, series: CandleSeries) -> None:
        self.series = series
        self.symbol = series.symbol
        self.timeframe = series.timeframe
        self.first = series.first_kept_bar
        self.stop = series.last_bar + 1
        columns = series.columns(self.first, self.stop)
        stamps = np.asarray(columns["ts"], dtype=np.int64)
        self.open_seconds: npt.NDArray[np.int64] = stamps
        """Open time of every bar in epoch seconds, ``open_seconds[bar - first]``."""
        self.close_seconds: npt.NDArray[np.int64] = stamps + series.step
        """Close time of every bar in epoch seconds: the key bars are replayed in."""
        # Own copies: the equity curves of the strategies refer to the closes after the replay.
        self.closes = _whole(columns["close"])
        """Close of every bar, ``closes[bar - first]``; slices of it are lists of floats."""
        self.highs = _whole(columns["high"])
        self.lows = _whole(columns["low"])
        self._open = np.array(columns["open"], dtype=np.float64)
        self._volume = np.array(columns["volume"], dtype=np.float64)

    def __len__(self) -> int:
        return self.stop - self.first

    def candle(self, bar: int) -> Candle:
        """The candle of ``bar`` (between ``first`` and ``stop``), without re-validation."""
        row = bar - self.first
        if not 0 <= row < len(self.open_seconds):
            raise IndexError(
                f"series {self.symbol} {self.timeframe}: bar {bar} is outside the replayed "
                f"bars {self.first}..{self.stop - 1}"
            )
        return Candle.trusted(
            self.symbol,
            self.timeframe,
            self.open_time(bar),
            float(self._open[row]),
            float(self.highs.column[row]),
            float(self.lows.column[row]),
            float(self.closes.column[row]),
            float(self._volume[row]),
        )

    def open_time(self, bar: int) -> datetime:
        """The open time of ``bar`` (between ``first`` and ``stop``): its candle's ``ts``."""
        return _EPOCH + timedelta(seconds=int(self.open_seconds[bar - self.first]))

    def stretch(self, rows: slice) -> tuple[ColumnSlice, ColumnSlice, ColumnSlice]:
        """The closes, highs and lows of ``rows`` (see ``rows``) as slices of the columns,
        made without a copy: a quiet stretch's equity points can refer to its closes."""
        start, stop = rows.start, rows.stop
        return (
            ColumnSlice(self.closes.column, start, stop),
            ColumnSlice(self.highs.column, start, stop),
            ColumnSlice(self.lows.column, start, stop),
        )

    def rows(self, first: int, stop: int) -> slice:
        """The rows of bars ``first`` up to ``stop`` in the columns held here."""
        return slice(first - self.first, stop - self.first)


def _whole(column: npt.NDArray[np.float64]) -> ColumnSlice:
    copy = np.array(column, dtype=np.float64)
    return ColumnSlice(copy, 0, len(copy))
