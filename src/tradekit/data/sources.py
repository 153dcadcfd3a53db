"""Candle sources over whole series held in memory: given frames and seeded synthetic data.

Every source here serves the same candles two ways: ``frames()`` for vectorized
backtests and ``stream()`` for replaying closed candles one at a time, merged
across series in close-time order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from tradekit.data.synthetic import SyntheticSpec, synthetic_frame
from tradekit.domain import Candle
from tradekit.errors import DataError
from tradekit.services.market.candles import PRICE_COLUMNS, CandleSeries, time_index_problem
from tradekit.timeframes import TIMEFRAME_SECONDS, unknown_timeframe_message

SeriesKey = tuple[str, str]
"""A series' identity: (symbol, timeframe)."""


GAPS_SHOWN = 5
"""How many gaps per series ``SeriesGaps.first`` keeps."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Candles missing from a series between two candles that are both present."""

    after: datetime
    """Open time of the last candle before the gap."""
    resumes: datetime
    """Open time of the first candle after the gap."""
    missing: int
    """How many candles are missing in between."""


@dataclass(frozen=True, slots=True)
class SeriesGaps:
    """The gaps of one series: how many, how many candles they miss, and the first few."""

    symbol: str
    timeframe: str
    count: int
    missing_bars: int
    first: tuple[Gap, ...]

    def __str__(self) -> str:
        shown = ", ".join(f"{gap.missing} after {gap.after.isoformat()}" for gap in self.first)
        return (
            f"{self.symbol} {self.timeframe}: {self.count} gap(s), {self.missing_bars} "
            f"candle(s) missing (first {len(self.first)}: {shown})"
        )


def find_gaps(symbol: str, timeframe: str, index: pd.DatetimeIndex) -> SeriesGaps | None:
    """The gaps in a sorted, aligned index of open times; ``None`` when there are none."""
    step = TIMEFRAME_SECONDS[timeframe] * 1_000_000
    stamps = index.as_unit("us").asi8
    spacing = np.diff(stamps)
    at = np.flatnonzero(spacing > step)
    if not at.size:
        return None
    missing = spacing[at] // step - 1
    first = tuple(
        Gap(index[i].to_pydatetime(), index[i + 1].to_pydatetime(), int(count))
        for i, count in zip(at[:GAPS_SHOWN], missing[:GAPS_SHOWN], strict=True)
    )
    return SeriesGaps(symbol, timeframe, int(at.size), int(missing.sum()), first)


def series_sort_key(key: SeriesKey) -> tuple[str, int]:
    """Order series by symbol, then by timeframe length (shortest first)."""
    symbol, timeframe = key
    return symbol, TIMEFRAME_SECONDS[timeframe]


def candle_sort_key(candle: Candle) -> tuple[datetime, str, int]:
    """The delivery order of a stream: close time, then symbol, then timeframe length.

    At one close time the shorter timeframe comes first, so the lower-timeframe
    candle that completes a higher-timeframe one is seen before it.
    """
    return candle.close_ts, candle.symbol, TIMEFRAME_SECONDS[candle.timeframe]


def normalize_frame(symbol: str, timeframe: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A checked copy of ``frame``: float OHLCV columns, a UTC DatetimeIndex named ``ts``.

    The index must be time-zone aware open times, strictly increasing and
    aligned to ``timeframe``; every row must be a valid candle. ``DataError``
    names the series and the first offending row otherwise.
    """
    where = f"series {symbol} {timeframe}"
    if timeframe not in TIMEFRAME_SECONDS:
        raise DataError(f"{where}: {unknown_timeframe_message(timeframe)}")
    missing = [name for name in PRICE_COLUMNS if name not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: frame lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(PRICE_COLUMNS)}"
        )
    problem = time_index_problem(frame)
    if problem is not None:
        raise DataError(f"{where}: {problem}")
    index = pd.DatetimeIndex(frame.index)
    normalized = pd.DataFrame(
        {name: frame[name].to_numpy(dtype=np.float64) for name in PRICE_COLUMNS},
        index=pd.DatetimeIndex(index.tz_convert(UTC), name="ts"),
    )
    # CandleSeries runs the same vectorized checks a live series applies to every row.
    CandleSeries.from_frame(symbol, timeframe, normalized)
    return normalized


def frame_candles(symbol: str, timeframe: str, frame: pd.DataFrame) -> Iterator[Candle]:
    """The rows of one normalized frame as ``Candle`` objects, in order."""
    stamps = pd.DatetimeIndex(frame.index).to_pydatetime()
    columns = [frame[name].to_numpy(dtype=np.float64).tolist() for name in PRICE_COLUMNS]
    for ts, open_, high, low, close, volume in zip(stamps, *columns, strict=True):
        yield Candle(symbol, timeframe, ts, open_, high, low, close, volume)


def merge_streams(streams: Iterable[Iterator[Candle]]) -> Iterator[Candle]:
    """Merge per-series candle iterators, each in time order, into one delivery order.

    See ``candle_sort_key``: the result is the same whatever order ``streams`` come in.
    """
    return heapq.merge(*streams, key=candle_sort_key)


class FrameSource:
    """A ``CandleSource`` over in-memory frames, one per (symbol, timeframe).

    It keeps checked copies of the frames it was given for as long as it lives;
    ``frames()`` hands out copies, so callers cannot change what it replays.
    """

    def __init__(self, frames: Mapping[SeriesKey, pd.DataFrame]) -> None:
        checked: dict[SeriesKey, pd.DataFrame] = {}
        for key, frame in frames.items():
            symbol, timeframe = key
            checked[key] = normalize_frame(symbol, timeframe, frame)
        self._frames = {key: checked[key] for key in sorted(checked, key=series_sort_key)}

    def symbols(self) -> list[SeriesKey]:
        """Every (symbol, timeframe) served, sorted by symbol then timeframe length."""
        return list(self._frames)

    def serves(self, symbol: str, timeframe: str) -> bool:
        """Whether the replay delivers the (``symbol``, ``timeframe``) series."""
        return (symbol, timeframe) in self._frames

    def frames(self) -> dict[SeriesKey, pd.DataFrame]:
        """A copy of every whole series: open/high/low/close/volume over UTC open times."""
        return {key: frame.copy() for key, frame in self._frames.items()}

    def stream(self) -> Iterator[Candle]:
        """Every candle of every series, merged in close-time order (see ``candle_sort_key``)."""
        return merge_streams(
            frame_candles(symbol, timeframe, frame)
            for (symbol, timeframe), frame in self._frames.items()
        )

    def __len__(self) -> int:
        return sum(len(frame) for frame in self._frames.values())

    def __repr__(self) -> str:
        series = ", ".join(f"{symbol} {timeframe}" for symbol, timeframe in self._frames)
        return f"<{type(self).__name__} {series or 'empty'}>"


class SyntheticSource(FrameSource):
    """Seeded synthetic candles for several symbols on one timeframe; each symbol its own walk.

    The same arguments always give the same candles (see ``synthetic_frame``).
    """

    def __init__(
        self,
        symbols: Sequence[str],
        timeframe: str,
        bars: int,
        seed: int = 7,
        start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
        spec: SyntheticSpec | None = None,
    ) -> None:
        if isinstance(symbols, str):
            raise TypeError(f"symbols must be a sequence of symbols, got the string {symbols!r}")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols must be unique, got {list(symbols)}")
        if timeframe not in TIMEFRAME_SECONDS:
            raise ValueError(unknown_timeframe_message(timeframe))
        if bars < 1:
            raise ValueError(f"bars must be >= 1, got {bars}")
        super().__init__(
            {
                (symbol, timeframe): synthetic_frame(
                    symbol, timeframe, bars, seed=seed, start=start, spec=spec
                )
                for symbol in symbols
            }
        )


__all__ = [
    "GAPS_SHOWN",
    "FrameSource",
    "Gap",
    "SeriesGaps",
    "SeriesKey",
    "SyntheticSource",
    "candle_sort_key",
    "find_gaps",
    "frame_candles",
    "merge_streams",
    "normalize_frame",
    "series_sort_key",
]
