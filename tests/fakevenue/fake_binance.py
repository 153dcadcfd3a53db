"""A fake Binance spot venue on 127.0.0.1 that the real ccxt code talks to in tests.

It serves the REST endpoints ccxt's ``binance`` class calls for markets, server
time, klines, balances and orders (signed endpoints accept any signature) and
the websocket kline stream ``ccxt.pro``'s ``watch_ohlcv`` subscribes to. Tests
drive it through ``FakeBinance``'s scenario methods: serve a candle history,
push live klines (forming or closed, Binance's ``x`` flag), drop every websocket,
answer 429 with ``Retry-After``, reject orders; open orders live in the server,
so they outlast any client. Executions are trades (``GET /api/v3/myTrades``)
that move the balances; market orders may fill only partly, the rest staying
open until ``fill_open_orders``. Runs uvicorn in a background thread, one per test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from tradekit.config.settings import CcxtSettings

STEP_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "1d": 86_400_000}
SPOT_OPTIONS: dict[str, Any] = {
    # Only spot markets, and none of the calls that need Binance's other hosts.
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}


@dataclass(frozen=True)
class Kline:
    """One candle as the venue knows it: open time (ms) and prices; volume in base units."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float = 1.0

    def rest_row(self, step_ms: int) -> list[Any]:
        return [
            self.open_ms, f"{self.open}", f"{self.high}", f"{self.low}", f"{self.close}",
            f"{self.volume}", self.open_ms + step_ms - 1, "0", 1, "0", "0", "0",
        ]  # fmt: skip


def flat_klines(
    start_ms: int, count: int, interval: str = "1m", price: float = 100.0
) -> list[Kline]:
    """``count`` consecutive klines from ``start_ms``, closes rising by 1 from ``price``."""
    step = STEP_MS[interval]
    return [
        Kline(start_ms + i * step, price + i, price + i + 0.5, price + i - 0.5, price + i + 0.25)
        for i in range(count)
    ]


@dataclass
class _State:
    klines: dict[tuple[str, str], dict[int, Kline]] = field(default_factory=dict)
    balances: dict[str, float] = field(default_factory=lambda: {"USDT": 10_000.0, "BTC": 0.0})
    open_orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)
    rate_limited: int = 0
    retry_after: int = 1
    reject_reason: str | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    queries: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    sockets: list[WebSocket] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    order_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    trade_ids: Iterator[int] = field(default_factory=lambda: itertools.count(501))
    market_fill_fraction: float = 1.0


class FakeBinance:
    """The fake venue and its scenario API; ``start()`` it, ``stop()`` it (the fixture does)."""

    def __init__(self, symbols: Sequence[str] = ("BTC/USDT", "ETH/USDT")) -> None:
        self.symbols = tuple(symbols)
        self._state = _State()
        self._lock = threading.Condition()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port: int = self._socket.getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        config = uvicorn.Config(
            _build_app(self),
            log_level="warning",
            ws="websockets-sansio",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    # -- life cycle -------------------------------------------------------
    def start(self) -> FakeBinance:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake venue did not start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ccxt_settings(self, **changes: Any) -> CcxtSettings:
        """Settings pointing every REST and websocket url ccxt's binance knows at this venue."""
        import ccxt
        import ccxt.pro

        api = ccxt.binance().urls["api"]
        urls: dict[str, Any] = {}
        for key, value in api.items():
            if isinstance(value, str):
                path = value.split("://", 1)[1].split("/", 1)[1]
                urls[key] = f"{self.base_url}/{path}"
        urls["ws"] = _every_url(
            ccxt.pro.binance().urls["api"]["ws"], f"ws://127.0.0.1:{self.port}/stream/ws"
        )
        values: dict[str, Any] = {
            "exchange_id": "binance",
            "sandbox": False,
            "urls": urls,
            "timeout_ms": 5000,
            "rate_limit_ms": 1,
            "options": SPOT_OPTIONS,
        }
        values.update(changes)
        return CcxtSettings.model_validate(values)

    # -- scenario ---------------------------------------------------------
    def serve_history(self, symbol: str, interval: str, klines: Sequence[Kline]) -> None:
        """Klines the REST endpoint answers with (added to what it already knows)."""
        with self._lock:
            book = self._state.klines.setdefault((_market_id(symbol), interval), {})
            book.update({kline.open_ms: kline for kline in klines})

    def push(
        self, symbol: str, interval: str, kline: Kline, *, closed: bool, record: bool = True
    ) -> None:
        """Send one kline event to every subscribed websocket; ``record`` also serves it by REST."""
        market_id = _market_id(symbol)
        if record:
            self.serve_history(symbol, interval, [kline])
        step = STEP_MS[interval]
        event = {
            "e": "kline", "E": kline.open_ms + step // 2, "s": market_id,
            "k": {
                "t": kline.open_ms, "T": kline.open_ms + step - 1, "s": market_id, "i": interval,
                "f": 1, "L": 2, "o": f"{kline.open}", "c": f"{kline.close}",
                "h": f"{kline.high}", "l": f"{kline.low}", "v": f"{kline.volume}", "n": 2,
                "x": closed, "q": "0", "V": "0", "Q": "0", "B": "0",
            },
        }  # fmt: skip
        stream = f"{market_id.lower()}@kline_{interval}"
        with self._lock:
            targets = list(self._state.sockets) if stream in self._state.subscriptions else []
        for target in targets:
            self._call(target.send_text(json.dumps(event)))

    def wait_for_subscription(self, symbol: str, interval: str, count: int = 1) -> None:
        """Block until ``count`` websocket subscriptions to the stream were made in total."""
        stream = f"{_market_id(symbol).lower()}@kline_{interval}"
        with self._lock:
            if not self._lock.wait_for(
                lambda: self._state.subscriptions.count(stream) >= count, timeout=20
            ):
                raise AssertionError(f"nobody subscribed {count} times to {stream}")

    def subscription_count(self, symbol: str, interval: str) -> int:
        """How many websocket subscriptions to the stream were made so far, by any client."""
        stream = f"{_market_id(symbol).lower()}@kline_{interval}"
        with self._lock:
            return self._state.subscriptions.count(stream)

    def wait_for_request(self, path: str, count: int = 1) -> None:
        """Block until ``path`` was requested ``count`` times."""
        with self._lock:
            if not self._lock.wait_for(lambda: self.request_count(path) >= count, timeout=20):
                raise AssertionError(f"{path} was not requested {count} times")

    def request_count(self, path: str) -> int:
        return sum(1 for _, requested in self._state.requests if requested == path)

    def drop_websockets(self) -> None:
        """Close every websocket connection, as a venue does on maintenance or a network blip."""
        with self._lock:
            targets, self._state.sockets = self._state.sockets, []
            self._state.subscriptions.clear()
        for target in targets:
            self._call(target.close(code=1001))

    def rate_limit(self, requests: int, retry_after: int = 1) -> None:
        """Answer the next ``requests`` REST requests with 429 and ``Retry-After``."""
        with self._lock:
            self._state.rate_limited, self._state.retry_after = requests, retry_after

    def reject_orders(self, reason: str | None) -> None:
        """Refuse every new order with Binance's insufficient-balance error (None: accept)."""
        with self._lock:
            self._state.reject_reason = reason

    def fill_market_orders_partly(self, fraction: float) -> None:
        """Fill only ``fraction`` of each new market order at once; the rest stays open."""
        with self._lock:
            self._state.market_fill_fraction = fraction

    def fill_open_orders(
        self, client_order_ids: Sequence[str] | None = None, price: float | None = None
    ) -> list[dict[str, Any]]:
        """Execute what is left of the open orders with these client order ids (all when
        ``None``) at ``price``, else at the last 1m close; the trades made."""
        with self._lock:
            made = []
            for order_id, order in list(self._state.open_orders.items()):
                if client_order_ids is not None and order["clientOrderId"] not in client_order_ids:
                    continue
                del self._state.open_orders[order_id]
                left = float(order["origQty"]) - float(order["executedQty"])
                made.append(_execute(self._state, order, left, price or _last(self._state, order)))
            return made

    def execute_order(
        self, symbol: str, side: str, quantity: float, price: float, client_order_id: str
    ) -> dict[str, Any]:
        """A market order another program (or a person) sent and the venue filled; its trade."""
        with self._lock:
            order = _new_order(self._state, _market_id(symbol), side, "MARKET", quantity, 0.0)
            order["clientOrderId"] = client_order_id
            return _execute(self._state, order, quantity, price)

    def open_order(
        self, symbol: str, side: str, quantity: float, price: float, client_order_id: str
    ) -> dict[str, Any]:
        """A limit order another program (or a person) left open on the venue."""
        with self._lock:
            order = _new_order(self._state, _market_id(symbol), side, "LIMIT", quantity, price)
            order["clientOrderId"] = client_order_id
            self._state.open_orders[order["orderId"]] = order
            return dict(order)

    def set_balance(self, asset: str, amount: float) -> None:
        """Make the account hold ``amount`` of ``asset`` (a deposit, a withdrawal, ...)."""
        with self._lock:
            self._state.balances[asset] = amount

    @property
    def balances(self) -> dict[str, float]:
        with self._lock:
            return dict(self._state.balances)

    @property
    def trades(self) -> list[dict[str, Any]]:
        """Every execution, oldest first, as ``GET /api/v3/myTrades`` answers it."""
        with self._lock:
            return [dict(trade) for trade in self._state.trades]

    @property
    def open_orders(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.open_orders.values())

    @property
    def created_orders(self) -> list[dict[str, Any]]:
        """Every order the venue accepted, in order, as it answered them."""
        with self._lock:
            return list(self._state.created)

    @property
    def unexpected(self) -> list[str]:
        """Requests to paths this venue does not implement."""
        return list(self._state.unexpected)

    @property
    def requests(self) -> list[tuple[str, str]]:
        return list(self._state.requests)

    def queries(self, path: str) -> list[dict[str, str]]:
        """The query parameters of every request to ``path``, in order."""
        with self._lock:
            return [dict(query) for requested, query in self._state.queries if requested == path]

    # -- internals used by the app ----------------------------------------
    def _call(self, coroutine: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def _record(self, method: str, path: str, query: dict[str, str]) -> JSONResponse | None:
        """Log the request; a 429 answer while rate limited."""
        with self._lock:
            self._state.requests.append((method, path))
            self._state.queries.append((path, query))
            self._lock.notify_all()
            if self._state.rate_limited > 0:
                self._state.rate_limited -= 1
                return JSONResponse(
                    {"code": -1003, "msg": "Too many requests."},
                    status_code=429,
                    headers={"Retry-After": str(self._state.retry_after)},
                )
        return None


def _every_url(urls: Any, target: str) -> Any:
    if isinstance(urls, dict):
        return {key: _every_url(value, target) for key, value in urls.items()}
    return target


def _market_id(symbol: str) -> str:
    return symbol.replace("/", "")


def _market(symbol: str) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {
        "symbol": _market_id(symbol), "status": "TRADING", "baseAsset": base,
        "baseAssetPrecision": 8, "quoteAsset": quote, "quotePrecision": 8,
        "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": True,
        "ocoAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "permissions": ["SPOT"],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00",
             "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.0",
             "stepSize": "0.00001"},
            {"filterType": "NOTIONAL", "minNotional": "1.0", "maxNotional": "9000000.0"},
        ],
    }  # fmt: skip


def _build_app(venue: FakeBinance) -> FastAPI:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        venue._loop = asyncio.get_running_loop()
        venue._ready.set()
        yield

    app = FastAPI(lifespan=lifespan)
    state = venue._state

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        limited = venue._record(request.method, request.url.path, dict(request.query_params))
        return limited if limited is not None else await call_next(request)

    @app.get("/api/v3/time")
    async def server_time() -> dict[str, Any]:
        return {"serverTime": _now_ms()}

    @app.get("/api/v3/exchangeInfo")
    async def exchange_info() -> dict[str, Any]:
        return {
            "timezone": "UTC", "serverTime": _now_ms(), "rateLimits": [], "exchangeFilters": [],
            "symbols": [_market(symbol) for symbol in venue.symbols],
        }  # fmt: skip

    @app.get("/api/v3/klines")
    async def klines(
        symbol: str,
        interval: str,
        startTime: int | None = None,  # noqa: N803 - Binance's parameter names
        endTime: int | None = None,  # noqa: N803
        limit: int = 500,
    ) -> list[list[Any]]:
        with venue._lock:
            book = dict(state.klines.get((symbol, interval), {}))
        rows = [
            book[ms]
            for ms in sorted(book)
            if (startTime is None or ms >= startTime) and (endTime is None or ms <= endTime)
        ]
        rows = rows[:limit] if startTime is not None else rows[-limit:]
        return [row.rest_row(STEP_MS[interval]) for row in rows]

    @app.get("/api/v3/account")
    async def account() -> dict[str, Any]:
        with venue._lock:
            balances = [
                {"asset": asset, "free": f"{amount}", "locked": "0.0"}
                for asset, amount in state.balances.items()
            ]
        return {"accountType": "SPOT", "canTrade": True, "balances": balances, "updateTime": 0}

    @app.post("/api/v3/order")
    async def create_order(request: Request) -> Any:
        form = dict(request.query_params)
        form.update(parse_qsl((await request.body()).decode()))
        with venue._lock:
            if state.reject_reason is not None:
                return JSONResponse(
                    {
                        "code": -2010,
                        "msg": f"Account has insufficient balance: {state.reject_reason}",
                    },
                    status_code=400,
                )
            symbol = form["symbol"]
            quantity = float(form["quantity"])
            is_market = form.get("type") == "MARKET"
            price = 0.0 if is_market else float(form["price"])
            order = _new_order(state, symbol, form["side"], form["type"], quantity, price)
            order["clientOrderId"] = form.get("newClientOrderId", order["clientOrderId"])
            executed = round(quantity * state.market_fill_fraction, 5) if is_market else 0.0
            if executed > 0:
                _execute(state, order, executed, _last(state, order))
            if order["status"] != "FILLED":
                state.open_orders[order["orderId"]] = order
            state.created.append(dict(order))
            return dict(order)

    @app.get("/api/v3/order")
    async def fetch_order(
        symbol: str,
        orderId: int | None = None,  # noqa: N803
        origClientOrderId: str | None = None,  # noqa: N803
    ) -> Any:
        with venue._lock:
            for order in state.orders.values():
                if order["orderId"] == orderId or order["clientOrderId"] == origClientOrderId:
                    return {key: value for key, value in order.items() if key != "fills"}
        return JSONResponse({"code": -2013, "msg": "Order does not exist."}, status_code=400)

    @app.delete("/api/v3/order")
    async def cancel_order(symbol: str, orderId: int | None = None) -> Any:  # noqa: N803
        with venue._lock:
            order = state.open_orders.pop(orderId or -1, None)
        if order is None:
            return JSONResponse({"code": -2011, "msg": "Unknown order sent."}, status_code=400)
        return {**order, "status": "CANCELED"}

    @app.get("/api/v3/openOrders")
    async def open_orders(symbol: str | None = None) -> list[dict[str, Any]]:
        with venue._lock:
            return [o for o in state.open_orders.values() if symbol in (None, o["symbol"])]

    @app.get("/api/v3/myTrades")
    async def my_trades(
        symbol: str,
        startTime: int | None = None,  # noqa: N803 - Binance's parameter names
        endTime: int | None = None,  # noqa: N803
        fromId: int | None = None,  # noqa: N803
        orderId: int | None = None,  # noqa: N803
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        with venue._lock:
            trades = [trade for trade in state.trades if trade["symbol"] == symbol]
        if orderId is not None:
            trades = [trade for trade in trades if trade["orderId"] == orderId]
        if fromId is not None:
            trades = [trade for trade in trades if trade["id"] >= fromId]
        else:
            trades = [
                trade
                for trade in trades
                if (startTime is None or trade["time"] >= startTime)
                and (endTime is None or trade["time"] <= endTime)
            ]
        # Binance: from the start (or fromId) forwards; without either, the most recent.
        return trades[:limit] if startTime is not None or fromId is not None else trades[-limit:]

    @app.websocket("/stream/ws/{index}")
    async def stream(websocket: WebSocket, index: str) -> None:
        await websocket.accept()
        with venue._lock:
            state.sockets.append(websocket)
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                if message.get("method") == "SUBSCRIBE":
                    await websocket.send_text(json.dumps({"result": None, "id": message["id"]}))
                    with venue._lock:
                        state.subscriptions.extend(message["params"])
                        venue._lock.notify_all()
        except WebSocketDisconnect:
            pass
        finally:
            with venue._lock:
                if websocket in state.sockets:
                    state.sockets.remove(websocket)

    @app.api_route("/{path:path}", methods=["GET", "POST", "DELETE", "PUT"])
    async def unexpected(path: str, request: Request) -> JSONResponse:
        with venue._lock:
            state.unexpected.append(f"{request.method} /{path}")
        return JSONResponse({"code": -1, "msg": f"not in the fake venue: /{path}"}, 404)

    return app


def _new_order(
    state: _State, symbol: str, side: str, kind: str, quantity: float, price: float
) -> dict[str, Any]:
    """A new order the venue accepted, not executed yet; remembered by its id."""
    order_id = next(state.order_ids)
    order = {
        "symbol": symbol, "orderId": order_id, "orderListId": -1,
        "clientOrderId": f"fake{order_id}", "transactTime": _now_ms(),
        "price": f"{price}", "origQty": f"{quantity}", "executedQty": "0.0",
        "cummulativeQuoteQty": "0.0", "status": "NEW", "timeInForce": "GTC",
        "type": kind, "side": side, "fills": [],
    }  # fmt: skip
    state.orders[order_id] = order
    return order


def _last(state: _State, order: dict[str, Any]) -> float:
    """The price a market order fills at: the last 1m close the venue serves, else 100."""
    book = state.klines.get((order["symbol"], "1m"), {})
    return book[max(book)].close if book else 100.0


def _execute(state: _State, order: dict[str, Any], quantity: float, price: float) -> dict[str, Any]:
    """Execute ``quantity`` of ``order`` at ``price``: a trade, with a 0.1% fee in the quote
    asset, that updates the order and moves the balances; the trade."""
    quote = next(q for q in ("USDT", "BTC", "ETH") if order["symbol"].endswith(q))
    base = order["symbol"].removesuffix(quote)
    buying = order["side"] == "BUY"
    notional = quantity * price
    commission = notional * 0.001
    trade = {
        "symbol": order["symbol"], "id": next(state.trade_ids), "orderId": order["orderId"],
        "orderListId": -1, "price": f"{price}", "qty": f"{quantity}",
        "quoteQty": f"{notional}", "commission": f"{commission}", "commissionAsset": quote,
        "time": _now_ms(), "isBuyer": buying, "isMaker": False, "isBestMatch": True,
    }  # fmt: skip
    state.trades.append(trade)
    sign = 1.0 if buying else -1.0
    state.balances[base] = state.balances.get(base, 0.0) + sign * quantity
    state.balances[quote] = state.balances.get(quote, 0.0) - sign * notional - commission
    executed = float(order["executedQty"]) + quantity
    order["executedQty"] = f"{executed}"
    order["cummulativeQuoteQty"] = f"{float(order['cummulativeQuoteQty']) + notional}"
    order["status"] = (
        "FILLED" if executed >= float(order["origQty"]) - 1e-12 else "PARTIALLY_FILLED"
    )
    order["fills"] = [
        *order["fills"],
        {"price": f"{price}", "qty": f"{quantity}", "commission": f"{commission}",
         "commissionAsset": quote, "tradeId": trade["id"]},
    ]  # fmt: skip
    return trade


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
