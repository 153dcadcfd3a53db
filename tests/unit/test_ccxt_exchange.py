"""Tests for the ccxt exchange over a fake client: the live-orders switch, fills and errors.

ccxt itself is never imported and the network never reached: a fake client
records every call, and a fake ``ccxt`` module stands in where the client is built.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from loguru import logger
from pydantic import SecretStr

from tradekit.config.settings import CcxtSettings, ExchangeSettings
from tradekit.domain import Candle, Fill, Order, OrderSide, OrderType
from tradekit.errors import ExchangeError, LiveOrdersDisabledError
from tradekit.protocols import Exchange
from tradekit.services.exchange import CcxtExchange

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
FILLED_AT = datetime(2024, 3, 1, 13, 0, 2, tzinfo=UTC)
FILLED_AT_MS = int(FILLED_AT.timestamp() * 1000)
CANDLE = Candle("BTC/USDT", "1h", T0, 60_000.0, 61_000.0, 59_000.0, 60_500.0, 10.0)


class BaseError(Exception):
    """Stands in for ccxt.BaseError; the classes below mirror ccxt's names and hierarchy."""


class InvalidOrder(BaseError):  # noqa: N818 - ccxt's own name, matched by the exchange
    pass


class InsufficientFunds(InvalidOrder):
    pass


class NetworkError(BaseError):
    pass


class RequestTimeout(NetworkError):  # noqa: N818 - ccxt's own name
    pass


def answer(**overrides: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "id": "venue-42",
        "filled": 0.5,
        "average": 60_010.0,
        "cost": 30_005.0,
        "fee": {"cost": 30.005, "currency": "USDT"},
        "timestamp": FILLED_AT_MS,
    }
    response.update(overrides)
    return response


class FakeClient:
    """Records create_order calls and answers with a canned order or raises a canned error."""

    def __init__(
        self, response: Mapping[str, Any] | None = None, error: Exception | None = None
    ) -> None:
        self.response = answer() if response is None else response
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        self.calls.append((symbol, type, side, amount, price, params))
        if self.error is not None:
            raise self.error
        return self.response


class FetchingClient(FakeClient):
    """A venue that answers create_order with the id only; fetch_order has the fill."""

    def __init__(self, fetched: Mapping[str, Any]) -> None:
        super().__init__(response={"id": "venue-42", "filled": None, "average": None})
        self.fetched = fetched
        self.fetches: list[tuple[str, str]] = []

    def fetch_order(self, order_id: str, symbol: str) -> Mapping[str, Any]:
        self.fetches.append((order_id, symbol))
        return self.fetched


def order(
    *, symbol: str = "BTC/USDT", side: OrderSide = OrderSide.BUY, reduce_only: bool = False
) -> Order:
    return Order("a-1", "a", symbol, side, 0.5, T0 + timedelta(hours=1), reduce_only=reduce_only)


def live(client: object, fee_bps: float = 10.0) -> CcxtExchange:
    return CcxtExchange(ExchangeSettings(kind="ccxt", fee_bps=fee_bps), True, client)


@pytest.fixture
def warning_log() -> Iterator[list[str]]:
    messages: list[str] = []
    logger.enable("tradekit")  # a library's records are off until the application opts in
    sink_id = logger.add(lambda message: messages.append(str(message)), level="WARNING")
    yield messages
    logger.remove(sink_id)
    logger.disable("tradekit")


class TestLiveOrdersSwitch:
    def test_refused_by_default_without_calling_the_client(self) -> None:
        client = FakeClient()
        exchange = CcxtExchange(ExchangeSettings(kind="ccxt"), False, client)
        with pytest.raises(LiveOrdersDisabledError) as caught:
            exchange.submit(order(), CANDLE)
        message = str(caught.value)
        assert "live_orders_enabled" in message
        assert "TRADEKIT_LIVE_ORDERS_ENABLED=true" in message
        assert "strategy 'a'" in message
        assert "a-1" in message
        assert client.calls == []

    def test_refused_before_any_client_is_built(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "ccxt", None)
        exchange = CcxtExchange(ExchangeSettings(kind="ccxt"), False)
        with pytest.raises(ExchangeError) as caught:
            exchange.submit(order(), CANDLE)
        assert type(caught.value) is LiveOrdersDisabledError

    def test_refused_even_with_a_trigger_price(self) -> None:
        client = FakeClient()
        exchange = CcxtExchange(ExchangeSettings(kind="ccxt"), False, client)
        with pytest.raises(LiveOrdersDisabledError):
            exchange.submit(order(side=OrderSide.SELL), CANDLE, trigger_price=59_500.0)
        assert client.calls == []


class TestFills:
    def test_market_order_fills_at_once_from_the_answer(self) -> None:
        client = FakeClient()
        fills = live(client).submit(order(), CANDLE)
        assert client.calls == [
            ("BTC/USDT", "market", "buy", 0.5, None, {"clientOrderId": "TKa-1"})
        ]
        assert fills == [
            Fill("a-1", "a", "BTC/USDT", OrderSide.BUY, 0.5, 60_010.0, 30.005, FILLED_AT)
        ]

    def test_fee_in_base_currency_is_converted_at_the_fill_price(self) -> None:
        client = FakeClient(answer(fee={"cost": 0.0005, "currency": "BTC"}))
        (fill,) = live(client).submit(order(), CANDLE)
        assert fill.fee == pytest.approx(0.0005 * 60_010.0, abs=1e-9)

    def test_fees_list_is_summed(self) -> None:
        fees = [{"cost": 10.0, "currency": "USDT"}, {"cost": 0.0001, "currency": "BTC"}]
        (fill,) = live(FakeClient(answer(fee=None, fees=fees))).submit(order(), CANDLE)
        assert fill.fee == pytest.approx(10.0 + 0.0001 * 60_010.0, abs=1e-9)

    def test_fee_in_a_third_currency_is_estimated_from_fee_bps(
        self, warning_log: list[str]
    ) -> None:
        client = FakeClient(answer(fee={"cost": 0.07, "currency": "BNB"}))
        (fill,) = live(client, fee_bps=7.5).submit(order(), CANDLE)
        # 0.5 * 60_010 = 30_005 notional; 7.5 bps of it = 22.50375
        assert fill.fee == pytest.approx(22.50375, abs=1e-9)
        assert any("not convertible" in message for message in warning_log)

    def test_missing_fee_is_estimated(self, warning_log: list[str]) -> None:
        (fill,) = live(FakeClient(answer(fee=None))).submit(order(), CANDLE)
        assert fill.fee == pytest.approx(30.005, abs=1e-9)
        assert warning_log

    def test_average_is_derived_from_cost_when_missing(self) -> None:
        (fill,) = live(FakeClient(answer(average=None, cost=30_000.0))).submit(order(), CANDLE)
        assert fill.price == pytest.approx(60_000.0)

    def test_missing_timestamp_falls_back_to_the_candle_close(self) -> None:
        (fill,) = live(FakeClient(answer(timestamp=None))).submit(order(), CANDLE)
        assert fill.ts == CANDLE.close_ts

    def test_an_answer_without_fill_is_read_once_with_fetch_order(self) -> None:
        client = FetchingClient(answer())
        (fill,) = live(client).submit(order(), CANDLE)
        assert client.fetches == [("venue-42", "BTC/USDT")]
        assert (fill.quantity, fill.price) == (0.5, 60_010.0)

    def test_an_order_with_no_known_fill_is_an_error_naming_the_venue_order(self) -> None:
        client = FakeClient({"id": "venue-42", "filled": 0.0, "average": None})
        with pytest.raises(ExchangeError, match=r"venue order 'venue-42'.*reconcile"):
            live(client).submit(order(), CANDLE)

    def test_reduce_only_is_sent_for_derivatives_only(self) -> None:
        client = FakeClient()
        exchange = live(client)
        exchange.submit(order(side=OrderSide.SELL, reduce_only=True), CANDLE)
        swap = "BTC/USDT:USDT"
        swap_candle = Candle(swap, "1h", T0, 60_000.0, 61_000.0, 59_000.0, 60_500.0, 10.0)
        exchange.submit(order(symbol=swap, side=OrderSide.SELL, reduce_only=True), swap_candle)
        assert [call[5] for call in client.calls] == [
            {"clientOrderId": "TKa-1"},
            {"clientOrderId": "TKa-1", "reduceOnly": True},
        ]

    def test_nothing_is_ever_pending(self) -> None:
        exchange = live(FakeClient())
        exchange.submit(order(), CANDLE)
        assert exchange.fill_pending("a", CANDLE) == []
        assert exchange.cancel_pending("a") == 0
        assert exchange.cancel_orders("a", ["a-1"]) == []


class TestErrors:
    def test_insufficient_funds_becomes_exchange_error_with_a_hint(self) -> None:
        error = InsufficientFunds("binance Account has insufficient balance")
        with pytest.raises(ExchangeError) as caught:
            live(FakeClient(error=error)).submit(order(), CANDLE)
        message = str(caught.value)
        assert caught.value.__cause__ is error
        assert "a-1" in message
        assert "InsufficientFunds" in message
        assert "lacks the balance" in message

    def test_a_timeout_is_matched_through_its_base_class(self) -> None:
        with pytest.raises(ExchangeError, match=r"RequestTimeout.*may or may not have reached"):
            live(FakeClient(error=RequestTimeout("timed out"))).submit(order(), CANDLE)

    def test_any_other_error_is_translated_too(self) -> None:
        with pytest.raises(ExchangeError, match="ValueError: odd") as caught:
            live(FakeClient(error=ValueError("odd"))).submit(order(), CANDLE)
        assert isinstance(caught.value.__cause__, ValueError)

    def test_limit_orders_are_refused_without_a_call(self) -> None:
        client = FakeClient()
        limit = Order("a-1", "a", "BTC/USDT", OrderSide.BUY, 1.0, T0, OrderType.LIMIT, 59_000.0)
        with pytest.raises(ExchangeError, match="only market orders"):
            live(client).submit(limit, CANDLE)
        assert client.calls == []

    def test_a_client_without_create_order_is_refused(self) -> None:
        with pytest.raises(TypeError, match="create_order"):
            CcxtExchange(ExchangeSettings(kind="ccxt"), True, object())


class FakeVenue:
    """Stands in for a ccxt exchange class: remembers its options and sandbox switch."""

    built: list[FakeVenue] = []

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.sandbox = False
        self.calls: list[tuple[Any, ...]] = []
        FakeVenue.built.append(self)

    def set_sandbox_mode(self, enabled: bool) -> None:
        self.sandbox = enabled

    def create_order(self, *args: Any) -> Mapping[str, Any]:
        self.calls.append(args)
        return answer()


class TestClientConstruction:
    @pytest.fixture
    def fake_ccxt(self, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
        module = types.ModuleType("ccxt")
        module.binance = FakeVenue  # type: ignore[attr-defined]
        module.exchanges = ["binance", "kraken"]  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "ccxt", module)
        FakeVenue.built = []
        return module

    def test_built_lazily_from_settings_on_the_first_order(
        self, fake_ccxt: types.ModuleType
    ) -> None:
        settings = ExchangeSettings(
            kind="ccxt",
            ccxt=CcxtSettings(api_key=SecretStr("key"), api_secret=SecretStr("secret")),
        )
        exchange = CcxtExchange(settings, True)
        assert FakeVenue.built == []
        exchange.submit(order(), CANDLE)
        exchange.submit(order(), CANDLE)
        (venue,) = FakeVenue.built
        assert venue.options == {
            "enableRateLimit": True,
            "apiKey": "key",
            "secret": "secret",
            "options": {"warnOnFetchOpenOrdersWithoutSymbol": False},
        }
        assert venue.sandbox is True
        assert len(venue.calls) == 2

    def test_unknown_exchange_id_suggests_a_close_one(self, fake_ccxt: types.ModuleType) -> None:
        settings = ExchangeSettings(kind="ccxt", ccxt=CcxtSettings(exchange_id="binanse"))
        with pytest.raises(ExchangeError, match=r"'binanse' is not a ccxt.*did you mean 'binance'"):
            CcxtExchange(settings, True).submit(order(), CANDLE)

    def test_missing_ccxt_names_the_live_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "ccxt", None)
        with pytest.raises(ExchangeError, match=r"tradekit\[live\]"):
            CcxtExchange(ExchangeSettings(kind="ccxt"), True).submit(order(), CANDLE)


def test_implements_the_exchange_protocol() -> None:
    exchange: Exchange = live(FakeClient())
    assert isinstance(exchange, Exchange)


def test_holds_no_pending_orders_and_refuses_to_import_simulated_ones() -> None:
    exchange = live(FakeClient())
    assert exchange.export_pending("a") == []
    exchange.import_pending("a", [])
    with pytest.raises(ExchangeError, match=r"'a' resumes with 1 pending order\(s\)"):
        exchange.import_pending("a", [{"order_id": "a-1"}])
