"""Indicator values, computed once per (symbol, timeframe, indicator, params) and shared.

``IndicatorCache`` (one per process) holds one entry per key; every strategy
using BTC/USDT 1h ``rsi(14)`` reads the same numpy array, indexed by absolute
bar, NaN meaning not ready. An entry is brought up to date lazily, on the first
request for a bar it lacks, with ONE backend call however many strategies ask:

- Catching up on many bars (a bulk-loaded backtest series, a strategy loaded
  onto a long history) computes over the whole kept series in one vectorized
  call; value ``t`` is read at bar ``t``. Only causal indicators are allowed, so
  this equals what was knowable at ``t``.
- Live, a few new closed bars (one, normally) step the entry's incremental
  state (``spec.incremental``, ``incremental.py``): O(1), or O(window) for
  finite windows, with the values the whole-series computation gives. The state
  is built on the first such bar by replaying the kept history through it, and
  dropped whenever a bulk catch-up computes instead. Running sums (OBV) are
  chained: the stepped level is shifted onto the stored one.
- An indicator without an incremental form (a user-defined one) computes one new
  closed bar over a bounded window of ``spec.window(params)`` bars = warm-up +
  settle + 1.
  For finite-window indicators settle is 0 and the window value equals the
  whole-series one. For recursive ones the window starts from a fresh seed;
  settle is the number of bars after which that seed weighs less than 1e-10,
  so window and whole-series values agree to about 1e-10 relative. Running sums
  are chained: new value = previous value + the window's increment.

``IndicatorRegistry`` (one per strategy) holds the strategy's own indicators,
resolves references such as ``rsi``, ``ema_fast`` or ``macd.signal`` once, and
reads values on the per-candle path.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from tradekit.config.strategy import IndicatorConfig
from tradekit.errors import ConfigError, ConfigProblem, DataError, TradekitError
from tradekit.services.indicators.backend import FloatArray
from tradekit.services.indicators.catalog import (
    INDICATORS,
    IndicatorSpec,
    NormalizedParams,
    ParamSpec,
    check_references,
    references_of,
    register_indicator,
    resolve_indicators,
    unknown_reference_message,
    unregister_indicator,
    validate_indicator,
)
from tradekit.services.indicators.incremental import Stepper
from tradekit.services.market.candles import BarColumns, CandleSeries, CandleStore

STEP_LIMIT = 64
"""New bars up to which an incremental indicator steps; more catch up in one backend call."""


class IndicatorKey(NamedTuple):
    """What makes two requests share one computation."""

    symbol: str
    timeframe: str
    name: str
    params: NormalizedParams


class IndicatorEntry:
    """The computed values of one key, shared by every strategy that claims it.

    Lives in the cache while at least one strategy claims it. ``arrays[i]`` holds
    output ``spec.output_names[i]``; row ``bar - base`` is bar ``bar``; bars from
    ``first`` up to ``next_bar - 1`` are computed.
    """

    __slots__ = (
        "_columns",
        "arrays",
        "base",
        "dense",
        "first",
        "key",
        "lookback",
        "next_bar",
        "params",
        "series",
        "shift",
        "spec",
        "stepper",
        "stepper_origin",
        "users",
        "window",
    )

    def __init__(self, key: IndicatorKey, spec: IndicatorSpec, series: CandleSeries) -> None:
        self.key = key
        self.spec = spec
        self.series = series
        self.params = dict(key.params)
        self.lookback = spec.lookback(self.params)
        self.window = spec.window(self.params)
        names = spec.output_names
        self.dense = tuple(i for i, name in enumerate(names) if name not in spec.sparse_outputs)
        self.users: set[str] = set()
        start = series.first_kept_bar
        self._columns = BarColumns(dict.fromkeys(names, np.float64), series.capacity, start)
        self.next_bar = start
        self.stepper: Stepper | None = None
        """Incremental state through bar ``next_bar - 1``, or ``None`` until a live step."""
        self.stepper_origin = start
        """The first bar the stepper was fed: its warm-up counts from there."""
        self.shift: tuple[float, ...] = ()
        """What moves a running sum's stepped level onto the stored one."""
        self._sync()

    def _sync(self) -> None:
        columns = self._columns
        self.arrays: list[FloatArray] = [columns.arrays[name] for name in self.spec.output_names]
        self.base = columns.base
        self.first = columns.first

    def value(self, output: int, bar: int) -> float | None:
        """The stored value of output number ``output`` at ``bar``; ``None`` when NaN or absent."""
        if bar < self.first or bar >= self.next_bar:
            return None
        found = self.arrays[output][bar - self.base]
        return None if found != found else float(found)

    def ready(self, bar: int) -> bool:
        """True when every output that is not sparse has a value at ``bar``."""
        return all(self.value(output, bar) is not None for output in self.dense)

    def store(self, start: int, computed: dict[str, FloatArray], window_start: int) -> None:
        """Keep values for bars ``start``.. from a computation that began at ``window_start``."""
        offset = start - window_start
        values: dict[str, FloatArray] = {}
        chain = self.spec.cumulative and offset > 0 and start == self.next_bar
        for index, name in enumerate(self.spec.output_names):
            column = computed[name]
            part = np.array(column[offset:], dtype=np.float64)
            part[: max(0, self.lookback - offset)] = np.nan
            if chain:
                previous = self.value(index, start - 1)
                if previous is not None and np.isfinite(column[offset - 1]):
                    part += previous - column[offset - 1]
            values[name] = part
        self._columns.extend(start, values)
        self.next_bar = self._columns.end
        self.stepper = None
        self._sync()

    def push(self, outputs: tuple[float, ...]) -> None:
        """Keep one stepped bar's outputs (in ``spec.output_names`` order) as bar ``next_bar``."""
        if self.next_bar < self.stepper_origin + self.lookback:
            outputs = (np.nan,) * len(outputs)
        elif self.shift:
            outputs = tuple(value + moved for value, moved in zip(outputs, self.shift, strict=True))
        self.next_bar = self._columns.push(outputs) + 1
        self._sync()


class IndicatorCache:
    """Every computed indicator of the process, by ``IndicatorKey``; one per process.

    Entries are claimed by strategies (``claim``) and freed when the last
    claimant is released (``release``, called by the factory on unload).
    ``computations`` counts backend calls and stepped bars (``backend_calls``
    the former alone), so sharing can be checked.
    """

    def __init__(self, store: CandleStore) -> None:
        self._store = store
        self._entries: dict[IndicatorKey, IndicatorEntry] = {}
        # Claims are counted: during a reload the old and the new registry of one
        # strategy both hold their keys until the old one is released.
        self._claims: dict[str, Counter[IndicatorKey]] = {}
        self._lock = threading.Lock()
        self.backend_calls = 0
        self.computations = 0

    def claim(
        self, strategy_id: str, symbol: str, timeframe: str, name: str, params: NormalizedParams
    ) -> IndicatorEntry:
        """The entry for the key, created on first claim; records ``strategy_id`` as a user.

        ``params`` must be normalized (``validate_indicator``).
        """
        key = IndicatorKey(symbol, timeframe, name, params)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                series = self._store.series(symbol, timeframe)
                entry = self._entries[key] = IndicatorEntry(key, INDICATORS[name], series)
            entry.users.add(strategy_id)
            self._claims.setdefault(strategy_id, Counter())[key] += 1
            return entry

    def release_keys(self, strategy_id: str, keys: Iterable[IndicatorKey]) -> int:
        """Drop one claim of ``strategy_id`` on each of ``keys`` (one registry's claims).

        Returns how many entries no one claims any more.
        """
        with self._lock:
            claims = self._claims.get(strategy_id)
            if claims is None:
                return 0
            dropped = []
            for key in keys:
                if claims[key] > 0:
                    claims[key] -= 1
                    if claims[key] == 0:
                        del claims[key]
                        dropped.append(key)
            if not claims:
                del self._claims[strategy_id]
            return self._drop_users(strategy_id, dropped)

    def _drop_users(self, strategy_id: str, keys: Iterable[IndicatorKey]) -> int:
        freed = 0
        for key in keys:
            entry = self._entries.get(key)
            if entry is None:
                continue
            entry.users.discard(strategy_id)
            if not entry.users:
                del self._entries[key]
                freed += 1
        return freed

    def release(self, strategy_id: str) -> int:
        """Drop every claim of ``strategy_id``; returns how many entries no one claims any more.

        A single registry should be let go with ``IndicatorRegistry.release`` instead:
        this also drops the claims of a newer registry built under the same id.
        """
        with self._lock:
            return self._drop_users(strategy_id, list(self._claims.pop(strategy_id, ())))

    def update(self, entry: IndicatorEntry) -> None:
        """Compute ``entry`` through the last bar of its series: a few new bars step its
        incremental state, more (or an indicator without one) take one backend call."""
        series = entry.series
        stop = series.last_bar + 1
        start = max(entry.next_bar, series.first_kept_bar)
        if start >= stop:
            return
        stepping = entry.spec.incremental is not None and start == entry.next_bar
        if stepping and stop - start <= STEP_LIMIT:
            self._step(entry, start, stop)
            return
        window_start = max(series.first_kept_bar, start - entry.window + 1)
        columns = series.columns(window_start, stop)
        spec = entry.spec
        result = spec.compute({name: columns[name] for name in spec.inputs}, entry.params)
        self.backend_calls += 1
        self.computations += 1
        size = stop - window_start
        computed: dict[str, FloatArray] = {}
        for name in spec.output_names:
            column = np.asarray(result.get(name, ()), dtype=np.float64)
            if column.shape != (size,):
                raise TradekitError(
                    f"indicator '{spec.name}' returned {column.shape} values for output "
                    f"'{name}' over {size} bars"
                )
            computed[name] = column
        entry.store(start, computed, window_start)

    def _step(self, entry: IndicatorEntry, start: int, stop: int) -> None:
        series = entry.series
        spec = entry.spec
        stepper = entry.stepper
        if stepper is None:
            stepper = self._seed(entry, start)
        columns = series.columns(start, stop)
        inputs = [columns[name].tolist() for name in spec.inputs]
        step = stepper.step
        for row in zip(*inputs, strict=True):
            entry.push(step(row))
        self.computations += stop - start

    def _seed(self, entry: IndicatorEntry, start: int) -> Stepper:
        """A stepper fed every kept bar before ``start``; for a running sum, also the shift
        that continues the stored level."""
        spec = entry.spec
        assert spec.incremental is not None
        stepper = spec.incremental(entry.params)
        origin = entry.series.first_kept_bar
        columns = entry.series.columns(origin, start)
        last: tuple[float, ...] = ()
        for row in zip(*(columns[name].tolist() for name in spec.inputs), strict=True):
            last = stepper.step(row)
        entry.stepper = stepper
        entry.stepper_origin = origin
        entry.shift = ()
        if spec.cumulative and last:
            stored = np.array([entry.value(i, start - 1) for i in range(len(last))], dtype=float)
            if not np.isnan(stored).any():
                entry.shift = tuple((stored - np.array(last)).tolist())
        return stepper

    def precompute(self, series: CandleSeries | None = None) -> int:
        """Bring every entry (on ``series``, or all) up to date now; returns backend calls made."""
        before = self.backend_calls
        for entry in list(self._entries.values()):
            if series is None or entry.series is series:
                self.update(entry)
        return self.backend_calls - before

    def keys(self) -> list[IndicatorKey]:
        return list(self._entries)

    def users(self, key: IndicatorKey) -> frozenset[str]:
        entry = self._entries.get(key)
        return frozenset(entry.users) if entry is not None else frozenset()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


Slot = tuple[IndicatorEntry, int]


class IndicatorRegistry:
    """One strategy's indicators on each of its symbols: validated, claimed, resolved by reference.

    One per strategy, discarded on unload (the factory then calls
    ``cache.release(strategy_id)``). It holds only the indicators it is given:
    the strategy's own plus those its filters require.
    """

    def __init__(
        self,
        strategy_id: str,
        indicators: Sequence[IndicatorConfig],
        symbols: Sequence[str],
        timeframe: str,
        cache: IndicatorCache,
    ) -> None:
        self.strategy_id = strategy_id
        self.timeframe = timeframe
        self._cache = cache
        self._where = f"strategy '{strategy_id}'"
        resolved = resolve_indicators(indicators, self._where)
        self._keys = tuple(item.config.key for item in resolved)
        self._slots: dict[str, dict[str, Slot]] = {}
        self._claimed: list[IndicatorKey] = []
        self._entries: dict[str, tuple[IndicatorEntry, ...]] = {}
        for symbol in symbols:
            slots: dict[str, Slot] = {}
            entries = []
            for config, spec, params in resolved:
                entry = cache.claim(strategy_id, symbol, timeframe, spec.name, params)
                entries.append(entry)
                self._claimed.append(entry.key)
                if spec.outputs:
                    for index, output in enumerate(spec.outputs):
                        slots[f"{config.key}.{output}"] = (entry, index)
                else:
                    slots[config.key] = (entry, 0)
            self._slots[symbol] = slots
            self._entries[symbol] = tuple(entries)
        self._references = references_of(resolved) if symbols else ()
        self.warmup_bars = max(
            (entry.lookback for e in self._entries.values() for entry in e), default=0
        )
        """Bars before every indicator has its first value."""
        self.history_bars = max(
            (entry.window for e in self._entries.values() for entry in e), default=0
        )
        """Bars of history the candle store must keep for live values to match backtest ones."""

    def release(self) -> int:
        """Let go of this registry's cache claims (on unload or after a reload's swap)."""
        claimed, self._claimed = self._claimed, []
        return self._cache.release_keys(self.strategy_id, claimed)

    def keys(self) -> tuple[str, ...]:
        """The indicator keys (alias, else name), in configuration order."""
        return self._keys

    def references(self) -> tuple[str, ...]:
        """Every valid reference: ``key`` for single-output indicators, ``key.output`` otherwise."""
        return self._references

    def check_references(self, references: Iterable[str], where: str = "") -> None:
        """Raise one ``ConfigError`` naming every reference this registry cannot resolve."""
        check_references(references, self._references, where, self._where)

    def _slot_error(self, symbol: str, ref: str) -> TradekitError:
        if symbol not in self._slots:
            return DataError(
                f"{self._where} has no indicators for {symbol}; its symbols are "
                f"{', '.join(self._slots) or 'none'}"
            )
        message = unknown_reference_message(ref, "", self._references)
        return ConfigError([ConfigProblem(message, source=self._where)])

    def value(self, symbol: str, ref: str, bar: int, back: int = 0) -> float | None:
        """The value of ``ref`` on ``symbol`` at ``bar - back``; ``None`` when not ready.

        ``None`` also for bars outside the kept history or not yet appended.
        Computes the indicator for ``bar`` on first request (shared with every
        strategy using the same key).
        """
        try:
            entry, output = self._slots[symbol][ref]
        except KeyError:
            raise self._slot_error(symbol, ref) from None
        if bar >= entry.next_bar:
            self._cache.update(entry)
        if back:
            if back < 0:
                raise ValueError(f"back must be >= 0 (no reading ahead), got {back}")
            bar -= back
        if bar < entry.first or bar >= entry.next_bar:
            return None
        found = entry.arrays[output][bar - entry.base]
        return None if found != found else float(found)

    def values(self, symbol: str, ref: str, first: int, stop: int) -> FloatArray:
        """``value(symbol, ref, bar)`` for every bar from ``first`` up to ``stop``, as one array.

        NaN stands for ``None`` (not ready, outside the kept history, not yet
        appended); ``first`` may be negative. A new array, computed as ``value``
        would (one shared computation on first request).
        """
        try:
            entry, output = self._slots[symbol][ref]
        except KeyError:
            raise self._slot_error(symbol, ref) from None
        if stop > entry.next_bar:
            self._cache.update(entry)
        found = np.full(max(stop - first, 0), np.nan)
        low, high = max(first, entry.first), min(stop, entry.next_bar)
        if low < high:
            found[low - first : high - first] = entry.arrays[output][
                low - entry.base : high - entry.base
            ]
        return found

    def compute_through(self, symbol: str, bar: int) -> None:
        """Bring every indicator of ``symbol`` up to ``bar`` now, exactly as reading it would.

        A strategy replaying history after a restart calls it per candle, so its
        live values come from the same windows as in an uninterrupted run.
        """
        for entry in self._entries.get(symbol, ()):
            if bar >= entry.next_bar:
                self._cache.update(entry)

    def ready(self, symbol: str, bar: int) -> bool:
        """True when every indicator of ``symbol`` has a value at ``bar`` (warm-up over)."""
        try:
            entries = self._entries[symbol]
        except KeyError:
            raise self._slot_error(symbol, "") from None
        for entry in entries:
            if bar >= entry.next_bar:
                self._cache.update(entry)
            if not entry.ready(bar):
                return False
        return True


__all__ = [
    "INDICATORS",
    "IndicatorCache",
    "IndicatorEntry",
    "IndicatorKey",
    "IndicatorRegistry",
    "IndicatorSpec",
    "ParamSpec",
    "register_indicator",
    "unregister_indicator",
    "validate_indicator",
]
