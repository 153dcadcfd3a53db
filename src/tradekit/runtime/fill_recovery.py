"""Fills the venue made while no run saw them, read back at the start of a live run.

For every symbol the bots trade, the venue's trades since the last fill the
journal holds there (or since the oldest order still waiting to fill, whichever
is earlier, less ``SINCE_MARGIN``) are read and attributed to their bot by their
order's client order id. A trade is new when the journal's fills of its order do
not cover it yet: an order's trades are taken in the venue's order, and the first
ones, up to the quantity the journal already holds for that order (from the
order's answer, or an earlier read-back), are skipped. So a fill is applied
once however often a run restarts, including the part of an order that filled
after its answer. New fills go through the bot's position lifecycle (the one
place fills are applied), each followed by a ``VenueFillRecovered`` event naming
the venue trade, and are committed to the journal before the first candle.

Trades of orders no running bot sent (placed by hand, by a removed bot, by a bot
this run does not load) are reported and applied to no bot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from tradekit.domain import Fill, Order, OrderSide, Side
from tradekit.errors import PositionError
from tradekit.events import VenueFillRecovered
from tradekit.ids import StrategyIdResolver, VenueOrderId
from tradekit.protocols import Journal
from tradekit.runtime.engine import Engine
from tradekit.services.bus import StrategyPublisher
from tradekit.services.exchange.ccxt_exchange import VenueTrade
from tradekit.services.positions.lifecycle import PositionLifecycleService, entry_side
from tradekit.services.positions.state import AddIntent, CloseIntent, OpenIntent, OrderIntent

SINCE_MARGIN = timedelta(minutes=1)
"""Read this much before the last journaled fill: the local and venue clocks may differ."""
RECOVERED_REASON = "filled on the venue while no run was going"
_TOLERANCE = 1e-9


@runtime_checkable
class VenueTrades(Protocol):
    """What reading fills back needs of a venue (``CcxtExchange`` is one)."""

    @property
    def venue(self) -> str: ...

    def trades_since(self, symbol: str, since_ms: int) -> list[VenueTrade]: ...

    def order_trades(self, trade: VenueTrade) -> list[VenueTrade]: ...


@dataclass(frozen=True, slots=True)
class RecoveredFill:
    """A venue trade applied to ``strategy_id``'s order ``order_id`` (``quantity`` of it)."""

    trade: VenueTrade
    strategy_id: str
    order_id: str
    quantity: float

    def describe(self) -> str:
        trade = self.trade
        return (
            f"applied venue trade {trade.trade_id} (order {trade.venue_order_id}, client order "
            f"id {trade.client_order_id!r}) to {self.strategy_id} as {self.order_id}: "
            f"{trade.side} {self.quantity:.10g} {trade.symbol} @ {trade.price:.10g}"
        )


@dataclass(frozen=True, slots=True)
class UnappliedFill:
    """A venue trade applied to no bot, and why."""

    trade: VenueTrade
    reason: str

    def describe(self) -> str:
        trade = self.trade
        return (
            f"UNKNOWN fill: venue trade {trade.trade_id} (order {trade.venue_order_id}, client "
            f"order id {trade.client_order_id!r}): {trade.side} {trade.quantity:.10g} "
            f"{trade.symbol} @ {trade.price:.10g}: {self.reason}; not applied to any bot"
        )


@dataclass
class FillRecovery:
    """What reading the venue's fills back found: applied, already journaled, applied to none."""

    venue: str
    applied: list[RecoveredFill] = field(default_factory=list)
    already_journaled: int = 0
    unapplied: list[UnappliedFill] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [
            f"fills read back from {self.venue}: {len(self.applied)} applied, "
            f"{self.already_journaled} already journaled, {len(self.unapplied)} applied to no bot"
        ]
        lines.extend(fill.describe() for fill in self.applied)
        lines.extend(fill.describe() for fill in self.unapplied)
        return lines


def recover_fills(
    engine: Engine,
    journal: Journal,
    exchange: VenueTrades,
    traded: Mapping[str, Sequence[str]],
) -> FillRecovery:
    """Read the venue's fills of the symbols the bots of ``traded`` (bot id -> its symbols,
    every existing bot) trade, apply the new ones to their running bots and commit them;
    ``ExchangeError`` when the venue cannot be read."""
    known = set(journal.strategy_ids()) | set(traded)
    resolver = StrategyIdResolver(known)
    journaled = {bot: journal.fills(bot) for bot in sorted(known)}
    result = FillRecovery(exchange.venue)
    for symbol in sorted({symbol for symbols in traded.values() for symbol in symbols}):
        since = _since(symbol, journaled, engine, journal, traded)
        if since is None:
            continue
        trades = exchange.trades_since(symbol, int(since.timestamp() * 1000))
        by_order: dict[str, list[VenueTrade]] = defaultdict(list)
        for trade in trades:
            by_order[trade.venue_order_id].append(trade)
        for order_trades in by_order.values():
            _recover_order(exchange, order_trades, engine, resolver, set(traded), journaled, result)
    engine.flush_journal()
    return result


def _since(
    symbol: str,
    journaled: Mapping[str, list[Fill]],
    engine: Engine,
    journal: Journal,
    traded: Mapping[str, Sequence[str]],
) -> datetime | None:
    """When to read ``symbol``'s trades from: the last journaled fill there, or the oldest
    order still waiting to fill if earlier; without either, when its bots were registered."""
    stamps = [
        max(fill.ts for fill in fills if fill.symbol == symbol)
        for fills in journaled.values()
        if any(fill.symbol == symbol for fill in fills)
    ]
    last = max(stamps) if stamps else None
    for bot in traded:
        handle = engine.factory.find_handle(bot)
        if handle is None:
            continue
        for order in handle.position_lifecycle.pending_orders():
            if order.symbol == symbol and (last is None or order.created_at < last):
                last = order.created_at
    if last is None:
        trading = {bot for bot, symbols in traded.items() if symbol in symbols}
        registered = [
            info.created_at for info in journal.strategies() if info.strategy_id in trading
        ]
        last = min(registered) if registered else None
    return None if last is None else last.astimezone(UTC) - SINCE_MARGIN


def _recover_order(
    exchange: VenueTrades,
    trades: list[VenueTrade],
    engine: Engine,
    resolver: StrategyIdResolver,
    existing: set[str],
    journaled: Mapping[str, list[Fill]],
    result: FillRecovery,
) -> None:
    """Apply the trades of one venue order (``trades``: those in the window read) its
    bot's journal does not cover yet."""
    first = trades[0]
    try:
        venue_id = VenueOrderId.parse(first.client_order_id or "")
    except ValueError:
        result.unapplied.extend(UnappliedFill(trade, "not placed by tradekit") for trade in trades)
        return
    resolved = resolver.resolve(venue_id)
    if resolved is None or resolved.strategy_id not in existing:
        bot = resolved.strategy_id if resolved is not None else venue_id.strategy_key
        reason = f"bot {bot!r} no longer exists"
        result.unapplied.extend(UnappliedFill(trade, reason) for trade in trades)
        return
    bot, order_id = resolved.strategy_id, str(resolved)
    skip_order_numbers(engine, bot, resolved.number)
    # The window may start after the order's first trades: count coverage on all of them.
    trades = exchange.order_trades(first)
    covered = sum(fill.quantity for fill in journaled.get(bot, []) if fill.order_id == order_id)
    new: list[tuple[VenueTrade, float]] = []
    done = 0.0
    for trade in trades:
        start, done = done, done + trade.quantity
        uncovered = done - max(start, covered)
        if uncovered <= _TOLERANCE * max(1.0, done):
            result.already_journaled += 1
        else:
            new.append((trade, min(uncovered, trade.quantity)))
    if not new:
        return
    with engine.factory.lock(bot):
        handle = engine.factory.find_handle(bot)
        if handle is None:
            reason = f"bot {bot!r} is not running in this run; its fill waits for a run that does"
            result.unapplied.extend(UnappliedFill(trade, reason) for trade, _ in new)
            return
        _apply(handle.position_lifecycle, handle.publisher, order_id, new, result)


def skip_order_numbers(engine: Engine, bot: str, number: int) -> None:
    """Keep running ``bot`` from numbering a new order ``number`` or lower (one the venue
    has, maybe sent just before a crash that lost the book's count of it)."""
    with engine.factory.lock(bot):
        handle = engine.factory.find_handle(bot)
        if handle is not None:
            handle.position_lifecycle.skip_order_numbers_through(number)


def _apply(
    lifecycle: PositionLifecycleService,
    publisher: StrategyPublisher,
    order_id: str,
    new: list[tuple[VenueTrade, float]],
    result: FillRecovery,
) -> None:
    """Apply ``new`` (trade, quantity) fills of ``order_id`` in order: to its intent when
    it still waits to fill, else to the intent its side and the bot's position imply.
    From the first one the book refuses on, they are reported with why."""
    first = new[0][0]
    side = OrderSide(first.side)
    symbol = first.symbol
    quantity = sum(quantity for _, quantity in new)
    if not any(order.order_id == order_id for order in lifecycle.pending_orders()):
        order = Order(
            order_id=order_id,
            strategy_id=lifecycle.strategy_id,
            symbol=symbol,
            side=side,
            quantity=quantity,
            created_at=_ts(first),
            reason=RECOVERED_REASON,
        )
        try:
            lifecycle.register_intent(order, _intent(lifecycle, order))
        except PositionError as exc:
            result.unapplied.extend(UnappliedFill(trade, str(exc)) for trade, _ in new)
            return
    for index, (trade, part) in enumerate(new):
        fee = trade.fee * part / trade.quantity if trade.quantity else 0.0
        fill = Fill(
            order_id, lifecycle.strategy_id, symbol, side, part, trade.price, fee, _ts(trade)
        )
        try:
            lifecycle.apply_fills([fill])
        except PositionError as exc:
            result.unapplied.extend(UnappliedFill(trade, str(exc)) for trade, _ in new[index:])
            return
        publisher.publish(
            VenueFillRecovered(
                ts=fill.ts,
                venue=result.venue,
                trade_id=trade.trade_id,
                venue_order_id=trade.venue_order_id,
                client_order_id=trade.client_order_id or "",
                order_id=order_id,
                symbol=symbol,
                side=side,
                quantity=part,
                price=trade.price,
                fee=fee,
            )
        )
        result.applied.append(RecoveredFill(trade, lifecycle.strategy_id, order_id, part))


def _intent(lifecycle: PositionLifecycleService, order: Order) -> OrderIntent:
    position = lifecycle.position(order.symbol)
    if position is None:
        return OpenIntent(Side.LONG if order.side is OrderSide.BUY else Side.SHORT)
    if order.side is entry_side(position.side):
        if lifecycle.opening_order_id(order.symbol) == order.order_id:
            return OpenIntent(position.side)
        return AddIntent()
    percent = min(order.quantity / position.quantity, 1.0) * 100.0
    return CloseIntent(percent=percent, reason=RECOVERED_REASON)


def _ts(trade: VenueTrade) -> datetime:
    return datetime.fromtimestamp(trade.timestamp_ms / 1000.0, UTC)
