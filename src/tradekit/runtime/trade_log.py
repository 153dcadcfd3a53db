"""One INFO log line per trading fact a person watching a run wants to see.

Entries, exits, fills, rejections and strategy state changes each become one
line carrying the strategy id (as the record's ``strategy_id``), the symbol,
the side, the price, the quantity and the reason, in ``key=value`` form so the
lines can be grepped and parsed. The live loop installs it on the event bus;
backtests do not, so they stay quiet and fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tradekit.events import (
    ActionFailed,
    Event,
    OrderCancelled,
    OrderFilled,
    PositionClosed,
    PositionIncreased,
    PositionOpened,
    PositionReduced,
    RiskRejected,
    StrategyFailed,
    StrategyLoaded,
    StrategyQuarantined,
    StrategyReloaded,
    StrategyResumed,
    StrategyUnloaded,
)
from tradekit.logs import log
from tradekit.protocols import EventBus, Subscription

NO_VALUE = "-"


def _fields(**values: object) -> str:
    """``key=value`` pairs in the order given; ``None`` shows as ``-``, floats without noise."""
    parts = []
    for key, value in values.items():
        if value is None:
            text = NO_VALUE
        elif isinstance(value, float):
            text = f"{value:.10g}"
        else:
            text = str(getattr(value, "value", value))
        parts.append(f"{key}={text}")
    return " ".join(parts)


def _opened(event: PositionOpened) -> str:
    return "entry " + _fields(
        symbol=event.symbol,
        side=event.side,
        price=event.price,
        quantity=event.quantity,
        reason="signal",
        stop=event.stop_loss,
        target=event.take_profit,
        fee=event.fee,
    )


def _increased(event: PositionIncreased) -> str:
    return "entry added " + _fields(
        symbol=event.symbol,
        side=event.side,
        price=event.price,
        quantity=event.quantity_added,
        reason="add_to_position",
        total=event.quantity,
        avg_entry=event.avg_entry_price,
    )


def _reduced(event: PositionReduced) -> str:
    return "exit partial " + _fields(
        symbol=event.symbol,
        side=event.side,
        price=event.price,
        quantity=event.quantity_closed,
        reason=event.reason,
        remaining=event.quantity_remaining,
        pnl=event.realized_pnl,
    )


def _closed(event: PositionClosed) -> str:
    return "exit " + _fields(
        symbol=event.symbol,
        side=event.side,
        price=event.exit_price,
        quantity=event.quantity,
        reason=event.reason,
        avg_entry=event.avg_entry_price,
        pnl=event.realized_pnl,
        fees=event.fees,
    )


def _filled(event: OrderFilled) -> str:
    return "fill " + _fields(
        symbol=event.symbol,
        side=event.side,
        price=event.price,
        quantity=event.quantity,
        reason=f"order {event.order_id}",
        fee=event.fee,
    )


def _cancelled(event: OrderCancelled) -> str:
    return "cancelled " + _fields(
        symbol=event.symbol,
        side=event.side,
        price=None,
        quantity=event.quantity,
        reason=f"order {event.order_id}: {event.reason}",
    )


def _action_failed(event: ActionFailed) -> str:
    return "rejected " + _fields(
        symbol=event.symbol,
        side=None,
        price=None,
        quantity=None,
        reason=f"{event.action} failed: {event.error}",
    )


def _risk_rejected(event: RiskRejected) -> str:
    return "rejected " + _fields(
        symbol=event.symbol,
        side=None,
        price=None,
        quantity=event.requested,
        reason=f"{event.rule}: {event.reason}",
        allowed=event.allowed,
    )


def _loaded(event: StrategyLoaded) -> str:
    return "state loaded " + _fields(
        symbol=",".join(event.symbols), timeframe=event.timeframe, reason=event.name
    )


def _unloaded(event: StrategyUnloaded) -> str:
    return "state unloaded " + _fields(reason=event.reason)


def _reloaded(event: StrategyReloaded) -> str:
    return "state reloaded " + _fields(reason=event.reason)


def _quarantined(event: StrategyQuarantined) -> str:
    return "state quarantined " + _fields(failures=event.failures, reason=event.last_error)


def _resumed(event: StrategyResumed) -> str:
    return "state resumed " + _fields(by=event.by, reason=event.reason)


def _failed(event: StrategyFailed) -> str:
    return "state failed " + _fields(
        consecutive=event.consecutive_failures, reason=f"{event.error_type}: {event.error}"
    )


# Routed by an explicit table: each event class to the function writing its line.
_FORMATTERS: dict[type[Event], Callable[[Any], str]] = {
    PositionOpened: _opened,
    PositionIncreased: _increased,
    PositionReduced: _reduced,
    PositionClosed: _closed,
    OrderFilled: _filled,
    OrderCancelled: _cancelled,
    ActionFailed: _action_failed,
    RiskRejected: _risk_rejected,
    StrategyLoaded: _loaded,
    StrategyUnloaded: _unloaded,
    StrategyReloaded: _reloaded,
    StrategyQuarantined: _quarantined,
    StrategyResumed: _resumed,
    StrategyFailed: _failed,
}

LOGGED_EVENTS: tuple[type[Event], ...] = tuple(_FORMATTERS)
"""The event classes that get a line of their own."""


def trade_line(event: Event) -> str | None:
    """The line logged for ``event``; ``None`` for events that get no line."""
    formatter = _FORMATTERS.get(type(event))
    return None if formatter is None else formatter(event)


def log_trade_event(event: Event) -> None:
    """Log ``event``'s line at INFO, tagged with its strategy id."""
    line = trade_line(event)
    if line is not None:
        log.bind(strategy_id=event.strategy_id or "-").info("{}", line)


def install_trade_log(bus: EventBus) -> Subscription:
    """Subscribe ``log_trade_event`` to ``bus``; ``unsubscribe()`` on the result removes it."""
    return bus.subscribe(log_trade_event, LOGGED_EVENTS)


__all__ = ["LOGGED_EVENTS", "install_trade_log", "log_trade_event", "trade_line"]
