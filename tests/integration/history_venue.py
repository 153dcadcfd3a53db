"""A ccxt-like venue serving seeded hourly candles page by page, for download tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tradekit.data import synthetic_frame
from tradekit.timeframes import timeframe_seconds

START = datetime(2024, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)


class NetworkError(Exception):
    """Named like ccxt's: the transient family."""


class RateLimitExceeded(NetworkError):  # noqa: N818 (ccxt's name, matched by name)
    """Named like ccxt's answer to HTTP 429."""


class BadSymbol(Exception):  # noqa: N818 (ccxt's name, matched by name)
    """Named like ccxt's: the venue does not list the symbol."""


class HistoryVenue:
    """Serves ``bars`` candles per (symbol, timeframe) from ``START``, at most ``limit`` a
    request, plus the candle still forming at ``now_ms``; ``calls`` records each request.

    ``rate_limited`` requests are answered with ``RateLimitExceeded`` before any is served.
    """

    def __init__(self, bars: int, now_ms: int, limit: int = 100, rate_limited: int = 0) -> None:
        self.bars = bars
        self.now_ms = now_ms
        self.limit = limit
        self.rate_limited = rate_limited
        self.calls: list[tuple[str, str, int | None, int | None]] = []

    def rows(self, symbol: str, timeframe: str) -> list[list[Any]]:
        """Every candle the venue holds that has opened by ``now_ms``, forming one included."""
        frame = synthetic_frame(symbol, timeframe, self.bars, seed=11, start=START)
        step = timeframe_seconds(timeframe) * 1000
        rows = [
            [START_MS + i * step, *map(float, row)]
            for i, row in enumerate(frame[["open", "high", "low", "close", "volume"]].to_numpy())
        ]
        forming = [row for row in rows if row[0] <= self.now_ms < row[0] + step]
        for row in forming:  # a forming candle's values are still moving
            row[4] = row[1]
        return [row for row in rows if row[0] <= self.now_ms]

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[Any]]:
        self.calls.append((symbol, timeframe, since, limit))
        if self.rate_limited:
            self.rate_limited -= 1
            raise RateLimitExceeded("binance 429 Too Many Requests")
        if symbol.startswith("NOPE"):
            raise BadSymbol(f"binance does not have market symbol {symbol}")
        count = min(limit or 500, self.limit)
        return [row for row in self.rows(symbol, timeframe) if since is None or row[0] >= since][
            :count
        ]
