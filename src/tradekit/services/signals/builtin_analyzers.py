"""The built-in analyzer types and their parameter models.

``threshold``, ``crossover``, ``band_position``, ``trend`` and ``time_interval``.
Every built-in signal has strength 1.0, so a direction's score reads as "the
weighted share of analyzers that agree", which is what ``entry.min_score``
compares against. Each analyzer reads only the values it needs on a quiet
candle and builds its reason string only when it fires. Each also says, for a
whole series at once, on which bars it could fire and in which direction
(``could_fire_toward``, and ``could_fire`` for any direction): the same
comparisons as ``analyze``, elementwise, so a backtest may skip the other bars.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from tradekit.domain import Direction, Signal
from tradekit.protocols import BarView
from tradekit.services.signals.fire_masks import (
    IndicatorColumns,
    any_direction,
    masks_toward,
)

if TYPE_CHECKING:
    from tradekit.services.signals.fire_masks import BoolArray

# How much a trend's mask widens its threshold: a bar just short of it is still replayed.
_SLOPE_MARGIN = 1e-9

_REFERENCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?$")


def _check_reference(value: str) -> str:
    if not _REFERENCE.match(value):
        raise ValueError(
            f"expected an indicator reference such as 'rsi' or 'bbands.percent_b', got {value!r}"
        )
    return value


Reference = Annotated[str, AfterValidator(_check_reference)]
"""An indicator reference as ``BarView.value`` reads it: ``key`` or ``key.output``."""

AnalyzerName = Annotated[str, Field(min_length=1, max_length=64)]


_PARAMS = ConfigDict(frozen=True, extra="forbid")


def _num(value: float) -> str:
    return f"{value:g}"


class ThresholdParams(BaseModel):
    """``threshold``: fire when ``source`` goes below ``below`` or above ``above``."""

    model_config = _PARAMS

    name: AnalyzerName | None = None
    source: Reference
    below: FiniteFloat | None = None
    above: FiniteFloat | None = None
    mode: Literal["cross", "level"] = "cross"
    below_direction: Direction = Direction.LONG
    above_direction: Direction = Direction.EXIT

    @model_validator(mode="after")
    def _levels_make_sense(self) -> Self:
        if self.below is None and self.above is None:
            raise ValueError("set 'below', 'above' or both")
        if self.below is not None and self.above is not None and self.below > self.above:
            raise ValueError(f"'below' ({self.below}) must not exceed 'above' ({self.above})")
        return self


class BandPositionParams(BaseModel):
    """``band_position``: fire when a band position such as %B leaves ``[lower, upper]``."""

    model_config = _PARAMS

    name: AnalyzerName | None = None
    source: Reference
    lower: FiniteFloat = 0.0
    upper: FiniteFloat = 1.0
    mode: Literal["cross", "level"] = "level"
    below_direction: Direction = Direction.LONG
    above_direction: Direction = Direction.EXIT

    @model_validator(mode="after")
    def _band_is_ordered(self) -> Self:
        if self.lower >= self.upper:
            raise ValueError(f"'lower' ({self.lower}) must be below 'upper' ({self.upper})")
        return self


class _LevelAnalyzer:
    """Shared logic of ``threshold`` and ``band_position``: a value against two levels.

    A missing level is stored as an infinity so the quiet path needs no ``None`` checks.
    """

    __slots__ = (
        "_above",
        "_above_direction",
        "_below",
        "_below_direction",
        "_cross",
        "_source",
        "name",
        "references",
    )

    def __init__(
        self,
        name: str,
        source: str,
        below: float | None,
        above: float | None,
        mode: str,
        below_direction: Direction,
        above_direction: Direction,
    ) -> None:
        self.name = name
        self.references: tuple[str, ...] = (source,)
        self._source = source
        self._below = -math.inf if below is None else below
        self._above = math.inf if above is None else above
        self._cross = mode == "cross"
        self._below_direction = below_direction
        self._above_direction = above_direction

    def analyze(self, view: BarView) -> Signal | None:
        now = view.value(self._source)
        if now is None:
            return None
        if now < self._below:
            if self._cross:
                previous = view.value(self._source, 1)
                # ``not >=`` so a NaN previous value never counts as a cross.
                if previous is None or not previous >= self._below:
                    return None
            return self._fire(self._below_direction, "below", self._below, now)
        if now > self._above:
            if self._cross:
                previous = view.value(self._source, 1)
                if previous is None or not previous <= self._above:
                    return None
            return self._fire(self._above_direction, "above", self._above, now)
        return None

    def could_fire(self, columns: IndicatorColumns) -> BoolArray:
        """Bars where ``analyze`` fires, in any direction."""
        return any_direction(self.could_fire_toward(columns), len(columns.bars))

    def could_fire_toward(self, columns: IndicatorColumns) -> Mapping[Direction, BoolArray]:
        """Bars where ``analyze`` fires: beyond a level (and, in cross mode, not beyond before).

        NaN (``None``) compares false either way, as in ``analyze``; since
        ``below <= above`` a value cannot be beyond both levels.
        """
        now = columns.values(self._source)
        below = now < self._below
        above = now > self._above
        if self._cross:
            previous = columns.values(self._source, 1)
            below &= previous >= self._below
            above &= previous <= self._above
        return masks_toward((self._below_direction, below), (self._above_direction, above))

    def _fire(self, direction: Direction, side: str, level: float, now: float) -> Signal:
        if self._cross:
            reason = f"{self._source} crossed {side} {_num(level)} ({now:.4g})"
        else:
            reason = f"{self._source} {now:.4g} {side} {_num(level)}"
        return Signal(direction, 1.0, reason, self.name)


class ThresholdAnalyzer(_LevelAnalyzer):
    """Fires when ``source`` crosses (or, in level mode, stays) below ``below`` / above ``above``.

    Cross mode fires only on the candle of the cross: previous >= below and now
    < below (previous <= above and now > above). RSI 30/70 mean reversion is
    ``{"source": "rsi", "below": 30, "above": 70}``: long on the cross below 30,
    exit on the cross above 70.
    """

    __slots__ = ()

    def __init__(self, params: ThresholdParams) -> None:
        levels = []
        if params.below is not None:
            levels.append(f"<{_num(params.below)}")
        if params.above is not None:
            levels.append(f">{_num(params.above)}")
        super().__init__(
            params.name or f"threshold({params.source}{','.join(levels)})",
            params.source,
            params.below,
            params.above,
            params.mode,
            params.below_direction,
            params.above_direction,
        )


class BandPositionAnalyzer(_LevelAnalyzer):
    """Fires while (level mode, the default) or when (cross mode) ``source`` leaves the band.

    Below ``lower`` gives ``below_direction`` (long), above ``upper`` gives
    ``above_direction`` (exit): Bollinger %B reversion with ``bbands.percent_b``.
    """

    __slots__ = ()

    def __init__(self, params: BandPositionParams) -> None:
        super().__init__(
            params.name or f"band_position({params.source})",
            params.source,
            params.lower,
            params.upper,
            params.mode,
            params.below_direction,
            params.above_direction,
        )


class CrossoverParams(BaseModel):
    """``crossover``: fire when ``fast`` crosses ``slow``."""

    model_config = _PARAMS

    name: AnalyzerName | None = None
    fast: Reference
    slow: Reference
    up_direction: Direction = Direction.LONG
    down_direction: Direction = Direction.EXIT

    @model_validator(mode="after")
    def _two_different_series(self) -> Self:
        if self.fast == self.slow:
            raise ValueError(f"'fast' and 'slow' are both {self.fast!r}; expected two series")
        return self


class CrossoverAnalyzer:
    """Fires on the candle where ``fast`` crosses ``slow``; touching and then crossing counts.

    Up: previous fast <= previous slow and fast > slow. Down: previous fast >=
    previous slow and fast < slow.
    """

    __slots__ = ("_down_direction", "_fast", "_slow", "_up_direction", "name", "references")

    def __init__(self, params: CrossoverParams) -> None:
        self.name = params.name or f"crossover({params.fast}/{params.slow})"
        self.references: tuple[str, ...] = (params.fast, params.slow)
        self._fast = params.fast
        self._slow = params.slow
        self._up_direction = params.up_direction
        self._down_direction = params.down_direction

    def analyze(self, view: BarView) -> Signal | None:
        fast = view.value(self._fast)
        slow = view.value(self._slow)
        if fast is None or slow is None or fast == slow:
            return None
        previous_fast = view.value(self._fast, 1)
        previous_slow = view.value(self._slow, 1)
        if previous_fast is None or previous_slow is None:
            return None
        if fast > slow:
            if previous_fast <= previous_slow:
                return Signal(
                    self._up_direction, 1.0, f"{self._fast} crossed above {self._slow}", self.name
                )
        elif fast < slow and previous_fast >= previous_slow:
            return Signal(
                self._down_direction, 1.0, f"{self._fast} crossed below {self._slow}", self.name
            )
        return None

    def could_fire(self, columns: IndicatorColumns) -> BoolArray:
        """Bars where ``analyze`` fires, in any direction."""
        return any_direction(self.could_fire_toward(columns), len(columns.bars))

    def could_fire_toward(self, columns: IndicatorColumns) -> Mapping[Direction, BoolArray]:
        """Bars where ``analyze`` fires: the order of fast and slow turned (NaN never counts)."""
        fast, slow = columns.values(self._fast), columns.values(self._slow)
        previous_fast, previous_slow = columns.values(self._fast, 1), columns.values(self._slow, 1)
        up = (fast > slow) & (previous_fast <= previous_slow)
        down = (fast < slow) & (previous_fast >= previous_slow)
        return masks_toward((self._up_direction, up), (self._down_direction, down))


class TrendParams(BaseModel):
    """``trend``: fire while ``source`` moved at least ``min_slope_pct`` over ``lookback`` bars."""

    model_config = _PARAMS

    name: AnalyzerName | None = None
    source: Reference
    lookback: PositiveInt = 10
    min_slope_pct: PositiveFloat
    up_direction: Direction = Direction.LONG
    down_direction: Direction = Direction.EXIT


class TrendAnalyzer:
    """Fires on every candle where the slope of ``source`` over ``lookback`` bars is steep enough.

    Slope is ``(now - then) / |then| * 100``; >= ``min_slope_pct`` gives
    ``up_direction``, <= ``-min_slope_pct`` gives ``down_direction``. A zero
    ``then`` gives no signal.
    """

    __slots__ = (
        "_down_direction",
        "_lookback",
        "_min_slope",
        "_source",
        "_up_direction",
        "name",
        "references",
    )

    def __init__(self, params: TrendParams) -> None:
        self.name = params.name or f"trend({params.source},{params.lookback})"
        self.references: tuple[str, ...] = (params.source,)
        self._source = params.source
        self._lookback = params.lookback
        self._min_slope = params.min_slope_pct
        self._up_direction = params.up_direction
        self._down_direction = params.down_direction

    def analyze(self, view: BarView) -> Signal | None:
        now = view.value(self._source)
        if now is None:
            return None
        then = view.value(self._source, self._lookback)
        if then is None or then == 0:
            return None
        slope = (now - then) / abs(then) * 100.0
        if slope >= self._min_slope:
            direction = self._up_direction
        elif slope <= -self._min_slope:
            direction = self._down_direction
        else:
            return None
        reason = f"{self._source} moved {slope:+.3g}% over {self._lookback} bars"
        return Signal(direction, 1.0, reason, self.name)

    def could_fire(self, columns: IndicatorColumns) -> BoolArray:
        """Bars where the slope is steep enough, either way."""
        return any_direction(self.could_fire_toward(columns), len(columns.bars))

    def could_fire_toward(self, columns: IndicatorColumns) -> Mapping[Direction, BoolArray]:
        """Bars where the slope is steep enough, with a relative margin of 1e-9 to spare.

        The slope is computed with the same float operations as ``analyze``; the
        margin only widens the masks, so no bar ``analyze`` fires on is left out.
        """
        import numpy as np  # masks are a backtest's; building analyzers does not need numpy

        now = columns.values(self._source)
        then = columns.values(self._source, self._lookback)
        with np.errstate(all="ignore"):  # Python floats overflow to inf silently too
            slope = (now - then) / np.abs(then) * 100.0
        steep = self._min_slope * (1 - _SLOPE_MARGIN)
        defined = then != 0
        up = (slope >= steep) & defined
        down = (slope <= -steep) & defined
        return masks_toward((self._up_direction, up), (self._down_direction, down))


class TimeIntervalParams(BaseModel):
    """``time_interval``: fire every ``every_bars`` bars, starting at bar ``offset``."""

    model_config = _PARAMS

    name: AnalyzerName | None = None
    every_bars: PositiveInt
    offset: NonNegativeInt = 0
    direction: Direction = Direction.LONG

    @model_validator(mode="after")
    def _offset_within_period(self) -> Self:
        if self.offset >= self.every_bars:
            raise ValueError(
                f"'offset' ({self.offset}) must be below 'every_bars' ({self.every_bars})"
            )
        return self


class TimeIntervalAnalyzer:
    """Fires on bars where ``(bar - offset) % every_bars == 0``: time-based DCA, no indicator."""

    __slots__ = ("_direction", "_every", "_offset", "name", "references")

    def __init__(self, params: TimeIntervalParams) -> None:
        self.name = params.name or f"time_interval({params.every_bars})"
        self.references: tuple[str, ...] = ()
        self._every = params.every_bars
        self._offset = params.offset
        self._direction = params.direction

    def analyze(self, view: BarView) -> Signal | None:
        bar = view.bar
        if (bar - self._offset) % self._every:
            return None
        return Signal(self._direction, 1.0, f"every {self._every} bars (bar {bar})", self.name)

    def could_fire(self, columns: IndicatorColumns) -> BoolArray:
        """Exactly the bars ``analyze`` fires on."""
        fires: BoolArray = (columns.bars - self._offset) % self._every == 0
        return fires

    def could_fire_toward(self, columns: IndicatorColumns) -> Mapping[Direction, BoolArray]:
        """Exactly the bars ``analyze`` fires on, all in its one direction."""
        return {self._direction: self.could_fire(columns)}


__all__ = [
    "AnalyzerName",
    "BandPositionAnalyzer",
    "BandPositionParams",
    "CrossoverAnalyzer",
    "CrossoverParams",
    "Reference",
    "ThresholdAnalyzer",
    "ThresholdParams",
    "TimeIntervalAnalyzer",
    "TimeIntervalParams",
    "TrendAnalyzer",
    "TrendParams",
]
