"""One ``tradekit serve`` process: the engine on its own thread, the API under uvicorn on the
main thread, both over the same journal database.

The engine thread runs what ``tradekit run`` runs (``run_live`` following the
registry) with an ``EngineViewPublisher`` as its observer; the API reads the
published views and asks for changes through the registry. Stopping either
stops both: Ctrl-C or SIGTERM end uvicorn, then the engine is told to stop and
commits its journal; ``POST /api/engine/stop`` (or an engine failure) stops the
engine, which ends uvicorn. A replay that runs out leaves the API serving the
journal until the service is stopped. The engine thread also feeds the
``EventStream`` that ``GET /api/stream`` serves; it is closed when uvicorn shuts
down, which ends the open streams.
"""

from __future__ import annotations

import gc
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import anyio.to_thread
import uvicorn

from tradekit.config.settings import TradekitSettings
from tradekit.domain import Candle
from tradekit.errors import TradekitError
from tradekit.runtime.engine import Engine
from tradekit.runtime.engine_view import EngineView, EngineViewPublisher, RunObserver
from tradekit.runtime.live import LiveRunSummary
from tradekit.runtime.waking import Doorbell
from tradekit.service.app import create_app
from tradekit.service.event_stream import EventStream, EventStreamFeed
from tradekit.services.journal.store import SqlJournal
from tradekit.templates import TemplateCatalog

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
GRACEFUL_SHUTDOWN_SECONDS = 5
SWITCH_INTERVAL_SECONDS = 0.001
"""How long a thread keeps the interpreter lock while another waits for it (Python's default:
0.005). The engine gives the lock up at each database call, and then waited up to the full
interval for an API call to hand it back: under API load its per-candle p99 rose 70-90 %
with the default, 0 to 40 % with a millisecond, and the API's tails shrank too."""
API_WORKER_THREADS = 8
"""Worker threads for the routes that read or write the database (anyio's default is 40).

All of them share one interpreter lock with the engine: a few threads keep the database
busy, while forty took turns on the lock, each request held up by the others' switches."""

EngineRun = Callable[[threading.Event, RunObserver], LiveRunSummary]
"""Runs the engine on the calling thread until its source ends or the event is set."""


class EngineThread:
    """The engine of the service on its own thread, and the API's link to it; one per process."""

    def __init__(
        self,
        run: EngineRun,
        publisher: EngineViewPublisher,
        stop: threading.Event,
        feed: RunObserver | None = None,
    ) -> None:
        self._run = run
        self._publisher = publisher
        self._observer: RunObserver = publisher if feed is None else _Both(publisher, feed)
        self._stop = stop
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tradekit-engine", daemon=True)
        self.summary: LiveRunSummary | None = None
        self.error: BaseException | None = None
        self.on_stopped: Callable[[], None] = lambda: None
        """Called on the engine's thread when it stopped on request or failed."""

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        try:
            self.summary = self._run(self._stop, self._observer)
        except BaseException as exc:  # handed to the main thread, which reports it
            self.error = exc
        finally:
            self._ended.set()
            self._publisher.stopped()
        if self.error is not None or self._stop.is_set():
            self.on_stopped()

    def wait_started(self) -> None:
        """Wait until the engine has loaded its bots (its first view) or ended."""
        self._publisher.wait_for_first_view()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def join(self) -> None:
        self._thread.join()

    # -- EngineLink -------------------------------------------------------------------------

    def view(self) -> EngineView | None:
        return self._publisher.latest()

    @property
    def polls(self) -> int:
        return self._publisher.polls

    def ask_poll(self) -> None:
        self._publisher.ask_poll()

    def wait_for_poll(self, after: int, timeout: float) -> bool:
        return self._publisher.wait_for_poll(after, timeout)

    def stop(self) -> None:
        self._stop.set()
        self._publisher.wake_run()


class _Both:
    """Tells two observers what the run tells one: the view publisher, then the stream feed."""

    def __init__(self, first: RunObserver, second: RunObserver) -> None:
        self._first, self._second = first, second

    def started(self, engine: Engine, now: Callable[[], datetime], doorbell: Doorbell) -> None:
        self._first.started(engine, now, doorbell)
        self._second.started(engine, now, doorbell)

    def candle(self, candle: Candle, seconds: float) -> None:
        self._first.candle(candle, seconds)
        self._second.candle(candle, seconds)

    def polled(self, changed: Sequence[str]) -> None:
        self._first.polled(changed)
        self._second.polled(changed)

    def wants_poll(self) -> bool:
        # Both are asked: each answers once per asking.
        first, second = self._first.wants_poll(), self._second.wants_poll()
        return first or second

    def stopped(self) -> None:
        self._first.stopped()
        self._second.stopped()


class _Server(uvicorn.Server):
    """uvicorn's server that runs the routes on ``API_WORKER_THREADS`` worker threads, and
    ends the open event streams first when it shuts down, so they do not hold the graceful
    shutdown up."""

    def __init__(self, config: uvicorn.Config, stream: EventStream) -> None:
        super().__init__(config)
        self._stream = stream

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # The limiter belongs to the event loop: set it inside the loop the server runs.
        anyio.to_thread.current_default_thread_limiter().total_tokens = API_WORKER_THREADS
        await super().serve(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stream.close()
        await super().shutdown(sockets)


@dataclass(frozen=True)
class ServiceOptions:
    """Where the API listens and who may call it."""

    host: str
    port: int
    token: str
    cors_origins: Sequence[str] = ()
    settings: TradekitSettings | None = None
    """Their ``strategy_defaults`` are merged under a new bot's template, as under a file."""
    templates: TemplateCatalog | None = None
    """What bots are made from (default: the bundled templates)."""


def is_local(host: str) -> bool:
    """True for the loopback addresses only this machine reaches."""
    return host in LOCAL_HOSTS or host.startswith("127.")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (port 0: any free one); ``TradekitError``
    when the address cannot be used."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        listener = socket.socket(family, kind, protocol)
    except OSError as exc:
        raise TradekitError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        listener.close()
        raise TradekitError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port"
        ) from None
    return listener


def serve(
    run: EngineRun,
    *,
    mode: str,
    source: str,
    database_url: str,
    options: ServiceOptions,
    stop: threading.Event,
    announce: Callable[[str], None],
) -> LiveRunSummary | None:
    """Run the engine and the API until stopped (``stop`` set, as a signal handler does);
    the engine's summary (``None`` when it never started). An engine that failed has its
    error raised here, after the API stopped."""
    with _switch_interval(SWITCH_INTERVAL_SECONDS):
        return _serve_with_engine(run, mode, source, database_url, options, stop, announce)


@contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    """``sys.setswitchinterval(seconds)`` while inside, the previous interval afterwards."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _serve_with_engine(
    run: EngineRun,
    mode: str,
    source: str,
    database_url: str,
    options: ServiceOptions,
    stop: threading.Event,
    announce: Callable[[str], None],
) -> LiveRunSummary | None:
    publisher = EngineViewPublisher(mode, source)
    stream = EventStream()
    engine = EngineThread(run, publisher, stop, EventStreamFeed(stream))
    engine.start()
    engine.wait_started()
    if engine.error is not None:
        engine.join()
        raise engine.error
    listener = bind(options.host, options.port)
    try:
        journal = SqlJournal(database_url)
        try:
            app = create_app(
                journal=journal,
                token=options.token,
                engine_link=engine,
                cors_origins=options.cors_origins,
                settings=options.settings,
                template_catalog=options.templates,
                event_stream=stream,
            )
            config = uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            )
            server = _Server(config, stream)

            def end_service() -> None:
                server.should_exit = True

            engine.on_stopped = end_service
            if stop.is_set() or engine.error is not None:
                end_service()  # stopped while the API was being set up
            host, port = listener.getsockname()[:2]
            _freeze_startup_objects()
            announce(f"tradekit serve: API on http://{_url_host(host)}:{port} (docs at /docs)")
            try:
                server.run(sockets=[listener])
            finally:
                engine.stop()
                engine.join()
                gc.unfreeze()
        finally:
            journal.close()
    finally:
        listener.close()
    if engine.error is not None:
        raise engine.error
    return engine.summary


def _freeze_startup_objects() -> None:
    """Keep what start-up built (the bots' containers, the app, imported modules) out of the
    collector's full passes from now on: each such pass walked all of it and held the
    interpreter lock 70-140 ms (engine and API stalled together), against about 20 ms once
    frozen. Garbage made at start-up is collected first."""
    gc.collect()
    gc.freeze()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


__all__ = ["EngineThread", "ServiceOptions", "bind", "is_local", "serve"]
