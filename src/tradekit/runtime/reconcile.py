"""Reconciliation: the venue account against the sum of the bots' books, per asset.

What is compared is each **base** asset the bots trade (BTC of ``BTC/USDT``): the
venue's total amount (free plus held in orders) against the sum of the bots'
open positions in it (longs add, shorts subtract). Quote assets (USDT) are not
comparable, since the bots' books hold P&L and notional cash, not the account's
cash, so their venue balance is only reported; an asset that is the quote of
any traded symbol is never compared, even when it is another symbol's base.
Assets no bot trades are the account's own business and are ignored.

On a mismatch every bot trading that asset keeps its entries off (the engine's
per-strategy halt, applied through the one may-open rule) until a run starts
with books and venue agreeing, after the operator has run ``tradekit reconcile``
to adopt the venue's holding into a bot or to flatten it. Open orders are
attributed to their bot by client order id; those of a bot that no longer exists
or without a tradekit client order id are reported and never cancelled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tradekit.config.strategy import StrategyConfig
from tradekit.errors import ExchangeError
from tradekit.ids import StrategyIdResolver, VenueOrderId
from tradekit.logs import log
from tradekit.protocols import Journal
from tradekit.runtime.bootstrap import Runtime
from tradekit.runtime.engine import Engine
from tradekit.runtime.fill_recovery import VenueTrades, recover_fills, skip_order_numbers
from tradekit.services.exchange.ccxt_exchange import VenueOrder
from tradekit.services.journal.store import StrategyStatus

ABSOLUTE_TOLERANCE = 1e-8
"""Amounts closer than this (in units of the asset) agree: a venue rounds to its lot size."""
RELATIVE_TOLERANCE = 1e-6
"""Amounts closer than this fraction of the larger one agree."""


@runtime_checkable
class VenueAccount(Protocol):
    """What reconciliation reads from a venue (``CcxtExchange`` is one)."""

    @property
    def venue(self) -> str: ...

    def balances(self) -> dict[str, float]: ...

    def open_orders(self) -> list[VenueOrder]: ...


@dataclass(frozen=True, slots=True)
class BookHolding:
    """One bot's open position in one symbol: ``quantity`` is positive long, negative short."""

    strategy_id: str
    symbol: str
    quantity: float


@dataclass(frozen=True, slots=True)
class AssetDifference:
    """A base asset on which the venue and the bots' books disagree."""

    asset: str
    venue_amount: float
    books_amount: float
    per_bot: Mapping[str, float]
    """What each bot's book holds of the asset (bots holding nothing are left out)."""
    bots: tuple[str, ...]
    """Every bot trading the asset: their entries stay off."""

    @property
    def difference(self) -> float:
        """What the venue holds beyond the books (negative: less than the books)."""
        return self.venue_amount - self.books_amount

    def describe(self) -> str:
        held = ", ".join(f"{bot} {_amount(amount)}" for bot, amount in self.per_bot.items())
        return (
            f"{self.asset}: the venue holds {_amount(self.venue_amount)}, the books hold "
            f"{_amount(self.books_amount)} ({held or 'no bot holds any'}); difference "
            f"{_amount(self.difference)}"
        )


@dataclass(frozen=True, slots=True)
class UnattributedOrder:
    """An open order on the venue that no existing bot owns, and why."""

    order: VenueOrder
    reason: str

    def describe(self) -> str:
        order = self.order
        return (
            f"open order {order.venue_id} ({order.side} {_amount(order.remaining)} of "
            f"{_amount(order.amount)} {order.symbol}, client order id "
            f"{order.client_order_id!r}): {self.reason}; left open, not cancelled"
        )


@dataclass(frozen=True)
class Reconciliation:
    """The outcome of comparing one venue account with the bots' books."""

    venue: str
    differences: list[AssetDifference]
    agreeing: list[str]
    """Base assets on which venue and books agree."""
    quote_balances: dict[str, float]
    """The venue's balance of each quote asset: reported, not compared."""
    orders_by_bot: dict[str, list[VenueOrder]] = field(default_factory=dict)
    unattributed: list[UnattributedOrder] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        """The outcome in words, one line per finding."""
        lines = [f"reconciliation with {self.venue}:"]
        for difference in self.differences:
            lines.append(
                f"MISMATCH {difference.describe()}; entries stay off for "
                f"{', '.join(difference.bots)}; run 'tradekit reconcile' to adopt or flatten"
            )
        if self.agreeing:
            lines.append(f"agree: {', '.join(self.agreeing)}")
        for asset, amount in sorted(self.quote_balances.items()):
            lines.append(f"quote balance (not compared): {asset} {_amount(amount)}")
        for bot, orders in sorted(self.orders_by_bot.items()):
            lines.append(f"open orders of {bot}: {len(orders)}")
        lines.extend(f"UNKNOWN {item.describe()}" for item in self.unattributed)
        return lines


def split_symbol(symbol: str) -> tuple[str, str]:
    """``("BTC", "USDT")`` for ``BTC/USDT`` and ``BTC/USDT:USDT``."""
    base, _, rest = symbol.partition("/")
    return base, rest.partition(":")[0]


def compare(
    venue: str,
    balances: Mapping[str, float],
    open_orders: Iterable[VenueOrder],
    books: Iterable[BookHolding],
    traded: Mapping[str, Sequence[str]],
    resolver: StrategyIdResolver,
    *,
    absolute_tolerance: float = ABSOLUTE_TOLERANCE,
    relative_tolerance: float = RELATIVE_TOLERANCE,
) -> Reconciliation:
    """Compare ``balances`` with ``books``, for the base assets of the bots in ``traded``
    (bot id -> its symbols); attribute ``open_orders`` with ``resolver``."""
    quotes = {split_symbol(symbol)[1] for symbols in traded.values() for symbol in symbols}
    bots_by_asset: dict[str, list[str]] = {}
    for bot, symbols in traded.items():
        for symbol in symbols:
            base = split_symbol(symbol)[0]
            if base not in quotes and bot not in bots_by_asset.setdefault(base, []):
                bots_by_asset[base].append(bot)
    held: dict[str, dict[str, float]] = {}
    for holding in books:
        base = split_symbol(holding.symbol)[0]
        per_bot = held.setdefault(base, {})
        per_bot[holding.strategy_id] = per_bot.get(holding.strategy_id, 0.0) + holding.quantity
    differences = []
    agreeing = []
    for asset in sorted(set(bots_by_asset) | (set(held) - quotes)):
        per_bot = {bot: amount for bot, amount in sorted(held.get(asset, {}).items()) if amount}
        books_amount = sum(per_bot.values())
        venue_amount = balances.get(asset, 0.0)
        gap = abs(venue_amount - books_amount)
        allowed = max(
            absolute_tolerance, relative_tolerance * max(abs(venue_amount), abs(books_amount))
        )
        if gap <= allowed:
            agreeing.append(asset)
            continue
        bots = tuple(bots_by_asset.get(asset, ())) or tuple(per_bot)
        differences.append(AssetDifference(asset, venue_amount, books_amount, per_bot, bots))
    orders_by_bot, unattributed = attribute_orders(open_orders, resolver, set(traded))
    return Reconciliation(
        venue=venue,
        differences=differences,
        agreeing=agreeing,
        quote_balances={asset: balances.get(asset, 0.0) for asset in sorted(quotes)},
        orders_by_bot=orders_by_bot,
        unattributed=unattributed,
    )


def attribute_orders(
    orders: Iterable[VenueOrder], resolver: StrategyIdResolver, existing: set[str]
) -> tuple[dict[str, list[VenueOrder]], list[UnattributedOrder]]:
    """Each order's bot by its client order id; the orders no existing bot owns, with why."""
    by_bot: dict[str, list[VenueOrder]] = {}
    unattributed = []
    for order in orders:
        client_id = order.client_order_id
        try:
            venue_id = VenueOrderId.parse(client_id or "")
        except ValueError:
            unattributed.append(UnattributedOrder(order, "not placed by tradekit"))
            continue
        resolved = resolver.resolve(venue_id)
        if resolved is not None and resolved.strategy_id in existing:
            by_bot.setdefault(resolved.strategy_id, []).append(order)
        elif resolved is not None or not venue_id.tagged:
            bot = resolved.strategy_id if resolved is not None else venue_id.strategy_key
            unattributed.append(UnattributedOrder(order, f"bot {bot!r} no longer exists"))
        else:
            unattributed.append(
                UnattributedOrder(
                    order,
                    f"placed by a tradekit bot tagged {venue_id.strategy_key!r} that "
                    "this registry does not know",
                )
            )
    return by_bot, unattributed


def registry_view(journal: Journal) -> tuple[dict[str, list[str]], list[BookHolding], list[str]]:
    """From a journal: each existing bot's symbols, their open positions, and every
    strategy id it knows (removed ones too, so their orders are recognised)."""
    traded: dict[str, list[str]] = {}
    known = list(journal.strategy_ids())
    for info in journal.strategies():
        if info.status is not StrategyStatus.REMOVED:
            traded[info.strategy_id] = list(json.loads(info.config_json).get("symbols", []))
    books = [
        BookHolding(position.strategy_id, position.symbol, position.side.sign * position.quantity)
        for strategy_id in traded
        for position in journal.open_positions(strategy_id)
    ]
    return traded, books, known


def reconcile_at_start(
    runtime: Runtime,
    configs: Sequence[StrategyConfig],
    announce: Callable[[str], object],
) -> Reconciliation | None:
    """Reconcile a live run's venue with its bots before the first candle.

    The bots are ``configs`` and, with a journal, every bot of its registry not
    removed (also those this run does not load: their books count too). First the
    venue's fills made while no run saw them are read back and applied
    (``tradekit.runtime.fill_recovery``). Each mismatch then halts entries of the
    bots trading its asset; every finding is logged and passed to ``announce``.
    ``None`` when the exchange cannot report its account (a fake one), which is
    said loudly.
    """
    exchange = runtime.shared.exchange()
    if not isinstance(exchange, VenueAccount):
        log.warning(
            "reconciliation skipped: exchange {} cannot report balances and open orders",
            type(exchange).__name__,
        )
        return None
    engine = runtime.engine
    journal = runtime.journal
    traded = {config.strategy_id: list(config.symbols) for config in configs}
    known = set(traded)
    if journal is not None:
        registered, _, stored = registry_view(journal)
        traded = {**registered, **traded}
        known.update(stored)
        _read_back_fills(engine, journal, exchange, traded, announce)
    books: list[BookHolding] = []
    for strategy_id in traded:
        handle = engine.factory.find_handle(strategy_id)
        if handle is not None:
            positions = handle.position_lifecycle.open_positions()
        elif journal is not None:
            positions = journal.open_positions(strategy_id)
        else:
            positions = []
        books.extend(
            BookHolding(strategy_id, position.symbol, position.side.sign * position.quantity)
            for position in positions
        )
    resolver = StrategyIdResolver(known)
    result = compare(
        exchange.venue,
        exchange.balances(),
        exchange.open_orders(),
        books,
        traded,
        resolver,
    )
    # An open order sent just before a crash may be newer than the book's numbering.
    for orders in result.orders_by_bot.values():
        for order in orders:
            resolved = resolver.resolve(VenueOrderId.parse(order.client_order_id or ""))
            if resolved is not None:
                skip_order_numbers(engine, resolved.strategy_id, resolved.number)
    for difference in result.differences:
        engine.halt_strategy_entries(difference.bots, f"reconciliation: {difference.describe()}")
    for line in result.lines():
        (log.info if result.agrees and not result.unattributed else log.warning)("{}", line)
    announce("\n".join(result.lines()))
    return result


def _read_back_fills(
    engine: Engine,
    journal: Journal,
    exchange: object,
    traded: Mapping[str, Sequence[str]],
    announce: Callable[[str], object],
) -> None:
    """Apply the venue's fills no run saw; a venue that cannot be read is said loudly,
    and the comparison that follows still catches what the books miss."""
    if not isinstance(exchange, VenueTrades):
        log.warning("fills not read back: exchange {} cannot report trades", type(exchange))
        return
    try:
        recovery = recover_fills(engine, journal, exchange, traded)
    except ExchangeError as exc:
        message = (
            f"fills not read back from {exchange.venue}: {exc}; fills made while no run "
            "was going are missing from the books until a restart reads them"
        )
        log.warning("{}", message)
        announce(message)
        return
    lines = recovery.lines()
    for line in lines:
        (log.warning if recovery.unapplied else log.info)("{}", line)
    announce("\n".join(lines))


def _amount(value: float) -> str:
    return f"{value:.10g}"
