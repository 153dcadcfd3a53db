"""Why a position is closed: the reasons tradekit decides, built in one place.

The values are what events, trades and the journal carry, so they never change.
A strategy's own actions may give any other reason string.
"""

from __future__ import annotations

from enum import StrEnum


class ExitReason(StrEnum):
    """The reason of a close tradekit decides (``ClosePercent.reason``, ``Trade.exit_reason``)."""

    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    TAKE_PROFIT = "take_profit"
    TIME_STOP = "time_stop"
    SIGNAL_EXIT = "signal_exit"
    UNLOAD = "unload"
    OPERATOR = "operator"
    """Closed at market because an operator asked (``disable --close``, ``remove --close``)."""
    PARTIAL_TAKE_PROFIT = "partial_take_profit"
    """The prefix of ``partial_take_profit_reason(level)``; a close never carries it alone."""


_PARTIAL_PREFIX = f"{ExitReason.PARTIAL_TAKE_PROFIT.value}_"


def partial_take_profit_reason(level: int) -> str:
    """The reason of the close taking the ``level``-th partial take profit (from 1)."""
    return f"{_PARTIAL_PREFIX}{level}"


def partial_take_profit_level(reason: str) -> int | None:
    """The level a ``partial_take_profit_reason`` names; ``None`` for any other reason."""
    level = reason.removeprefix(_PARTIAL_PREFIX)
    return int(level) if level != reason and level.isdecimal() else None


__all__ = ["ExitReason", "partial_take_profit_level", "partial_take_profit_reason"]
