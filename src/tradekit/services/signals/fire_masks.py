"""Where analyzers could fire, judged over a whole series at once.

An analyzer may offer ``could_fire(columns)``: one boolean per bar, False only
where its ``analyze`` certainly returns ``None`` (and does not raise). A backtest
uses these masks to skip the bars on which a strategy can only do its
bookkeeping. ``IndicatorColumns`` is what such a method reads: every indicator
value of one symbol as an array, the way ``BarView.value`` reads them one bar at
a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from tradekit.services.indicators.backend import FloatArray

if TYPE_CHECKING:
    from tradekit.services.indicators.cache import IndicatorRegistry

BoolArray = npt.NDArray[np.bool_]
BarArray = npt.NDArray[np.int64]


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


__all__ = ["BarArray", "BoolArray", "IndicatorColumns", "MasksFiring", "RegistryColumns"]
