"""The indicator catalog: each indicator's inputs, parameters, outputs and warm-up, and checks.

``INDICATORS`` maps a name to its ``IndicatorSpec``. ``validate_indicator``
turns an ``IndicatorConfig`` into normalized parameters (defaults filled in,
types fixed, bounds checked), so ``rsi`` and ``rsi {"length": 14}`` are the same
cache key. ``register_indicator`` adds a user-defined indicator after probing
it for look-ahead.

Warm-up: an indicator's first value is at bar ``lookback`` (``IndicatorSpec``),
the bar where TA-Lib's first value is, and from there on the built-in values
equal TA-Lib's to 1e-9 relative, seeding included: EMAs and Wilder's averages
(RSI, ATR) start from an SMA of their first ``length`` inputs, ADX's Wilder sums
from the sum of the ``length - 1`` after the first bar, MACD's fast
EMA starts at the slow one's first bar (``tests/unit/test_indicator_reference.py``).
Supertrend, which TA-Lib lacks, uses Wilder's ATR the same way. A live update
steps an indicator's ``incremental`` state by one bar (``incremental.py``): O(1),
or O(window) for finite windows, with the whole-series values. An indicator
without one (a user-defined one that brings none; every built-in has one) recomputes over
``window`` bars instead: the warm-up plus ``settle`` bars after which a
recursive indicator's seed weighs less than ``SEED_TOLERANCE``.

The catalog is metadata and checks only: it loads without pandas or numpy, so
validating a strategy imports neither. A built-in's ``compute`` imports the
backend (``backend.py``) on its first call.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from tradekit.config.strategy import IndicatorConfig
from tradekit.errors import ConfigError, ConfigProblem
from tradekit.services.indicators.incremental import STEPPERS, Stepper

if TYPE_CHECKING:
    from tradekit.services.indicators.backend import FloatArray

ParamValue = int | float
Params = Mapping[str, ParamValue]
NormalizedParams = tuple[tuple[str, ParamValue], ...]
"""Parameters in the spec's order with defaults filled in: part of the cache key."""

ComputeFn = Callable[[Mapping[str, "FloatArray"], Params], Mapping[str, "FloatArray"]]
"""``compute(inputs, params)``: input columns by name in, outputs by name out, same length."""

VALUE = "value"
"""The output name of a single-output indicator."""

SEED_TOLERANCE = 1e-10
"""Weight left on a recursive indicator's seed after its ``settle`` bars."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

MAX_INTEGER_PARAM = 1_000_000
"""The largest integer parameter (a window length): larger ones overflow the warm-up arithmetic."""


def decay_bars(alpha: float) -> int:
    """Bars until an exponential smoother of factor ``alpha`` keeps < SEED_TOLERANCE of its seed.

    A live window seeds recursive indicators afresh (with an SMA over its first
    bars) where the whole-series run has a long history; after these extra bars
    the difference no longer matters.
    """
    if alpha >= 1.0:
        return 0
    return math.ceil(math.log(SEED_TOLERANCE) / math.log1p(-alpha))


def _no_bars(params: Params) -> int:
    return 0


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter: its type (``int`` or ``float``), default and lower bound.

    ``default_from`` names another parameter whose value is the default
    (ADX smoothing defaults to its length).
    """

    name: str
    kind: type[int] | type[float]
    default: ParamValue
    minimum: ParamValue | None = None
    strict_minimum: bool = False
    default_from: str | None = None

    def expected(self, value: object = None) -> str:
        """What the parameter takes, phrased for the ``value`` it was given."""
        if self.kind is int and isinstance(value, int | float) and abs(value) > MAX_INTEGER_PARAM:
            return f"an integer <= {MAX_INTEGER_PARAM:,}"
        what = "an integer" if self.kind is int else "a number"
        if self.minimum is None:
            return what
        return f"{what} {'>' if self.strict_minimum else '>='} {self.minimum:g}"

    def coerce(self, value: object) -> ParamValue | None:
        """``value`` as this parameter's type, or ``None`` when it does not fit."""
        number: ParamValue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                return None
            if abs(value) > MAX_INTEGER_PARAM:
                return None
            number = int(value)
        elif math.isfinite(value):
            number = float(value)
        else:
            return None
        if self.minimum is not None and (
            number <= self.minimum if self.strict_minimum else number < self.minimum
        ):
            return None
        return number


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """What the catalog knows about one indicator.

    ``outputs`` is empty for a single unnamed output (referenced by the key
    alone) or names the outputs (referenced as ``key.output``). ``lookback`` is
    the number of warm-up bars: the first value is at bar ``lookback``.
    ``settle`` is the extra history a recursive indicator needs before a value
    computed on a window equals the whole-series one (0 for finite windows).
    ``cumulative`` marks running sums (OBV) whose level depends on where the
    data starts; live values are chained from the previous one. Outputs in
    ``sparse_outputs`` are NaN by design on some bars (the inactive supertrend
    band) and do not count for readiness. ``rule`` checks parameters together
    and returns a message when they conflict. ``incremental`` builds the
    state that updates the indicator one live bar at a time with the values
    ``compute`` gives over the whole series; ``None`` means each live bar
    recomputes over ``window`` bars (the bounded recompute).
    """

    name: str
    inputs: tuple[str, ...]
    compute: ComputeFn
    params: tuple[ParamSpec, ...] = ()
    outputs: tuple[str, ...] = ()
    lookback: Callable[[Params], int] = _no_bars
    settle: Callable[[Params], int] = _no_bars
    cumulative: bool = False
    sparse_outputs: tuple[str, ...] = ()
    rule: Callable[[Params], str | None] | None = None
    description: str = ""
    incremental: Callable[[Params], Stepper] | None = None

    @property
    def output_names(self) -> tuple[str, ...]:
        """The keys ``compute`` returns: the named outputs, or ``(VALUE,)``."""
        return self.outputs or (VALUE,)

    def window(self, params: Params) -> int:
        """Bars a live update recomputes over: warm-up, settling, the bar itself, and for a
        running sum one more bar to chain from."""
        return self.lookback(params) + self.settle(params) + 1 + int(self.cumulative)


def _length(default: int, minimum: int = 1, name: str = "length") -> ParamSpec:
    return ParamSpec(name, int, default, minimum)


def _positive(name: str, default: float) -> ParamSpec:
    return ParamSpec(name, float, default, 0.0, strict_minimum=True)


def _int(params: Params, name: str) -> int:
    return int(params[name])


def _macd_rule(params: Params) -> str | None:
    if params["fast"] >= params["slow"]:
        return f"fast ({params['fast']}) must be below slow ({params['slow']})"
    return None


def _ema_settle(params: Params) -> int:
    return decay_bars(2 / (_int(params, "length") + 1))


def _wilder_settle(params: Params) -> int:
    return decay_bars(1 / _int(params, "length"))


def _computed_by_backend(name: str) -> ComputeFn:
    """Built-in ``name``'s computation, which loads the backend (pandas, numpy, pandas-ta)
    on its first call rather than when the catalog is imported."""

    def compute(inputs: Mapping[str, FloatArray], params: Params) -> Mapping[str, FloatArray]:
        from tradekit.services.indicators.backend import BUILTIN_COMPUTE

        return BUILTIN_COMPUTE[name](inputs, params)

    return compute


def _on_close(
    name: str,
    default: int,
    lookback_shift: int,
    settle: Callable[[Params], int] | None,
    description: str,
) -> IndicatorSpec:
    """A single-output indicator of the close with one ``length`` parameter."""
    return IndicatorSpec(
        name,
        ("close",),
        _computed_by_backend(name),
        (_length(default),),
        lookback=lambda p: _int(p, "length") + lookback_shift,
        settle=settle or _no_bars,
        description=description,
    )


_HLC = ("high", "low", "close")

_BUILTINS: tuple[IndicatorSpec, ...] = (
    _on_close("sma", 10, -1, None, "simple moving average"),
    _on_close("ema", 10, -1, _ema_settle, "exponential moving average"),
    _on_close("wma", 10, -1, None, "linearly weighted moving average"),
    _on_close("rsi", 14, 0, _wilder_settle, "relative strength index, 0..100"),
    _on_close("roc", 10, 0, None, "rate of change, percent"),
    IndicatorSpec(
        "cci",
        _HLC,
        _computed_by_backend("cci"),
        (_length(14), _positive("constant", 0.015)),
        lookback=lambda p: _int(p, "length") - 1,
        description="commodity channel index",
    ),
    IndicatorSpec(
        "atr",
        _HLC,
        _computed_by_backend("atr"),
        (_length(14),),
        lookback=lambda p: _int(p, "length"),
        settle=_wilder_settle,
        description="average true range",
    ),
    IndicatorSpec(
        "adx",
        _HLC,
        _computed_by_backend("adx"),
        (_length(14), ParamSpec("smoothing", int, 14, 1, default_from="length")),
        outputs=("adx", "plus_di", "minus_di"),
        lookback=lambda p: _int(p, "length") + _int(p, "smoothing") - 1,
        settle=lambda p: decay_bars(1 / _int(p, "length")) + decay_bars(1 / _int(p, "smoothing")),
        description="average directional index with +DI and -DI",
    ),
    IndicatorSpec(
        "macd",
        ("close",),
        _computed_by_backend("macd"),
        (_length(12, name="fast"), _length(26, name="slow"), _length(9, name="signal")),
        outputs=("macd", "signal", "hist"),
        lookback=lambda p: _int(p, "slow") + _int(p, "signal") - 2,
        settle=lambda p: (
            decay_bars(2 / (_int(p, "slow") + 1)) + decay_bars(2 / (_int(p, "signal") + 1))
        ),
        rule=_macd_rule,
        description="moving average convergence/divergence",
    ),
    IndicatorSpec(
        "bbands",
        ("close",),
        _computed_by_backend("bbands"),
        (_length(20, minimum=2), _positive("std", 2.0)),
        outputs=("lower", "mid", "upper", "percent_b", "bandwidth"),
        lookback=lambda p: _int(p, "length") - 1,
        description="Bollinger bands (population standard deviation)",
    ),
    IndicatorSpec(
        "stoch",
        _HLC,
        _computed_by_backend("stoch"),
        (_length(14, name="k"), _length(3, name="d"), _length(3, name="smooth_k")),
        outputs=("k", "d"),
        lookback=lambda p: _int(p, "k") + _int(p, "smooth_k") + _int(p, "d") - 3,
        description="slow stochastic oscillator",
    ),
    IndicatorSpec(
        "mfi",
        (*_HLC, "volume"),
        _computed_by_backend("mfi"),
        (_length(14),),
        # pandas-ta gives a value one bar earlier, counting the first bar's flow as zero.
        lookback=lambda p: _int(p, "length"),
        description="money flow index, 0..100",
    ),
    IndicatorSpec(
        "obv",
        ("close", "volume"),
        _computed_by_backend("obv"),
        cumulative=True,
        description="on-balance volume",
    ),
    IndicatorSpec(
        "donchian",
        ("high", "low"),
        _computed_by_backend("donchian"),
        (_length(20),),
        outputs=("lower", "mid", "upper"),
        lookback=lambda p: _int(p, "length") - 1,
        description="Donchian channel",
    ),
    IndicatorSpec(
        "supertrend",
        _HLC,
        _computed_by_backend("supertrend"),
        (_length(7), _positive("multiplier", 3.0)),
        outputs=("trend", "direction", "long", "short"),
        lookback=lambda p: _int(p, "length"),
        settle=_wilder_settle,
        sparse_outputs=("long", "short"),
        description="supertrend bands and direction",
    ),
)

# Every built-in indicator steps incrementally.
_BUILTINS = tuple(replace(spec, incremental=STEPPERS.get(spec.name)) for spec in _BUILTINS)

BUILTIN_NAMES = frozenset(spec.name for spec in _BUILTINS)
_CATALOG: dict[str, IndicatorSpec] = {spec.name: spec for spec in _BUILTINS}
INDICATORS: Mapping[str, IndicatorSpec] = MappingProxyType(_CATALOG)
"""Every known indicator by name (read-only; add with ``register_indicator``)."""


def _hint(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def indicator_problems(
    config: IndicatorConfig, where: str
) -> tuple[IndicatorSpec | None, NormalizedParams, list[str]]:
    """Check one indicator config; returns its spec, normalized params and problem messages."""
    spec = _CATALOG.get(config.name)
    if spec is None:
        hint = _hint(config.name, sorted(_CATALOG)) or f"; known: {', '.join(sorted(_CATALOG))}"
        return None, (), [f"unknown indicator {config.name!r} in {where}.name{hint}"]
    problems: list[str] = []
    allowed = [param.name for param in spec.params]
    for key in config.params:
        if key not in allowed:
            takes = f"{spec.name} takes {', '.join(allowed)}" if allowed else "it takes none"
            problems.append(
                f"unknown parameter {key!r} for {spec.name} in {where}.params"
                f"{_hint(key, allowed) or f' ({takes})'}"
            )
    values: dict[str, ParamValue] = {}
    for param in spec.params:
        if param.name not in config.params:
            values[param.name] = values.get(param.default_from or "", param.default)
            continue
        raw = config.params[param.name]
        number = param.coerce(raw)
        if number is None:
            problems.append(
                f"parameter '{param.name}' of {spec.name} in {where}.params.{param.name} "
                f"must be {param.expected(raw)}, got {raw!r}"
            )
        else:
            values[param.name] = number
    if not problems and spec.rule is not None:
        conflict = spec.rule(values)
        if conflict:
            problems.append(f"{spec.name} in {where}.params: {conflict}")
    return spec, tuple(values.items()), problems


class ResolvedIndicator(NamedTuple):
    """One of a strategy's indicators, checked: its config, spec and normalized parameters."""

    config: IndicatorConfig
    spec: IndicatorSpec
    params: NormalizedParams


def resolve_indicators(
    indicators: Sequence[IndicatorConfig], source: str
) -> list[ResolvedIndicator]:
    """Check a strategy's indicators; each key once, in order (a repeat of the same config
    is dropped).

    Raises one ``ConfigError`` listing every problem, each attributed to ``source``
    (``strategy 'x'``): unknown names and parameters, bad values, a key used twice.
    """
    problems: list[str] = []
    resolved: list[ResolvedIndicator] = []
    first_index: dict[str, int] = {}
    for index, config in enumerate(indicators):
        where = f"indicators[{index}]"
        previous = first_index.setdefault(config.key, index)
        if previous != index:
            if config != indicators[previous]:
                problems.append(
                    f"indicator key '{config.key}' in {where} is already used by "
                    f"indicators[{previous}]; give one of them a different 'alias'"
                )
            continue
        spec, params, found = indicator_problems(config, where)
        problems.extend(found)
        if spec is not None and not found:
            resolved.append(ResolvedIndicator(config, spec, params))
    if problems:
        raise ConfigError(ConfigProblem(message, source=source) for message in problems)
    return resolved


def references_of(resolved: Iterable[ResolvedIndicator]) -> tuple[str, ...]:
    """Every valid reference, in order: ``key`` for single-output indicators, ``key.output``
    otherwise."""
    return tuple(
        f"{item.config.key}.{output}" if item.spec.outputs else item.config.key
        for item in resolved
        for output in item.spec.outputs or (VALUE,)
    )


def unknown_reference_message(ref: str, where: str, known: Sequence[str]) -> str:
    """Why ``ref`` (read at ``where``, if given) resolves to none of the ``known`` references."""
    place = f" in {where}" if where else ""
    close = difflib.get_close_matches(ref, known, n=1)
    if close:
        return f"unknown indicator reference {ref!r}{place}; did you mean '{close[0]}'?"
    listed = ", ".join(known) or "none: the strategy declares no indicators"
    return f"unknown indicator reference {ref!r}{place}; known references: {listed}"


def check_references(
    references: Iterable[str], known: Sequence[str], where: str, source: str
) -> None:
    """Raise one ``ConfigError`` naming every reference that is not among ``known``."""
    known_set = set(known)
    problems = [
        ConfigProblem(unknown_reference_message(ref, where, known), source=source)
        for ref in references
        if ref not in known_set
    ]
    if problems:
        raise ConfigError(problems)


def validate_indicator(
    config: IndicatorConfig, where: str, source: str | None = None
) -> NormalizedParams:
    """Normalized parameters of ``config`` found at ``where`` (``indicators[0]``).

    Raises ``ConfigError`` listing every problem; ``source`` (``strategy 'x'``)
    prefixes each message.
    """
    _, params, problems = indicator_problems(config, where)
    if problems:
        raise ConfigError(ConfigProblem(message, source=source) for message in problems)
    return params


def register_indicator(spec: IndicatorSpec) -> IndicatorSpec:
    """Add a user-defined indicator to ``INDICATORS`` after checking it is causal.

    Refuses (``ConfigError``) a name already taken or not a lowercase
    identifier, unknown input columns, bad output names, default parameters
    that fail their own bounds, and an indicator that looks ahead (see
    ``indicator_probe.probe_causality``; the probe uses the default parameters).
    """
    # Probing computes the indicator, so the computation libraries load here.
    from tradekit.services.indicators.probe import probe_causality
    from tradekit.services.market.candles import PRICE_COLUMNS

    where = f"indicator '{spec.name}'"
    if not _NAME.match(spec.name):
        raise ConfigError(f"{where}: name must be a lowercase identifier such as 'my_rsi'")
    if spec.name in _CATALOG:
        raise ConfigError(f"{where} is already registered; pick another name")
    unknown = [column for column in spec.inputs if column not in PRICE_COLUMNS]
    if not spec.inputs or unknown:
        raise ConfigError(
            f"{where}: inputs must be taken from {', '.join(PRICE_COLUMNS)}, got {spec.inputs}"
        )
    if any(not _NAME.match(output) for output in spec.outputs):
        raise ConfigError(
            f"{where}: output names must be lowercase identifiers, got {spec.outputs}"
        )
    for param in spec.params:
        if param.coerce(param.default) is None:
            raise ConfigError(
                f"{where}: default {param.default!r} of '{param.name}' is not {param.expected()}"
            )
    probe_causality(spec)
    _CATALOG[spec.name] = spec
    return spec


def unregister_indicator(name: str) -> None:
    """Remove a user-defined indicator; built-in indicators cannot be removed."""
    if name in BUILTIN_NAMES:
        raise ConfigError(f"indicator '{name}' is built in and cannot be unregistered")
    _CATALOG.pop(name, None)


__all__ = [
    "INDICATORS",
    "SEED_TOLERANCE",
    "VALUE",
    "ComputeFn",
    "IndicatorSpec",
    "NormalizedParams",
    "ParamSpec",
    "ParamValue",
    "Params",
    "ResolvedIndicator",
    "check_references",
    "decay_bars",
    "indicator_problems",
    "references_of",
    "register_indicator",
    "resolve_indicators",
    "unknown_reference_message",
    "unregister_indicator",
    "validate_indicator",
]
