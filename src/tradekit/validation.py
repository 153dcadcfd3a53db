"""Deep validation: every check a strategy's container makes while it is built, run
without building it, so indicator names, analyzer parameters and indicator references
are checked before anything runs.

Schema checks happen when files are loaded; what only the services know (the
indicator catalog, analyzer types and their parameters, the filters' reserved
aliases, the MTF gate's timeframes) is checked here, by the very functions the
container calls and in the order it calls them, so a strategy that validates also
builds and its problems read the same. Nothing here builds a container or computes
an indicator: validation imports neither the dependency-injection containers nor
pandas and numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradekit.config.loading import LoadedStrategy
from tradekit.config.strategy import StrategyConfig
from tradekit.errors import ConfigError, ConfigProblem
from tradekit.logs import log
from tradekit.orchestrators.filters import FilterOrchestrator, registry_indicators
from tradekit.orchestrators.mtf_gate import MTFSnapshotGate
from tradekit.services.indicators.catalog import (
    check_references,
    references_of,
    resolve_indicators,
)
from tradekit.services.signals.analyzers import build_analyzers


def check_strategy(config: StrategyConfig) -> None:
    """Raise the ``ConfigError`` building ``config``'s container would raise, if any.

    The order is the container's: filters' reserved aliases, indicators, analyzers and
    the indicator references they read, then the MTF gate; the first failing step's
    problems are reported, as a build reports them.
    """
    source = f"strategy '{config.strategy_id}'"
    indicators = registry_indicators(config, FilterOrchestrator(config.filters))
    known = references_of(resolve_indicators(indicators, source))
    for index, (analyzer, _) in enumerate(build_analyzers(config.analyzers, config.strategy_id)):
        check_references(analyzer.references, known, f"analyzers[{index}].params", source)
    MTFSnapshotGate(config.mtf, config.timeframe)


def check_strategies_build(strategies: Sequence[LoadedStrategy]) -> None:
    """Check that each strategy would build; one ``ConfigError`` lists all problems.

    Problems are attributed to the strategy's file. The checks depend on the
    strategies alone: no runtime is assembled, and no exchange, journal or market
    data is touched, whatever the settings say.
    """
    problems: list[ConfigProblem] = []
    for strategy in strategies:
        try:
            check_strategy(strategy.config)
        except ConfigError as exc:
            problems.extend(
                ConfigProblem(problem.message, source=str(strategy.path), path=problem.path)
                for problem in exc.problems
            )
        else:
            log.bind(strategy_id=strategy.config.strategy_id).debug("strategy checked")
    if problems:
        raise ConfigError(problems)


__all__ = ["check_strategies_build", "check_strategy"]
