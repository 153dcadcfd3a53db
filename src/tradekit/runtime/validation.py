"""Deep validation: build every strategy's services once, so indicator names, analyzer
parameters and indicator references are checked before anything runs.

Schema checks happen when files are loaded; what only the services know (the
indicator catalog, analyzer types and their parameters) is checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradekit.config.loading import LoadedStrategy
from tradekit.config.settings import TradekitSettings
from tradekit.errors import ConfigError, ConfigProblem
from tradekit.runtime.bootstrap import RunMode, bootstrap


def check_strategies_build(
    strategies: Sequence[LoadedStrategy], settings: TradekitSettings
) -> None:
    """Build each strategy in a throwaway paper runtime; one ``ConfigError`` lists all problems.

    Problems are attributed to the strategy's file.
    """
    runtime = bootstrap(settings, mode=RunMode.VALIDATE)
    problems: list[ConfigProblem] = []
    for strategy in strategies:
        try:
            runtime.factory.create(strategy.config)
        except ConfigError as exc:
            problems.extend(
                ConfigProblem(problem.message, source=str(strategy.path), path=problem.path)
                for problem in exc.problems
            )
    runtime.close()
    if problems:
        raise ConfigError(problems)
