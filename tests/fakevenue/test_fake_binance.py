"""The real ccxt binance code talks to the fake venue: markets, candles, balances, orders."""

from __future__ import annotations

import asyncio

import ccxt
import pytest
from fake_binance import FakeBinance, flat_klines
from pydantic import SecretStr

from tradekit.services.exchange.ccxt_client import make_ccxt_client

START = 1_700_000_040_000 - 1_700_000_040_000 % 60_000


def client(venue: FakeBinance, *, pro: bool = False) -> ccxt.Exchange:
    settings = venue.ccxt_settings(api_key=SecretStr("key"), api_secret=SecretStr("secret"))
    return make_ccxt_client(settings, pro=pro)


class TestRest:
    def test_fetch_ohlcv_returns_the_served_history(self, venue: FakeBinance) -> None:
        venue.serve_history("BTC/USDT", "1m", flat_klines(START, 5))
        rows = client(venue).fetch_ohlcv("BTC/USDT", "1m", START + 60_000, 3)
        assert [row[0] for row in rows] == [START + 60_000, START + 120_000, START + 180_000]
        assert rows[0][1:5] == [101.0, 101.5, 100.5, 101.25]
        assert "BTC/USDT" in client(venue).load_markets()

    def test_fetch_balance_reads_the_account(self, venue: FakeBinance) -> None:
        balance = client(venue).fetch_balance()
        assert balance["USDT"]["free"] == 10_000.0

    def test_market_order_fills_at_the_last_close(self, venue: FakeBinance) -> None:
        venue.serve_history("BTC/USDT", "1m", flat_klines(START, 3))
        order = client(venue).create_order("BTC/USDT", "market", "buy", 0.5)
        assert (order["status"], order["filled"], order["average"]) == ("closed", 0.5, 102.25)

    def test_rejected_order_raises_invalid_order(self, venue: FakeBinance) -> None:
        venue.reject_orders("test")
        with pytest.raises(ccxt.InvalidOrder, match="-2010"):
            client(venue).create_order("BTC/USDT", "market", "buy", 0.5)

    def test_open_orders_outlive_the_client(self, venue: FakeBinance) -> None:
        placed = client(venue).create_order(
            "BTC/USDT", "limit", "buy", 0.1, 90.0, {"clientOrderId": "tk-bot1-1"}
        )
        restarted = client(venue)
        (open_order,) = restarted.fetch_open_orders("BTC/USDT")
        assert (open_order["id"], open_order["clientOrderId"]) == (placed["id"], "tk-bot1-1")
        restarted.cancel_order(placed["id"], "BTC/USDT")
        assert restarted.fetch_open_orders("BTC/USDT") == []

    def test_429_carries_retry_after(self, venue: FakeBinance) -> None:
        exchange = client(venue)
        exchange.load_markets()
        venue.rate_limit(1, retry_after=7)
        with pytest.raises(ccxt.DDoSProtection):
            exchange.fetch_ohlcv("BTC/USDT", "1m")
        headers = {key.lower(): value for key, value in exchange.last_response_headers.items()}
        assert headers["retry-after"] == "7"


class TestWebsocket:
    def test_watch_ohlcv_receives_pushed_klines(self, venue: FakeBinance) -> None:
        klines = flat_klines(START, 2)

        async def watch() -> list[list[float]]:
            exchange = client(venue, pro=True)
            try:
                first = await exchange.watch_ohlcv("BTC/USDT", "1m")
                second = await exchange.watch_ohlcv("BTC/USDT", "1m")
                return [*first, *second]
            finally:
                await exchange.close()

        async def main() -> list[list[float]]:
            task = asyncio.create_task(watch())
            await asyncio.to_thread(venue.wait_for_subscription, "BTC/USDT", "1m")
            await asyncio.to_thread(venue.push, "BTC/USDT", "1m", klines[0], closed=True)
            await asyncio.to_thread(venue.push, "BTC/USDT", "1m", klines[1], closed=False)
            return await task

        rows = asyncio.run(main())
        assert [row[0] for row in rows] == [START, START + 60_000]
        assert rows[1][4] == klines[1].close
