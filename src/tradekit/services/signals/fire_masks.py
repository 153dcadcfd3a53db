"""Where analyzers could fire, judged over a whole series at once.

An analyzer may offer ``could_fire(columns)``: one boolean per bar, False only
where its ``analyze`` certainly returns ``None`` (and does not raise), and
``could_fire_toward(columns)``: the same per direction of the signal. A backtest
uses these masks to skip the bars on which a strategy can only do its
bookkeeping, and to tell the bars whose signals could act on the strategy's
state (open or close a position) from those on which they can only be published
(``SignalMasks``). ``IndicatorColumns`` is what such a method reads: every
indicator value of one symbol as an array, the way ``BarView.value`` reads them
one bar at a time.

The masks import numpy when they are computed, not with this module: building
an analyzer, which validating a strategy does, does not load it.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

from tradekit.domain import Direction, Side

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from tradekit.services.indicators.backend import FloatArray
    from tradekit.services.indicators.cache import IndicatorRegistry

    BoolArray: TypeAlias = npt.NDArray[np.bool_]
    BarArray: TypeAlias = npt.NDArray[np.int64]


class IndicatorColumns(Protocol):
    """Indicator values of one symbol over a range of bars, one array entry per bar.

    ``values(ref, back)[i]`` is ``BarView.value(ref, back)`` on bar ``bars[i]``,
    NaN where that returns ``None``.
    """

    @property
    def bars(self) -> BarArray: ...

    def values(self, ref: str, back: int = 0) -> FloatArray: ...


@runtime_checkable
class MasksFiring(Protocol):
    """An analyzer that can say in advance on which bars it could fire."""

    def could_fire(self, columns: IndicatorColumns) -> BoolArray:
        """True on every bar where ``analyze`` might return a signal or raise (more is allowed)."""
        ...


@runtime_checkable
class MasksFiringToward(Protocol):
    """An analyzer that can say in advance on which bars it could fire, and in which direction."""

    def could_fire_toward(self, columns: IndicatorColumns) -> Mapping[Direction, BoolArray]:
        """Per direction, True on every bar where ``analyze`` might return a signal of that
        direction (more is allowed); a direction left out never fires. ``analyze`` must not
        raise on a bar all of them rule out."""
        ...


def masks_toward(*pairs: tuple[Direction, BoolArray]) -> dict[Direction, BoolArray]:
    """``could_fire_toward``'s answer from (direction, mask) pairs; masks of one direction OR'ed."""
    found: dict[Direction, BoolArray] = {}
    for direction, mask in pairs:
        earlier = found.get(direction)
        found[direction] = mask if earlier is None else earlier | mask
    return found


def any_direction(masks: Mapping[Direction, BoolArray], size: int) -> BoolArray:
    """The bars where a signal of any direction could fire."""
    import numpy as np  # masks are a backtest's; building an analyzer does not need numpy

    fires = np.zeros(size, dtype=np.bool_)
    for mask in masks.values():
        fires |= mask
    return fires


@dataclass(frozen=True, slots=True)
class ScoreBounds:
    """The bars where any analyzer could fire, ascending, and on each the highest score each
    direction could reach there (``long[i]`` is the bound on ``bars[i]``)."""

    bars: BarArray
    long: FloatArray
    short: FloatArray
    exit: FloatArray


OPENS = 1
"""``SignalMasks`` flag: a signal on that bar could open a position (when flat)."""
CLOSES_LONG = 2
"""``SignalMasks`` flag: a signal on that bar could close a long position (signal exit)."""
CLOSES_SHORT = 4
"""``SignalMasks`` flag: a signal on that bar could close a short position (signal exit)."""


@dataclass(frozen=True, slots=True)
class SignalMasks:
    """Of one strategy's bars, those an analyzer could fire on, and what their signals could do.

    ``bars`` ascending; ``flags[i]`` says (``OPENS``, ``CLOSES_LONG``,
    ``CLOSES_SHORT``) what a signal on ``bars[i]`` could do. Compact on
    purpose: a thousand strategies each hold one for a whole series.
    """

    bars: array[int]
    flags: bytes

    def may_act(self, index: int, side: Side | None, entries: bool) -> bool:
        """Whether the signals of ``bars[index]`` could act on a strategy holding a ``side``
        position (``None``: flat) that may (``entries``) or may not open one."""
        flags = self.flags[index]
        if side is None:
            return entries and bool(flags & OPENS)
        return bool(flags & (CLOSES_LONG if side is Side.LONG else CLOSES_SHORT))


class RegistryColumns:
    """``IndicatorColumns`` read from one strategy's indicator registry; built per use.

    Covers bars ``first`` up to ``stop`` of ``symbol``; arrays are cached, so two
    analyzers reading the same reference share one.
    """

    __slots__ = ("_cache", "_first", "_registry", "_stop", "_symbol", "bars")

    def __init__(self, registry: IndicatorRegistry, symbol: str, first: int, stop: int) -> None:
        self._registry = registry
        self._symbol = symbol
        self._first = first
        self._stop = stop
        self._cache: dict[tuple[str, int], FloatArray] = {}
        import numpy as np  # masks are a backtest's; building an analyzer does not need numpy

        self.bars: BarArray = np.arange(first, stop, dtype=np.int64)

    def values(self, ref: str, back: int = 0) -> FloatArray:
        if back < 0:
            raise ValueError(f"back must be >= 0 (no reading ahead), got {back}")
        key = (ref, back)
        found = self._cache.get(key)
        if found is None:
            found = self._registry.values(self._symbol, ref, self._first - back, self._stop - back)
            found.flags.writeable = False
            self._cache[key] = found
        return found


__all__ = [
    "CLOSES_LONG",
    "CLOSES_SHORT",
    "OPENS",
    "IndicatorColumns",
    "MasksFiring",
    "MasksFiringToward",
    "RegistryColumns",
    "ScoreBounds",
    "SignalMasks",
    "any_direction",
    "masks_toward",
]
