"""Analyzers turn indicator values on one closed candle into signals; the registry weighs them.

``ANALYZER_TYPES`` maps each ``analyzers[i].type`` to how it is built (the
built-ins live in ``builtin_analyzers``; users add theirs with
``register_analyzer``); ``build_analyzers`` turns a strategy's analyzer configs
into analyzers, and ``AnalyzerRegistry`` scores one candle with all of them.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from pydantic import BaseModel, ValidationError

from tradekit.config.problems import problems_from_validation
from tradekit.config.strategy import AnalyzerConfig
from tradekit.domain import Direction, Signal
from tradekit.errors import ConfigError, ConfigProblem
from tradekit.protocols import BarView
from tradekit.services.signals.builtin_analyzers import (
    BandPositionAnalyzer,
    BandPositionParams,
    CrossoverAnalyzer,
    CrossoverParams,
    ThresholdAnalyzer,
    ThresholdParams,
    TimeIntervalAnalyzer,
    TimeIntervalParams,
    TrendAnalyzer,
    TrendParams,
)
from tradekit.services.signals.fire_masks import (
    IndicatorColumns,
    MasksFiring,
    MasksFiringToward,
    ScoreBounds,
)

if TYPE_CHECKING:
    from tradekit.services.signals.fire_masks import BoolArray


class Analyzer(Protocol):
    """Reads a ``BarView`` and returns a ``Signal`` or ``None``; one per strategy.

    ``references`` lists the indicator references ``analyze`` reads, so the
    container can check them against the strategy's indicator registry.
    ``analyze`` returns ``None`` while any value it needs is still warming up.
    An analyzer may also offer ``could_fire`` (see ``fire_masks.MasksFiring``), so
    backtests can skip the bars on which it certainly stays silent.
    """

    @property
    def name(self) -> str: ...

    @property
    def references(self) -> tuple[str, ...]: ...

    def analyze(self, view: BarView) -> Signal | None: ...


@dataclass(frozen=True, slots=True)
class AnalyzerType:
    """How ``build_analyzers`` makes one analyzer type from its ``params``.

    With a ``params_model`` the params are validated by it and the factory gets
    the model instance; without one the factory gets the raw mapping and may
    raise ``ValueError`` or ``TypeError`` to reject it.
    """

    factory: Callable[[Any], Analyzer]
    params_model: type[BaseModel] | None = None


ANALYZER_TYPES: dict[str, AnalyzerType] = {
    "threshold": AnalyzerType(ThresholdAnalyzer, ThresholdParams),
    "crossover": AnalyzerType(CrossoverAnalyzer, CrossoverParams),
    "band_position": AnalyzerType(BandPositionAnalyzer, BandPositionParams),
    "trend": AnalyzerType(TrendAnalyzer, TrendParams),
    "time_interval": AnalyzerType(TimeIntervalAnalyzer, TimeIntervalParams),
}
"""Every analyzer type a strategy's ``analyzers[i].type`` may name; one per process."""

ParamsT = TypeVar("ParamsT", bound=BaseModel)
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@overload
def register_analyzer(
    type_name: str,
    factory: Callable[[ParamsT], Analyzer],
    params_model: type[ParamsT],
    *,
    replace: bool = False,
) -> None: ...


@overload
def register_analyzer(
    type_name: str,
    factory: Callable[[Mapping[str, Any]], Analyzer],
    params_model: None = None,
    *,
    replace: bool = False,
) -> None: ...


def register_analyzer(
    type_name: str,
    factory: Callable[[Any], Analyzer],
    params_model: type[BaseModel] | None = None,
    *,
    replace: bool = False,
) -> None:
    """Make ``type_name`` usable in strategy configs; ``replace=True`` overrides an existing type.

    Give a frozen ``params_model`` with ``extra="forbid"`` to get the same error
    messages as the built-ins; the factory is then called with the validated model.
    """
    if not _TYPE_NAME.match(type_name):
        raise ValueError(f"analyzer type name must be a lowercase identifier, got {type_name!r}")
    if type_name in ANALYZER_TYPES and not replace:
        raise ValueError(
            f"analyzer type {type_name!r} is already registered; pass replace=True to override it"
        )
    ANALYZER_TYPES[type_name] = AnalyzerType(factory, params_model)


def _unknown_type(type_name: str) -> str:
    known = sorted(ANALYZER_TYPES)
    close = difflib.get_close_matches(type_name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"
    return f"unknown analyzer type {type_name!r}{hint}"


def _build_one(
    config: AnalyzerConfig, index: int, source: str
) -> tuple[Analyzer | None, list[ConfigProblem]]:
    where = f"analyzers[{index}]"
    kind = ANALYZER_TYPES.get(config.type)
    if kind is None:
        return None, [ConfigProblem(_unknown_type(config.type), source, f"{where}.type")]
    model = kind.params_model
    params: Any = config.params
    if model is not None:
        try:
            params = model.model_validate(config.params)
        except ValidationError as exc:
            return None, [
                ConfigProblem(
                    problem.message,
                    source,
                    f"{where}.params.{problem.path}" if problem.path else f"{where}.params",
                )
                for problem in problems_from_validation(exc, model, config.params, source)
            ]
    try:
        return kind.factory(params), []
    except (ValueError, TypeError) as exc:
        return None, [ConfigProblem(str(exc), source, f"{where}.params")]


def build_analyzers(
    configs: Sequence[AnalyzerConfig], strategy_id: str
) -> list[tuple[Analyzer, float]]:
    """Build each configured analyzer with its weight; every problem is collected into one error.

    Raises ``ConfigError`` naming ``analyzers[i].type`` or ``analyzers[i].params.<field>``.
    Analyzer names must be unique within a strategy, since signals are reported by name.
    """
    source = f"strategy '{strategy_id}'"
    built: list[tuple[Analyzer, float]] = []
    problems: list[ConfigProblem] = []
    first_index: dict[str, int] = {}
    for index, config in enumerate(configs):
        analyzer, found = _build_one(config, index, source)
        problems.extend(found)
        if analyzer is None:
            continue
        earlier = first_index.setdefault(analyzer.name, index)
        if earlier != index:
            problems.append(
                ConfigProblem(
                    f"analyzer name {analyzer.name!r} is already used by analyzers[{earlier}]; "
                    "set params.name to tell them apart",
                    source,
                    f"analyzers[{index}]",
                )
            )
        built.append((analyzer, config.weight))
    if problems:
        raise ConfigError(problems)
    return built


@dataclass(frozen=True, slots=True)
class Scores:
    """Weighted scores of one candle: per direction, sum(weight x strength) / sum(all weights)."""

    long: float = 0.0
    short: float = 0.0
    exit: float = 0.0
    signals: tuple[Signal, ...] = ()


NO_SCORES = Scores()
"""The result of every candle on which no analyzer fires; shared, never rebuilt."""


class AnalyzerRegistry:
    """The analyzers of one strategy and their weights; one per strategy, discarded on unload."""

    __slots__ = ("_analyzers", "_calls", "_total_weight")

    def __init__(self, analyzers_with_weights: Iterable[tuple[Analyzer, float]]) -> None:
        pairs = tuple(analyzers_with_weights)
        for analyzer, weight in pairs:
            if not (math.isfinite(weight) and weight > 0):
                raise ValueError(
                    f"analyzer {analyzer.name!r}: weight must be a finite number > 0, "
                    f"got {weight!r}"
                )
        self._analyzers = pairs
        # Bound methods resolved once: the quiet path is one call per analyzer.
        self._calls = tuple((analyzer.analyze, weight) for analyzer, weight in pairs)
        self._total_weight = math.fsum(weight for _, weight in pairs)

    @property
    def analyzers(self) -> tuple[tuple[Analyzer, float], ...]:
        return self._analyzers

    @property
    def total_weight(self) -> float:
        return self._total_weight

    def references(self) -> tuple[str, ...]:
        """Every indicator reference the analyzers read, each once, in order of first use."""
        return tuple(
            dict.fromkeys(ref for analyzer, _ in self._analyzers for ref in analyzer.references)
        )

    def could_fire(self, columns: IndicatorColumns) -> BoolArray | None:
        """Bars where at least one analyzer could fire; ``None`` when one cannot say.

        An analyzer says so with a ``could_fire`` method (every built-in has one);
        a user analyzer without it might fire anywhere, so nothing is ruled out.
        """
        import numpy as np  # masks are a backtest's; building analyzers does not need numpy

        size = len(columns.bars)
        mask = np.zeros(size, dtype=np.bool_)
        for analyzer, _ in self._analyzers:
            if not isinstance(analyzer, MasksFiring):
                return None
            found = np.asarray(analyzer.could_fire(columns))
            if found.dtype != np.bool_ or found.shape != (size,):
                raise TypeError(
                    f"analyzer {analyzer.name!r}: could_fire must return {size} booleans, "
                    f"one per bar; got an array of {found.dtype} with shape {found.shape}"
                )
            mask |= found
        return mask

    def score_bounds(self, columns: IndicatorColumns) -> ScoreBounds | None:
        """The bars where an analyzer could fire and, on each, the highest long, short and
        exit score ``evaluate`` could give; ``None`` when an analyzer cannot say where it fires.

        A bound sums the weights of the analyzers that could fire toward its direction
        (a strength is at most 1); one that only says where it fires (``could_fire``)
        counts toward every direction there.
        """
        import numpy as np  # masks are a backtest's; building analyzers does not need numpy

        size = len(columns.bars)
        masks: list[tuple[Direction, BoolArray, float]] = []
        for analyzer, weight in self._analyzers:
            if isinstance(analyzer, MasksFiringToward):
                toward = analyzer.could_fire_toward(columns)
            elif isinstance(analyzer, MasksFiring):
                toward = dict.fromkeys(Direction, analyzer.could_fire(columns))
            else:
                return None
            for direction, mask in toward.items():
                found = np.asarray(mask)
                if found.dtype != np.bool_ or found.shape != (size,):
                    raise TypeError(
                        f"analyzer {analyzer.name!r}: could_fire must return {size} booleans, "
                        f"one per bar; got an array of {found.dtype} with shape {found.shape}"
                    )
                masks.append((Direction(direction), found, weight))
        fires = np.zeros(size, dtype=np.bool_)
        for _, found, _ in masks:
            fires |= found
        rows = np.flatnonzero(fires)
        # Summed in the analyzers' order, as ``evaluate`` sums: the bound is the very float
        # a candle on which all of them fire at full strength scores.
        sums = {direction: np.zeros(len(rows), dtype=np.float64) for direction in Direction}
        for direction, found, weight in masks:
            into = sums[direction]
            np.add(into, weight, out=into, where=found[rows])
        total = self._total_weight
        return ScoreBounds(
            columns.bars[rows],
            sums[Direction.LONG] / total,
            sums[Direction.SHORT] / total,
            sums[Direction.EXIT] / total,
        )

    def evaluate(self, view: BarView) -> Scores:
        """Run every analyzer on ``view``; ``NO_SCORES`` when none fires."""
        fired: list[Signal] | None = None
        long = short = exit_ = 0.0
        for analyze, weight in self._calls:
            signal = analyze(view)
            if signal is None:
                continue
            if fired is None:
                fired = []
            fired.append(signal)
            direction = signal.direction
            # ``==`` rather than ``is``: a user analyzer may pass the plain string value.
            if direction == Direction.LONG:
                long += weight * signal.strength
            elif direction == Direction.SHORT:
                short += weight * signal.strength
            else:
                exit_ += weight * signal.strength
        if fired is None:
            return NO_SCORES
        total = self._total_weight
        return Scores(long / total, short / total, exit_ / total, tuple(fired))


__all__ = [
    "ANALYZER_TYPES",
    "NO_SCORES",
    "Analyzer",
    "AnalyzerRegistry",
    "AnalyzerType",
    "BandPositionAnalyzer",
    "BandPositionParams",
    "CrossoverAnalyzer",
    "CrossoverParams",
    "Scores",
    "ThresholdAnalyzer",
    "ThresholdParams",
    "TimeIntervalAnalyzer",
    "TimeIntervalParams",
    "TrendAnalyzer",
    "TrendParams",
    "build_analyzers",
    "register_analyzer",
]
