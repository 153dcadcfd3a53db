"""The error hierarchy: one root, ``TradekitError``, and a family per area."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class TradekitError(Exception):
    """Raised when anything in tradekit fails in a way the caller can act on."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the configuration: where it is and what is wrong."""

    message: str
    source: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.path) if part)
        return f"{where}: {self.message}" if where else self.message


class ConfigError(TradekitError):
    """Raised when configuration files, values or environment variables are invalid.

    Every problem found is collected before raising, so one bad file never
    hides another; ``problems`` lists them all.
    """

    def __init__(self, problems: Iterable[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem(problems)]
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} configuration problems:"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


class DataError(TradekitError):
    """Raised when market data is malformed: bad prices, misaligned or unordered candles."""


class StrategyError(TradekitError):
    """Raised when a strategy cannot be found, built, loaded or run."""


class StrategyNotFoundError(StrategyError):
    """Raised when a strategy id is not known to the factory or engine."""


class StrategyConflictError(StrategyError):
    """Raised when a strategy id is already taken by a different configuration."""


class EventError(TradekitError):
    """Raised when an event is malformed or published through the wrong strategy's publisher."""


class ActionError(TradekitError):
    """Raised when an action is invalid for the strategy's current state."""


class PositionError(ActionError):
    """Raised when a position change is impossible, such as closing more than is open."""


class ExchangeError(TradekitError):
    """Raised when the exchange refuses or fails to execute an order."""


class LiveOrdersDisabledError(ExchangeError):
    """Raised when a live order is attempted while ``live_orders_enabled`` is false."""


class RiskError(TradekitError):
    """Raised when a risk rule refuses an order or a position change."""


class StorageError(TradekitError):
    """Raised when the journal or database cannot be opened, read or written."""


class JournalConflictError(StorageError):
    """Raised when a write would store a different event under a (strategy_id, seq) already used."""


__all__ = [
    "ActionError",
    "ConfigError",
    "ConfigProblem",
    "DataError",
    "EventError",
    "ExchangeError",
    "JournalConflictError",
    "LiveOrdersDisabledError",
    "PositionError",
    "RiskError",
    "StorageError",
    "StrategyConflictError",
    "StrategyError",
    "StrategyNotFoundError",
    "TradekitError",
]
