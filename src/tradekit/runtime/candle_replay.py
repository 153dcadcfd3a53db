"""``SeriesReplay``: the candles of a bulk-loaded series, rebuilt cheaply for a replay.

A ``CandleSeries`` validated every row when it was loaded, so replaying it need
not check them again: open times are converted to datetimes once for the whole
series, in one vectorized call, and each candle is then assembled with
``Candle.trusted`` from plain Python values.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradekit.domain import Candle
from tradekit.services.market.candles import CandleSeries


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
        "open_times",
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
        self.open_times: list[datetime] = (
            pd.to_datetime(stamps, unit="s", utc=True).to_pydatetime().tolist()
        )
        """Open time of every bar, ``open_times[bar - first]``: the ``ts`` of its candle."""
        self.open_seconds: npt.NDArray[np.int64] = stamps
        """Open time of every bar in epoch seconds, ``open_seconds[bar - first]``."""
        self.close_seconds: npt.NDArray[np.int64] = stamps + series.step
        """Close time of every bar in epoch seconds: the key bars are replayed in."""
        # Plain floats: indexing a list is several times cheaper than a numpy array, and
        # slices of them feed the bulk bookkeeping of bars passed over.
        self.closes: list[float] = columns["close"].tolist()
        self.highs: list[float] = columns["high"].tolist()
        self.lows: list[float] = columns["low"].tolist()
        self._open: list[float] = columns["open"].tolist()
        self._volume: list[float] = columns["volume"].tolist()

    def __len__(self) -> int:
        return self.stop - self.first

    def candle(self, bar: int) -> Candle:
        """The candle of ``bar`` (between ``first`` and ``stop``), without re-validation."""
        row = bar - self.first
        if not 0 <= row < len(self.closes):
            raise IndexError(
                f"series {self.symbol} {self.timeframe}: bar {bar} is outside the replayed "
                f"bars {self.first}..{self.stop - 1}"
            )
        return Candle.trusted(
            self.symbol,
            self.timeframe,
            self.open_times[row],
            self._open[row],
            self.highs[row],
            self.lows[row],
            self.closes[row],
            self._volume[row],
        )

    def rows(self, first: int, stop: int) -> slice:
        """The rows of bars ``first`` up to ``stop`` in the lists held here."""
        return slice(first - self.first, stop - self.first)
