"""Live candles from a ccxt venue: ``fetch_ohlcv`` polled, each closed candle yielded once.

The client is any object with ccxt's ``fetch_ohlcv(symbol, timeframe, since,
limit)``; ccxt itself is never imported here, so tests pass a fake.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

import pandas as pd

from tradekit.data.ccxt_errors import error_names, hint_for, is_transient
from tradekit.data.sources import SeriesKey, candle_sort_key
from tradekit.domain import Candle, ensure_utc
from tradekit.errors import DataError, ExchangeError
from tradekit.services.market.candles import PRICE_COLUMNS
from tradekit.services.market.clock import SystemClock
from tradekit.timeframes import timeframe_seconds

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LONGEST_DEFAULT_POLL_SECONDS = 10.0


def default_poll_seconds(timeframe: str) -> float:
    """Seconds between two polls of a ``timeframe`` feed when none is configured.

    A tenth of the timeframe, at most 10 s: a closed candle is seen at most that
    late, and a feed costs a few requests a minute, far under any venue's rate limit.
    """
    return min(timeframe_seconds(timeframe) / 10, _LONGEST_DEFAULT_POLL_SECONDS)


# A garbled answer is bad data rather than a refusal.
_BAD_DATA = frozenset({"BadResponse", "NullResponse"})
_HINTS = {
    "BadSymbol": "the venue does not list this symbol; check the symbols given",
    "AuthenticationError": "check the API key and secret",
    "NotSupported": "the venue does not offer OHLCV candles through ccxt",
}


class OhlcvClient(Protocol):
    """The part of a ccxt exchange this source uses: rows of ``[ms, o, h, l, c, v]``."""

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None, limit: int | None
    ) -> list[list[Any]]: ...


class _Clock(Protocol):
    """Anything that tells the current time as an aware datetime."""

    def now(self) -> datetime: ...


class CcxtPollingSource:
    """Closed candles of several symbols on one timeframe from one ccxt venue, polled live.

    One per (venue, timeframe) for as long as the live run lasts. Each poll
    fetches every symbol from just after its last delivered candle (paging
    until caught up) and yields the candles that have closed by ``clock.now()``,
    each exactly once, merged in close-time order (see ``candle_sort_key``);
    the still-forming last row of a fetch is left for a later poll. A venue
    that revises an already delivered candle is not followed: the first closed
    version wins. A missing volume (``None``) is read as 0.

    Polls are ``poll_seconds`` apart (by default ``default_poll_seconds`` of the
    timeframe). Network errors are retried ``retries`` times, ``poll_seconds`` apart; any
    other client error raises ``ExchangeError`` and a malformed answer
    ``DataError``, both naming the venue and the symbol.

    Its candles are real exchange market data (``live_market_data``), the only
    kind a live run accepts.
    """

    live_market_data = True

    def __init__(
        self,
        client: object,
        symbols: Sequence[str],
        timeframe: str,
        poll_seconds: float | None = None,
        since: datetime | None = None,
        max_polls: int | None = None,
        *,
        limit: int = 500,
        retries: int = 3,
        sleep: Callable[[float], object] = time.sleep,
        clock: _Clock | None = None,
        venue: str | None = None,
    ) -> None:
        if not callable(getattr(client, "fetch_ohlcv", None)):
            raise TypeError(f"client must have a fetch_ohlcv method, got {client!r}")
        if isinstance(symbols, str) or not symbols or len(set(symbols)) != len(symbols):
            raise ValueError(
                f"symbols must be a non-empty list of distinct symbols, got {symbols!r}"
            )
        if poll_seconds is None:
            poll_seconds = default_poll_seconds(timeframe)
        if not (math.isfinite(poll_seconds) and poll_seconds > 0):
            raise ValueError(f"poll_seconds must be > 0, got {poll_seconds!r}")
        if max_polls is not None and max_polls < 1:
            raise ValueError(f"max_polls must be >= 1 or None, got {max_polls!r}")
        if limit < 1 or retries < 0:
            raise ValueError(f"limit must be >= 1 and retries >= 0, got {limit} and {retries}")
        self._client = cast(OhlcvClient, client)
        self._symbols = sorted(symbols)
        self._timeframe = timeframe
        self._step_ms = timeframe_seconds(timeframe) * 1000
        self._poll_seconds = poll_seconds
        self._since_ms = None if since is None else _ms(ensure_utc(since, "since"))
        self._max_polls = max_polls
        self._limit = limit
        self._retries = retries
        self._sleep = sleep
        self._clock: _Clock = clock or SystemClock()
        self.venue = venue or str(getattr(client, "id", None) or type(client).__name__)
        self._last: dict[str, int] = {}

    def symbols(self) -> list[SeriesKey]:
        """Every (symbol, timeframe) polled, sorted by symbol."""
        return [(symbol, self._timeframe) for symbol in self._symbols]

    def frames(self) -> dict[SeriesKey, pd.DataFrame]:
        """The closed candles from ``since`` until now, fetched once; the stream is untouched.

        Without ``since`` this is the venue's latest ``limit`` candles per symbol.
        """
        frames: dict[SeriesKey, pd.DataFrame] = {}
        for symbol in self._symbols:
            candles = self._fetch_closed(symbol, None)
            index = pd.DatetimeIndex(
                pd.to_datetime([candle.ts for candle in candles], utc=True), name="ts"
            )
            frames[(symbol, self._timeframe)] = pd.DataFrame(
                {name: [getattr(c, name) for c in candles] for name in PRICE_COLUMNS},
                index=index,
                dtype=float,
            )
        return frames

    def stream(self) -> Iterator[Candle]:
        """Poll until ``max_polls`` polls were made (forever without it), yielding closed candles.

        The position per symbol is kept by the source, so a second ``stream()``
        continues after the last candle the first one delivered.
        """
        polls = 0
        while True:
            batch: list[Candle] = []
            for symbol in self._symbols:
                candles = self._fetch_closed(symbol, self._last.get(symbol))
                if candles:
                    self._last[symbol] = _ms(candles[-1].ts)
                batch.extend(candles)
            yield from sorted(batch, key=candle_sort_key)
            polls += 1
            if self._max_polls is not None and polls >= self._max_polls:
                return
            self._sleep(self._poll_seconds)

    def _fetch_closed(self, symbol: str, last: int | None) -> list[Candle]:
        """Closed candles opening after ``last`` (ms; ``None``: from ``since``), all pages."""
        candles: list[Candle] = []
        while True:
            since = self._since_ms if last is None else last + self._step_ms
            answer = self._fetch(symbol, since)
            now = _ms(self._clock.now())
            # Only new, closed rows are read in full: a forming row may still be incomplete.
            stamped = sorted(
                ((self._open_ms(symbol, item), item) for item in answer), key=lambda pair: pair[0]
            )
            progressed = False
            for open_ms, item in stamped:
                if (last is None or open_ms > last) and open_ms + self._step_ms <= now:
                    candles.append(self._candle(symbol, open_ms, item))
                    last, progressed = open_ms, True
            if len(answer) < self._limit or not progressed:
                return candles

    def _fetch(self, symbol: str, since: int | None) -> list[Any]:
        attempt = 0
        while True:
            try:
                answer = self._client.fetch_ohlcv(symbol, self._timeframe, since, self._limit)
            except Exception as exc:
                names = error_names(exc)
                if is_transient(names) and attempt < self._retries:
                    attempt += 1
                    self._sleep(self._poll_seconds)
                    continue
                raise self._translate(symbol, exc, names, attempt) from exc
            if not isinstance(answer, list):
                raise DataError(
                    f"{self._where(symbol)}: fetch_ohlcv returned {type(answer).__name__}, "
                    "expected a list of [ms, open, high, low, close, volume] rows"
                )
            return answer

    def _translate(
        self, symbol: str, exc: Exception, names: frozenset[str], attempts: int
    ) -> ExchangeError | DataError:
        message = f"{self._where(symbol)}: fetch_ohlcv failed with {type(exc).__name__}: {exc}"
        if attempts:
            message += f" (after {attempts} retries)"
        hint = hint_for(names, _HINTS)
        if hint:
            message += f"; {hint}"
        return DataError(message) if names & _BAD_DATA else ExchangeError(message)

    def _where(self, symbol: str) -> str:
        return f"{self.venue} {symbol} {self._timeframe}"

    def _open_ms(self, symbol: str, item: object) -> int:
        """The open time of one ``[ms, o, h, l, c, v]`` row; ``DataError`` when it has none."""
        values = cast("Sequence[Any]", item)
        try:
            if isinstance(item, str | bytes) or len(values) < 6:
                raise ValueError("expected [ms, open, high, low, close, volume]")
            if isinstance(values[0], bool) or float(values[0]) != int(values[0]):
                raise ValueError("the open time must be whole epoch milliseconds")
            return int(values[0])
        except (TypeError, ValueError, OverflowError) as exc:
            raise self._malformed(symbol, item, exc) from exc

    def _candle(self, symbol: str, open_ms: int, item: object) -> Candle:
        """The candle of a row whose open time was read; a missing volume counts as 0."""
        values = cast("Sequence[Any]", item)
        try:
            open_, high, low, close = (float(value) for value in values[1:5])
            volume = 0.0 if values[5] is None else float(values[5])
        except (TypeError, ValueError) as exc:
            raise self._malformed(symbol, item, exc) from exc
        ts = _EPOCH + timedelta(milliseconds=open_ms)
        try:
            return Candle(symbol, self._timeframe, ts, open_, high, low, close, volume)
        except DataError as exc:
            raise DataError(f"{self.venue}: fetch_ohlcv returned a bad candle: {exc}") from exc

    def _malformed(self, symbol: str, item: object, exc: Exception) -> DataError:
        return DataError(
            f"{self._where(symbol)}: fetch_ohlcv returned a malformed row {item!r}: {exc}"
        )


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


__all__ = ["CcxtPollingSource", "OhlcvClient", "default_poll_seconds"]
