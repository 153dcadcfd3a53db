"""``PaperExchange``: simulated fills with fees, slippage and a fill rule, for backtests."""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tradekit.config.settings import ExchangeSettings
from tradekit.domain import Candle, Fill, Order, OrderSide, OrderType
from tradekit.errors import ExchangeError
from tradekit.services.positions.state import decode_record, encode_record

_BPS = 10_000.0


def check_market_order(order: Order, candle: Candle, venue: str) -> None:
    """Refuse what no tradekit exchange executes: limit orders and a candle of another symbol."""
    if order.type is not OrderType.MARKET:
        raise ExchangeError(
            f"{venue}: order {order.order_id} of strategy {order.strategy_id!r} is a "
            f"{order.type.value} order; only market orders are supported"
        )
    if order.symbol != candle.symbol:
        raise ExchangeError(
            f"{venue}: order {order.order_id} of strategy {order.strategy_id!r} is for "
            f"{order.symbol} but was submitted with a {candle.symbol} candle; pass the candle "
            f"of {order.symbol} the decision was made on"
        )


@dataclass(frozen=True, slots=True)
class _PendingOrder:
    """A market order waiting for the first candle that opens after its decision candle closed."""

    order: Order
    decided_at: datetime


class PaperExchange:
    """Simulates execution for every strategy in the process; one per process, shared.

    Prices: a market order fills at the open of the next candle of its symbol
    (fill rule ``next_open``, the default) or at the close of the candle it was
    decided on (``close``). An order given a ``trigger_price`` (a stop or target
    touched inside the candle) fills at once at that price whatever the rule.
    Slippage of ``slippage_bps`` always moves the price against the trader (a buy
    fills higher, a sell lower), trigger fills included, since stops slip too. The
    fee is ``fee_bps`` of the filled notional, in quote currency.

    The exchange keeps no positions: the strategy's position lifecycle owns them,
    so ``reduce_only`` is not checked here. Pending orders are kept per strategy
    under a lock, so lifecycle calls (``cancel_pending`` on unload) may come from
    another thread; fills are produced in submission order, so a run is repeatable.
    """

    def __init__(self, settings: ExchangeSettings) -> None:
        self._settings = settings
        self._fee_rate = settings.fee_bps / _BPS
        self._slippage_rate = settings.slippage_bps / _BPS
        self._fill_at_close = settings.fill_rule == "close"
        self._lock = threading.Lock()
        self._pending: dict[str, list[_PendingOrder]] = {}

    @property
    def settings(self) -> ExchangeSettings:
        return self._settings

    def submit(
        self, order: Order, candle: Candle, trigger_price: float | None = None
    ) -> list[Fill]:
        """Fill ``order`` now (rule ``close`` or a trigger price) or keep it pending.

        ``trigger_price`` must lie within ``candle``'s low and high: a stop that
        gapped past should be passed as the price actually reached (the open).
        """
        check_market_order(order, candle, "paper exchange")
        if trigger_price is not None:
            if not candle.low <= trigger_price <= candle.high:
                raise ExchangeError(
                    f"paper exchange: order {order.order_id} of strategy {order.strategy_id!r} "
                    f"has trigger_price {trigger_price!r} outside the {candle.symbol} candle at "
                    f"{candle.ts.isoformat()} (low {candle.low}, high {candle.high}); a "
                    "triggered order fills at a price the candle traded at"
                )
            return [self._fill(order, trigger_price, candle.close_ts)]
        if self._fill_at_close:
            return [self._fill(order, candle.close, candle.close_ts)]
        with self._lock:
            book = self._pending.setdefault(order.strategy_id, [])
            if any(pending.order.order_id == order.order_id for pending in book):
                raise ExchangeError(
                    f"paper exchange: order {order.order_id} of strategy {order.strategy_id!r} "
                    "is already pending; give every order a unique order_id"
                )
            book.append(_PendingOrder(order, candle.close_ts))
        return []

    def fill_pending(self, strategy_id: str, candle: Candle) -> list[Fill]:
        """Fill ``strategy_id``'s pending orders in ``candle.symbol`` at ``candle``'s open.

        Only orders decided no later than ``candle`` opened are filled, so passing
        the decision candle itself (or an overlapping higher-timeframe candle) fills
        nothing and keeps them pending.
        """
        with self._lock:
            book = self._pending.get(strategy_id)
            if not book:
                return []
            due: list[_PendingOrder] = []
            remaining: list[_PendingOrder] = []
            for pending in book:
                is_due = pending.order.symbol == candle.symbol and pending.decided_at <= candle.ts
                (due if is_due else remaining).append(pending)
            if not due:
                return []
            if remaining:
                self._pending[strategy_id] = remaining
            else:
                del self._pending[strategy_id]
        return [self._fill(pending.order, candle.open, candle.ts) for pending in due]

    def cancel_pending(self, strategy_id: str) -> int:
        """Drop every pending order of ``strategy_id``; returns how many were dropped."""
        with self._lock:
            return len(self._pending.pop(strategy_id, ()))

    def cancel_orders(self, strategy_id: str, order_ids: Collection[str]) -> list[Order]:
        """Drop the pending orders of ``strategy_id`` named in ``order_ids``; returns them."""
        wanted = set(order_ids)
        with self._lock:
            book = self._pending.get(strategy_id)
            if not book or not wanted:
                return []
            dropped = [pending.order for pending in book if pending.order.order_id in wanted]
            kept = [pending for pending in book if pending.order.order_id not in wanted]
            if kept:
                self._pending[strategy_id] = kept
            else:
                del self._pending[strategy_id]
        return dropped

    def export_pending(self, strategy_id: str) -> list[dict[str, Any]]:
        """``strategy_id``'s pending orders as JSON-ready dicts, for a state snapshot."""
        with self._lock:
            return [
                {**encode_record(pending.order), "decided_at": pending.decided_at.isoformat()}
                for pending in self._pending.get(strategy_id, ())
            ]

    def import_pending(self, strategy_id: str, items: list[dict[str, Any]]) -> None:
        """Put back pending orders from ``export_pending`` (after a restart)."""
        restored = [
            _PendingOrder(decode_record(Order, item), datetime.fromisoformat(item["decided_at"]))
            for item in items
        ]
        if any(pending.order.strategy_id != strategy_id for pending in restored):
            raise ExchangeError(
                f"paper exchange: pending orders restored for {strategy_id!r} belong to "
                "another strategy"
            )
        with self._lock:
            book = self._pending.setdefault(strategy_id, [])
            known = {pending.order.order_id for pending in book}
            book.extend(pending for pending in restored if pending.order.order_id not in known)
            if not book:
                del self._pending[strategy_id]

    def pending_orders(self, strategy_id: str) -> tuple[Order, ...]:
        """``strategy_id``'s orders waiting for their fill candle, oldest first."""
        with self._lock:
            return tuple(pending.order for pending in self._pending.get(strategy_id, ()))

    def _fill(self, order: Order, reference_price: float, ts: datetime) -> Fill:
        if order.side is OrderSide.BUY:
            price = reference_price * (1.0 + self._slippage_rate)
        else:
            price = reference_price * (1.0 - self._slippage_rate)
        return Fill(
            order_id=order.order_id,
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            price=price,
            fee=order.quantity * price * self._fee_rate,
            ts=ts,
        )


__all__ = ["PaperExchange"]
