"""``CcxtLiveFeeds``: live closed candles from a ccxt venue, one feed per (symbol, timeframe).

The feeds run on ``ccxt.pro``'s asyncio client in an event loop on their own
thread, sharing one client; closed candles reach the (synchronous) engine loop
through a queue. Each feed first fetches its warm-up history, then follows the
venue by websocket (``watch_ohlcv``) where the venue has one, by REST polling
otherwise. After any error it reconnects with exponential backoff and jitter
(a rate-limit answer waits at least its ``Retry-After``) and back-fills the gap
with ``fetch_ohlcv`` before going on, so no candle is lost or repeated. A
series first needed while the run goes (a bot added on another symbol) gets a
feed of its own the same way, through ``follow()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import random
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tradekit.data.ccxt_errors import error_names, is_transient
from tradekit.data.ccxt_source import default_poll_seconds
from tradekit.data.closed_candles import ClosedCandles
from tradekit.data.sources import SeriesKey, candle_sort_key
from tradekit.domain import Candle
from tradekit.errors import DataError, ExchangeError
from tradekit.logs import log

# A rate-limit answer: wait at least what the venue's Retry-After says.
_RATE_LIMITED = "DDoSProtection"
_PAGE = 500


@dataclass(frozen=True)
class Backoff:
    """Waits between reconnects: ``initial`` seconds, doubled per failure up to ``maximum``,
    each scaled by a random factor in ``[1 - jitter, 1]`` so many clients do not retry in step."""

    initial: float = 1.0
    maximum: float = 60.0
    jitter: float = 0.5

    def delay(self, failures: int, rng: random.Random) -> float:
        base = min(self.initial * 2.0 ** max(failures - 1, 0), self.maximum)
        return base * (1 - self.jitter * rng.random())


_Item = Candle | BaseException | None


class CcxtLiveFeeds:
    """Every feed of one live run on one venue; one per run, closed by ``close()`` or ``stop``.

    ``poll_seconds`` spaces the polls of a venue without websockets (by default
    ``default_poll_seconds`` of each feed's timeframe).

    ``history`` maps each (symbol, timeframe) to the closed candles its warm-up
    needs; each pair gets exactly one feed however many strategies read it.
    ``start()`` connects and waits for every history (``warmup()`` then returns
    it); ``stream()`` yields the live closed candles, each once, in order per
    feed, and the candles that arrive together merged in close-time order. A
    non-network error (unknown symbol, bad data) ends the stream with
    ``ExchangeError`` or ``DataError`` naming the feed. ``follow()`` adds a
    series while the stream goes; a feed that cannot start then is refused to
    its caller and ends nothing.

    Its candles are real exchange market data (``live_market_data``).
    """

    live_market_data = True

    def __init__(
        self,
        make_client: Callable[[], Any],
        history: Mapping[SeriesKey, int],
        *,
        venue: str,
        websockets: bool | None = None,
        poll_seconds: float | None = None,
        backoff: Backoff = Backoff(),
        follow_attempts: int = 5,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not history:
            raise ValueError("history must name at least one (symbol, timeframe)")
        if poll_seconds is not None and poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be > 0, got {poll_seconds!r}")
        if follow_attempts < 1:
            raise ValueError(f"follow_attempts must be >= 1, got {follow_attempts!r}")
        self.venue = venue
        self._make_client = make_client
        self._history = dict(sorted(history.items()))
        self._use_websockets = websockets
        self._poll_seconds = poll_seconds
        self._backoff = backoff
        self._follow_attempts = follow_attempts
        self._rng = rng or random.Random()
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._warmup: list[Candle] = []
        self._ready = threading.Condition()
        self._pending_histories = len(self._history)
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._adding: set[concurrent.futures.Future[list[Candle]]] = set()
        self._loop_ended = False
        self._closed = threading.Event()
        if stop is not None:
            threading.Thread(target=self._close_when, args=(stop,), daemon=True).start()

    def symbols(self) -> list[SeriesKey]:
        """Every (symbol, timeframe) followed, sorted."""
        return list(self._history)

    def serves(self, symbol: str, timeframe: str) -> bool:
        """Whether a feed follows the (``symbol``, ``timeframe``) series."""
        return (symbol, timeframe) in self._history

    def follow(self, symbol: str, timeframe: str, warmup_bars: int) -> list[Candle]:
        """Deliver the (``symbol``, ``timeframe``) series too, from now on; its history.

        Fetches the last ``warmup_bars`` closed candles (returned in order, to be
        loaded before the series' first live candle), then the series' closed
        candles join ``stream()``, each once and in order, merged with the other
        feeds'. Blocks until the history came. A series already followed returns
        no history. When the feed cannot start (a symbol the venue does not
        list, bad data, or network errors ``follow_attempts`` times in a row)
        ``ExchangeError`` or ``DataError`` names the series and the venue's
        answer; the other feeds go on.
        """
        key = (symbol, timeframe)
        if key in self._history:
            return []
        if warmup_bars < 0:
            raise ValueError(f"warmup_bars must be >= 0, got {warmup_bars!r}")
        self.start()
        closed = ExchangeError(f"{self.venue} {symbol} {timeframe}: the feeds are closed")
        with self._ready:
            # Under the lock the loop's end takes too: it cancels every start it did not run.
            if self._loop is None or self._loop_ended:
                raise closed
            added = asyncio.run_coroutine_threadsafe(self._feed_added(key, warmup_bars), self._loop)
            self._adding.add(added)
        try:
            history = added.result()
        except concurrent.futures.CancelledError:
            raise closed from None
        finally:
            with self._ready:
                self._adding.discard(added)
        self._history[key] = warmup_bars
        return sorted(history, key=candle_sort_key)

    def poll_seconds(self, timeframe: str) -> float:
        """Seconds between two polls of a ``timeframe`` feed when the venue has no websockets."""
        return self._poll_seconds or default_poll_seconds(timeframe)

    def start(self) -> None:
        """Connect every feed and wait until each has fetched its history (or ``close()``
        gives up on it); idempotent."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ccxt-feeds", daemon=True)
            self._thread.start()
        with self._ready:
            self._ready.wait_for(
                lambda: (
                    self._pending_histories == 0
                    or self._failure is not None
                    or self._closed.is_set()
                )
            )
        if self._failure is not None:
            raise self._failure

    def warmup(self) -> list[Candle]:
        """The closed history fetched at start, in close-time order (after ``start()``)."""
        self.start()
        return sorted(self._warmup, key=candle_sort_key)

    def stream(self) -> Iterator[Candle]:
        """Live closed candles until ``close()`` (or ``stop``); starts the feeds at once."""
        self.start()
        return self._candles()

    def _candles(self) -> Iterator[Candle]:
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            candles = [item for item in batch if isinstance(item, Candle)]
            yield from sorted(candles, key=candle_sort_key)
            for item in batch:
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    return

    def close(self) -> None:
        """Stop every feed, close the client and end ``stream()``; idempotent."""
        if self._closed.is_set():
            return
        with self._ready:
            self._closed.set()
            self._ready.notify_all()
        if self._loop is not None and self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(30)
        self._queue.put(None)

    def _close_when(self, stop: threading.Event) -> None:
        stop.wait()
        self.close()

    # -- the event loop thread --------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the engine's thread, which raises it
            self._fail(exc)
        finally:
            with self._ready:
                self._loop_ended = True
                for added in self._adding:
                    added.cancel()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        if self._closed.is_set():
            return
        client = self._make_client()
        try:
            if self._use_websockets is None:
                self._use_websockets = bool(getattr(client, "has", {}).get("watchOHLCV"))
            self._client = client
            for key, bars in self._history.items():
                self._spawn(self._feed_from_start(client, key, bars))
            await self._done.wait()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await client.close()

    def _spawn(self, feed: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(feed)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _feed_from_start(self, client: Any, key: SeriesKey, bars: int) -> None:
        state = ClosedCandles(*key, self.venue)
        try:
            history = await self._history_of(client, state, bars, attempts=None)
        except (DataError, ExchangeError) as exc:
            self._fail(exc)
            return
        self._took_history(history)
        await self._live(client, state)

    async def _feed_added(self, key: SeriesKey, bars: int) -> list[Candle]:
        """Start the feed of a new series: its history (``ExchangeError`` or ``DataError``
        after ``follow_attempts``), then its live candles on a task of their own."""
        client = self._client
        if client is None or self._done is None or self._done.is_set():
            raise ExchangeError(f"{self.venue} {key[0]} {key[1]}: the feeds are closed")
        state = ClosedCandles(*key, self.venue)
        history = await self._history_of(client, state, bars, attempts=self._follow_attempts)
        self._spawn(self._live(client, state))
        return history

    async def _history_of(
        self, client: Any, state: ClosedCandles, bars: int, *, attempts: int | None
    ) -> list[Candle]:
        """The warm-up history, asked again after network errors, ``attempts`` times at most
        (``None``: until it comes); any other error, or the last one, as ``ExchangeError``
        or ``DataError`` naming the feed."""
        failures = 0
        while True:
            try:
                history = await self._fetch_history(client, state, bars)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if not is_transient(error_names(exc)):
                    raise self._translate(state, exc) from exc
                if attempts is not None and failures >= attempts:
                    raise self._translate(state, exc, f" {failures} times") from exc
                await asyncio.sleep(self._retry_wait(client, state, exc, failures))
                continue
            log.info("{venue} {symbol} {timeframe}: feed started", venue=self.venue,
                     symbol=state.symbol, timeframe=state.timeframe)  # fmt: skip
            return history

    async def _live(self, client: Any, state: ClosedCandles) -> None:
        """Closed candles after the history until cancelled; a non-network error ends the
        stream with it."""
        failures = 0
        after_history = True
        while True:
            try:
                if not after_history:
                    await self._backfill(client, state)
                after_history = False
                failures = 0
                if not self._use_websockets:
                    await asyncio.sleep(self.poll_seconds(state.timeframe))
                    continue
                while True:
                    rows = await client.watch_ohlcv(state.symbol, state.timeframe)
                    self._deliver(state.offer(rows))
                    if state.gap_from is not None:
                        await self._backfill(client, state)
                    failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(error_names(exc)):
                    self._fail(self._translate(state, exc))
                    return
                failures += 1
                await asyncio.sleep(self._retry_wait(client, state, exc, failures))

    def _retry_wait(
        self, client: Any, state: ClosedCandles, exc: Exception, failures: int
    ) -> float:
        """How long to wait before trying again after the ``failures``-th network error
        in a row (logged): the backoff, and at least a rate-limit answer's Retry-After."""
        wait = self._backoff.delay(failures, self._rng)
        if _RATE_LIMITED in error_names(exc):
            wait = max(wait, _retry_after(client))
        log.warning(
            "{venue} {symbol} {timeframe}: {error}; reconnecting in {wait:.2f} s",
            venue=self.venue, symbol=state.symbol, timeframe=state.timeframe,
            error=f"{type(exc).__name__}: {exc}", wait=wait,
        )  # fmt: skip
        return wait

    async def _fetch_history(self, client: Any, state: ClosedCandles, bars: int) -> list[Candle]:
        if bars + 1 <= _PAGE:
            rows = await client.fetch_ohlcv(state.symbol, state.timeframe, None, bars + 1)
            return state.offer(_rows(rows, state), complete=True)
        since = int(client.milliseconds()) - (bars + 1) * state.step_ms
        return await self._pages(client, state, since)

    async def _backfill(self, client: Any, state: ClosedCandles) -> None:
        since = None if state.last_ms is None else state.last_ms + state.step_ms
        self._deliver(await self._pages(client, state, since))

    async def _pages(self, client: Any, state: ClosedCandles, since: int | None) -> list[Candle]:
        """Every row from ``since`` on, page by page, offered as the venue's whole record."""
        candles: list[Candle] = []
        while True:
            rows = _rows(
                await client.fetch_ohlcv(state.symbol, state.timeframe, since, _PAGE), state
            )
            candles.extend(state.offer(rows, complete=True))
            if len(rows) < _PAGE or state.newest_ms is None:
                return candles
            since = state.newest_ms

    def _deliver(self, candles: list[Candle]) -> None:
        for candle in candles:
            self._queue.put(candle)

    def _took_history(self, candles: list[Candle]) -> None:
        with self._ready:
            self._warmup.extend(candles)
            self._pending_histories -= 1
            self._ready.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._ready:
            if self._failure is None:
                self._failure = exc
            self._ready.notify_all()
        self._queue.put(exc)

    def _translate(self, state: ClosedCandles, exc: Exception, when: str = "") -> Exception:
        if isinstance(exc, DataError | ExchangeError):
            return exc
        return ExchangeError(
            f"{self.venue} {state.symbol} {state.timeframe}: the feed failed{when} with "
            f"{type(exc).__name__}: {exc}"
        )


def _rows(answer: object, state: ClosedCandles) -> list[Any]:
    if not isinstance(answer, list):
        raise DataError(
            f"{state.venue} {state.symbol} {state.timeframe}: fetch_ohlcv returned "
            f"{type(answer).__name__}, expected a list of [ms, open, high, low, close, volume]"
        )
    return answer


def _retry_after(client: Any) -> float:
    """The seconds of the last answer's ``Retry-After`` header; 0 when it has none."""
    headers = getattr(client, "last_response_headers", None) or {}
    for name, value in dict(headers).items():
        if str(name).lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except (TypeError, ValueError):
                return 0.0
    return 0.0


__all__ = ["Backoff", "CcxtLiveFeeds"]
