"""The engine's side of the pipe to the API's process: its view and events out, commands in.

Design. The engine's thread does as little as it can for the API: as a run
observer placed after the ``EngineViewPublisher`` (which built the new view),
``EngineRelay`` notes that there is something to send and keeps the events the
journal committed (``publish``, called by the ``EventStreamFeed``). A sender thread
of its own compares the newest view with the last one it sent (bots by identity:
the publisher rebuilds only the bots a candle or a change touched), pickles what
moved into one ``EngineUpdate`` and writes it to the pipe. Updates are at most
``MIN_SEND_INTERVAL`` apart, merging what came meanwhile, except the first view, a
look at the registry (a route waits for it) and the end, which go at once. If the
API's process reads slowly, only the sender thread waits on the pipe, never the
engine; events wait in a bounded buffer (the oldest dropped past ``capacity``, with
a warning, and the API's streams told to start over).

A receiver thread reads the API's commands: ``ASK_POLL`` has the engine look at
the registry now, ``STOP_ENGINE`` stops it; ``ApiReady``/``ApiFailed`` answer
``wait_for_api``. When the API's process ends (the pipe closes), or an update
cannot be sent (the API would go on showing a view that is no longer true), the
relay calls ``on_link_lost``: the service stops.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from types import MappingProxyType
from typing import Protocol

from tradekit.domain import Candle
from tradekit.events import Event
from tradekit.logs import log
from tradekit.runtime.engine import Engine
from tradekit.runtime.engine_view import BotView, EngineView
from tradekit.runtime.waking import Doorbell
from tradekit.service.engine_messages import (
    ASK_POLL,
    STOP_ENGINE,
    ApiFailed,
    ApiReady,
    EngineUpdate,
    ServiceEnding,
)
from tradekit.service.event_stream import DEFAULT_CAPACITY


class ViewSource(Protocol):
    """What the relay reads of the engine: an ``EngineViewPublisher``."""

    @property
    def polls(self) -> int: ...

    def latest(self) -> EngineView | None: ...

    def ask_poll(self) -> None: ...


MIN_SEND_INTERVAL = 0.02
"""Seconds between two updates while candles come: a dashboard sees the engine at most this
late, and the engine's process pickles at most fifty updates a second, however fast the
candles."""


class EngineRelay:
    """Sends one engine's views and events to the API's process and takes its commands.

    ``started``, ``candle``, ``polled``, ``wants_poll``, ``stopped`` and ``publish`` run
    on the engine's thread; the rest on the service's main thread.
    """

    def __init__(
        self,
        connection: Connection,
        publisher: ViewSource,
        stop_engine: Callable[[], None],
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self._connection = connection
        self._publisher = publisher
        self._stop_engine = stop_engine
        self.on_link_lost: Callable[[], None] = lambda: None
        """Called when the API's process closed its end (``api_gone``), or when an update
        could not be sent (``failure`` says why): the service must stop."""
        self.api_gone = False
        self.failure: str | None = None
        self._events: deque[Event] = deque(maxlen=capacity)
        self._dropped = 0
        self._pending = threading.Condition()
        self._dirty = False
        self._urgent = False
        self._closing = False
        self._sent_view: EngineView | None = None
        self._sent_candles = 0
        self._api_answer: ApiReady | ApiFailed | None = None
        self._api_answered = threading.Event()
        self._sender = threading.Thread(
            target=self._send_loop, name="tradekit-relay-out", daemon=True
        )
        self._receiver = threading.Thread(
            target=self._receive_loop, name="tradekit-relay-in", daemon=True
        )

    def start(self) -> None:
        self._sender.start()
        self._receiver.start()

    # -- the engine's thread ----------------------------------------------------------------

    def started(self, engine: Engine, now: Callable[[], datetime], doorbell: Doorbell) -> None:
        self._note(urgent=True)

    def candle(self, candle: Candle, seconds: float) -> None:
        self._note(urgent=False)

    def polled(self, changed: Sequence[str]) -> None:
        self._note(urgent=True)

    def wants_poll(self) -> bool:
        return False

    def stopped(self) -> None:
        self._note(urgent=True)

    def publish(self, events: Iterable[Event]) -> None:
        """Keep ``events`` (committed by the journal) for the next update."""
        with self._pending:
            before = len(self._events)
            batch = list(events)
            self._events.extend(batch)
            self._dropped += before + len(batch) - len(self._events)

    def _note(self, *, urgent: bool) -> None:
        with self._pending:
            self._dirty = True
            if urgent:
                self._urgent = True
            self._pending.notify()

    # -- the service's main thread ----------------------------------------------------------

    def wait_for_api(self, timeout: float) -> ApiReady | ApiFailed | None:
        """The API process's first word (ready, or why it failed); None if it said nothing
        within ``timeout`` seconds or its end of the pipe closed first."""
        self._api_answered.wait(timeout)
        return self._api_answer

    def close(self) -> None:
        """Send what is left, then ``ServiceEnding``; the sender thread ends."""
        with self._pending:
            self._closing = True
            self._pending.notify()
        self._sender.join()

    def wait_api_closed(self, timeout: float) -> bool:
        """Wait until the API's end of the pipe closed (its process ended): only then may this
        end be closed, as the receiver thread reads it until then."""
        self._receiver.join(timeout)
        return not self._receiver.is_alive()

    # -- the sender thread ------------------------------------------------------------------

    def _send_loop(self) -> None:
        try:
            self._send_updates()
        except Exception as exc:  # an API left with a stale view would report untruths
            self.failure = f"{type(exc).__name__}: {exc}"
            log.opt(exception=exc).error(
                f"the engine's view could not be sent to the API ({self.failure}); "
                "the service stops"
            )
            self.on_link_lost()
        self._send(ServiceEnding())

    def _send_updates(self) -> None:
        last_sent = 0.0
        while True:
            with self._pending:
                while not (self._dirty or self._closing):
                    self._pending.wait()
                if not self._urgent and not self._closing:
                    # Merge what comes within the interval into this update.
                    left = last_sent + MIN_SEND_INTERVAL - time.monotonic()
                    if left > 0:
                        self._pending.wait_for(lambda: self._urgent or self._closing, left)
                closing = self._closing
                self._dirty = self._urgent = False
                events = tuple(self._events)
                self._events.clear()
                dropped, self._dropped = self._dropped, 0
            if dropped:
                log.warning(f"the API read slowly: {dropped} events were not streamed")
            if not self._send(self._update(events, dropped)) or closing:
                return
            last_sent = time.monotonic()

    def _update(self, events: tuple[Event, ...], lost: int) -> EngineUpdate | None:
        # The poll count first: the view read after it already shows what those polls did.
        polls = self._publisher.polls
        view = self._publisher.latest()
        if view is None:
            return None
        sent = self._sent_view
        before: Mapping[str, BotView] = MappingProxyType({}) if sent is None else sent.bots
        changed = tuple(bot for key, bot in view.bots.items() if before.get(key) is not bot)
        removed = tuple(key for key in before if key not in view.bots)
        new_candles = min(view.candles - self._sent_candles, len(view.candle_seconds))
        self._sent_view, self._sent_candles = view, view.candles
        return EngineUpdate(
            mode=view.mode,
            source=view.source,
            running=view.running,
            published_at=view.published_at,
            candles=view.candles,
            feeds=view.feeds,
            bots=changed,
            removed=removed,
            candle_seconds=view.candle_seconds[len(view.candle_seconds) - new_candles :],
            events=events,
            events_lost=lost,
            polls=polls,
        )

    def _send(self, message: EngineUpdate | ServiceEnding | None) -> bool:
        """Write ``message`` to the pipe; False when the API's end is closed."""
        if message is None:
            return True
        try:
            self._connection.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            return False
        return True

    # -- the receiver thread ----------------------------------------------------------------

    def _receive_loop(self) -> None:
        while True:
            try:
                command = self._connection.recv()
            except (EOFError, OSError):
                break
            if command == ASK_POLL:
                self._publisher.ask_poll()
            elif command == STOP_ENGINE:
                self._stop_engine()
            elif isinstance(command, ApiReady | ApiFailed):
                self._api_answer = command
                self._api_answered.set()
        self.api_gone = True
        self._api_answered.set()
        self.on_link_lost()


__all__ = ["MIN_SEND_INTERVAL", "EngineRelay", "ViewSource"]
