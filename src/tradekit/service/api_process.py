"""The API's process of ``tradekit serve``: FastAPI under uvicorn, apart from the engine.

Why a process of its own: the engine and the API shared one interpreter lock
when they ran on two threads of one process, and every API call then delayed
the candles the engine was processing (its per-candle p99 rose by up to 90 %
under fifty clients, whatever the switch interval). In its own process the
API's work runs on the other core, and the engine's candles take as long with
clients as without.

``ApiProcess`` is the engine process's handle on it: it starts the process with
the ``multiprocessing`` spawn method (a fresh interpreter: nothing of the engine's
threads or objects is copied), handing it the listening socket already bound,
one end of the pipe to the engine and ``ApiOptions``. ``run_api`` runs in the new
process: it builds the app over its own connection to the journal database and
a ``RemoteEngine`` for the engine, waits for the engine's first view, says
``ApiReady`` (or ``ApiFailed`` and why) and serves until the engine's process
says the service ends or dies. Ctrl-C reaches both processes; the API's ignores it
and lets the engine's process stop the service in order. SIGTERM sent to the
API's process alone shuts it down gracefully, and the engine then stops too.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import anyio.to_thread
import uvicorn

from tradekit.config.settings import TradekitSettings
from tradekit.service.app import create_app
from tradekit.service.engine_messages import ApiFailed, ApiReady
from tradekit.service.event_stream import EventStream
from tradekit.service.remote_engine import RemoteEngine

GRACEFUL_SHUTDOWN_SECONDS = 5
LINK_FAILED_EXIT_CODE = 3
"""The API process's exit code when it stopped because it could not read the engine's
updates (the reason is in its log)."""
FIRST_VIEW_SECONDS = 30.0
"""How long the API waits for the engine's first view before it gives up starting."""
API_NICENESS = 10
"""How much lower than the engine's the API process's CPU priority is (``os.nice``): when both
want a core, the engine's candles go first and the API's calls wait, not the other way."""
API_WORKER_THREADS = 2
"""Worker threads for the routes that read or write the database (anyio's default is 40).

They share the process's interpreter lock: with more, each call waited its turn for
the lock more often, and a registry write held SQLite's write lock that much longer,
making the engine's commits wait. Under bursts of fifty calls (the service benchmark),
8 threads -> 2 took the calls' p99 from ~165 to ~115 ms and the engine's commit waits'
p99 from 7 to 0.3 ms; dashboards refreshing at random moments were served as fast."""
SWITCH_INTERVAL_SECONDS = 0.001
"""How long a thread keeps the interpreter lock while another waits for it (Python's default:
0.005). A thread gives the lock up at each database call, and then waited up to the full
interval to get it back; both processes of the service set a millisecond."""


@dataclass(frozen=True)
class ApiOptions:
    """What the API's process needs to build its app; pickled to it."""

    database_url: str
    token: str
    cors_origins: tuple[str, ...] = ()
    settings: TradekitSettings | None = None
    templates_folder: Path | None = None
    """User templates next to the bundled ones (None: the bundled ones only)."""
    log_level: str = "INFO"
    log_json_path: str | None = None


class ApiServer(uvicorn.Server):
    """uvicorn's server that runs the routes on ``API_WORKER_THREADS`` worker threads, ends
    the open event streams first when it shuts down (so they do not hold the graceful
    shutdown up), and answers SIGTERM only: Ctrl-C is the engine's process to handle."""

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

    def request_exit(self) -> None:
        """Shut down gracefully (from any thread)."""
        self.should_exit = True

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGTERM, self.handle_exit)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def switch_interval(seconds: float) -> Generator[None, None, None]:
    """``sys.setswitchinterval(seconds)`` while inside, the previous interval afterwards."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def freeze_startup_objects() -> None:
    """Keep what start-up built (the bots' containers, the app, imported modules) out of the
    collector's full passes from now on: each such pass walked all of it and held the
    interpreter lock 70-140 ms, against about 20 ms once frozen. Garbage made at start-up
    is collected first."""
    gc.collect()
    gc.freeze()


def run_api(connection: Connection, listener: socket.socket, options: ApiOptions) -> None:
    """The API process's main: serve on ``listener`` until the engine's process ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):  # not on Windows
        os.nice(API_NICENESS)
    stream = EventStream()
    engine = RemoteEngine(connection, stream)
    try:
        server, close = _build_server(options, engine, stream)
    except Exception as exc:  # told to the engine's process, which reports it
        engine.tell(ApiFailed(f"{type(exc).__name__}: {exc}"))
        return
    try:
        engine.on_end = server.request_exit
        engine.start()
        if not engine.wait_for_first_view(FIRST_VIEW_SECONDS):
            engine.tell(ApiFailed("the engine's first view did not come"))
            return
        freeze_startup_objects()
        engine.tell(ApiReady())
        with switch_interval(SWITCH_INTERVAL_SECONDS):
            server.run(sockets=[listener])
    finally:
        close()
        listener.close()
    if engine.failure is not None:
        raise SystemExit(LINK_FAILED_EXIT_CODE)


def _build_server(
    options: ApiOptions, engine: RemoteEngine, stream: EventStream
) -> tuple[ApiServer, Callable[[], None]]:
    """The app's server, over its own connection to the journal, and what closes that."""
    from tradekit.logs import configure_logging
    from tradekit.services.journal.store import SqlJournal
    from tradekit.templates import load_templates

    configure_logging(options.log_level, options.log_json_path)
    catalog = load_templates(options.templates_folder)
    journal = SqlJournal(options.database_url)
    app = create_app(
        journal=journal,
        token=options.token,
        engine_link=engine,
        cors_origins=options.cors_origins,
        settings=options.settings,
        template_catalog=catalog,
        event_stream=stream,
    )
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return ApiServer(config, stream), journal.close


class ApiProcess:
    """The engine process's handle on the API's process."""

    def __init__(self, connection: Connection, listener: socket.socket, options: ApiOptions):
        context = multiprocessing.get_context("spawn")
        self._process = context.Process(
            target=run_api,
            args=(connection, listener, options),
            name="tradekit-api",
            daemon=True,
        )
        self._connection = connection

    def start(self) -> None:
        """Start the process; this process's copy of its pipe end is closed once handed over."""
        self._process.start()
        self._connection.close()

    @property
    def exit_code(self) -> int | None:
        """The process's exit code (negative: the signal that ended it); None while it runs."""
        return self._process.exitcode

    def join(self, timeout: float) -> None:
        """Wait for the process to end; terminated (then killed) after ``timeout`` seconds."""
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(GRACEFUL_SHUTDOWN_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


__all__ = [
    "API_WORKER_THREADS",
    "GRACEFUL_SHUTDOWN_SECONDS",
    "LINK_FAILED_EXIT_CODE",
    "SWITCH_INTERVAL_SECONDS",
    "ApiOptions",
    "ApiProcess",
    "ApiServer",
    "freeze_startup_objects",
    "run_api",
    "switch_interval",
]
