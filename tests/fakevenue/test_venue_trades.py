"""``CcxtExchange.trades_since`` on the fake Binance venue, through the real ccxt code:
the account's trades in pages, each once, with its order's client order id, rate limits
waited out."""

from __future__ import annotations

import pytest
from fake_binance import FakeBinance, flat_klines
from pydantic import SecretStr

from tradekit.config.settings import ExchangeSettings
from tradekit.errors import ExchangeError
from tradekit.services.exchange import CcxtExchange
from tradekit.services.exchange.ccxt_client import make_ccxt_client

START = 1_700_000_040_000 - 1_700_000_040_000 % 60_000


def exchange(venue: FakeBinance, waits: list[float], page: int = 1000) -> CcxtExchange:
    ccxt = venue.ccxt_settings(api_key=SecretStr("key"), api_secret=SecretStr("secret"))
    settings = ExchangeSettings(kind="ccxt", ccxt=ccxt)
    return CcxtExchange(settings, False, trade_page_limit=page, sleep=waits.append)


class TestTradesSince:
    def test_pages_through_every_trade_once_in_order_with_client_order_ids(
        self, venue: FakeBinance
    ) -> None:
        venue.serve_history("BTC/USDT", "1m", flat_klines(START, 1))
        made = [
            venue.execute_order("BTC/USDT", "BUY", 0.1 * (n + 1), 100.0 + n, f"TKbot-{n + 1}")
            for n in range(5)
        ]
        venue.execute_order("ETH/USDT", "BUY", 1.0, 10.0, "TKother-1")
        trades = exchange(venue, [], page=2).trades_since("BTC/USDT", made[0]["time"])
        assert [trade.trade_id for trade in trades] == [str(trade["id"]) for trade in made]
        assert [trade.client_order_id for trade in trades] == [f"TKbot-{n}" for n in range(1, 6)]
        assert [trade.quantity for trade in trades] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
        assert trades[2].price == 102.0
        assert trades[2].fee == pytest.approx(0.3 * 102.0 * 0.001)
        assert trades[0].side == "buy"
        pages = venue.queries("/api/v3/myTrades")
        assert [query.get("fromId") for query in pages] == [None, "503", "505"]
        assert pages[0]["startTime"] == str(made[0]["time"])

    def test_trades_before_since_are_left_out(self, venue: FakeBinance) -> None:
        first = venue.execute_order("BTC/USDT", "BUY", 0.1, 100.0, "TKbot-1")
        trades = exchange(venue, []).trades_since("BTC/USDT", first["time"] + 1)
        assert [trade.trade_id for trade in trades if trade.trade_id == str(first["id"])] == []

    def test_a_rate_limit_is_waited_out(self, venue: FakeBinance) -> None:
        made = venue.execute_order("BTC/USDT", "SELL", 0.1, 100.0, "TKbot-1")
        reader = exchange(venue, waits := [])
        reader.balances()  # markets loaded: the 429 below answers the trades' request
        venue.rate_limit(1, retry_after=0)
        (trade,) = reader.trades_since("BTC/USDT", made["time"])
        assert (trade.trade_id, trade.side) == (str(made["id"]), "sell")
        assert len(waits) == 1

    def test_a_lasting_rate_limit_is_an_exchange_error_naming_the_call(
        self, venue: FakeBinance
    ) -> None:
        reader = exchange(venue, waits := [])
        reader.balances()
        venue.rate_limit(100, retry_after=0)
        with pytest.raises(ExchangeError, match=r"binance: fetch_my_trades\('BTC/USDT'"):
            reader.trades_since("BTC/USDT", START)
        assert waits == [0.5, 1.0, 2.0, 4.0]

    def test_order_trades_are_every_trade_of_one_order(self, venue: FakeBinance) -> None:
        venue.fill_market_orders_partly(0.5)
        settings = venue.ccxt_settings(api_key=SecretStr("key"), api_secret=SecretStr("secret"))
        placed = make_ccxt_client(settings).create_order(
            "BTC/USDT", "market", "buy", 1.0, None, {"clientOrderId": "TKbot-1"}
        )
        venue.execute_order("BTC/USDT", "BUY", 0.2, 91.0, "TKbot-2")
        venue.fill_open_orders(["TKbot-1"], price=90.0)
        reader = exchange(venue, [])
        (seen, *_) = reader.trades_since("BTC/USDT", 0)
        trades = reader.order_trades(seen)
        assert [trade.quantity for trade in trades] == [0.5, 0.5]
        assert {trade.venue_order_id for trade in trades} == {placed["id"]}
        assert {trade.client_order_id for trade in trades} == {"TKbot-1"}
