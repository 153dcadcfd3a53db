"""How much history a live run must load before its first candle, per (symbol, timeframe).

A strategy needs, on its own timeframe, the longest live window of its
indicators (its own and those its filters add), and, with a higher-timeframe
(MTF) gate, enough base candles to complete that gate's moving average. The
gate builds its higher-timeframe candles by resampling the strategy's own
candles, so it needs no feed of its own: only more base candles.
"""

from __future__ import annotations

from collections.abc import Iterable

from tradekit.config.strategy import StrategyConfig
from tradekit.data.sources import SeriesKey, series_sort_key
from tradekit.orchestrators.filters import FilterOrchestrator
from tradekit.services.indicators.catalog import indicator_problems
from tradekit.timeframes import timeframe_seconds

MIN_WARMUP_BARS = 2
"""History every series gets at least: an analyzer may compare a bar with the one before."""

# The gate drops the higher-timeframe candle it starts inside (its open was missed),
# and ``rising``/``falling`` compare the average with the one a candle earlier.
_MTF_EXTRA_CANDLES = 2


def indicator_bars(config: StrategyConfig) -> int:
    """The longest live window of the strategy's indicators, filters' included (0: none)."""
    indicators = [*config.indicators, *FilterOrchestrator(config.filters).required_indicators()]
    longest = 0
    for index, indicator in enumerate(indicators):
        spec, params, problems = indicator_problems(indicator, f"indicators[{index}]")
        if spec is not None and not problems:
            longest = max(longest, spec.window(dict(params)))
    return longest


def mtf_bars(config: StrategyConfig) -> int:
    """Base candles the higher-timeframe gate needs before its average is known (0: no gate)."""
    mtf = config.mtf
    if mtf is None:
        return 0
    per_candle = timeframe_seconds(mtf.timeframe) // timeframe_seconds(config.timeframe)
    return (mtf.length + _MTF_EXTRA_CANDLES) * per_candle


def warmup_bars(config: StrategyConfig) -> int:
    """Closed candles of history the strategy needs on each of its symbols."""
    return max(indicator_bars(config), mtf_bars(config), MIN_WARMUP_BARS)


def warmup_needs(configs: Iterable[StrategyConfig]) -> dict[SeriesKey, int]:
    """Every (symbol, timeframe) the strategies read and the warm-up bars it needs (the
    most any strategy on it needs), sorted. Disabled strategies count too: one may hold a
    position whose exits must keep running, or be enabled while the run goes on."""
    needs: dict[SeriesKey, int] = {}
    for config in configs:
        bars = warmup_bars(config)
        for symbol in config.symbols:
            key = (symbol, config.timeframe)
            needs[key] = max(needs.get(key, 0), bars)
    return {key: needs[key] for key in sorted(needs, key=series_sort_key)}


__all__ = ["MIN_WARMUP_BARS", "indicator_bars", "mtf_bars", "warmup_bars", "warmup_needs"]
