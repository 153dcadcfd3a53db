"""One strategy's virtual positions, cash and P&L: changed only by fills and by exit decisions.

Fee convention: every fee is paid in quote currency and leaves the cash at once.
Entry fees are carried by the open position and charged to realized P&L pro rata
as it is closed; an exit fee is charged to the fill that pays it. So realized
P&L is net of all fees, and ``equity() == capital + realized_pnl + unrealized_pnl()``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, MutableSequence, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Candle, Fill, Order, OrderSide, Position, Side
from tradekit.errors import PositionError
from tradekit.events import (
    OrderFilled,
    PositionClosed,
    PositionIncreased,
    PositionOpened,
    PositionReduced,
    StopLossUpdated,
    TrailingActivated,
)
from tradekit.exit_reasons import partial_take_profit_level
from tradekit.ids import ClientOrderId, PositionId
from tradekit.services.bus import StrategyPublisher
from tradekit.services.positions.equity_curve import EquityCurve
from tradekit.services.positions.state import (
    AddIntent,
    CloseIntent,
    OpenIntent,
    OrderIntent,
    PendingOrder,
    PositionBook,
    Trade,
    dump_state,
    load_state,
)

_LONG = Side.LONG
# Relative slack when comparing quantities, so float dust never leaves a sliver open.
_TOLERANCE = 1e-9


def entry_side(side: Side) -> OrderSide:
    """The order side that opens or adds to a position on ``side``."""
    return OrderSide.BUY if side is Side.LONG else OrderSide.SELL


class PositionLifecycleService:
    """Owns one strategy's cash, open positions, pending order intents and closed trades.

    One per strategy, discarded on unload; the only writer of that strategy's
    positions. Positions it returns are live objects: read them, never mutate them.
    Not thread-safe: called from the engine thread only.
    """

    def __init__(
        self, strategy_id: str, config: StrategyConfig, publisher: StrategyPublisher
    ) -> None:
        if strategy_id != config.strategy_id or strategy_id != publisher.strategy_id:
            raise ValueError(
                f"strategy_id {strategy_id!r} must match config.strategy_id "
                f"{config.strategy_id!r} and publisher.strategy_id {publisher.strategy_id!r}"
            )
        self._strategy_id = strategy_id
        self._config = config
        self._publisher = publisher
        self._cash = config.capital
        self._realized_pnl = 0.0
        self._fees_paid = 0.0
        self._next_order_number = 1
        self._next_position_number = 1
        self._positions: dict[str, Position] = {}
        self._books: dict[str, PositionBook] = {}
        self._pending: dict[str, PendingOrder] = {}
        self._last_prices: dict[str, float] = {}
        self._trades: MutableSequence[Trade] = []
        self._trade_count = 0
        self._equity_curve = EquityCurve()

    @property
    def strategy_id(self) -> str:
        return self._strategy_id

    @property
    def config(self) -> StrategyConfig:
        return self._config

    @property
    def cash(self) -> float:
        """Quote currency held: capital, minus what entries cost, plus what exits returned."""
        return self._cash

    @property
    def realized_pnl(self) -> float:
        """P&L of every closed quantity, net of its exit fee and the entry fees it carried."""
        return self._realized_pnl

    @property
    def fees_paid(self) -> float:
        """Every fee paid, on entries and exits, open positions included."""
        return self._fees_paid

    @property
    def equity_curve(self) -> EquityCurve:
        """``(candle.ts, equity)`` per candle marked (``mark``, ``mark_quiet``); not snapshotted.

        Every point since the service was built, or only the latest ones after
        ``bound_history``. Held in typed buffers: read whole curves through its
        numpy arrays (``values``, ``times_micros``), not point by point.
        """
        return self._equity_curve

    @property
    def trades(self) -> Sequence[Trade]:
        """Positions closed since the service was built or restored, oldest first.

        Not snapshotted (the journal has each as a ``PositionClosed`` event); only
        the latest ones after ``bound_history``.
        """
        return self._trades

    @property
    def trade_count(self) -> int:
        """How many positions this strategy closed in its whole life, restores included."""
        return self._trade_count

    def bound_history(self, max_equity_points: int | None, max_trades: int | None) -> None:
        """Keep only the latest ``max_equity_points`` equity points and ``max_trades`` trades.

        For long-running live processes, whose memory must stay flat; ``None``
        leaves that history unbounded. Older entries are dropped now and from then on.
        """
        for name, limit in (("max_equity_points", max_equity_points), ("max_trades", max_trades)):
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {limit!r}")
        if max_equity_points is not None:
            self._equity_curve = self._equity_curve.bounded(max_equity_points)
        if max_trades is not None:
            self._trades = deque(self._trades, maxlen=max_trades)

    def position(self, symbol: str) -> Position | None:
        """The open position in ``symbol``, if any."""
        return self._positions.get(symbol)

    def open_positions(self) -> list[Position]:
        return list(self._positions.values())

    def open_count(self) -> int:
        return len(self._positions)

    def open_or_opening_count(self) -> int:
        """Open positions plus opening orders still waiting to fill (for position limits)."""
        if not self._pending:
            return len(self._positions)
        opening = {
            pending.order.symbol
            for pending in self._pending.values()
            if isinstance(pending.intent, OpenIntent)
            and pending.order.symbol not in self._positions
        }
        return len(self._positions) + len(opening)

    def last_price(self, symbol: str) -> float | None:
        """The close of the last candle of ``symbol`` passed to ``mark``."""
        return self._last_prices.get(symbol)

    def equity(self, prices: Mapping[str, float] | None = None) -> float:
        """Cash plus open positions marked at ``prices``, else at the last known close."""
        last_prices = self._last_prices if prices is None else {**self._last_prices, **prices}
        equity = self._cash
        # Runs on every mark with a position open: plain arithmetic, no per-position calls.
        for symbol, position in self._positions.items():
            value = position.quantity * last_prices.get(symbol, position.avg_entry_price)
            equity += value if position.side is _LONG else -value
        return equity

    def unrealized_pnl(self, prices: Mapping[str, float] | None = None) -> float:
        """Open positions' price P&L less the entry fees they still carry, before exit fees."""
        last_prices = self._last_prices if prices is None else {**self._last_prices, **prices}
        total = 0.0
        for symbol, position in self._positions.items():
            price = last_prices.get(symbol, position.avg_entry_price)
            total += position.unrealized_pnl(price) - self._books[symbol].entry_fees_open
        return total

    def mark(self, candle: Candle) -> None:
        """Record ``candle``'s close, age and track the position in its symbol, add an equity point.

        Call once per closed candle of the strategy's timeframe, after the pending
        fills at that candle's open were applied.
        """
        symbol = candle.symbol
        self._last_prices[symbol] = candle.close
        positions = self._positions
        if not positions:
            self._equity_curve.append(candle.ts, self._cash)
            return
        position = positions.get(symbol)
        if position is not None:
            position.bars_held += 1
            if position.side is _LONG:
                if candle.high > position.best_price:
                    position.best_price = candle.high
            elif candle.low < position.best_price:
                position.best_price = candle.low
        self._equity_curve.append(candle.ts, self.equity())

    def mark_quiet(
        self,
        symbol: str,
        times: npt.NDArray[np.int64],
        closes: Sequence[float],
        highs: Sequence[float],
        lows: Sequence[float],
    ) -> None:
        """Exactly what ``mark`` does for each of consecutive candles of ``symbol``, in bulk.

        ``times`` (open times in epoch seconds), ``closes``, ``highs`` and ``lows``
        describe the candles, oldest first. For candles on which nothing else happens
        (no fill, no action): the equity points carry the values ``mark`` computes
        one by one, by the same float operations. Positions in other symbols would
        need their own prices between these candles, so they are refused. ``closes``
        given as a ``ColumnSlice`` are valued when the curve is read, not now.
        """
        count = len(times)
        if not len(closes) == len(highs) == len(lows) == count:
            raise ValueError(
                f"mark_quiet: {count} times but {len(closes)} closes, {len(highs)} highs "
                f"and {len(lows)} lows"
            )
        if not count:
            return
        positions = self._positions
        if positions and (len(positions) > 1 or symbol not in positions):
            raise self._error(
                f"mark_quiet({symbol!r}) cannot value the open positions in "
                f"{', '.join(sorted(set(positions) - {symbol}))}; mark candle by candle instead"
            )
        self._last_prices[symbol] = float(closes[-1])
        position = positions.get(symbol)
        if position is None:
            self._equity_curve.extend_constant(times, self._cash)
            return
        position.bars_held += count
        long = position.side is _LONG
        if long:
            best = max(highs)
            if best > position.best_price:
                position.best_price = best
        else:
            best = min(lows)
            if best < position.best_price:
                position.best_price = best
        # ``equity()`` adds a long's value to the cash and a short's negated value; adding
        # -x and subtracting x give the same float.
        self._equity_curve.extend_marked(
            times, self._cash, position.quantity, closes, short=not long
        )

    def new_order_id(self) -> str:
        """A fresh ``ClientOrderId`` as text, deterministic within the strategy."""
        number = self._next_order_number
        self._next_order_number = number + 1
        return str(ClientOrderId(self._strategy_id, number))

    def skip_order_numbers_through(self, number: int) -> None:
        """Never hand out order numbers up to ``number``: an order with it reached the
        venue, though the book (restored from before a crash) had not counted it."""
        self._next_order_number = max(self._next_order_number, number + 1)

    def register_intent(self, order: Order, intent: OrderIntent) -> None:
        """Remember what ``order`` is for, so its fills (now or later) change the right position."""
        where = f"order {order.order_id}"
        if order.strategy_id != self._strategy_id:
            raise self._error(f"{where} belongs to strategy {order.strategy_id!r}")
        if order.order_id in self._pending:
            raise self._error(f"{where} is already registered")
        if isinstance(intent, OpenIntent) and order.side is not entry_side(intent.side):
            raise self._error(
                f"{where}: a {intent.side} position opens with a "
                f"{entry_side(intent.side)} order, got {order.side}"
            )
        if isinstance(intent, CloseIntent):
            closable = self.closable_quantity(order.symbol)
            if order.quantity > closable * (1 + _TOLERANCE):
                raise self._error(
                    f"{where}: cannot close {order.quantity} {order.symbol}; only {closable} "
                    "is open and not already being closed"
                )
        self._pending[order.order_id] = PendingOrder(order, intent)

    def has_pending(self, symbol: str) -> bool:
        """True while an order registered for ``symbol`` has not completely filled."""
        if not self._pending:
            return False
        return any(pending.order.symbol == symbol for pending in self._pending.values())

    def closable_quantity(self, symbol: str) -> float:
        """The open quantity in ``symbol`` not already claimed by pending close orders."""
        position = self._positions.get(symbol)
        if position is None:
            return 0.0
        claimed = sum(
            pending.order.quantity - pending.filled
            for pending in self._pending.values()
            if pending.order.symbol == symbol and isinstance(pending.intent, CloseIntent)
        )
        return max(position.quantity - claimed, 0.0)

    def pending_orders(self) -> list[Order]:
        """Every registered order that has not completely filled."""
        return [pending.order for pending in self._pending.values()]

    def opening_order_id(self, symbol: str) -> str | None:
        """The order that opened the position in ``symbol`` (its later fills grow it)."""
        book = self._books.get(symbol)
        return None if book is None else book.opening_order_id

    def pending_entry_orders(self) -> list[Order]:
        """Registered orders that open or add to a position and have not completely filled."""
        return [
            pending.order
            for pending in self._pending.values()
            if isinstance(pending.intent, (OpenIntent, AddIntent))
        ]

    def pending_close_orders(self, symbol: str) -> list[Order]:
        """Registered orders closing (part of) the position in ``symbol``, not completely filled."""
        return [
            pending.order
            for pending in self._pending.values()
            if pending.order.symbol == symbol and isinstance(pending.intent, CloseIntent)
        ]

    def cancel_intent(self, order_id: str) -> bool:
        """Forget one registered order (refused or cancelled); True if it was known."""
        return self._pending.pop(order_id, None) is not None

    def cancel_intents(self, symbol: str | None = None) -> int:
        """Forget pending orders in ``symbol`` (all when ``None``), as ``cancel_pending`` does."""
        before = len(self._pending)
        if symbol is None:
            self._pending = {}
        else:
            self._pending = {k: p for k, p in self._pending.items() if p.order.symbol != symbol}
        return before - len(self._pending)

    def apply_fills(self, fills: Iterable[Fill]) -> None:
        """Apply fills of this strategy's orders in order: the one way fills reach its positions.

        Fills an exchange returns on submission and fills of orders left pending
        both come here. Each changes cash and the position its order was registered
        for, and emits events. Every check of a fill runs before it changes
        anything: a refused fill (unknown order, wrong strategy, symbol or side,
        more than ordered, closing more than is open) raises ``PositionError``,
        leaving the service as the fills before it left it.
        """
        for fill in fills:
            self._apply_fill(fill)

    def _apply_fill(self, fill: Fill) -> None:
        pending = self._pending.get(fill.order_id)
        where = f"fill of order {fill.order_id}"
        if pending is None:
            raise self._error(f"{where}: unknown order; register its intent before submitting")
        order = pending.order
        if (
            fill.strategy_id != order.strategy_id
            or fill.symbol != order.symbol
            or (fill.side is not order.side)
        ):
            raise self._error(
                f"{where}: fill is {fill.strategy_id}/{fill.symbol}/{fill.side} but the order "
                f"is {order.strategy_id}/{order.symbol}/{order.side}"
            )
        unfilled = order.quantity - pending.filled
        if fill.quantity > unfilled * (1 + _TOLERANCE):
            raise self._error(f"{where}: fills {fill.quantity} but only {unfilled} is unfilled")
        intent = pending.intent
        if isinstance(intent, OpenIntent):
            self._apply_open(fill, intent)
        elif isinstance(intent, AddIntent):
            self._apply_entry(self._require_position(fill.symbol, "add"), fill, new_entry=True)
        else:
            self._apply_close(fill, intent)
        if fill.quantity >= unfilled * (1 - _TOLERANCE):
            del self._pending[fill.order_id]
        else:
            pending.filled += fill.quantity

    def _error(self, message: str) -> PositionError:
        return PositionError(f"strategy {self._strategy_id!r}: {message}")

    def _require_position(self, symbol: str, what: str) -> Position:
        position = self._positions.get(symbol)
        if position is None:
            raise self._error(f"{what} needs an open position in {symbol}, but there is none")
        return position

    def _pay(self, fill: Fill) -> None:
        notional = fill.quantity * fill.price
        self._cash += -notional - fill.fee if fill.side is OrderSide.BUY else notional - fill.fee
        self._fees_paid += fill.fee
        self._publisher.publish(
            OrderFilled(
                ts=fill.ts,
                order_id=fill.order_id,
                symbol=fill.symbol,
                side=fill.side,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
            )
        )

    def _apply_open(self, fill: Fill, intent: OpenIntent) -> None:
        existing = self._positions.get(fill.symbol)
        if existing is not None:
            # Later fills of the opening order grow the position without counting as an add.
            if self._books[fill.symbol].opening_order_id != fill.order_id:
                raise self._error(
                    f"fill of order {fill.order_id} would open a second position in "
                    f"{fill.symbol}; {existing.position_id} is open"
                )
            self._apply_entry(existing, fill, new_entry=False)
            return
        stop_loss, take_profit = self._levels(intent, fill.price)
        position = Position(
            position_id=str(PositionId(self._strategy_id, self._next_position_number)),
            strategy_id=self._strategy_id,
            symbol=fill.symbol,
            side=intent.side,
            quantity=fill.quantity,
            avg_entry_price=fill.price,
            opened_at=fill.ts,
            fees_paid=fill.fee,
            stop_loss=stop_loss,
            take_profit=take_profit,
            best_price=fill.price,
        )
        self._next_position_number += 1
        self._positions[fill.symbol] = position
        self._books[fill.symbol] = PositionBook(
            opening_order_id=fill.order_id,
            entry_fees_open=fill.fee,
            entry_quantity=fill.quantity,
            entry_value=fill.quantity * fill.price,
            max_quantity=fill.quantity,
        )
        self._pay(fill)
        self._publisher.publish(
            PositionOpened(
                ts=fill.ts,
                position_id=position.position_id,
                symbol=fill.symbol,
                side=position.side,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                stop_loss=stop_loss,
                take_profit=take_profit,
            )
        )

    def _levels(self, intent: OpenIntent, price: float) -> tuple[float | None, float | None]:
        """The intent's absolute levels, else ``config.exit``'s percentages off the fill price."""
        exit_config = self._config.exit
        sign = intent.side.sign
        stop_loss, take_profit = intent.stop_loss, intent.take_profit
        if stop_loss is None and exit_config.stop_loss_pct is not None:
            stop_loss = price * (1 - sign * exit_config.stop_loss_pct / 100)
        if take_profit is None and exit_config.take_profit_pct is not None:
            target = price * (1 + sign * exit_config.take_profit_pct / 100)
            take_profit = target if target > 0 else None
        return stop_loss, take_profit

    def _apply_entry(self, position: Position, fill: Fill, *, new_entry: bool) -> None:
        if fill.side is not entry_side(position.side):
            raise self._error(
                f"fill of order {fill.order_id} is a {fill.side}; it cannot add to a "
                f"{position.side} position"
            )
        book = self._books[position.symbol]
        quantity = position.quantity + fill.quantity
        position.avg_entry_price = (
            position.avg_entry_price * position.quantity + fill.price * fill.quantity
        ) / quantity
        position.quantity = quantity
        position.fees_paid += fill.fee
        position.last_entry_price = fill.price
        if new_entry:
            position.entries += 1
        else:
            position.initial_quantity += fill.quantity
        book.add_entry(fill.quantity, fill.price, fill.fee, quantity)
        self._pay(fill)
        self._publisher.publish(
            PositionIncreased(
                ts=fill.ts,
                position_id=position.position_id,
                symbol=position.symbol,
                side=position.side,
                quantity_added=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                quantity=quantity,
                avg_entry_price=position.avg_entry_price,
            )
        )

    def _apply_close(self, fill: Fill, intent: CloseIntent) -> None:
        position = self._require_position(fill.symbol, "close")
        where = f"fill of order {fill.order_id}"
        if fill.side is entry_side(position.side):
            raise self._error(f"{where} is a {fill.side}; it cannot close a {position.side}")
        if fill.quantity > position.quantity * (1 + _TOLERANCE):
            raise self._error(
                f"{where} closes {fill.quantity} {fill.symbol}; only {position.quantity} is open"
            )
        book = self._books[fill.symbol]
        full = fill.quantity >= position.quantity * (1 - _TOLERANCE)
        fee_share = book.release_entry_fees(1.0 if full else fill.quantity / position.quantity)
        realized = (
            position.side.sign * (fill.price - position.avg_entry_price) * fill.quantity
            - fill.fee
            - fee_share
        )
        book.add_exit(fill.quantity, fill.price)
        position.quantity = 0.0 if full else position.quantity - fill.quantity
        position.fees_paid += fill.fee
        position.realized_pnl += realized
        self._realized_pnl += realized
        self._pay(fill)
        if full:
            self._record_trade(position, book, fill.ts, intent.reason)
            return
        # A partial take profit counts once it fills, so a rejected one is decided again.
        level = partial_take_profit_level(intent.reason)
        if level is not None:
            position.partial_exits_done = max(position.partial_exits_done, level)
        self._publisher.publish(
            PositionReduced(
                ts=fill.ts,
                position_id=position.position_id,
                symbol=position.symbol,
                side=position.side,
                quantity_closed=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                quantity_remaining=position.quantity,
                realized_pnl=realized,
                reason=intent.reason,
            )
        )

    def _record_trade(
        self, position: Position, book: PositionBook, ts: datetime, reason: str
    ) -> None:
        position.closed_at = ts
        del self._positions[position.symbol]
        del self._books[position.symbol]
        trade = book.trade(position, ts, reason)
        self._trades.append(trade)
        self._trade_count += 1
        self._publisher.publish(
            PositionClosed(
                ts=ts,
                position_id=trade.position_id,
                symbol=trade.symbol,
                side=trade.side,
                quantity=trade.quantity,
                avg_entry_price=trade.avg_entry_price,
                exit_price=trade.avg_exit_price,
                fees=trade.fees,
                realized_pnl=trade.realized_pnl,
                reason=trade.exit_reason,
                bars_held=trade.bars_held,
            )
        )

    def set_stop(self, symbol: str, price: float, reason: str, ts: datetime) -> None:
        """Move the stop loss of the open position in ``symbol`` to ``price``."""
        position = self._require_position(symbol, "set_stop")
        if not price > 0:
            raise self._error(f"stop price for {symbol} must be > 0, got {price!r}")
        old_stop, position.stop_loss = position.stop_loss, price
        self._publisher.publish(
            StopLossUpdated(
                ts=ts,
                position_id=position.position_id,
                symbol=symbol,
                old_stop=old_stop,
                new_stop=price,
                reason=reason,
            )
        )

    def activate_trailing(self, symbol: str, distance_pct: float, ts: datetime) -> None:
        """Start trailing the open position in ``symbol``; the stop itself moves by ``set_stop``."""
        position = self._require_position(symbol, "activate_trailing")
        position.trailing_active = True
        position.trailing_distance_pct = distance_pct
        self._publisher.publish(
            TrailingActivated(
                ts=ts,
                position_id=position.position_id,
                symbol=symbol,
                distance_pct=distance_pct,
                activation_price=self._last_prices.get(symbol, position.avg_entry_price),
            )
        )

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to resume this strategy's book, JSON-ready: state, not history.

        Closed trades and the equity curve are left out: the journal holds each trade
        as an event, and a snapshot's size must not grow with the strategy's age.
        """
        return dump_state(
            strategy_id=self._strategy_id,
            cash=self._cash,
            realized_pnl=self._realized_pnl,
            fees_paid=self._fees_paid,
            next_order_number=self._next_order_number,
            next_position_number=self._next_position_number,
            positions=[(position, self._books[s]) for s, position in self._positions.items()],
            pending=list(self._pending.values()),
            last_prices=self._last_prices,
            trade_count=self._trade_count,
        )

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Replace the book with ``snapshot``'s; ``StrategyError`` when it is malformed or foreign.

        The equity curve and the trades list are kept as they are: they are reports,
        rebuilt from the journal.
        """
        state = load_state(snapshot, self._strategy_id)
        self._cash = state.cash
        self._realized_pnl = state.realized_pnl
        self._fees_paid = state.fees_paid
        self._next_order_number = state.next_order_number
        self._next_position_number = state.next_position_number
        self._positions = {position.symbol: position for position, _ in state.positions}
        self._books = {position.symbol: book for position, book in state.positions}
        self._pending = {pending.order.order_id: pending for pending in state.pending}
        self._last_prices = dict(state.last_prices)
        self._trade_count = state.trade_count


__all__ = [
    "AddIntent",
    "CloseIntent",
    "OpenIntent",
    "OrderIntent",
    "PositionLifecycleService",
    "Trade",
    "entry_side",
]
