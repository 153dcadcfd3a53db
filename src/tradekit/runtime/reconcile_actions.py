"""What an operator can do about a reconciliation mismatch: adopt the venue's holding
into one bot's book, or flatten the venue to the books with a market order.

Adopting goes through the bot's own position lifecycle (an order intent and a
fill at the price the operator names), so its cash, position, snapshot, positions
table and events agree as after any fill, and a ``VenueHoldingAdopted`` event
records who asked. Flattening sends a real order and needs live orders enabled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Fill, Order, OrderSide, Side
from tradekit.errors import LiveOrdersDisabledError, StrategyError
from tradekit.events import VenueHoldingAdopted
from tradekit.protocols import Journal
from tradekit.runtime.bootstrap import RunMode, bootstrap
from tradekit.runtime.reconcile import AssetDifference, split_symbol
from tradekit.services.exchange.ccxt_exchange import CcxtExchange
from tradekit.services.journal.store import StrategyStatus
from tradekit.services.positions.state import AddIntent, CloseIntent, OpenIntent, OrderIntent

ADOPTED_REASON = "adopted from the venue"


def symbol_for(asset: str, symbols: Sequence[str], chosen: str | None, who: str) -> str:
    """The one symbol of ``symbols`` whose base is ``asset`` (``chosen`` when several are)."""
    matching = [symbol for symbol in symbols if split_symbol(symbol)[0] == asset]
    if chosen is not None:
        if chosen not in matching:
            raise StrategyError(
                f"{who} does not trade {chosen} with base {asset}; its {asset} symbols: "
                f"{', '.join(matching) or 'none'}"
            )
        return chosen
    if len(matching) != 1:
        raise StrategyError(
            f"{who} trades {len(matching)} symbols with base {asset} "
            f"({', '.join(matching) or 'none'}); name one with --symbol"
        )
    return matching[0]


def adopt_holding(
    settings: TradekitSettings,
    journal: Journal,
    difference: AssetDifference,
    bot: str,
    *,
    price: float,
    by: str,
    symbol: str | None = None,
) -> VenueHoldingAdopted:
    """Change ``bot``'s position in ``difference.asset`` so the books equal the venue.

    The change is filled at ``price`` without fee. Refused (``StrategyError``) for a
    bot not in the registry or removed, one that does not trade the asset, a dormant
    one (disabled, holding nothing), and a change that would close more than the
    bot holds or turn its position around.
    """
    if not (math.isfinite(price) and price > 0):
        raise StrategyError(f"--price must be a positive number, got {price!r}")
    info = next((item for item in journal.strategies() if item.strategy_id == bot), None)
    if info is None or info.status is StrategyStatus.REMOVED:
        state = "is removed" if info is not None else "is not in the registry"
        raise StrategyError(f"cannot adopt {difference.asset} into bot {bot!r}: it {state}")
    config = StrategyConfig.model_validate(json.loads(info.config_json))
    symbol = symbol_for(difference.asset, config.symbols, symbol, f"bot {bot!r}")
    runtime = bootstrap(settings, mode=RunMode.PAPER, journal=journal)
    try:
        runtime.engine.load([config])
        handle = runtime.factory.find_handle(bot)
        if handle is None:
            raise StrategyError(
                f"bot {bot!r} is disabled and holds nothing; enable it before adopting into it"
            )
        lifecycle = handle.position_lifecycle
        change = difference.difference
        position = lifecycle.position(symbol)
        held = 0.0 if position is None else position.side.sign * position.quantity
        intent, side = _adoption_intent(bot, symbol, held, change)
        now = runtime.shared.clock().now()
        adopted = VenueHoldingAdopted(
            ts=now,
            by=by,
            asset=difference.asset,
            symbol=symbol,
            venue_amount=difference.venue_amount,
            books_amount=difference.books_amount,
            quantity_change=change,
            price=price,
        )
        handle.publisher.publish(adopted)
        order = Order(lifecycle.new_order_id(), bot, symbol, side, abs(change), now)
        lifecycle.register_intent(order, intent)
        lifecycle.apply_fills(
            [Fill(order.order_id, bot, symbol, side, abs(change), price, 0.0, now)]
        )
    finally:
        runtime.close()
    return adopted


def _adoption_intent(
    bot: str, symbol: str, held: float, change: float
) -> tuple[OrderIntent, OrderSide]:
    side = OrderSide.BUY if change > 0 else OrderSide.SELL
    after = held + change
    if held == 0:
        if change < 0:
            raise StrategyError(
                f"bot {bot!r} holds no {symbol}, so it cannot give up {abs(change):.10g}; "
                "adopt into a bot that holds at least that much"
            )
        return OpenIntent(Side.LONG), side
    if held * after < 0:
        raise StrategyError(
            f"adopting {change:.10g} {symbol} would turn bot {bot!r}'s position of "
            f"{held:.10g} around; adopt into another bot or flatten"
        )
    if (held > 0) == (change > 0):
        return AddIntent(), side
    return CloseIntent(percent=abs(change) / abs(held) * 100.0, reason=ADOPTED_REASON), side


def flatten_holding(
    exchange: CcxtExchange,
    difference: AssetDifference,
    symbol: str,
    *,
    confirm: Callable[[str], bool],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Mapping[str, Any] | None:
    """Send the market order that brings the venue's ``difference.asset`` to the books.

    ``LiveOrdersDisabledError`` before anything is asked or sent unless live orders
    are enabled. ``confirm`` gets the order in words; ``None`` when it declines.
    """
    side = "sell" if difference.difference > 0 else "buy"
    amount = abs(difference.difference)
    plan = (
        f"{side} {amount:.10g} {symbol} at market on {exchange.venue} so it holds "
        f"{difference.books_amount:.10g} {difference.asset}, as the books do"
    )
    if not exchange.live_orders_enabled:
        raise LiveOrdersDisabledError(
            f"flattening would {plan}, but live orders are disabled; set "
            "TRADEKIT_LIVE_ORDERS_ENABLED=true in the environment or .env to allow it"
        )
    if not confirm(plan):
        return None
    client_order_id = f"tkflat{int(now().timestamp() * 1000)}"
    return exchange.send_market_order(symbol, side, amount, client_order_id)
