"""The states a strategy can be in, and the one rule deciding what each lets it do.

- ``active``: everything runs.
- ``disabled``: no signals, no new entries; protective exits (stop, target,
  trailing, time stop, a close already decided) keep managing open positions;
  once flat the strategy processes nothing.
- ``quarantined``: like disabled, entered after too many consecutive failures;
  an operator lifts it with ``resume``.
- ``removed``: gone from the engine; its journal stays.

``may_open_position`` is the only place that decides whether a strategy may
open or add to a position; the engine applies it on every path that changes a
state or halts entries (load, reload, disable, enable, resume, quarantine, a
journal failure), and the journal's registry stores these same values. On every
one of them that takes entries away, the engine also cancels the entry orders
the strategy sent and that have not filled yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tradekit.errors import StrategyError


class StrategyState(StrEnum):
    """Where a strategy stands; the same values in the engine and the journal's registry."""

    ACTIVE = "active"
    DISABLED = "disabled"
    REMOVED = "removed"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class Permissions:
    """What a strategy may do on its next candles; protective exits always run."""

    signals: bool
    """Its analyzers run: signals are published and may close positions (signal exits)."""
    entries: bool
    """It may open positions and add to them."""


def may_open_position(state: StrategyState, entries_halted: bool) -> bool:
    """Whether a strategy in ``state`` may open or add to a position.

    Only an active strategy may, and none while the engine halts entries (a
    journal that cannot commit): no state change lifts that halt.
    """
    return state is StrategyState.ACTIVE and not entries_halted


def permissions(state: StrategyState, entries_halted: bool) -> Permissions:
    """What ``state`` lets a strategy do, with entries decided by ``may_open_position``."""
    return Permissions(
        signals=state is StrategyState.ACTIVE,
        entries=may_open_position(state, entries_halted),
    )


def state_for_config(current: StrategyState | None, enabled: bool) -> StrategyState:
    """The state a strategy (re)loaded with a config ``enabled`` or not is in.

    A disabled config disables it; an enabled one makes it active, except that
    a quarantine holds until an operator resumes the strategy.
    """
    if not enabled:
        return StrategyState.DISABLED
    if current is StrategyState.QUARANTINED:
        return StrategyState.QUARANTINED
    return StrategyState.ACTIVE


def state_after_enable(strategy_id: str, current: StrategyState) -> StrategyState:
    """``enable``: a disabled strategy becomes active; a quarantined one needs ``resume``."""
    if current is StrategyState.QUARANTINED:
        raise StrategyError(
            f"strategy '{strategy_id}' is quarantined; use resume to lift the quarantine, "
            "saying who and why"
        )
    if current is StrategyState.REMOVED:
        raise StrategyError(f"strategy '{strategy_id}' is removed; load it again")
    return StrategyState.ACTIVE


def state_after_resume(strategy_id: str, current: StrategyState) -> StrategyState:
    """``resume``: only a quarantined strategy can be resumed, and it becomes active."""
    if current is not StrategyState.QUARANTINED:
        raise StrategyError(
            f"strategy '{strategy_id}' is {current.value}, not quarantined; only a "
            "quarantined strategy can be resumed"
        )
    return StrategyState.ACTIVE


__all__ = [
    "Permissions",
    "StrategyState",
    "may_open_position",
    "permissions",
    "state_after_enable",
    "state_after_resume",
    "state_for_config",
]
