"""Incremental live indicators give the whole-series values of the backend.

For every catalog indicator with an incremental form, random price series
(hypothesis, bounded sizes) are fed one bar at a time, through the stepper alone
and through the shared cache the way live candles arrive, and compared with one
whole-series computation after the warm-up, to 1e-9 relative (absolute below 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradekit.config.strategy import IndicatorConfig
from tradekit.services.indicators.cache import IndicatorCache, IndicatorRegistry
from tradekit.services.indicators.catalog import BUILTIN_NAMES, INDICATORS, validate_indicator
from tradekit.services.market.candles import CandleSeries, CandleStore

SYMBOL = "BTC/USDT"
TOLERANCE = 1e-9
INCREMENTAL = sorted(name for name, spec in INDICATORS.items() if spec.incremental is not None)
SMALL_PARAMS: Mapping[str, dict[str, float]] = {
    "sma": {"length": 5},
    "ema": {"length": 5},
    "wma": {"length": 5},
    "rsi": {"length": 6},
    "roc": {"length": 4},
    "cci": {"length": 6},
    "atr": {"length": 5},
    "adx": {"length": 5, "smoothing": 4},
    "macd": {"fast": 3, "slow": 7, "signal": 4},
    "bbands": {"length": 6, "std": 1.5},
    "stoch": {"k": 6, "d": 3, "smooth_k": 2},
    "mfi": {"length": 5},
    "obv": {},
    "donchian": {"length": 5},
    "supertrend": {"length": 5, "multiplier": 2.5},
}


@st.composite
def price_series(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """A random walk of prices with highs above and lows below the closes, and volumes."""
    size = draw(st.integers(40, 160))
    moves = draw(
        st.lists(
            st.floats(1e-4, 0.05).map(lambda step: step if draw(st.booleans()) else -step),
            min_size=size,
            max_size=size,
        )
    )
    close = draw(st.floats(1.0, 5e4)) * np.exp(np.cumsum(moves))
    spans = np.array(draw(st.lists(st.floats(0.0, 0.02), min_size=size, max_size=size)))
    volume = np.array(draw(st.lists(st.floats(0.1, 1e4), min_size=size, max_size=size)))
    return {
        "open": close,
        "high": close * (1 + spans),
        "low": close * (1 - spans / 2),
        "close": close,
        "volume": volume,
    }


def params_of(name: str) -> dict[str, float]:
    config = IndicatorConfig(name=name, params=SMALL_PARAMS.get(name, {}))
    return dict(validate_indicator(config, "indicators[0]"))


def assert_close(stepped: float, whole: float, where: object) -> None:
    assert math.isnan(stepped) == math.isnan(whole), where
    if not math.isnan(whole):
        assert abs(stepped - whole) <= TOLERANCE * max(1.0, abs(whole)), (where, stepped, whole)


def test_every_builtin_is_incremental() -> None:
    assert set(INCREMENTAL) == set(SMALL_PARAMS) == BUILTIN_NAMES


@pytest.mark.slow
@pytest.mark.parametrize("name", INCREMENTAL)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=price_series())
def test_stepped_values_equal_the_whole_series_ones(name: str, data: dict[str, np.ndarray]) -> None:
    spec = INDICATORS[name]
    params = params_of(name)
    assert spec.incremental is not None
    whole = spec.compute({column: data[column] for column in spec.inputs}, params)
    stepper = spec.incremental(params)
    rows = zip(*(data[column].tolist() for column in spec.inputs), strict=True)
    lookback = spec.lookback(params)
    compared = 0
    for bar, row in enumerate(rows):
        outputs = stepper.step(row)
        if bar < lookback:
            continue
        for index, output in enumerate(spec.output_names):
            assert_close(outputs[index], float(whole[output][bar]), (name, output, bar))
            compared += 1
    assert compared > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", INCREMENTAL)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=price_series(), history=st.integers(0, 30))
def test_live_bars_through_the_cache_equal_the_whole_series_ones(
    name: str, data: dict[str, np.ndarray], history: int
) -> None:
    """History loaded in bulk, then one candle at a time: the cache steps each live bar."""
    config = IndicatorConfig(name=name, params=SMALL_PARAMS.get(name, {}))
    size = len(data["close"])
    stamps = np.arange(size, dtype=np.int64) * 3600
    source = CandleSeries.from_arrays(SYMBOL, "1h", stamps, **data)
    bulk_store = CandleStore()
    bulk_store.add(CandleSeries.from_arrays(SYMBOL, "1h", stamps, **data))
    bulk = IndicatorRegistry("bulk", [config], [SYMBOL], "1h", IndicatorCache(bulk_store))
    store = CandleStore()
    live_cache = IndicatorCache(store)
    live = IndicatorRegistry("live", [config], [SYMBOL], "1h", live_cache)
    store.series(SYMBOL, "1h").extend(**source.columns(0, history))
    for bar in range(history, size):
        store.append(source.candle_at(bar))
        for ref in live.references():
            stepped, whole = live.value(SYMBOL, ref, bar), bulk.value(SYMBOL, ref, bar)
            assert_close(
                math.nan if stepped is None else stepped,
                math.nan if whole is None else whole,
                (name, ref, bar),
            )
    assert live_cache.backend_calls <= 1


def flat_then_moving(flat: int, moving: int) -> dict[str, np.ndarray]:
    """``flat`` candles at one price (no directional movement: DX is 0/0, undefined), then a
    zigzag whose moves alternate up and down, with some flat candles among them."""
    closes = [100.0] * flat
    for index in range(moving):
        step = (1.5, -1.0, 0.0, 2.0, -2.5)[index % 5]
        closes.append(closes[-1] + step)
    close = np.array(closes)
    spans = np.array([0.0 if index % 7 == 0 else 0.01 for index in range(len(closes))])
    return {"high": close * (1 + spans), "low": close * (1 - spans), "close": close}


@pytest.mark.parametrize(("length", "smoothing"), [(1, 1), (2, 3), (5, 4), (14, 14)])
@pytest.mark.parametrize("flat", [1, 8, 30])
def test_adx_over_undefined_dx_equals_the_whole_series(
    length: int, smoothing: int, flat: int
) -> None:
    """A flat start leaves DX undefined for a while: the smoothing's seed and its decay over
    undefined bars are pandas-ta's."""
    spec = INDICATORS["adx"]
    params = {"length": length, "smoothing": smoothing}
    data = flat_then_moving(flat, 80)
    whole = spec.compute(data, params)
    assert spec.incremental is not None
    stepper = spec.incremental(params)
    rows = zip(data["high"].tolist(), data["low"].tolist(), data["close"].tolist(), strict=True)
    defined = 0
    for bar, row in enumerate(rows):
        outputs = stepper.step(row)
        for index, output in enumerate(spec.output_names):
            expected = float(whole[output][bar])
            assert_close(outputs[index], expected, (output, bar))
            defined += not math.isnan(expected)
    assert defined > 100
