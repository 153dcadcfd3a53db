"""``CcxtExchange``: real orders on a ccxt venue, refused unless live orders are enabled."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

from tradekit.config.settings import ExchangeSettings
from tradekit.data.ccxt_errors import error_names, is_transient
from tradekit.domain import Candle, Fill, Order
from tradekit.errors import ExchangeError, LiveOrdersDisabledError
from tradekit.ids import ClientOrderId, VenueOrderId, venue_id_rules
from tradekit.logs import strategy_logger
from tradekit.services.exchange.ccxt_client import make_ccxt_client, venue_name
from tradekit.services.exchange.paper import check_market_order

_BPS = 10_000.0
_T = TypeVar("_T")

# What to tell the operator, by ccxt error class name. Matched against the error's
# whole class hierarchy (most specific first), so ccxt itself never has to be imported.
_ERROR_HINTS: dict[str, str] = {
    "InsufficientFunds": "the account lacks the balance for this order",
    "InvalidOrder": "the venue refused the order's size, precision or parameters",
    "BadSymbol": "the venue does not list this symbol; check the strategy's symbols",
    "AuthenticationError": "check api_key and api_secret under exchange.ccxt",
    "PermissionDenied": "the API key lacks trading permission on this venue",
    "AccountSuspended": "the venue has suspended this account",
    "NotSupported": "the venue does not support this kind of order through ccxt",
    "RateLimitExceeded": "the venue's rate limit was hit; the order was not accepted",
    "NetworkError": (
        "the order may or may not have reached the venue; check its open orders and "
        "recent fills before sending it again"
    ),
}


class CcxtClient(Protocol):
    """The part of a ccxt exchange object tradekit uses (ccxt's unified API); tests pass fakes.

    Sending orders needs ``create_order`` only; reconciliation also reads the
    account with ``fetch_balance`` and ``fetch_open_orders``, and the fills made
    while no run was going with ``fetch_my_trades``, ``fetch_order`` and
    ``fetch_order_trades``.
    """

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Mapping[str, Any]: ...

    def fetch_balance(self, params: dict[str, Any] | None = None) -> Mapping[str, Any]: ...

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Mapping[str, Any]]: ...

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Mapping[str, Any]]: ...

    def fetch_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Mapping[str, Any]: ...

    def fetch_order_trades(
        self,
        id: str,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Mapping[str, Any]]: ...


_FROM_ID_VENUES = frozenset({"binance", "binanceus"})
"""Venues whose account trades can be paged by trade id (``fromId``), ids rising."""
TRADE_PAGE_LIMIT = 1000
"""Trades asked for per ``fetch_my_trades`` call (Binance's most)."""
READ_RETRIES = 4
"""Times a read failing with a transient error (rate limit, timeout) is tried again."""
READ_BACKOFF_SECONDS = 0.5
"""The wait before the first retry of a read; each further one waits twice as long."""


@dataclass(frozen=True, slots=True)
class VenueTrade:
    """One execution of an order on the venue, as read back from it: ``fee`` in the quote
    currency, ``timestamp_ms`` the venue's time; ``client_order_id`` is ``None`` when its
    order has none (placed by hand) or the venue does not know the order any more."""

    trade_id: str
    venue_order_id: str
    client_order_id: str | None
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order open on the venue, as read from it: ``client_order_id`` is ``None`` when the
    venue reports none (an order placed by hand, or by another program without one)."""

    venue_id: str
    client_order_id: str | None
    symbol: str
    side: str
    amount: float
    remaining: float


class CcxtExchange:
    """Sends every strategy's market orders to one ccxt venue; one per process, shared.

    Nothing is sent unless ``live_orders_enabled`` is true: otherwise ``submit``
    raises ``LiveOrdersDisabledError`` before the client is built or touched. The
    client is built from ``settings.ccxt`` on the first order unless one is
    injected. Market orders fill at once from the venue's answer, so nothing is
    ever pending: ``trigger_price`` only documents why the order was sent (the
    venue decides the price) and ``fill_pending`` returns ``[]``. ccxt errors are
    raised as ``ExchangeError`` naming the order, the error class and what to check.
    """

    def __init__(
        self,
        settings: ExchangeSettings,
        live_orders_enabled: bool,
        client: object | None = None,
        *,
        trade_page_limit: int = TRADE_PAGE_LIMIT,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if client is not None and not callable(getattr(client, "create_order", None)):
            raise TypeError(f"ccxt client must have a create_order method, got {client!r}")
        self._settings = settings
        self._live_orders_enabled = live_orders_enabled
        self._client = cast("CcxtClient | None", client)
        self._lock = threading.Lock()
        self._venue = venue_name(settings.ccxt)
        self._id_rules = venue_id_rules(settings.ccxt.exchange_id)
        self._trade_page_limit = trade_page_limit
        self._sleep = sleep

    @property
    def live_orders_enabled(self) -> bool:
        return self._live_orders_enabled

    @property
    def venue(self) -> str:
        """The venue's name as messages show it (``binance (sandbox)``)."""
        return self._venue

    def venue_order_id(self, order_id: str) -> str:
        """The client order id a tradekit order id is sent to this venue as."""
        try:
            return VenueOrderId.encode(ClientOrderId.parse(order_id), self._id_rules)
        except ValueError as exc:
            raise ExchangeError(f"{self._venue}: {exc}") from exc

    def balances(self) -> dict[str, float]:
        """The account's total (free plus held in orders) amount of every asset it holds."""
        balance = self._read("fetch_balance", lambda client: client.fetch_balance())
        totals = balance.get("total")
        if not isinstance(totals, Mapping):
            raise ExchangeError(
                f"{self._venue}: fetch_balance answered without a 'total' mapping; "
                f"got keys {sorted(map(str, balance))}"
            )
        return {
            str(asset): float(amount)
            for asset, amount in totals.items()
            if isinstance(amount, int | float) and not isinstance(amount, bool) and amount
        }

    def open_orders(self) -> list[VenueOrder]:
        """Every order open on the venue, on any symbol, with its client order id."""
        answer = self._read("fetch_open_orders", lambda client: client.fetch_open_orders())
        orders = []
        for item in answer:
            client_id = item.get("clientOrderId")
            amount = _number(item.get("amount"))
            remaining = item.get("remaining")
            orders.append(
                VenueOrder(
                    venue_id=str(item.get("id")),
                    client_order_id=str(client_id) if client_id else None,
                    symbol=str(item.get("symbol")),
                    side=str(item.get("side")),
                    amount=amount,
                    remaining=amount if remaining is None else _number(remaining),
                )
            )
        return orders

    def trades_since(self, symbol: str, since_ms: int) -> list[VenueTrade]:
        """Every trade of the account in ``symbol`` from ``since_ms`` (venue time) on, oldest
        first, each with its order's client order id.

        Pages through ``fetch_my_trades`` until a page comes back short or brings
        nothing new: after the first page, by trade id on venues that take one
        (Binance's ``fromId``: many trades may share a millisecond), else by time
        (a page's last timestamp starts the next; trades seen twice count once).
        Rate limits and timeouts are waited out and retried (``READ_RETRIES`` times,
        with doubling waits); ``ExchangeError`` once they persist or on any other error.
        """
        limit = self._trade_page_limit
        by_id = self._settings.ccxt.exchange_id in _FROM_ID_VENUES

        def page(start: int | None, params: dict[str, Any]) -> list[Mapping[str, Any]]:
            return self._read(
                f"fetch_my_trades({symbol!r}, since={start}, {params})",
                lambda client: client.fetch_my_trades(symbol, start, limit, params),
            )

        trades: dict[str, Mapping[str, Any]] = {}
        answer = page(since_ms, {})
        while True:
            fresh = [item for item in answer if str(item.get("id")) not in trades]
            trades.update((str(item.get("id")), item) for item in fresh)
            if not fresh or len(answer) < limit:
                break
            ids = [str(item.get("id")) for item in answer]
            if by_id and all(trade_id.isdecimal() for trade_id in ids):
                answer = page(None, {"fromId": max(map(int, ids)) + 1})
            else:
                answer = page(max(_integer(item.get("timestamp")) for item in answer), {})
        client_ids: dict[str, str | None] = {}
        read = []
        for item in trades.values():
            venue_order_id = str(item.get("order"))
            if venue_order_id not in client_ids:
                client_ids[venue_order_id] = self._client_order_id(venue_order_id, symbol)
            read.append(self._venue_trade(item, symbol, client_ids[venue_order_id]))
        return _in_venue_order(read)

    def order_trades(self, trade: VenueTrade) -> list[VenueTrade]:
        """Every trade of the order ``trade`` belongs to, oldest first (one
        ``fetch_order_trades``; rate limits waited out as by ``trades_since``)."""
        answer = self._read(
            f"fetch_order_trades({trade.venue_order_id!r}, {trade.symbol!r})",
            lambda client: client.fetch_order_trades(trade.venue_order_id, trade.symbol),
        )
        return _in_venue_order(
            [self._venue_trade(item, trade.symbol, trade.client_order_id) for item in answer]
        )

    def _venue_trade(
        self, item: Mapping[str, Any], symbol: str, client_order_id: str | None
    ) -> VenueTrade:
        quantity = _number(item.get("amount"))
        price = _number(item.get("price"))
        fee = _fee_in_quote([item["fee"]] if item.get("fee") else item.get("fees"), symbol, price)
        return VenueTrade(
            trade_id=str(item.get("id")),
            venue_order_id=str(item.get("order")),
            client_order_id=client_order_id,
            symbol=symbol,
            side=str(item.get("side")),
            quantity=quantity,
            price=price,
            fee=fee if fee is not None else quantity * price * self._settings.fee_bps / _BPS,
            timestamp_ms=_integer(item.get("timestamp")),
        )

    def _client_order_id(self, venue_order_id: str, symbol: str) -> str | None:
        """The client order id of venue order ``venue_order_id`` (one ``fetch_order``)."""
        order = self._read(
            f"fetch_order({venue_order_id!r}, {symbol!r})",
            lambda client: client.fetch_order(venue_order_id, symbol),
        )
        client_id = order.get("clientOrderId")
        return str(client_id) if client_id else None

    def send_market_order(
        self, symbol: str, side: str, amount: float, client_order_id: str
    ) -> Mapping[str, Any]:
        """Send an operator's market order (not a strategy's), refused unless live orders are on."""
        if not self._live_orders_enabled:
            raise LiveOrdersDisabledError(
                f"live orders are disabled: refusing to send {side} {amount} {symbol} to "
                f"{self._venue}; set TRADEKIT_LIVE_ORDERS_ENABLED=true in the environment or "
                ".env to allow real orders"
            )
        client = self._client_for_orders()
        try:
            return client.create_order(
                symbol, "market", side, amount, None, {"clientOrderId": client_order_id}
            )
        except Exception as exc:
            raise ExchangeError(
                f"{self._venue}: market order {client_order_id} ({side} {amount} {symbol}) "
                f"failed with {type(exc).__name__}: {exc}"
            ) from exc

    def _read(self, what: str, call: Callable[[CcxtClient], _T]) -> _T:
        """``call`` on the client; transient errors (rate limits, timeouts) are waited out
        ``READ_RETRIES`` times; ``ExchangeError`` naming ``what`` when it still fails."""
        client = self._client_for_orders()
        attempt = 0
        while True:
            try:
                return call(client)
            except Exception as exc:
                if is_transient(error_names(exc)) and attempt < READ_RETRIES:
                    self._sleep(READ_BACKOFF_SECONDS * 2**attempt)
                    attempt += 1
                    continue
                raise ExchangeError(
                    f"{self._venue}: {what} failed with {type(exc).__name__}: {exc}"
                ) from exc

    def submit(
        self, order: Order, candle: Candle, trigger_price: float | None = None
    ) -> list[Fill]:
        """Send ``order`` to the venue as a market order and return its fill."""
        if not self._live_orders_enabled:
            raise LiveOrdersDisabledError(
                f"live orders are disabled: strategy {order.strategy_id!r} tried to send order "
                f"{order.order_id} ({order.side.value} {order.quantity} {order.symbol}) to "
                f"{self._venue}; set TRADEKIT_LIVE_ORDERS_ENABLED=true in the environment "
                "or .env to allow real orders (live_orders_enabled cannot be set from files)"
            )
        check_market_order(order, candle, self._venue)
        client = self._client_for_orders()
        # ccxt's unified clientOrderId: the venue echoes it, so the order maps back to its
        # strategy when it is read from the venue, after a restart too.
        params: dict[str, Any] = {"clientOrderId": self.venue_order_id(order.order_id)}
        # Unified ccxt symbols with a settle currency (BTC/USDT:USDT) are derivatives,
        # the only markets where venues accept reduceOnly.
        if order.reduce_only and ":" in order.symbol:
            params["reduceOnly"] = True
        try:
            response = client.create_order(
                order.symbol, "market", order.side.value, order.quantity, None, params
            )
        except Exception as exc:
            raise ExchangeError(self._failure_message(order, exc)) from exc
        if _filled_quantity(response) is None:
            response = self._fetch_once(client, order, response)
        return [self._fill_from(order, response, candle)]

    def fill_pending(self, strategy_id: str, candle: Candle) -> list[Fill]:
        """Nothing is ever pending: market orders fill when they are sent."""
        return []

    def cancel_pending(self, strategy_id: str) -> int:
        """Nothing is ever pending, so nothing is dropped."""
        return 0

    def cancel_orders(self, strategy_id: str, order_ids: Collection[str]) -> list[Order]:
        """Nothing is ever pending: a market order has filled by the time ``submit`` returns,
        so there is no order left at the venue to cancel."""
        return []

    def export_pending(self, strategy_id: str) -> list[dict[str, Any]]:
        """Nothing is ever pending, so a snapshot holds no pending order."""
        return []

    def import_pending(self, strategy_id: str, items: list[dict[str, Any]]) -> None:
        """Refuse pending orders saved by an exchange that holds them (the paper one)."""
        if items:
            raise ExchangeError(
                f"{self._venue}: strategy {strategy_id!r} resumes with {len(items)} pending "
                "order(s) saved by a simulated exchange; a venue holds no pending orders"
            )

    def _client_for_orders(self) -> CcxtClient:
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> CcxtClient:
        return cast(CcxtClient, make_ccxt_client(self._settings.ccxt))

    def _fetch_once(
        self, client: CcxtClient, order: Order, response: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Ask once for the order's state: some venues answer ``create_order`` with its id only."""
        fetch_order = getattr(client, "fetch_order", None)
        venue_id = response.get("id")
        if not callable(fetch_order) or venue_id is None:
            return response
        try:
            fetched = fetch_order(venue_id, order.symbol)
        except Exception as exc:
            raise ExchangeError(
                f"{self._venue}: order {order.order_id} of strategy {order.strategy_id!r} was "
                f"accepted as venue order {venue_id!r} but reading its fill failed with "
                f"{type(exc).__name__}: {exc}; check the order on the venue and reconcile "
                "the position"
            ) from exc
        return cast("Mapping[str, Any]", fetched) if isinstance(fetched, Mapping) else response

    def _failure_message(self, order: Order, exc: Exception) -> str:
        names = [cls.__name__ for cls in type(exc).__mro__]
        hint = next((_ERROR_HINTS[name] for name in names if name in _ERROR_HINTS), None)
        message = (
            f"{self._venue}: order {order.order_id} of strategy {order.strategy_id!r} "
            f"({order.side.value} {order.quantity} {order.symbol}) failed with "
            f"{type(exc).__name__}: {exc}"
        )
        return f"{message}; {hint}" if hint else message

    def _fill_from(self, order: Order, response: Mapping[str, Any], candle: Candle) -> Fill:
        venue_id = response.get("id")
        quantity = _filled_quantity(response)
        price = _positive(response.get("average"))
        if price is None and quantity is not None:
            cost = _positive(response.get("cost"))
            price = cost / quantity if cost is not None else None
        if quantity is None or price is None:
            raise ExchangeError(
                f"{self._venue}: order {order.order_id} of strategy {order.strategy_id!r} was "
                f"accepted as venue order {venue_id!r} but the answer reports no fill "
                f"(filled={response.get('filled')!r}, average={response.get('average')!r}); "
                "check the order on the venue and reconcile the position"
            )
        timestamp = response.get("timestamp")
        ts = (
            datetime.fromtimestamp(timestamp / 1000.0, UTC)
            if isinstance(timestamp, int | float) and not isinstance(timestamp, bool)
            else candle.close_ts
        )
        return Fill(
            order_id=order.order_id,
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            fee=self._fee_in_quote(order, response, quantity * price, price),
            ts=ts,
        )

    def _fee_in_quote(
        self, order: Order, response: Mapping[str, Any], notional: float, price: float
    ) -> float:
        """The venue's fee in quote currency; estimated from ``fee_bps`` when it is unusable."""
        fee = response.get("fee")
        entries = [fee] if fee is not None else response.get("fees") or []
        converted = _fee_in_quote(entries, order.symbol, price)
        if converted is not None:
            return converted
        estimate = notional * self._settings.fee_bps / _BPS
        strategy_logger(order.strategy_id).warning(
            "{venue}: order {order_id} reported fee {fee!r}, not convertible to the quote "
            "currency of {symbol}; recording an estimate of {estimate} from fee_bps",
            venue=self._venue,
            order_id=order.order_id,
            fee=entries,
            symbol=order.symbol,
            estimate=estimate,
        )
        return estimate


def _fee_in_quote(entries: object, symbol: str, price: float) -> float | None:
    """Sum ccxt fee entries paid in the quote, settle or base currency; ``None`` if any is not."""
    if not isinstance(entries, list) or not entries:
        return None
    base, _, rest = symbol.partition("/")
    quote, _, settle = rest.partition(":")
    total = 0.0
    for entry in entries:
        if not isinstance(entry, Mapping):
            return None
        cost = entry.get("cost")
        if isinstance(cost, bool) or not isinstance(cost, int | float) or not math.isfinite(cost):
            return None
        currency = entry.get("currency")
        if cost == 0:
            continue
        if currency in (quote, settle):
            total += cost
        elif currency == base:
            total += cost * price
        else:
            return None
    return total


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def _integer(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _in_venue_order(trades: list[VenueTrade]) -> list[VenueTrade]:
    """By time; trades of one millisecond in the venue's id order (numeric ids as numbers)."""
    return sorted(
        trades,
        key=lambda trade: (
            trade.timestamp_ms,
            (int(trade.trade_id), "") if trade.trade_id.isdecimal() else (0, trade.trade_id),
        ),
    )


def _filled_quantity(response: Mapping[str, Any]) -> float | None:
    return _positive(response.get("filled"))


def _positive(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


__all__ = ["CcxtClient", "CcxtExchange", "VenueOrder", "VenueTrade"]
