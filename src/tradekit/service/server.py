"""One ``tradekit serve``: the engine in this process, the API in a process of its own, both
over the same journal database.

The engine runs on a thread of this process what ``tradekit run`` runs
(``run_live`` following the registry), observed by an ``EngineViewPublisher``, an
``EventStreamFeed`` and an ``EngineRelay``, which sends the views and committed
events to the API's process over a pipe and takes its commands (look at the
registry now, stop). The API (``api_process``) is started once the engine loaded
its bots, on a socket bound here, so a port in use is reported before anything
else starts. The main thread then waits. Stopping either stops both: Ctrl-C or
SIGTERM, ``POST /api/engine/stop``, an engine failure or the API's process ending
stop the engine, which commits its journal, and then the API, which ends its
streams. A replay that runs out leaves the API serving the journal until the
service is stopped.
"""

from __future__ import annotations

import gc
import multiprocessing
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

from tradekit.config.settings import TradekitSettings
from tradekit.domain import Candle
from tradekit.errors import TradekitError
from tradekit.runtime.engine import Engine
from tradekit.runtime.engine_view import EngineViewPublisher, RunObserver
from tradekit.runtime.live import LiveRunSummary
from tradekit.runtime.waking import Doorbell
from tradekit.service.api_process import (
    GRACEFUL_SHUTDOWN_SECONDS,
    SWITCH_INTERVAL_SECONDS,
    ApiOptions,
    ApiProcess,
    freeze_startup_objects,
    switch_interval,
)
from tradekit.service.engine_messages import ApiReady
from tradekit.service.engine_relay import EngineRelay
from tradekit.service.event_stream import EventStreamFeed

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
API_START_SECONDS = 60.0
"""How long the API's process may take to start (a fresh interpreter importing FastAPI)."""
WAIT_STEP_SECONDS = 0.25
"""How often the main thread looks whether a signal asked the service to stop."""

EngineRun = Callable[[threading.Event, RunObserver], LiveRunSummary]
"""Runs the engine on the calling thread until its source ends or the event is set."""


class EngineThread:
    """The engine of the service on its own thread; one per process."""

    def __init__(
        self,
        run: EngineRun,
        publisher: EngineViewPublisher,
        stop: threading.Event,
        observers: Sequence[RunObserver] = (),
    ) -> None:
        self._run = run
        self._publisher = publisher
        self._observer = _All((publisher, *observers))
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
            # A run that ended before it started (stopped at once, or failed) told none of
            # them: every observer must still hear it (a view saying the engine stopped is
            # what ``wait_started`` and the API wait for); told twice is harmless.
            self._observer.stopped()
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

    def stop(self) -> None:
        """Have the run stop (it wakes at once if it waits) and commit its journal."""
        self._stop.set()
        self._publisher.wake_run()


class _All:
    """Tells several observers, in order, what the run tells one."""

    def __init__(self, observers: Sequence[RunObserver]) -> None:
        self._observers = tuple(observers)

    def started(self, engine: Engine, now: Callable[[], datetime], doorbell: Doorbell) -> None:
        for observer in self._observers:
            observer.started(engine, now, doorbell)

    def candle(self, candle: Candle, seconds: float) -> None:
        for observer in self._observers:
            observer.candle(candle, seconds)

    def polled(self, changed: Sequence[str]) -> None:
        for observer in self._observers:
            observer.polled(changed)

    def wants_poll(self) -> bool:
        # All are asked: each answers once per asking.
        answers = [observer.wants_poll() for observer in self._observers]
        return any(answers)

    def stopped(self) -> None:
        for observer in self._observers:
            observer.stopped()


@dataclass(frozen=True)
class ServiceOptions:
    """Where the API listens, who may call it, and what its process needs to know."""

    host: str
    port: int
    token: str
    cors_origins: Sequence[str] = ()
    settings: TradekitSettings | None = None
    """Their ``strategy_defaults`` are merged under a new bot's template, as under a file."""
    templates_folder: Path | None = None
    """User templates bots may be made from, next to the bundled ones."""
    log_level: str = "INFO"
    log_json_path: str | None = None
    """The API's process logs as this one: at ``log_level``, and to this JSON file if given."""


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
    error raised here, after the API stopped; an API that could not start raises
    ``TradekitError`` saying why, after the engine stopped."""
    with switch_interval(SWITCH_INTERVAL_SECONDS):
        over = threading.Event()
        """Set when the service should stop: the engine stopped or failed, the API asked for it,
        or the link to the API's process was lost."""
        publisher = EngineViewPublisher(mode, source)
        engine_end, api_end = multiprocessing.get_context("spawn").Pipe(duplex=True)
        relay = EngineRelay(engine_end, publisher, over.set)
        relay.on_link_lost = over.set
        engine = EngineThread(run, publisher, stop, (EventStreamFeed(relay), relay))
        engine.on_stopped = over.set
        api: ApiProcess | None = None
        link_lost = False
        relay.start()
        try:
            engine.start()
            engine.wait_started()
            if engine.error is None:
                api, address = _start_api(api_end, database_url, options)
                answer = relay.wait_for_api(API_START_SECONDS)
                if not isinstance(answer, ApiReady):
                    why = "its process ended" if answer is None else answer.message
                    raise TradekitError(f"the API could not start: {why}")
                freeze_startup_objects()
                announce(f"tradekit serve: API on http://{address} (docs at /docs)")
                while not (stop.is_set() or over.wait(WAIT_STEP_SECONDS)):
                    pass
                link_lost = not stop.is_set() and (relay.api_gone or relay.failure is not None)
        finally:
            engine.stop()
            engine.join()
            relay.close()  # what the engine did last, then the API's process is told to end
            if api is not None:
                api.join(GRACEFUL_SHUTDOWN_SECONDS * 2)
            api_end.close()  # this process's copy, if the API's never started
            relay.wait_api_closed(GRACEFUL_SHUTDOWN_SECONDS)
            engine_end.close()
            gc.unfreeze()
        if engine.error is not None:
            raise engine.error
        if link_lost:
            raise TradekitError(
                f"{_link_loss(relay, api)}; the engine stopped and committed its journal"
            )
        return engine.summary


def _link_loss(relay: EngineRelay, api: ApiProcess | None) -> str:
    """Why the service lost its API (the link to its process failed, or the process died)."""
    if relay.failure is not None:
        return f"the engine's view could not be sent to the API ({relay.failure})"
    exit_code = None if api is None else api.exit_code
    return f"the API's process ended unexpectedly (exit code {exit_code})"


def _start_api(
    api_end: Connection, database_url: str, options: ServiceOptions
) -> tuple[ApiProcess, str]:
    """The API's process, started on a socket bound here, and the address it serves at."""
    listener = bind(options.host, options.port)
    try:
        api = ApiProcess(
            api_end,
            listener,
            ApiOptions(
                database_url=database_url,
                token=options.token,
                cors_origins=tuple(options.cors_origins),
                settings=options.settings,
                templates_folder=options.templates_folder,
                log_level=options.log_level,
                log_json_path=options.log_json_path,
            ),
        )
        api.start()
        host, port = listener.getsockname()[:2]
    finally:
        listener.close()  # the API's process holds its own copy
    return api, f"{_url_host(host)}:{port}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


__all__ = ["EngineThread", "ServiceOptions", "bind", "is_local", "serve"]
