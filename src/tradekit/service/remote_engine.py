"""The API's side of the pipe to the engine's process: an ``EngineLink`` the routes use as if
the engine ran next to them.

A receiver thread reads the engine's ``EngineUpdate``s. Each one is applied to
the bots, feeds and candle durations kept here, and a new immutable ``EngineView``
replaces the previous one, so the routes read views exactly as they read those of
an engine on a thread; the update's events go to the ``EventStream`` that ``GET
/api/stream`` serves; then the poll count moves and the routes waiting for a look
at the registry wake (the view already shows what that look changed).
``ask_poll`` and ``stop`` write a command to the pipe. ``ServiceEnding``, the
pipe closing (the engine's process died) or an update that cannot be read calls
``on_end``: the server shuts down (after a failure, the process exits with
``LINK_FAILED_EXIT_CODE``, and the engine's stops the service).
"""

from __future__ import annotations

import contextlib
import pickle
import threading
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import MappingProxyType

from tradekit.logs import log
from tradekit.runtime.engine_view import CANDLE_TIMES_KEPT, BotView, EngineView
from tradekit.service.engine_messages import (
    ASK_POLL,
    STOP_ENGINE,
    ApiFailed,
    ApiReady,
    EngineUpdate,
    ServiceEnding,
)
from tradekit.service.event_stream import EventStream


class RemoteEngine:
    """The engine of another process, seen through its updates; one per API process."""

    def __init__(self, connection: Connection, stream: EventStream) -> None:
        self._connection = connection
        self._stream = stream
        self._send_lock = threading.Lock()
        self._bots: dict[str, BotView] = {}
        self._candle_seconds: deque[float] = deque(maxlen=CANDLE_TIMES_KEPT)
        self._view: EngineView | None = None
        self._polls = 0
        self._ended = False
        self._changed = threading.Condition()
        self._receiver = threading.Thread(
            target=self._receive_loop, name="tradekit-engine-link", daemon=True
        )
        self.on_end: Callable[[], None] = lambda: None
        """Called on the receiver thread when the service ends, the engine's process died,
        or an update could not be read (``failure`` says why)."""
        self.failure: str | None = None

    def start(self) -> None:
        self._receiver.start()

    def wait_ended(self, timeout: float) -> bool:
        """Wait until the receiver thread ended (the service ended, or the engine's process
        died): only then may this end of the pipe be closed."""
        self._receiver.join(timeout)
        return not self._receiver.is_alive()

    def wait_for_first_view(self, timeout: float) -> bool:
        """Wait until the engine's first view came; False on timeout or if the pipe closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._view is not None or self._ended, timeout)
            return self._view is not None

    def tell(self, message: ApiReady | ApiFailed) -> None:
        """Tell the engine's process how the API's start went."""
        self._send(message)

    # -- EngineLink -------------------------------------------------------------------------

    def view(self) -> EngineView | None:
        return self._view

    @property
    def polls(self) -> int:
        return self._polls

    def ask_poll(self) -> None:
        self._send(ASK_POLL)

    def wait_for_poll(self, after: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: self._polls > after or self._ended or not self._running(), timeout
            )

    def stop(self) -> None:
        self._send(STOP_ENGINE)

    # -- the receiver thread ----------------------------------------------------------------

    def _running(self) -> bool:
        view = self._view
        return view is None or view.running

    def _send(self, message: str | ApiReady | ApiFailed) -> None:
        # A failure means the engine's process is gone: the receiver ends the service.
        with self._send_lock, contextlib.suppress(OSError):
            self._connection.send(message)

    def _receive_loop(self) -> None:
        try:
            self._follow()
        except Exception as exc:  # better no API than one showing a view no longer true
            self.failure = f"{type(exc).__name__}: {exc}"
            log.opt(exception=exc).error(
                f"the engine's updates could not be read ({self.failure}); the API stops"
            )
        with self._changed:
            self._ended = True
            self._changed.notify_all()
        self.on_end()

    def _follow(self) -> None:
        """Apply the engine's updates until the service ends or its process is gone."""
        while True:
            try:
                message = pickle.loads(self._connection.recv_bytes())
            except (EOFError, OSError):
                return
            if isinstance(message, ServiceEnding):
                return
            if isinstance(message, EngineUpdate):
                self._apply(message)

    def _apply(self, update: EngineUpdate) -> None:
        for strategy_id in update.removed:
            self._bots.pop(strategy_id, None)
        for bot in update.bots:
            self._bots[bot.strategy_id] = bot
        self._candle_seconds.extend(update.candle_seconds)
        view = EngineView(
            mode=update.mode,
            source=update.source,
            running=update.running,
            published_at=update.published_at,
            candles=update.candles,
            feeds=update.feeds,
            bots=MappingProxyType(dict(self._bots)),
            candle_seconds=tuple(self._candle_seconds),
        )
        with self._changed:
            self._view = view
            self._polls = update.polls
            self._changed.notify_all()
        if update.events_lost:
            self._stream.lose(update.events_lost)
        if update.events:
            self._stream.publish(update.events)


__all__ = ["RemoteEngine"]
