"""Resampling candles to a higher timeframe, aligned to that timeframe's candle boundaries.

Weekly candles open on Monday 00:00 UTC and every other timeframe on whole
multiples of its length since the epoch, as ``tradekit.timeframes`` defines them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradekit.data.sources import normalize_frame
from tradekit.services.market.candles import PRICE_COLUMNS
from tradekit.timeframes import floor_timestamp, timeframe_seconds

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_epoch_seconds(seconds: npt.NDArray[np.int64], timeframe: str) -> npt.NDArray[np.int64]:
    """The open time (epoch seconds) of the ``timeframe`` candle holding each of ``seconds``."""
    step = timeframe_seconds(timeframe)
    # Candles open at a fixed offset past multiples of their length: 0, or Monday for weeks.
    anchor = floor_timestamp(_EPOCH + timedelta(seconds=10 * step), timeframe)
    offset = (anchor - _EPOCH) // timedelta(seconds=1) % step
    return (seconds - offset) // step * step + offset


def resample(
    frame: pd.DataFrame, from_tf: str, to_tf: str, *, keep_partial: bool = False
) -> pd.DataFrame:
    """Candles of ``to_tf`` built from a frame of ``from_tf`` candles.

    Each ``to_tf`` candle takes the first open, the highest high, the lowest
    low, the last close and the summed volume of the ``from_tf`` candles inside
    it, and opens at the ``to_tf`` boundary. A bucket missing candles inside
    (a gap in the data) is still built from those present. Unless
    ``keep_partial``, the first bucket is dropped when the data starts after
    its open (its open price would be wrong) and the last when it has not
    closed yet. ``ValueError`` when a timeframe is unknown or ``to_tf`` is not
    a whole multiple of ``from_tf``; ``DataError`` when the frame is not valid
    ``from_tf`` candles.
    """
    step, target = timeframe_seconds(from_tf), timeframe_seconds(to_tf)
    if target < step or target % step:
        raise ValueError(
            f"cannot resample {from_tf} candles to {to_tf}: {to_tf} must be a whole "
            f"multiple of {from_tf}"
        )
    checked = normalize_frame("to resample", from_tf, frame)
    if target == step or checked.empty:
        return checked
    seconds = pd.DatetimeIndex(checked.index).as_unit("us").asi8 // 1_000_000
    buckets = floor_epoch_seconds(seconds, to_tf)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    lasts = np.r_[starts[1:], buckets.size] - 1
    columns = {name: checked[name].to_numpy(dtype=np.float64) for name in PRICE_COLUMNS}
    result = pd.DataFrame(
        {
            "open": columns["open"][starts],
            "high": np.maximum.reduceat(columns["high"], starts),
            "low": np.minimum.reduceat(columns["low"], starts),
            "close": columns["close"][lasts],
            "volume": np.add.reduceat(columns["volume"], starts),
        },
        index=pd.DatetimeIndex(pd.to_datetime(buckets[starts], unit="s", utc=True), name="ts"),
    )
    if keep_partial:
        return result
    keep = np.ones(starts.size, dtype=np.bool_)
    keep[0] = seconds[0] == buckets[0]
    keep[-1] &= seconds[-1] + step == buckets[-1] + target
    return result[keep]


__all__ = ["floor_epoch_seconds", "resample"]
