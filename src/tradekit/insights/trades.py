"""A strategy's closed trades and when it held positions, read back from its journaled events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from tradekit.events import Event, PositionClosed, PositionIncreased, PositionOpened
from tradekit.services.positions.state import Trade


class TradeReader:
    """Closed trades and holding periods of one strategy, from its events fed in seq order.

    Events can be fed in several goes (what is new since the last read); the result is
    the same as feeding them all at once. One per reading of a strategy's events.
    """

    def __init__(self) -> None:
        self._opened_at: dict[str, datetime] = {}
        self._entry_value: dict[str, float] = {}
        self.trades: list[Trade] = []
        """One per ``PositionClosed``, in the order they closed."""
        self.closed_periods: list[tuple[datetime, datetime]] = []
        """Opening to close of each position whose opening was read, in the order they closed."""

    def read(self, events: Iterable[Event]) -> None:
        """Take in the next events (those after the ones read before, in seq order)."""
        for event in events:
            if isinstance(event, PositionOpened):
                self._opened_at[event.position_id] = event.ts
                self._entry_value[event.position_id] = event.quantity * event.price
            elif isinstance(event, PositionIncreased):
                added = event.quantity_added * event.price
                held = self._entry_value.get(event.position_id, 0.0)
                self._entry_value[event.position_id] = held + added
            elif isinstance(event, PositionClosed):
                self._close(event)

    def _close(self, event: PositionClosed) -> None:
        value = self._entry_value.pop(event.position_id, event.quantity * event.avg_entry_price)
        opened = self._opened_at.pop(event.position_id, None)
        if opened is not None:
            self.closed_periods.append((opened, event.ts))
        self.trades.append(
            Trade(
                position_id=event.position_id,
                symbol=event.symbol,
                side=event.side,
                entry_ts=event.ts if opened is None else opened,
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

    def holding_periods(self, until: datetime) -> list[tuple[datetime, datetime]]:
        """When each position was open: opening to close, or to ``until`` for one still open."""
        return [*self.closed_periods, *((opened, until) for opened in self._opened_at.values())]


def closed_trades(events: Sequence[Event]) -> list[Trade]:
    """One ``Trade`` per ``PositionClosed``, in the order they closed.

    The entry time comes from the position's ``PositionOpened``, and the return from
    the entry notional (every entry fill's quantity x price), as the running
    strategy computes it. A close whose opening is not in the events (a journal cut
    short) is entered at its close, with the average entry price times its quantity.
    """
    reader = TradeReader()
    reader.read(events)
    return reader.trades


def holding_periods(events: Sequence[Event], until: datetime) -> list[tuple[datetime, datetime]]:
    """When each position was open: opening to close, or to ``until`` for one still open."""
    reader = TradeReader()
    reader.read(events)
    return reader.holding_periods(until)


__all__ = ["TradeReader", "closed_trades", "holding_periods"]
