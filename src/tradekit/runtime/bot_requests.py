"""Asking the registry for a change to a bot: the checks, the new status and the change row.

``tradekit strategies ...`` and the bot service's API both go through these
functions, so they refuse the same things with the same messages. Each appends a
``registry_changes`` row naming who asked, in one transaction with what it writes
to the registry row (the config of an add or update, the status a change decides
at once); a running engine applies it between candles and settles the row with
its outcome (``tradekit.runtime.control``).
A refusal here is a ``StrategyError``; an unknown id a ``StrategyNotFoundError``.
None of this takes the journal's writer lock: it works beside a run.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from tradekit.config.strategy import StrategyConfig
from tradekit.errors import StrategyError, StrategyNotFoundError
from tradekit.runtime.control import ControlAction, strategy_kind
from tradekit.services.journal.store import (
    Registration,
    SqlJournal,
    StrategyInfo,
    StrategyStatus,
)


@dataclass(frozen=True, slots=True)
class ChangeAsked:
    """A change written to the registry: its row's id, the status now registered, and what
    to tell the person who asked (``told``)."""

    strategy_id: str
    change_id: int
    action: ControlAction
    status: StrategyStatus
    told: str


def registered_bot(journal: SqlJournal, strategy_id: str) -> StrategyInfo:
    """The registry entry of ``strategy_id``; ``StrategyNotFoundError`` with a suggestion."""
    info = journal.strategy_info(strategy_id)
    if info is not None:
        return info
    known = [item.strategy_id for item in journal.strategies()]
    close = difflib.get_close_matches(strategy_id, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise StrategyNotFoundError(f"unknown strategy {strategy_id!r} in the registry{hint}")


def add_bot(
    journal: SqlJournal,
    config: StrategyConfig,
    by: str,
    *,
    file_hint: str = "FILE",
    kind: str | None = None,
) -> ChangeAsked:
    """Register a validated strategy (active, or disabled when its config says so).

    An id already registered is refused (use ``update_bot``), unless it was removed.
    ``kind`` is the registry's kind (default: ``strategy_kind``; a template's id for
    a bot made from a template).
    """
    strategy_id = config.strategy_id
    known = journal.strategy_info(strategy_id)
    if known is not None and known.status is not StrategyStatus.REMOVED:
        raise StrategyError(
            f"strategy '{strategy_id}' is already registered ({known.status.value}); "
            f"use 'tradekit strategies update {file_hint}' to change its config"
        )
    status = StrategyStatus.ACTIVE if config.enabled else StrategyStatus.DISABLED
    change = journal.request_change(
        strategy_id,
        ControlAction.ADD,
        by,
        registration=_registration(config, kind),
        status=status,
    )
    told = f"added {strategy_id} ({config.name}), {status.value}"
    return ChangeAsked(strategy_id, change, ControlAction.ADD, status, told)


def update_bot(
    journal: SqlJournal,
    config: StrategyConfig,
    by: str,
    *,
    file_hint: str = "FILE",
    kind: str | None = None,
) -> ChangeAsked:
    """Replace a registered strategy's config; a running engine hot-reloads it, keeping
    its positions. A config saying ``enabled: false`` disables it; otherwise its state stays."""
    strategy_id = config.strategy_id
    known = registered_bot(journal, strategy_id)
    if known.status is StrategyStatus.REMOVED:
        raise StrategyError(
            f"strategy '{strategy_id}' is removed; use 'tradekit strategies add {file_hint}'"
        )
    status = known.status
    disabling = not config.enabled and status is StrategyStatus.ACTIVE
    if disabling:
        status = StrategyStatus.DISABLED
    change = journal.request_change(
        strategy_id,
        ControlAction.UPDATE,
        by,
        registration=_registration(config, kind),
        status=status if disabling else None,
    )
    told = f"updated {strategy_id} ({config.name}), {status.value}"
    return ChangeAsked(strategy_id, change, ControlAction.UPDATE, status, told)


def _registration(config: StrategyConfig, kind: str | None) -> Registration:
    return Registration(config.name, kind or strategy_kind(config), config.model_dump_json())


Decision = Callable[[SqlJournal, StrategyInfo], tuple[StrategyStatus | None, str]]
"""Raises ``StrategyError`` to refuse, or returns the status to write (``None``: the run
writes it once it has done what was asked) and what to tell the person who asked."""


def _ask(
    journal: SqlJournal,
    strategy_id: str,
    action: ControlAction,
    by: str,
    decide: Decision,
    *,
    close_positions: bool = False,
) -> ChangeAsked:
    info = registered_bot(journal, strategy_id)
    status, told = decide(journal, info)
    # The status and the change in one transaction: a status the run is never asked to
    # apply (a bot shown stopped that still trades) cannot be left behind.
    change = journal.request_change(
        strategy_id, action, by, close_positions=close_positions, status=status
    )
    return ChangeAsked(strategy_id, change, action, status or info.status, told)


def _not_removed(info: StrategyInfo, action: ControlAction) -> None:
    if info.status is StrategyStatus.REMOVED:
        raise StrategyError(
            f"strategy '{info.strategy_id}' is removed; 'tradekit strategies add FILE' "
            f"registers it again before it can be {action.value}d"
        )


def enable_bot(journal: SqlJournal, strategy_id: str, by: str) -> ChangeAsked:
    """Make a disabled strategy active; a quarantined one is refused (``resume_bot`` it)."""

    def decide(journal: SqlJournal, info: StrategyInfo) -> tuple[StrategyStatus, str]:
        _not_removed(info, ControlAction.ENABLE)
        if info.status is StrategyStatus.QUARANTINED:
            raise StrategyError(
                f"strategy '{strategy_id}' is quarantined; lift the quarantine with "
                f"'tradekit strategies resume {strategy_id}'"
            )
        return StrategyStatus.ACTIVE, "active"

    return _ask(journal, strategy_id, ControlAction.ENABLE, by, decide)


def disable_bot(
    journal: SqlJournal, strategy_id: str, by: str, *, close_positions: bool = False
) -> ChangeAsked:
    """No more signals or entries; its stops keep managing what it holds, unless the run
    is asked to close its positions at market (``close_positions``)."""

    def decide(journal: SqlJournal, info: StrategyInfo) -> tuple[StrategyStatus, str]:
        _not_removed(info, ControlAction.DISABLE)
        closing = ", its open positions closed at market by the run" if close_positions else ""
        return StrategyStatus.DISABLED, f"disabled{closing}"

    return _ask(
        journal, strategy_id, ControlAction.DISABLE, by, decide, close_positions=close_positions
    )


def resume_bot(journal: SqlJournal, strategy_id: str, by: str) -> ChangeAsked:
    """Lift a quarantine: the strategy is active again; refused for any other state."""

    def decide(journal: SqlJournal, info: StrategyInfo) -> tuple[StrategyStatus, str]:
        if info.status is not StrategyStatus.QUARANTINED:
            raise StrategyError(
                f"strategy '{strategy_id}' is {info.status.value}, not quarantined; only a "
                "quarantined strategy can be resumed"
            )
        return StrategyStatus.ACTIVE, "quarantine lifted, active"

    return _ask(journal, strategy_id, ControlAction.RESUME, by, decide)


def remove_bot(
    journal: SqlJournal, strategy_id: str, by: str, *, close_positions: bool = False
) -> ChangeAsked:
    """Stop and remove a strategy (its journal stays); refused while it holds positions
    unless the run is asked to close them first (``close_positions``)."""

    def decide(journal: SqlJournal, info: StrategyInfo) -> tuple[StrategyStatus | None, str]:
        if info.status is StrategyStatus.REMOVED:
            raise StrategyError(f"strategy '{strategy_id}' is already removed")
        held = journal.open_positions(strategy_id)
        if not held:
            return StrategyStatus.REMOVED, "removed"
        listed = ", ".join(f"{p.symbol} {p.side.value} {p.quantity:g}" for p in held)
        if not close_positions:
            raise StrategyError(
                f"strategy '{strategy_id}' holds {len(held)} open position(s) ({listed}); "
                "close them first, or remove it with --close (close_positions=true over the "
                "API) to have the run close them at market"
            )
        return None, (
            f"removal asked: the run closes {len(held)} open position(s) ({listed}) at "
            "market, then removes it"
        )

    return _ask(
        journal, strategy_id, ControlAction.REMOVE, by, decide, close_positions=close_positions
    )


__all__ = [
    "ChangeAsked",
    "add_bot",
    "disable_bot",
    "enable_bot",
    "registered_bot",
    "remove_bot",
    "resume_bot",
    "update_bot",
]
