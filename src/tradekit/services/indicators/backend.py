"""The one place that calls pandas-ta: plain functions returning arrays under our own names.

The library is ``pandas_ta_classic`` (the maintained pandas-ta, same API) on
every supported Python, pinned to one minor version in ``pyproject.toml``, so a
backtest gives the same numbers whichever Python runs it. Every function takes
numpy arrays (or anything array-like), returns ``dict[str, ndarray]`` of the
input's length, and maps the library's column names (``MACDs_12_26_9``,
``BBP_20_2.0``, ...) to stable output names, so strategy files never depend on
how a library version names its columns. Single-output indicators return one
array under ``VALUE``. When the input is shorter than the library accepts,
every output is all NaN.

Values follow TA-Lib's definitions, seeding included (an SMA seeds EMAs and
Wilder's smoothing); where the library's own definition differs (MACD) the
function here computes TA-Lib's. ``tests/unit/test_indicator_reference.py``
checks them against TA-Lib. TA-Lib itself is never called, even when
installed, so values do not change with the environment.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradekit.errors import TradekitError
from tradekit.services.indicators.catalog import VALUE, Params

with warnings.catch_warnings():
    # The library builds a default strategy at import time through a pandas API that
    # pandas 3 deprecates; the warning concerns its code, not anything we call.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pandas_ta_classic as pandas_ta

FloatArray = npt.NDArray[np.float64]
Outputs = dict[str, FloatArray]

LIBRARY = pandas_ta.__name__
"""The pandas-ta distribution in use (``pandas_ta_classic``)."""


def _series(values: npt.ArrayLike) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=np.float64))


def _nan(size: int) -> FloatArray:
    return np.full(size, np.nan)


def _single(result: pd.Series | None, size: int) -> Outputs:
    if result is None:
        return {VALUE: _nan(size)}
    return {VALUE: result.to_numpy(dtype=np.float64)}


def _named(
    frame: pd.DataFrame | None, size: int, prefixes: Mapping[str, str], indicator: str
) -> Outputs:
    """Pick one column per output by its name prefix (``"MACDs_"`` -> ``signal``)."""
    if frame is None:
        return {name: _nan(size) for name in prefixes}
    outputs: Outputs = {}
    for name, prefix in prefixes.items():
        matches = [column for column in frame.columns if str(column).startswith(prefix)]
        if len(matches) != 1:
            raise TradekitError(
                f"{LIBRARY}.{indicator} returned columns {list(frame.columns)}; expected exactly "
                f"one starting with {prefix!r} for output '{name}'"
            )
        outputs[name] = frame[matches[0]].to_numpy(dtype=np.float64)
    return outputs


def sma(close: npt.ArrayLike, length: int) -> Outputs:
    """Simple moving average of ``close`` over ``length`` bars."""
    series = _series(close)
    return _single(pandas_ta.sma(series, length=length, talib=False), series.size)


def ema(close: npt.ArrayLike, length: int) -> Outputs:
    """Exponential moving average (alpha = 2 / (length + 1)), seeded with an SMA."""
    series = _series(close)
    return _single(pandas_ta.ema(series, length=length, talib=False), series.size)


def wma(close: npt.ArrayLike, length: int) -> Outputs:
    """Linearly weighted moving average, the newest bar weighing most."""
    series = _series(close)
    return _single(pandas_ta.wma(series, length=length, talib=False), series.size)


def rsi(close: npt.ArrayLike, length: int) -> Outputs:
    """Wilder's relative strength index, 0..100."""
    series = _series(close)
    return _single(pandas_ta.rsi(series, length=length, talib=False), series.size)


def roc(close: npt.ArrayLike, length: int) -> Outputs:
    """Rate of change over ``length`` bars, in percent."""
    series = _series(close)
    return _single(pandas_ta.roc(series, length=length, talib=False), series.size)


def cci(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, length: int, constant: float
) -> Outputs:
    """Commodity channel index of the typical price."""
    result = pandas_ta.cci(
        _series(high), _series(low), _series(close), length=length, c=constant, talib=False
    )
    return _single(result, np.size(close))


def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, length: int) -> Outputs:
    """Average true range, Wilder-smoothed."""
    result = pandas_ta.atr(
        _series(high), _series(low), _series(close), length=length, mamode="rma", talib=False
    )
    return _single(result, np.size(close))


def adx(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, length: int, smoothing: int
) -> Outputs:
    """Average directional index: ``adx``, ``plus_di`` and ``minus_di``."""
    frame = pandas_ta.adx(
        _series(high), _series(low), _series(close), length=length, lensig=smoothing, talib=False
    )
    prefixes = {"adx": "ADX_", "plus_di": "DMP_", "minus_di": "DMN_"}
    return _named(frame, np.size(close), prefixes, "adx")


def _ema_from(values: FloatArray, start: int, length: int) -> FloatArray:
    """EMA of ``values[start:]`` seeded with the mean of its first ``length`` values; NaN
    before ``start`` and wherever the data is too short for a seed."""
    result = _nan(values.size)
    tail = pandas_ta.ema(_series(values[start:]), length=length, talib=False)
    if tail is not None:
        result[start:] = tail.to_numpy(dtype=np.float64)
    return result


def macd(close: npt.ArrayLike, fast: int, slow: int, signal: int) -> Outputs:
    """MACD line (``macd``), its ``signal`` line and the histogram ``hist``, as TA-Lib has them.

    TA-Lib starts both EMAs at bar ``slow - 1``: the fast one is seeded with the
    mean of the ``fast`` closes ending there, where pandas-ta seeds it with the
    first ``fast`` closes (the two differ visibly for about a hundred bars). The
    signal EMA is seeded with the mean of the first ``signal`` MACD values, and
    every output starts at bar ``slow + signal - 2``.
    """
    values = np.asarray(close, dtype=np.float64)
    line = _ema_from(values, slow - fast, fast) - _ema_from(values, 0, slow)
    signal_line = _ema_from(line, slow - 1, signal)
    line[: slow + signal - 2] = np.nan
    return {"macd": line, "signal": signal_line, "hist": line - signal_line}


def bbands(close: npt.ArrayLike, length: int, std: float) -> Outputs:
    """Bollinger bands: ``lower``, ``mid``, ``upper``, ``percent_b`` and ``bandwidth`` (%)."""
    series = _series(close)
    frame = pandas_ta.bbands(series, length=length, std=std, ddof=0, talib=False)
    prefixes = {
        "lower": "BBL_",
        "mid": "BBM_",
        "upper": "BBU_",
        "percent_b": "BBP_",
        "bandwidth": "BBB_",
    }
    return _named(frame, series.size, prefixes, "bbands")


def stoch(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    k: int,
    d: int,
    smooth_k: int,
) -> Outputs:
    """Slow stochastic oscillator: ``k`` (smoothed %K) and ``d`` (its moving average)."""
    frame = pandas_ta.stoch(
        _series(high), _series(low), _series(close), k=k, d=d, smooth_k=smooth_k, talib=False
    )
    return _named(frame, np.size(close), {"k": "STOCHk_", "d": "STOCHd_"}, "stoch")


_FLAT_TOLERANCE = 1e-14
"""A typical-price change within this fraction of the two prices is no change (TA-Lib's rule)."""


def mfi(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
    length: int,
) -> Outputs:
    """Money flow index, 0..100, as TA-Lib has it; NaN while the window holds no flow.

    A bar's money flow (typical price x volume) counts as positive or negative
    by the change of the typical price. On tick-rounded prices that change is
    often rounding noise of 1e-14 where pandas-ta sees a rise or a fall and
    TA-Lib sees none (values then differ by tens of points); like TA-Lib, a
    change within ``_FLAT_TOLERANCE`` of the two prices counts as none.
    """
    size = np.size(close)
    typical = pandas_ta.hlc3(_series(high), _series(low), _series(close), talib=False)
    if typical is None or size <= length:
        return {VALUE: _nan(size)}
    price = typical.to_numpy(dtype=np.float64)
    change = np.diff(price, prepend=np.nan)
    previous = np.roll(price, 1)
    moved = np.abs(change) > _FLAT_TOLERANCE * (np.abs(price) + np.abs(previous))
    flow = price * np.asarray(volume, dtype=np.float64)
    rising = pd.Series(np.where(moved & (change > 0), flow, 0.0)).rolling(length).sum()
    falling = pd.Series(np.where(moved & (change < 0), flow, 0.0)).rolling(length).sum()
    values = (100.0 * rising / (rising + falling)).to_numpy(dtype=np.float64, copy=True)
    values[:length] = np.nan
    return {VALUE: values}


def obv(close: npt.ArrayLike, volume: npt.ArrayLike) -> Outputs:
    """On-balance volume: a running sum, so its level depends on where the data starts."""
    result = pandas_ta.obv(_series(close), _series(volume), talib=False)
    return _single(result, np.size(close))


def donchian(high: npt.ArrayLike, low: npt.ArrayLike, length: int) -> Outputs:
    """Donchian channel over ``length`` bars: ``lower``, ``mid`` and ``upper``."""
    frame = pandas_ta.donchian(
        _series(high), _series(low), lower_length=length, upper_length=length
    )
    prefixes = {"lower": "DCL_", "mid": "DCM_", "upper": "DCU_"}
    return _named(frame, np.size(high), prefixes, "donchian")


def supertrend(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, length: int, multiplier: float
) -> Outputs:
    """Supertrend: the active band ``trend``, ``direction`` (+1/-1), ``long`` and ``short``.

    ``long`` is the band while the direction is up and NaN otherwise; ``short``
    the other way round.
    """
    frame = pandas_ta.supertrend(
        _series(high), _series(low), _series(close), length=length, multiplier=multiplier
    )
    prefixes = {
        "trend": "SUPERT_",
        "direction": "SUPERTd_",
        "long": "SUPERTl_",
        "short": "SUPERTs_",
    }
    return _named(frame, np.size(close), prefixes, "supertrend")


def _int(params: Params, name: str) -> int:
    return int(params[name])


BuiltinCompute = Callable[[Mapping[str, FloatArray], Params], Outputs]

BUILTIN_COMPUTE: Mapping[str, BuiltinCompute] = {
    "sma": lambda data, p: sma(data["close"], _int(p, "length")),
    "ema": lambda data, p: ema(data["close"], _int(p, "length")),
    "wma": lambda data, p: wma(data["close"], _int(p, "length")),
    "rsi": lambda data, p: rsi(data["close"], _int(p, "length")),
    "roc": lambda data, p: roc(data["close"], _int(p, "length")),
    "cci": lambda data, p: cci(
        data["high"], data["low"], data["close"], _int(p, "length"), float(p["constant"])
    ),
    "atr": lambda data, p: atr(data["high"], data["low"], data["close"], _int(p, "length")),
    "adx": lambda data, p: adx(
        data["high"], data["low"], data["close"], _int(p, "length"), _int(p, "smoothing")
    ),
    "macd": lambda data, p: macd(
        data["close"], _int(p, "fast"), _int(p, "slow"), _int(p, "signal")
    ),
    "bbands": lambda data, p: bbands(data["close"], _int(p, "length"), float(p["std"])),
    "stoch": lambda data, p: stoch(
        data["high"], data["low"], data["close"], _int(p, "k"), _int(p, "d"), _int(p, "smooth_k")
    ),
    "mfi": lambda data, p: mfi(
        data["high"], data["low"], data["close"], data["volume"], _int(p, "length")
    ),
    "obv": lambda data, p: obv(data["close"], data["volume"]),
    "donchian": lambda data, p: donchian(data["high"], data["low"], _int(p, "length")),
    "supertrend": lambda data, p: supertrend(
        data["high"], data["low"], data["close"], _int(p, "length"), float(p["multiplier"])
    ),
}
"""How each built-in indicator of the catalog calls its function here, by indicator name."""

__all__ = [
    "BUILTIN_COMPUTE",
    "LIBRARY",
    "VALUE",
    "FloatArray",
    "Outputs",
    "adx",
    "atr",
    "bbands",
    "cci",
    "donchian",
    "ema",
    "macd",
    "mfi",
    "obv",
    "roc",
    "rsi",
    "sma",
    "stoch",
    "supertrend",
    "wma",
]
