"""Benchmark: shared indicator cost, live per closed candle and whole-series precompute.

Run with ``python benchmarks/bench_indicators.py``. Live figures are the median
over runs of many closed candles; each candle is appended to the shared store
and every strategy then reads its RSI(14), so the figure includes the one
backend call the cache makes for all of them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from tradekit.config.strategy import IndicatorConfig
from tradekit.domain import Candle
from tradekit.services.indicators.backend import LIBRARY
from tradekit.services.indicators.cache import INDICATORS, IndicatorCache, IndicatorRegistry
from tradekit.services.indicators.probe import random_walk
from tradekit.services.market.candles import CandleSeries, CandleStore

SYMBOL = "BTC/USDT"
T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
HISTORY_BARS = 1_000
LIVE_CANDLES = 200
RUNS = 5
PRECOMPUTE_BARS = 100_000


def bulk_series(bars: int, seed: int = 0) -> CandleSeries:
    data = random_walk(bars, seed)
    ts = T0 + 3600 * np.arange(bars, dtype=np.int64)
    return CandleSeries.from_arrays(SYMBOL, "1h", ts, **data)


def live_us_per_candle(strategies: int) -> tuple[float, float]:
    """Median us per closed candle (append + each strategy reads rsi), and backend calls/candle."""
    source = bulk_series(HISTORY_BARS + RUNS * LIVE_CANDLES, seed=1)
    candles = [source.candle_at(bar) for bar in range(HISTORY_BARS, source.last_bar + 1)]
    store = CandleStore()
    store.series(SYMBOL, "1h").extend(**source.columns(0, HISTORY_BARS))
    cache = IndicatorCache(store)
    registries = [
        IndicatorRegistry(f"s{index}", [IndicatorConfig(name="rsi")], [SYMBOL], "1h", cache)
        for index in range(strategies)
    ]
    registries[0].value(SYMBOL, "rsi", HISTORY_BARS - 1)  # catch up on the history once
    calls_before = cache.computations
    timings = []
    for run in range(RUNS):
        batch: list[Candle] = candles[run * LIVE_CANDLES : (run + 1) * LIVE_CANDLES]
        start = time.perf_counter()
        for candle in batch:
            bar = store.append(candle)
            for registry in registries:
                registry.value(SYMBOL, "rsi", bar)
        timings.append((time.perf_counter() - start) / LIVE_CANDLES * 1e6)
    calls = (cache.computations - calls_before) / (RUNS * LIVE_CANDLES)
    return statistics.median(timings), calls


def median_us(call: Callable[[], object], repeat: int = 200_000) -> float:
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(repeat):
            call()
        timings.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(timings)


def read_us() -> float:
    """One ``registry.value`` read of an already computed bar: the per-strategy hot path."""
    store = CandleStore()
    store.add(bulk_series(500))
    registry = IndicatorRegistry(
        "bench", [IndicatorConfig(name="rsi")], [SYMBOL], "1h", IndicatorCache(store)
    )
    registry.value(SYMBOL, "rsi", 499)
    return median_us(lambda: registry.value(SYMBOL, "rsi", 499, 1))


def append_us() -> float:
    """``CandleSeries.append`` of one closed candle, trims of the bounded history included."""
    source = bulk_series(50_000, seed=2)
    candles = [source.candle_at(bar) for bar in range(50_000)]
    series = CandleSeries(SYMBOL, "1h", capacity=5_000)
    start = time.perf_counter()
    for candle in candles:
        series.append(candle)
    return (time.perf_counter() - start) / len(candles) * 1e6


def precompute_ms(name: str, series: CandleSeries) -> float:
    """Milliseconds to compute ``name`` (default parameters) over the whole series, once."""
    store = CandleStore()
    store.add(series)
    cache = IndicatorCache(store)
    IndicatorRegistry("bench", [IndicatorConfig(name=name)], [SYMBOL], "1h", cache)
    start = time.perf_counter()
    cache.precompute()
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    print(f"indicator backend: {LIBRARY}")
    print(f"live RSI(14), per closed candle, median of {RUNS} runs x {LIVE_CANDLES} candles:")
    single, single_calls = live_us_per_candle(1)
    shared, shared_calls = live_us_per_candle(100)
    for label, micros, calls in (
        ("1 strategy", single, single_calls),
        ("100 strategies sharing it", shared, shared_calls),
    ):
        print(f"  {label:<40} {micros:9.1f} us   backend calls/candle {calls:.2f}")
    print(f"  {'ratio 100 / 1':<40} {shared / single:9.2f} x")
    print(f"  {'registry.value read (computed bar)':<40} {read_us():9.3f} us")
    print(f"  {'CandleSeries.append (capacity 5000)':<40} {append_us():9.3f} us")
    print(f"whole-series precompute, {PRECOMPUTE_BARS:,} bars, one call per indicator:")
    series = bulk_series(PRECOMPUTE_BARS, seed=3)
    warm_up = bulk_series(1_000, seed=4)
    for name in sorted(INDICATORS):
        precompute_ms(name, warm_up)  # first calls load the library's lazy modules
        print(f"  {name:<40} {precompute_ms(name, series):9.1f} ms")


if __name__ == "__main__":
    main()
