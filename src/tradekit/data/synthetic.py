"""Seeded synthetic OHLCV: trending and ranging regimes, intrabar ranges and volume.

The same seed always gives the same candles, so tests, examples and benchmarks
run on data that is realistic enough to trigger every strategy and never needs
a download.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from tradekit.domain import Candle
from tradekit.timeframes import floor_timestamp, timeframe_seconds


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape of a generated series: start price, volatility per bar, regime lengths."""

    start_price: float = 100.0
    volatility: float = 0.008
    trend_drift: float = 0.0005
    mean_reversion: float = 0.05
    mean_regime_bars: int = 300
    base_volume: float = 1_000.0


def _seed_for(symbol: str, seed: int) -> int:
    # Distinct, stable streams per symbol for one seed.
    return (seed * 1_000_003 + zlib.crc32(symbol.encode())) % 2**32


def synthetic_frame(
    symbol: str,
    timeframe: str,
    bars: int,
    *,
    seed: int = 7,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    spec: SyntheticSpec | None = None,
) -> pd.DataFrame:
    """``bars`` candles as a DataFrame (open, high, low, close, volume; UTC DatetimeIndex)."""
    spec = spec or SyntheticSpec()
    rng = np.random.default_rng(_seed_for(symbol, seed))
    log_price = np.empty(bars)
    level = np.log(spec.start_price)
    anchor = level
    regime, drift, remaining = "range", 0.0, 0
    for bar in range(bars):
        if remaining == 0:
            remaining = max(20, int(rng.exponential(spec.mean_regime_bars)))
            regime = rng.choice(["trend", "range"])
            drift = spec.trend_drift * rng.choice([-1.0, 1.0]) if regime == "trend" else 0.0
            anchor = level
        remaining -= 1
        pull = spec.mean_reversion * (anchor - level) if regime == "range" else 0.0
        level += drift + pull + spec.volatility * rng.standard_normal()
        log_price[bar] = level
    close = np.exp(log_price)
    open_ = np.empty(bars)
    open_[0] = spec.start_price
    open_[1:] = close[:-1] * np.exp(0.1 * spec.volatility * rng.standard_normal(bars - 1))
    spread = np.abs(rng.standard_normal((2, bars))) * spec.volatility * 0.6
    high = np.maximum(open_, close) * np.exp(spread[0])
    low = np.minimum(open_, close) * np.exp(-spread[1])
    moves = np.abs(np.diff(log_price, prepend=log_price[0])) / spec.volatility
    volume = spec.base_volume * (0.5 + moves) * rng.lognormal(0.0, 0.3, bars)
    first = floor_timestamp(start, timeframe)
    index = pd.date_range(
        first, periods=bars, freq=pd.Timedelta(seconds=timeframe_seconds(timeframe))
    )
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def synthetic_candles(
    symbol: str,
    timeframe: str,
    bars: int,
    *,
    seed: int = 7,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    spec: SyntheticSpec | None = None,
) -> list[Candle]:
    """The same series as ``synthetic_frame``, as validated ``Candle`` objects."""
    frame = synthetic_frame(symbol, timeframe, bars, seed=seed, start=start, spec=spec)
    return [
        Candle(symbol, timeframe, ts.to_pydatetime(), o, h, low, c, v)
        for ts, o, h, low, c, v in zip(
            frame.index,
            frame["open"],
            frame["high"],
            frame["low"],
            frame["close"],
            frame["volume"],
            strict=True,
        )
    ]
