"""Causality: the value precomputed over a whole series at bar t equals the value on data cut at t.

A backtest reads whole-series values, so any indicator that peeks at later bars
would make backtests lie. Every built-in indicator is checked through the same
path a backtest uses (bulk series, shared cache, registry); user-defined
indicators are registered only when causal and well formed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tradekit.config.strategy import IndicatorConfig
from tradekit.errors import ConfigError
from tradekit.services.indicators.cache import (
    INDICATORS,
    IndicatorCache,
    IndicatorRegistry,
    IndicatorSpec,
    ParamSpec,
    register_indicator,
)
from tradekit.services.indicators.catalog import unregister_indicator
from tradekit.services.indicators.probe import probe_causality, random_walk
from tradekit.services.market.candles import CandleSeries, CandleStore

SYMBOL = "ETH/USDT"
BARS = 700
T0 = 1_704_067_200  # 2024-01-01 00:00 UTC

NON_DEFAULT_PARAMS: list[tuple[str, dict[str, Any]]] = [
    ("ema", {"length": 3}),
    ("rsi", {"length": 2}),
    ("adx", {"length": 5, "smoothing": 9}),
    ("macd", {"fast": 5, "slow": 35, "signal": 5}),
    ("bbands", {"length": 2, "std": 0.5}),
    ("stoch", {"k": 3, "d": 5, "smooth_k": 1}),
    ("supertrend", {"length": 3, "multiplier": 1.0}),
    ("cci", {"length": 30, "constant": 0.02}),
]

CASES = [
    IndicatorConfig(name=name, params=params, alias=f"i{index}")
    for index, (name, params) in enumerate(
        [(name, {}) for name in sorted(INDICATORS)] + NON_DEFAULT_PARAMS
    )
]
"""Every built-in with its defaults, and some with other parameters; aliases keep keys unique."""


def bulk_series(bars: int) -> CandleSeries:
    data = random_walk(bars, seed=5)
    ts = T0 + 3600 * np.arange(bars, dtype=np.int64)
    return CandleSeries.from_arrays(SYMBOL, "1h", ts, **data)


def registry_over(bars: int) -> IndicatorRegistry:
    """A registry over the first ``bars`` bars of one seeded random walk, loaded in bulk."""
    data = random_walk(BARS, seed=2024)
    ts = T0 + 3600 * np.arange(BARS, dtype=np.int64)
    cut = {name: column[:bars] for name, column in data.items()}
    store = CandleStore()
    store.add(CandleSeries.from_arrays(SYMBOL, "1h", ts[:bars], **cut))
    return IndicatorRegistry("causality", CASES, [SYMBOL], "1h", IndicatorCache(store))


@pytest.fixture(scope="module")
def whole() -> IndicatorRegistry:
    return registry_over(BARS)


CUTS = sorted({*range(0, 60), *range(60, BARS, 23), BARS - 1})
"""Every bar of the warm-up region, then a spread over the rest of the series."""


@pytest.mark.parametrize("cut", CUTS)
def test_whole_series_value_equals_value_on_data_cut_at_t(
    whole: IndicatorRegistry, cut: int
) -> None:
    partial = registry_over(cut + 1)
    for ref in whole.references():
        expected = partial.value(SYMBOL, ref, cut)
        found = whole.value(SYMBOL, ref, cut)
        if expected is None or found is None:
            assert expected is found, (ref, cut, found, expected)
        else:
            assert math.isclose(found, expected, rel_tol=1e-9, abs_tol=1e-9), (ref, cut)


@pytest.mark.parametrize("name", sorted(INDICATORS))
def test_probe_accepts_every_builtin(name: str) -> None:
    probe_causality(INDICATORS[name])


def _shift_back(data: Any, params: Any) -> dict[str, np.ndarray]:
    return {"value": np.append(data["close"][1:], np.nan)}


def _centered_mean(data: Any, params: Any) -> dict[str, np.ndarray]:
    close = data["close"]
    value = np.full(close.size, np.nan)
    value[1:-1] = (close[:-2] + close[1:-1] + close[2:]) / 3.0
    return {"value": value}


def _whole_series_zscore(data: Any, params: Any) -> dict[str, np.ndarray]:
    close = data["close"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"value": (close - close.mean()) / close.std()}


def _future_max_band(data: Any, params: Any) -> dict[str, np.ndarray]:
    close = data["close"]
    upper = np.maximum.accumulate(close[::-1])[::-1]
    return {"upper": upper, "lower": np.minimum.accumulate(close)}


@pytest.mark.parametrize(
    "spec",
    [
        IndicatorSpec("test_shift_back", ("close",), _shift_back),
        IndicatorSpec("test_centered", ("close",), _centered_mean, lookback=lambda p: 1),
        IndicatorSpec("test_zscore", ("close",), _whole_series_zscore),
        IndicatorSpec(
            "test_future_band",
            ("close",),
            _future_max_band,
            (ParamSpec("length", int, 3, 1),),
            outputs=("upper", "lower"),
        ),
    ],
    ids=lambda spec: spec.name,
)
def test_look_ahead_custom_indicators_are_refused(spec: IndicatorSpec) -> None:
    with pytest.raises(ConfigError, match=f"indicator '{spec.name}' looks ahead"):
        register_indicator(spec)
    assert spec.name not in INDICATORS


@pytest.fixture
def custom_names() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        unregister_indicator(name)


def _range_pct(data: Any, params: Any) -> dict[str, np.ndarray]:
    spread = (data["high"] - data["low"]) / data["close"] * 100.0
    length = int(params["length"])
    kernel = np.ones(length) / length
    value = np.full(spread.size, np.nan)
    if spread.size >= length:
        value[length - 1 :] = np.convolve(spread, kernel, mode="valid")
    return {"value": value}


class TestRegisterIndicator:
    def test_a_causal_indicator_is_registered_and_usable(self, custom_names: list[str]) -> None:
        spec = IndicatorSpec(
            "range_pct",
            ("high", "low", "close"),
            _range_pct,
            (ParamSpec("length", int, 5, 1),),
            lookback=lambda p: int(p["length"]) - 1,
        )
        custom_names.append(register_indicator(spec).name)
        assert INDICATORS["range_pct"] is spec
        store = CandleStore()
        store.add(bulk_series(50))
        config = IndicatorConfig(name="range_pct", params={"length": 3}, alias="spread")
        reg = IndicatorRegistry("a", [config], [SYMBOL], "1h", IndicatorCache(store))
        assert reg.value(SYMBOL, "spread", 1) is None
        assert reg.value(SYMBOL, "spread", 2) is not None

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            (IndicatorSpec("rsi", ("close",), _range_pct), "already registered"),
            (IndicatorSpec("My-Range", ("close",), _range_pct), "lowercase identifier"),
            (IndicatorSpec("ranger", ("price",), _range_pct), "inputs must be taken from"),
            (
                IndicatorSpec("ranger", ("close",), _range_pct, (ParamSpec("length", int, 0, 1),)),
                "default 0 of 'length' is not an integer >= 1",
            ),
            (
                IndicatorSpec("ranger", ("close",), _range_pct, (ParamSpec("length", int, 3, 1),)),
                "compute failed on probe data",
            ),
            (
                IndicatorSpec(
                    "ranger",
                    ("high", "low", "close"),
                    _range_pct,
                    (ParamSpec("length", int, 3, 1),),
                    outputs=("line",),
                ),
                "expected outputs ['line']",
            ),
        ],
    )
    def test_malformed_specs_are_refused(self, spec: IndicatorSpec, message: str) -> None:
        with pytest.raises(ConfigError, match=re.escape(message)):
            register_indicator(spec)

    def test_builtins_cannot_be_unregistered(self) -> None:
        with pytest.raises(ConfigError, match="built in"):
            unregister_indicator("rsi")
