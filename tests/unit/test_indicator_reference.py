"""Indicator values equal TA-Lib's, from the first bar after the catalog's warm-up on.

TA-Lib is the reference most traders check numbers against. Each case runs an
indicator through the catalog (the path strategies use) and TA-Lib on the same
seeded random walks, once with continuous prices and once rounded to a 0.01
tick (ties and rounding noise in sums). From bar ``lookback`` on, every value
must be finite and within 1e-9 of TA-Lib's, relative to the value's size
(``|ours - theirs| <= 1e-9 * max(1, |theirs|)``). The warm-up is TA-Lib's too:
TA-Lib's last output to start (ADX after its +DI and -DI) starts at that bar.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from tradekit.config.strategy import IndicatorConfig
from tradekit.services.indicators.catalog import INDICATORS, validate_indicator
from tradekit.services.indicators.probe import random_walk

talib = pytest.importorskip("talib", reason="TA-Lib (the dev extra) is the reference")

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
Prices = Mapping[str, FloatArray]
Reference = Callable[[Prices], Mapping[str, FloatArray]]

BARS = 1500
TOLERANCE = 1e-9
TICK = 0.01


def continuous(seed: int) -> Prices:
    return random_walk(BARS, seed)


def tick_rounded(seed: int) -> Prices:
    """Prices on a 0.01 grid, as an exchange quotes them; volume untouched."""
    data = random_walk(BARS, seed)
    rounded = {name: np.round(values / TICK) * TICK for name, values in data.items()}
    rounded["high"] = np.maximum(rounded["high"], rounded["close"])
    rounded["low"] = np.minimum(rounded["low"], rounded["close"])
    rounded["volume"] = data["volume"]
    return rounded


def hlc(data: Prices) -> tuple[FloatArray, FloatArray, FloatArray]:
    return data["high"], data["low"], data["close"]


def macd_reference(fast: int, slow: int, signal: int) -> Reference:
    def reference(data: Prices) -> dict[str, FloatArray]:
        line, signal_line, hist = talib.MACD(data["close"], fast, slow, signal)
        return {"macd": line, "signal": signal_line, "hist": hist}

    return reference


def bbands_reference(length: int, std: float) -> Reference:
    def reference(data: Prices) -> dict[str, FloatArray]:
        upper, mid, lower = talib.BBANDS(data["close"], length, std, std, 0)
        return {"lower": lower, "mid": mid, "upper": upper}

    return reference


def stoch_reference(k: int, d: int, smooth_k: int) -> Reference:
    def reference(data: Prices) -> dict[str, FloatArray]:
        slow_k, slow_d = talib.STOCH(*hlc(data), k, smooth_k, 0, d, 0)
        return {"k": slow_k, "d": slow_d}

    return reference


def adx_reference(length: int) -> Reference:
    def reference(data: Prices) -> dict[str, FloatArray]:
        return {
            "adx": talib.ADX(*hlc(data), length),
            "plus_di": talib.PLUS_DI(*hlc(data), length),
            "minus_di": talib.MINUS_DI(*hlc(data), length),
        }

    return reference


def on_close(function: Callable[..., FloatArray], length: int) -> Reference:
    return lambda data: {"value": function(data["close"], length)}


def on_hlc(function: Callable[..., FloatArray], length: int) -> Reference:
    return lambda data: {"value": function(*hlc(data), length)}


CASES: list[tuple[IndicatorConfig, Reference]] = [
    (IndicatorConfig(name="sma", params={"length": 20}), on_close(talib.SMA, 20)),
    (IndicatorConfig(name="ema", params={"length": 10}), on_close(talib.EMA, 10)),
    (IndicatorConfig(name="ema", params={"length": 50}), on_close(talib.EMA, 50)),
    (IndicatorConfig(name="wma", params={"length": 10}), on_close(talib.WMA, 10)),
    (IndicatorConfig(name="rsi", params={"length": 14}), on_close(talib.RSI, 14)),
    (IndicatorConfig(name="rsi", params={"length": 5}), on_close(talib.RSI, 5)),
    (IndicatorConfig(name="roc", params={"length": 10}), on_close(talib.ROC, 10)),
    (IndicatorConfig(name="macd", params={}), macd_reference(12, 26, 9)),
    (
        IndicatorConfig(name="macd", params={"fast": 5, "slow": 35, "signal": 5}),
        macd_reference(5, 35, 5),
    ),
    (IndicatorConfig(name="bbands", params={}), bbands_reference(20, 2.0)),
    (IndicatorConfig(name="bbands", params={"length": 10, "std": 1.5}), bbands_reference(10, 1.5)),
    (IndicatorConfig(name="atr", params={"length": 14}), on_hlc(talib.ATR, 14)),
    (IndicatorConfig(name="atr", params={"length": 5}), on_hlc(talib.ATR, 5)),
    (IndicatorConfig(name="adx", params={"length": 14}), adx_reference(14)),
    (IndicatorConfig(name="adx", params={"length": 7}), adx_reference(7)),
    (IndicatorConfig(name="stoch", params={}), stoch_reference(14, 3, 3)),
    (
        IndicatorConfig(name="stoch", params={"k": 9, "d": 4, "smooth_k": 1}),
        stoch_reference(9, 4, 1),
    ),
    (
        IndicatorConfig(name="cci", params={"length": 20}),
        lambda data: {"value": talib.CCI(*hlc(data), 20)},
    ),
    (
        IndicatorConfig(name="mfi", params={"length": 14}),
        lambda data: {"value": talib.MFI(*hlc(data), data["volume"], 14)},
    ),
    (
        IndicatorConfig(name="obv", params={}),
        lambda data: {"value": talib.OBV(data["close"], data["volume"])},
    ),
    (
        IndicatorConfig(name="donchian", params={"length": 20}),
        lambda data: {
            "lower": talib.MIN(data["low"], 20),
            "upper": talib.MAX(data["high"], 20),
        },
    ),
]


def case_id(case: tuple[IndicatorConfig, Reference]) -> str:
    config = case[0]
    return "-".join([config.name, *(f"{key}{value}" for key, value in config.params.items())])


class TestMatchesTaLib:
    @pytest.mark.parametrize("series", [continuous, tick_rounded])
    @pytest.mark.parametrize("seed", [0, 1])
    @pytest.mark.parametrize("case", CASES, ids=[case_id(case) for case in CASES])
    def test_values_after_warm_up_equal_ta_lib(
        self,
        case: tuple[IndicatorConfig, Reference],
        seed: int,
        series: Callable[[int], Prices],
    ) -> None:
        config, reference = case
        spec = INDICATORS[config.name]
        params = dict(validate_indicator(config, "indicators[0]"))
        warm_up = spec.lookback(params)
        data = series(seed)
        ours = spec.compute({name: data[name] for name in spec.inputs}, params)
        expected_outputs = reference(data)
        starts = [int(np.argmax(~np.isnan(values))) for values in expected_outputs.values()]
        assert max(starts) == warm_up, f"TA-Lib starts at {starts}, the catalog at {warm_up}"
        for output, expected in expected_outputs.items():
            actual = ours[output]
            assert np.isfinite(actual[warm_up:]).all(), f"{output}: ours has gaps after warm-up"
            error = np.abs(actual[warm_up:] - expected[warm_up:])
            allowed = TOLERANCE * np.maximum(1.0, np.abs(expected[warm_up:]))
            worst = int(np.argmax(error - allowed))
            assert (error <= allowed).all(), (
                f"{output} at bar {warm_up + worst}: ours {actual[warm_up + worst]!r}, "
                f"TA-Lib {expected[warm_up + worst]!r}"
            )

    def test_every_ta_lib_indicator_of_the_catalog_is_checked(self) -> None:
        """The catalog's indicators TA-Lib lacks are the only ones left out."""
        checked = {config.name for config, _ in CASES}
        assert set(INDICATORS) - checked == {"supertrend"}


class TestMacdSeeding:
    def test_fast_ema_is_seeded_where_the_slow_one_starts(self) -> None:
        """A jump in the first closes leaves TA-Lib's MACD untouched: its fast EMA is seeded
        with the closes just before bar ``slow - 1``, not the first ``fast`` ones."""
        close = np.full(200, 50.0)
        close[:5] = 80.0
        result = INDICATORS["macd"].compute({"close": close}, {"fast": 12, "slow": 26, "signal": 9})
        expected = talib.MACD(close, 12, 26, 9)[0]
        np.testing.assert_allclose(result["macd"][33:], expected[33:], rtol=0, atol=1e-12)
        assert np.isnan(result["macd"][:33]).all()
