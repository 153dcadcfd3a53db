"""The bots' tagged events as one live stream for ``GET /api/stream``: a bounded buffer the
engine feeds and the API's streams read.

Design. The engine's objects stay on its thread: ``EventStreamFeed`` subscribes
to the event bus when the run starts and only keeps the (frozen) events it is
handed in a list private to that thread. After each candle and each registry
poll, when the journal has committed them, it hands that batch on (in ``tradekit
serve``, to the relay that sends it to the API's process, where it reaches the
``EventStream``): under one lock each event gets the next process-wide stream id
and joins a ``deque`` of at most ``capacity`` events, and every waiting stream
is woken through its own event loop. So what is streamed is what the journal
holds (a page reading ``/trades`` after an event finds it there), memory stays
bounded whatever the number of clients, and a slow client costs nothing but
its own cursor.

Resuming. A stream id is ``<epoch>-<n>``: ``epoch`` names this process, ``n``
counts its events. A client that reconnects with ``Last-Event-ID`` gets every
retained event after ``n``, in order, none twice. The journal keys events by
``(strategy_id, seq)`` only, with no order across bots, so an id the buffer no
longer holds (or one from an earlier process) cannot be mapped back onto it:
such a stream starts with a ``reset`` event, which tells the client to reload
what it shows from the REST routes (they read the journal), and then follows
the live events. With the default capacity that takes thousands of events
missed while away.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tradekit.domain import Candle
from tradekit.events import Event
from tradekit.protocols import EventBus
from tradekit.runtime.engine import Engine
from tradekit.runtime.waking import Doorbell

DEFAULT_CAPACITY = 10_000
"""Events kept for clients that reconnect; older ones need a reset."""


@dataclass(frozen=True, slots=True)
class StreamedEvent:
    """One tagged event with its place in this process's stream."""

    number: int
    event: Event


@dataclass(frozen=True, slots=True)
class StreamRead:
    """What a stream finds after its cursor: the events, its new cursor, and whether it lost
    its place (``reset``) or the stream is closed."""

    events: tuple[StreamedEvent, ...]
    cursor: int
    reset: bool
    closed: bool


class _Waiter:
    """One open stream's wake-up: an asyncio event set from any thread through its loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.woken = asyncio.Event()

    def wake(self) -> None:
        self.loop.call_soon_threadsafe(self.woken.set)


class EventStream:
    """The last ``capacity`` tagged events of this process, numbered; one per service.

    ``publish`` and ``close`` may be called from any thread (the engine's, the
    server's); ``read`` and ``watch`` from the API's event loop.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, epoch: str | None = None) -> None:
        self.epoch = epoch or secrets.token_hex(4)
        self._events: deque[StreamedEvent] = deque(maxlen=capacity)
        self._last = 0
        self._closed = False
        self._lock = threading.Lock()
        self._waiters: set[_Waiter] = set()

    def publish(self, events: Iterable[Event]) -> None:
        """Number ``events`` and keep them (dropping the oldest past the capacity)."""
        with self._lock:
            for event in events:
                self._last += 1
                self._events.append(StreamedEvent(self._last, event))
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.wake()

    def lose(self, count: int) -> None:
        """``count`` events never reached the stream: number on past them and keep nothing
        from before, so every stream resets (what it shows is reloaded) when it reads next,
        and no client resumes as if it had missed nothing."""
        with self._lock:
            self._events.clear()
            self._last += count
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.wake()

    def close(self) -> None:
        """End every open stream (the service stops); later reads find it closed."""
        with self._lock:
            self._closed = True
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.wake()

    @property
    def closed(self) -> bool:
        return self._closed

    def stream_id(self, number: int) -> str:
        return f"{self.epoch}-{number}"

    def start_cursor(self, last_event_id: str | None) -> tuple[int, bool]:
        """Where a new stream starts: after ``last_event_id`` when this process still holds
        what followed it, else at the newest event with ``reset`` true (``last_event_id``
        given but not resumable)."""
        with self._lock:
            newest = self._last
            oldest = self._events[0].number if self._events else newest + 1
        if last_event_id is None:
            return newest, False
        epoch, _, number = last_event_id.strip().rpartition("-")
        if epoch != self.epoch or not number.isdigit():
            return newest, True
        after = int(number)
        if after > newest or after < oldest - 1:
            return newest, True
        return after, False

    def read(self, cursor: int, wanted: Callable[[Event], bool]) -> StreamRead:
        """The retained events after ``cursor`` that ``wanted`` keeps, oldest first."""
        with self._lock:
            newest = self._last
            closed = self._closed
            if not self._events:
                # Numbered but not held (``lose``): a stream behind them lost its place.
                return StreamRead((), newest, cursor < newest, closed)
            if self._events[-1].number <= cursor:
                return StreamRead((), newest, False, closed)
            first = self._events[0].number
            start = max(cursor + 1 - first, 0)
            found = [self._events[index] for index in range(start, len(self._events))]
        return StreamRead(
            tuple(item for item in found if wanted(item.event)), newest, cursor < first - 1, closed
        )

    def watch(self) -> _Waiter:
        """A wake-up for the calling event loop, set on each publish and on close."""
        waiter = _Waiter()
        with self._lock:
            self._waiters.add(waiter)
        return waiter

    def forget(self, waiter: _Waiter) -> None:
        with self._lock:
            self._waiters.discard(waiter)


def event_filter(bots: Collection[str], types: Collection[str]) -> Callable[[Event], bool]:
    """Keeps events of ``bots`` (all when empty) of ``types`` (all when empty)."""
    wanted_bots, wanted_types = frozenset(bots), frozenset(types)

    def wanted(event: Event) -> bool:
        return (not wanted_bots or event.strategy_id in wanted_bots) and (
            not wanted_types or event.event_type in wanted_types
        )

    return wanted


def event_message(event: Event) -> dict[str, Any]:
    """The JSON a stream sends for ``event``: its tags, and its fields under ``data``."""
    data = event.to_dict()
    for key in ("event_type", "strategy_id", "seq", "ts"):
        data.pop(key, None)
    ts: datetime = event.ts
    return {
        "strategy_id": event.strategy_id,
        "seq": event.seq,
        "type": event.event_type,
        "ts": ts.isoformat(),
        "data": data,
    }


class EventSink(Protocol):
    """Where committed events go: an ``EventStream``, or the relay to the API's process."""

    def publish(self, events: Iterable[Event]) -> None: ...


class EventStreamFeed:
    """A run observer that hands the engine's committed events to an ``EventSink``; one per
    ``tradekit serve``, used on the engine's thread only."""

    def __init__(self, stream: EventSink) -> None:
        self._stream = stream
        self._pending: list[Event] = []

    def started(self, engine: Engine, now: Callable[[], datetime], doorbell: Doorbell) -> None:
        bus: EventBus = engine.factory.shared.event_bus()
        bus.subscribe(self._keep)

    def _keep(self, event: Event) -> None:
        self._pending.append(event)

    def candle(self, candle: Candle, seconds: float) -> None:
        self._flush()

    def polled(self, changed: Sequence[str]) -> None:
        self._flush()

    def wants_poll(self) -> bool:
        return False

    def stopped(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._stream.publish(batch)


__all__ = [
    "DEFAULT_CAPACITY",
    "EventSink",
    "EventStream",
    "EventStreamFeed",
    "StreamRead",
    "StreamedEvent",
    "event_filter",
    "event_message",
]
