"""Incremental forms of the built-in indicators: one closed bar in, that bar's outputs out.

A stepper holds the state an indicator needs from the bars before (a Wilder
average, the last ``length`` closes) and reproduces ``backend``'s whole-series
arithmetic bar by bar: the same SMA seeds, pandas' own EWM update
(``((1 - a) * y + a * x) / ((1 - a) + a)`` with ``a`` rebuilt from the centre of
mass as pandas does), windows re-summed exactly (``math.fsum``) rather than as
drifting running sums, and the same zero-range rule (``non_zero_range``). Fed the
same bars from the same first bar, its outputs equal the backend's to 1e-9
(``tests/unit/test_indicator_incremental.py``). Finite windows cost O(window) per
bar, the rest O(1). Outputs are NaN until the stepper's own warm-up is over.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

Row = tuple[float, ...]
NAN = math.nan
_EPSILON = sys.float_info.epsilon
_FLAT_TOLERANCE = 1e-14


class Stepper(Protocol):
    """One key's incremental state; ``step`` takes the spec's inputs of the next bar, in order."""

    def step(self, inputs: Row) -> Row: ...


def _non_zero(difference: float) -> float:
    return difference if difference != 0 else _EPSILON


def _divide(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with numpy's answers where Python raises."""
    if denominator == 0:
        if numerator == 0 or numerator != numerator:
            return NAN
        return math.copysign(math.inf, numerator) * math.copysign(1.0, denominator)
    return numerator / denominator


class SeededAverage:
    """An exponential average seeded with the mean of its first ``length`` inputs (pandas-ta's
    ``ema`` and ``rma``), updated as pandas' ``ewm(adjust=False)`` does."""

    __slots__ = ("_alpha", "_decay", "_length", "_seed", "value")

    def __init__(self, length: int, alpha: float) -> None:
        center_of_mass = 1.0 / alpha - 1.0
        self._alpha = 1.0 / (1.0 + center_of_mass)
        self._decay = 1.0 - self._alpha
        self._length = length
        self._seed: list[float] = []
        self.value = NAN

    @classmethod
    def ema(cls, length: int) -> SeededAverage:
        average = cls(length, 1.0)
        average._alpha = 1.0 / (1.0 + (length - 1) / 2.0)
        average._decay = 1.0 - average._alpha
        return average

    @classmethod
    def wilder(cls, length: int) -> SeededAverage:
        return cls(length, 1.0 / length)

    def add(self, value: float) -> float:
        if self._seed is not None and len(self._seed) < self._length:
            self._seed.append(value)
            if len(self._seed) == self._length:
                self.value = math.fsum(self._seed) / self._length
            return self.value
        current = self.value
        if current != value:
            self.value = (self._decay * current + self._alpha * value) / (self._decay + self._alpha)
        return self.value


class Window:
    """The last ``length`` inputs; ``full`` once there are that many."""

    __slots__ = ("length", "values")

    def __init__(self, length: int) -> None:
        self.length = length
        self.values: deque[float] = deque(maxlen=length)

    def add(self, value: float) -> bool:
        self.values.append(value)
        return len(self.values) == self.length

    def mean(self) -> float:
        return math.fsum(self.values) / self.length


class Sma:
    __slots__ = ("_window",)

    def __init__(self, length: int) -> None:
        self._window = Window(length)

    def step(self, inputs: Row) -> Row:
        return (self._window.mean() if self._window.add(inputs[0]) else NAN,)


class Ema:
    __slots__ = ("_average",)

    def __init__(self, length: int) -> None:
        self._average = SeededAverage.ema(length)

    def step(self, inputs: Row) -> Row:
        return (self._average.add(inputs[0]),)


class Wma:
    __slots__ = ("_total", "_window")

    def __init__(self, length: int) -> None:
        self._window = Window(length)
        self._total = 0.5 * length * (length + 1)

    def step(self, inputs: Row) -> Row:
        if not self._window.add(inputs[0]):
            return (NAN,)
        weighted = math.fsum(w * x for w, x in enumerate(self._window.values, start=1))
        return (weighted / self._total,)


class Rsi:
    __slots__ = ("_gain", "_loss", "_previous")

    def __init__(self, length: int) -> None:
        self._gain = SeededAverage.wilder(length)
        self._loss = SeededAverage.wilder(length)
        self._previous = NAN

    def step(self, inputs: Row) -> Row:
        close = inputs[0]
        previous, self._previous = self._previous, close
        if previous != previous:
            return (NAN,)
        change = close - previous
        gain = self._gain.add(change if change > 0 else 0.0)
        loss = abs(self._loss.add(change if change < 0 else 0.0))
        return (_divide(100.0 * gain, gain + loss),)


class Roc:
    __slots__ = ("_window",)

    def __init__(self, length: int) -> None:
        self._window = Window(length + 1)

    def step(self, inputs: Row) -> Row:
        close = inputs[0]
        if not self._window.add(close):
            return (NAN,)
        then = self._window.values[0]
        return (_divide(100.0 * (close - then), then),)


class TrueRange:
    """Pandas-ta's true range: NaN on the first bar, then the widest of the three ranges."""

    __slots__ = ("_previous",)

    def __init__(self) -> None:
        self._previous = NAN

    def add(self, high: float, low: float, close: float) -> float:
        previous, self._previous = self._previous, close
        if previous != previous:
            return NAN
        return max(abs(_non_zero(high - low)), abs(high - previous), abs(previous - low))


class Atr:
    __slots__ = ("_average", "_range")

    def __init__(self, length: int) -> None:
        self._range = TrueRange()
        self._average = SeededAverage.wilder(length)

    def add(self, high: float, low: float, close: float) -> float:
        true_range = self._range.add(high, low, close)
        return NAN if true_range != true_range else self._average.add(true_range)

    def step(self, inputs: Row) -> Row:
        return (self.add(*inputs),)


class WilderSum:
    """TA-Lib's Wilder smoothing as pandas-ta-classic's ``wilder_smooth`` computes it over a
    series whose first bar is undefined (directional movement, true range): the sum of the
    next ``length - 1`` inputs seeds it on bar ``length - 1``, then each input is added to
    ``value - value / length``; an undefined input carries the value."""

    __slots__ = ("_bar", "_length", "_seed", "value")

    def __init__(self, length: int) -> None:
        self._length = length
        self._bar = 0
        self._seed: list[float] = []
        self.value = NAN

    def add(self, value: float) -> float:
        bar = self._bar
        self._bar += 1
        length = self._length
        if bar < length:
            if bar >= 1 and value == value:  # the seed is a NaN-skipping sum
                self._seed.append(value)
            if bar == length - 1:
                self.value = math.fsum(self._seed)
            return self.value
        if value == value:
            current = self.value
            self.value = current - current / length + value
        return self.value


class GappedAverage:
    """Pandas-ta's ``rma`` of a series with undefined bars (ADX's DX): seeded with the mean of
    the defined values among the ``length`` bars from its first defined one, then pandas'
    ``ewm(adjust=False)``, in which an undefined bar decays the weight of the average so far
    and carries its value."""

    __slots__ = ("_alpha", "_decay", "_length", "_old_weight", "_seed", "value")

    def __init__(self, length: int) -> None:
        center_of_mass = length - 1.0
        self._alpha = 1.0 / (1.0 + center_of_mass)
        self._decay = 1.0 - self._alpha
        self._length = length
        self._seed: list[float] | None = []
        self._old_weight = 1.0
        self.value = NAN

    def add(self, value: float) -> float:
        seed = self._seed
        if seed is not None:
            if seed or value == value:
                seed.append(value)
            if len(seed) == self._length:
                defined = [item for item in seed if item == item]
                self.value = math.fsum(defined) / len(defined)
                self._seed = None
            return self.value
        self._old_weight *= self._decay
        if value == value:
            current, old = self.value, self._old_weight
            if current != value:
                self.value = (old * current + self._alpha * value) / (old + self._alpha)
            self._old_weight = 1.0
        return self.value


class Adx:
    """Pandas-ta-classic's ADX (TA-Lib's): +DM, -DM and the true range Wilder-summed
    (``WilderSum``), +DI and -DI from the bar after the seed, and ADX the ``rma`` of DX."""

    __slots__ = ("_adx", "_bar", "_high", "_length", "_low", "_minus", "_plus", "_range", "_tr")

    def __init__(self, length: int, smoothing: int) -> None:
        self._length = length
        self._range = TrueRange()
        self._plus = WilderSum(length)
        self._minus = WilderSum(length)
        self._tr = WilderSum(length)
        self._adx = GappedAverage(smoothing)
        self._high = self._low = NAN
        self._bar = 0

    def step(self, inputs: Row) -> Row:
        high, low, close = inputs
        previous_high, previous_low = self._high, self._low
        self._high, self._low = high, low
        true_range = self._range.add(high, low, close)
        if previous_high != previous_high:
            plus = minus = NAN
        else:
            up, down = high - previous_high, previous_low - low
            plus = up if up > down and up > 0 else 0.0
            minus = down if down > up and down > 0 else 0.0
            # pandas-ta's ``zero``: a movement within a float epsilon of 0 is none
            plus = 0.0 if abs(plus) < _EPSILON else plus
            minus = 0.0 if abs(minus) < _EPSILON else minus
        smoothed_plus = self._plus.add(plus)
        smoothed_minus = self._minus.add(minus)
        smoothed_range = self._tr.add(true_range)
        bar = self._bar
        self._bar += 1
        if bar < self._length:  # the seed bar itself is not reported, as in TA-Lib
            return (self._adx.add(NAN), NAN, NAN)
        plus_di = _divide(100.0 * smoothed_plus, smoothed_range)
        minus_di = _divide(100.0 * smoothed_minus, smoothed_range)
        dx = _divide(100.0 * abs(plus_di - minus_di), plus_di + minus_di)
        return (self._adx.add(dx), plus_di, minus_di)


class Cci:
    __slots__ = ("_constant", "_window")

    def __init__(self, length: int, constant: float) -> None:
        self._window = Window(length)
        self._constant = constant

    def step(self, inputs: Row) -> Row:
        high, low, close = inputs
        typical = (high + low + close) / 3.0
        if not self._window.add(typical):
            return (NAN,)
        mean = self._window.mean()
        deviation = math.fsum(abs(value - mean) for value in self._window.values)
        return (_divide(typical - mean, self._constant * (deviation / self._window.length)),)


class Macd:
    """TA-Lib's MACD as ``backend.macd``: both EMAs start at bar ``slow - 1``."""

    __slots__ = ("_bar", "_fast", "_fast_from", "_signal", "_slow", "_start")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self._fast = SeededAverage.ema(fast)
        self._slow = SeededAverage.ema(slow)
        self._signal = SeededAverage.ema(signal)
        self._fast_from = slow - fast
        self._start = slow + signal - 2
        self._bar = 0

    def step(self, inputs: Row) -> Row:
        close = inputs[0]
        bar = self._bar
        self._bar += 1
        slow = self._slow.add(close)
        if bar < self._fast_from:
            return (NAN, NAN, NAN)
        line = self._fast.add(close) - slow
        if line != line:
            return (NAN, NAN, NAN)
        signal = self._signal.add(line)
        if bar < self._start:
            return (NAN, NAN, NAN)
        return (line, signal, line - signal)


class Bbands:
    __slots__ = ("_deviations", "_window")

    def __init__(self, length: int, deviations: float) -> None:
        self._window = Window(length)
        self._deviations = deviations

    def step(self, inputs: Row) -> Row:
        close = inputs[0]
        if not self._window.add(close):
            return (NAN,) * 5
        mid = self._window.mean()
        variance = math.fsum((value - mid) ** 2 for value in self._window.values)
        width = self._deviations * math.sqrt(variance / self._window.length)
        lower, upper = mid - width, mid + width
        spread = _non_zero(upper - lower)
        return (
            lower,
            mid,
            upper,
            _divide(_non_zero(close - lower), spread),
            _divide(100.0 * spread, mid),
        )


class Stoch:
    __slots__ = ("_d", "_highs", "_k", "_lows")

    def __init__(self, k: int, d: int, smooth_k: int) -> None:
        self._highs = Window(k)
        self._lows = Window(k)
        self._k = Window(smooth_k)
        self._d = Window(d)

    def step(self, inputs: Row) -> Row:
        high, low, close = inputs
        self._highs.add(high)
        if not self._lows.add(low):
            return (NAN, NAN)
        lowest = min(self._lows.values)
        raw = _divide(100.0 * (close - lowest), _non_zero(max(self._highs.values) - lowest))
        if not self._k.add(raw):
            return (NAN, NAN)
        smoothed = self._k.mean()
        return (smoothed, self._d.mean() if self._d.add(smoothed) else NAN)


class Mfi:
    __slots__ = ("_falling", "_previous", "_rising")

    def __init__(self, length: int) -> None:
        self._rising = Window(length)
        self._falling = Window(length)
        self._previous = NAN

    def step(self, inputs: Row) -> Row:
        high, low, close, volume = inputs
        price = (high + low + close) / 3.0
        previous, self._previous = self._previous, price
        change = price - previous
        moved = abs(change) > _FLAT_TOLERANCE * (abs(price) + abs(previous))
        flow = price * volume
        self._rising.add(flow if moved and change > 0 else 0.0)
        if not self._falling.add(flow if moved and change < 0 else 0.0) or previous != previous:
            return (NAN,)
        rising, falling = math.fsum(self._rising.values), math.fsum(self._falling.values)
        return (_divide(100.0 * rising, rising + falling),)


class Obv:
    """On-balance volume from the stepper's first bar (the cache chains its level)."""

    __slots__ = ("_previous", "_total")

    def __init__(self) -> None:
        self._previous = NAN
        self._total = 0.0

    def step(self, inputs: Row) -> Row:
        close, volume = inputs
        previous, self._previous = self._previous, close
        if previous != previous or close > previous:
            self._total += volume
        elif close < previous:
            self._total += -volume
        return (self._total,)


class Donchian:
    __slots__ = ("_highs", "_lows")

    def __init__(self, length: int) -> None:
        self._highs = Window(length)
        self._lows = Window(length)

    def step(self, inputs: Row) -> Row:
        high, low = inputs
        self._highs.add(high)
        if not self._lows.add(low):
            return (NAN, NAN, NAN)
        lower, upper = min(self._lows.values), max(self._highs.values)
        return (lower, 0.5 * (lower + upper), upper)


class Supertrend:
    """Pandas-ta's supertrend loop, one bar at a time, over Wilder's ATR."""

    __slots__ = ("_atr", "_direction", "_lower", "_multiplier", "_started", "_upper")

    def __init__(self, length: int, multiplier: float) -> None:
        self._atr = Atr(length)
        self._multiplier = multiplier
        self._direction = 1.0
        self._upper = self._lower = NAN
        self._started = False

    def step(self, inputs: Row) -> Row:
        high, low, close = inputs
        middle = 0.5 * (high + low)
        band = self._multiplier * self._atr.add(high, low, close)
        upper, lower = middle + band, middle - band
        if not self._started:
            self._started = True
            self._upper, self._lower = upper, lower
            return (0.0, 1.0, NAN, NAN)
        if close > self._upper:
            self._direction = 1.0
        elif close < self._lower:
            self._direction = -1.0
        else:
            if self._direction > 0 and lower < self._lower:
                lower = self._lower
            if self._direction < 0 and upper > self._upper:
                upper = self._upper
        self._upper, self._lower = upper, lower
        if self._direction > 0:
            return (lower, 1.0, lower, NAN)
        return (upper, -1.0, NAN, upper)


def _length(params: Mapping[str, float], name: str = "length") -> int:
    return int(params[name])


STEPPERS: Mapping[str, Callable[[Mapping[str, float]], Stepper]] = {
    "sma": lambda p: Sma(_length(p)),
    "ema": lambda p: Ema(_length(p)),
    "wma": lambda p: Wma(_length(p)),
    "rsi": lambda p: Rsi(_length(p)),
    "roc": lambda p: Roc(_length(p)),
    "cci": lambda p: Cci(_length(p), float(p["constant"])),
    "atr": lambda p: Atr(_length(p)),
    "adx": lambda p: Adx(_length(p), _length(p, "smoothing")),
    "macd": lambda p: Macd(_length(p, "fast"), _length(p, "slow"), _length(p, "signal")),
    "bbands": lambda p: Bbands(_length(p), float(p["std"])),
    "stoch": lambda p: Stoch(_length(p, "k"), _length(p, "d"), _length(p, "smooth_k")),
    "mfi": lambda p: Mfi(_length(p)),
    "obv": lambda p: Obv(),
    "donchian": lambda p: Donchian(_length(p)),
    "supertrend": lambda p: Supertrend(_length(p), float(p["multiplier"])),
}
"""The incremental form of each built-in indicator."""

__all__ = ["STEPPERS", "SeededAverage", "Stepper", "Window"]
