"""Live candle feeds against the fake Binance venue, through the real ccxt.pro code."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from fake_binance import FakeBinance, flat_klines
from loguru import logger

from tradekit.data.ccxt_feeds import Backoff, CcxtLiveFeeds
from tradekit.domain import Candle
from tradekit.errors import ExchangeError
from tradekit.services.exchange.ccxt_client import make_ccxt_client

START = 1_699_999_980_000
STEP = 60_000
KLINES = flat_klines(START, 20)
ETH_KLINES = flat_klines(START, 20, price=2000.0)
FAST = Backoff(initial=0.01, maximum=0.05)


def ms(candle: Candle) -> int:
    return int(candle.ts.timestamp() * 1000)


def bars(candles: list[Candle]) -> list[int]:
    """Each candle's index in KLINES."""
    return [(ms(candle) - START) // STEP for candle in candles]


def make_feeds(
    venue: FakeBinance, *, websockets: bool = True, warmup: int = 3, follow_attempts: int = 5
) -> CcxtLiveFeeds:
    settings = venue.ccxt_settings()
    return CcxtLiveFeeds(
        lambda: make_ccxt_client(settings, pro=True),
        {("BTC/USDT", "1m"): warmup},
        venue="binance",
        websockets=websockets,
        poll_seconds=0.05,
        backoff=FAST,
        follow_attempts=follow_attempts,
        rng=random.Random(1),
    )


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as executor:
        yield executor


def take(pool: ThreadPoolExecutor, stream: Iterator[Candle], count: int) -> list[Candle]:
    """The next ``count`` candles of ``stream``; fails instead of hanging when they never come."""
    return pool.submit(lambda: [next(stream) for _ in range(count)]).result(timeout=30)


class TestWebsocketFeed:
    def test_warmup_history_then_live_closed_candles(
        self, venue: FakeBinance, pool: ThreadPoolExecutor
    ) -> None:
        venue.serve_history("BTC/USDT", "1m", KLINES[:6])
        feeds = make_feeds(venue)
        try:
            assert bars(feeds.warmup()) == [2, 3, 4]
            stream = feeds.stream()
            venue.wait_for_subscription("BTC/USDT", "1m")
            venue.push("BTC/USDT", "1m", KLINES[5], closed=False)
            venue.push("BTC/USDT", "1m", KLINES[5], closed=True)
            venue.push("BTC/USDT", "1m", KLINES[6], closed=False)
            (candle,) = take(pool, stream, 1)
            assert (bars([candle]), candle.close, candle.symbol) == (
                [5],
                KLINES[5].close,
                "BTC/USDT",
            )
            assert candle.ts == datetime.fromtimestamp(KLINES[5].open_ms / 1000, UTC)
        finally:
            feeds.close()

    def test_duplicated_and_out_of_order_klines_come_out_once_in_order(
        self, venue: FakeBinance, pool: ThreadPoolExecutor
    ) -> None:
        venue.serve_history("BTC/USDT", "1m", KLINES[:5])
        feeds = make_feeds(venue)
        try:
            stream = feeds.stream()
            venue.wait_for_subscription("BTC/USDT", "1m")
            for index, closed in [(6, True), (4, True), (5, True), (4, True), (6, True), (5, True)]:
                venue.push("BTC/USDT", "1m", KLINES[index], closed=closed)
            venue.push("BTC/USDT", "1m", KLINES[7], closed=False)
            assert bars(take(pool, stream, 3)) == [4, 5, 6]
            venue.push("BTC/USDT", "1m", KLINES[8], closed=False)
            assert bars(take(pool, stream, 1)) == [7]
        finally:
            feeds.close()

    def test_a_dropped_websocket_reconnects_and_backfills_the_gap_in_order(
        self, venue: FakeBinance, pool: ThreadPoolExecutor
    ) -> None:
        venue.serve_history("BTC/USDT", "1m", KLINES[:5])
        feeds = make_feeds(venue)
        try:
            stream = feeds.stream()
            venue.wait_for_subscription("BTC/USDT", "1m")
            venue.push("BTC/USDT", "1m", KLINES[5], closed=False)
            assert bars(take(pool, stream, 1)) == [4]
            venue.drop_websockets()
            # What the venue traded while the feed was away: only REST can tell.
            venue.serve_history("BTC/USDT", "1m", KLINES[5:9])
            venue.wait_for_subscription("BTC/USDT", "1m", count=1)
            venue.push("BTC/USDT", "1m", KLINES[8], closed=True)
            venue.push("BTC/USDT", "1m", KLINES[9], closed=False)
            assert bars(take(pool, stream, 4)) == [5, 6, 7, 8]
            venue.push("BTC/USDT", "1m", KLINES[10], closed=False)
            assert bars(take(pool, stream, 1)) == [9]
        finally:
            feeds.close()

    def test_close_ends_the_stream(self, venue: FakeBinance, pool: ThreadPoolExecutor) -> None:
        venue.serve_history("BTC/USDT", "1m", KLINES[:5])
        feeds = make_feeds(venue)
        stream = feeds.stream()
        venue.wait_for_subscription("BTC/USDT", "1m")
        feeds.close()
        assert pool.submit(list, stream).result(timeout=30) == []


class TestPollingFeed:
    def test_polls_rest_when_websockets_are_off(
        self, venue: FakeBinance, pool: ThreadPoolExecutor
    ) -> None:
        venue.serve_history("BTC/USDT", "1m", KLINES[:5])
        feeds = make_feeds(venue, websockets=False)
        try:
            assert bars(feeds.warmup()) == [1, 2, 3]
            stream = feeds.stream()
            venue.serve_history("BTC/USDT", "1m", KLINES[5:8])
            assert bars(take(pool, stream, 3)) == [4, 5, 6]
        finally:
            feeds.close()

    def test_429_waits_for_retry_after_then_goes_on(
        self, venue: FakeBinance, pool: ThreadPoolExecutor
    ) -> None:
        warnings: list[str] = []
        logger.enable("tradekit")
        handler = logger.add(lambda message: warnings.append(str(message)), level="WARNING")
        venue.serve_history("BTC/USDT", "1m", KLINES[:5])
        feeds = make_feeds(venue, websockets=False)
        try:
            stream = feeds.stream()
            venue.rate_limit(1, retry_after=1)
            venue.serve_history("BTC/USDT", "1m", KLINES[5:8])
            assert bars(take(pool, stream, 2)) == [4, 5]
        finally:
            feeds.close()
            logger.remove(handler)
            logger.disable("tradekit")
        (warning,) = [text for text in warnings if "DDoSProtection" in text]
        assert "reconnecting in 1.00 s" in warning


def test_an_unknown_symbol_ends_the_start_with_an_exchange_error(venue: FakeBinance) -> None:
    settings = venue.ccxt_settings()
    feeds = CcxtLiveFeeds(
        lambda: make_ccxt_client(settings, pro=True),
        {("DOGE/USDT", "1m"): 3},
        venue="binance",
        backoff=FAST,
    )
    try:
        with pytest.raises(ExchangeError, match=r"binance DOGE/USDT 1m: .*BadSymbol"):
            feeds.start()
    finally:
        feeds.close()


def test_close_ends_a_start_still_waiting_for_history(
    venue: FakeBinance, pool: ThreadPoolExecutor
) -> None:
    """A run stopped while the venue keeps refusing its history is not left hanging."""
    venue.rate_limit(1000, retry_after=600)
    feeds = make_feeds(venue)
    starting = pool.submit(feeds.start)
    venue.wait_for_request("/api/v3/exchangeInfo")
    feeds.close()
    starting.result(timeout=30)
    assert feeds.warmup() == []


def of(symbol: str, candles: list[Candle]) -> list[int]:
    """The KLINES indexes of ``symbol``'s candles, in the order they came."""
    return bars([candle for candle in candles if candle.symbol == symbol])


class TestFollowingANewSeries:
    def test_a_series_followed_mid_stream_gives_its_history_then_each_closed_candle_once(
        self, venue: FakeBinance, pool: ThreadPoolExecutor
    ) -> None:
        venue.serve_history("BTC/USDT", "1m", KLINES[:5])
        venue.serve_history("ETH/USDT", "1m", ETH_KLINES[:6])
        feeds = make_feeds(venue)
        try:
            stream = feeds.stream()
            venue.wait_for_subscription("BTC/USDT", "1m")
            venue.push("BTC/USDT", "1m", KLINES[5], closed=False)
            assert bars(take(pool, stream, 1)) == [4]

            history = feeds.follow("ETH/USDT", "1m", 3)
            assert (bars(history), {c.symbol for c in history}) == ([2, 3, 4], {"ETH/USDT"})
            assert [c.close for c in history] == [k.close for k in ETH_KLINES[2:5]]
            assert feeds.serves("ETH/USDT", "1m")
            assert feeds.follow("ETH/USDT", "1m", 3) == []  # one feed per series
            venue.wait_for_subscription("ETH/USDT", "1m")
            for index, closed in [(6, True), (5, True), (5, True), (4, True)]:
                venue.push("ETH/USDT", "1m", ETH_KLINES[index], closed=closed)
            venue.push("ETH/USDT", "1m", ETH_KLINES[7], closed=False)
            venue.push("BTC/USDT", "1m", KLINES[6], closed=False)
            came = take(pool, stream, 3)
            venue.push("ETH/USDT", "1m", ETH_KLINES[8], closed=False)
            came += take(pool, stream, 1)
        finally:
            feeds.close()
        assert (of("ETH/USDT", came), of("BTC/USDT", came)) == ([5, 6, 7], [5])
        assert [c.close for c in came if c.symbol == "ETH/USDT"] == [
            k.close for k in ETH_KLINES[5:8]
        ]
        assert venue.subscription_count("ETH/USDT", "1m") == 1

    def test_a_symbol_the_venue_does_not_list_is_refused_and_the_other_feeds_go_on(
        self, venue: FakeBinance, pool: ThreadPoolExecutor
    ) -> None:
        venue.serve_history("BTC/USDT", "1m", KLINES[:5])
        feeds = make_feeds(venue)
        try:
            stream = feeds.stream()
            venue.wait_for_subscription("BTC/USDT", "1m")
            with pytest.raises(ExchangeError, match=r"binance DOGE/USDT 1m: .*BadSymbol.*DOGE"):
                feeds.follow("DOGE/USDT", "1m", 3)
            assert not feeds.serves("DOGE/USDT", "1m")
            venue.push("BTC/USDT", "1m", KLINES[5], closed=False)
            assert bars(take(pool, stream, 1)) == [4]
        finally:
            feeds.close()

    def test_network_errors_give_up_after_the_attempts_and_a_later_follow_starts(
        self, venue: FakeBinance, pool: ThreadPoolExecutor
    ) -> None:
        venue.serve_history("BTC/USDT", "1m", KLINES[:5])
        venue.serve_history("ETH/USDT", "1m", ETH_KLINES[:6])
        feeds = make_feeds(venue, follow_attempts=2)
        try:
            stream = feeds.stream()
            venue.wait_for_subscription("BTC/USDT", "1m")
            venue.rate_limit(2, retry_after=0)
            with pytest.raises(ExchangeError, match=r"ETH/USDT 1m: .*failed 2 times with DDoS"):
                feeds.follow("ETH/USDT", "1m", 3)
            assert not feeds.serves("ETH/USDT", "1m")
            assert bars(feeds.follow("ETH/USDT", "1m", 3)) == [2, 3, 4]
            venue.push("BTC/USDT", "1m", KLINES[5], closed=False)
            assert bars(take(pool, stream, 1)) == [4]
        finally:
            feeds.close()

    def test_a_follow_after_close_is_refused(self, venue: FakeBinance) -> None:
        venue.serve_history("BTC/USDT", "1m", KLINES[:5])
        feeds = make_feeds(venue)
        feeds.start()
        feeds.close()
        with pytest.raises(ExchangeError, match="ETH/USDT 1m: the feeds are closed"):
            feeds.follow("ETH/USDT", "1m", 3)
