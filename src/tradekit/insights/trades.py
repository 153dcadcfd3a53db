"""A strategy's closed trades and when it held positions, read back from its journaled events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tradekit.events import Event, PositionClosed, PositionIncreased, PositionOpened
from tradekit.services.positions.state import Trade


def closed_trades(events: Sequence[Event]) -> list[Trade]:
    """One ``Trade`` per ``PositionClosed``, in the order they closed.

    The entry time comes from the position's ``PositionOpened``, and the return from
    the entry notional (every entry fill's quantity x price), as the running
    strategy computes it. A close whose opening is not in the events (a journal cut
    short) is entered at its close, with the average entry price times its quantity.
    """
    opened_at: dict[str, datetime] = {}
    entry_value: dict[str, float] = {}
    trades: list[Trade] = []
    for event in events:
        if isinstance(event, PositionOpened):
            opened_at[event.position_id] = event.ts
            entry_value[event.position_id] = event.quantity * event.price
        elif isinstance(event, PositionIncreased):
            added = event.quantity_added * event.price
            entry_value[event.position_id] = entry_value.get(event.position_id, 0.0) + added
        elif isinstance(event, PositionClosed):
            value = entry_value.pop(event.position_id, event.quantity * event.avg_entry_price)
            trades.append(
                Trade(
                    position_id=event.position_id,
                    symbol=event.symbol,
                    side=event.side,
                    entry_ts=opened_at.pop(event.position_id, event.ts),
                    exit_ts=event.ts,
                    quantity=event.quantity,
                    avg_entry_price=event.avg_entry_price,
                    avg_exit_price=event.exit_price,
                    fees=event.fees,
                    realized_pnl=event.realized_pnl,
                    return_pct=event.realized_pnl / value * 100 if value > 0 else 0.0,
                    bars_held=event.bars_held,
                    exit_reason=event.reason,
                )
            )
    return trades


def holding_periods(events: Sequence[Event], until: datetime) -> list[tuple[datetime, datetime]]:
    """When each position was open: opening to close, or to ``until`` for one still open."""
    opened_at: dict[str, datetime] = {}
    periods: list[tuple[datetime, datetime]] = []
    for event in events:
        if isinstance(event, PositionOpened):
            opened_at[event.position_id] = event.ts
        elif isinstance(event, PositionClosed) and event.position_id in opened_at:
            periods.append((opened_at.pop(event.position_id), event.ts))
    periods.extend((opened, until) for opened in opened_at.values())
    return periods


__all__ = ["closed_trades", "holding_periods"]
