"""``run_live``: the paper (or live) loop: candles in, engine, journal, graceful stop.

Candles come from a source with ``stream()`` or any iterable (a synthetic
replay, a file, a ccxt polling source). A live run takes only a source that
declares real exchange market data and announces itself with a banner before
its first candle. With a journal, every candle's events and the changed
strategies' snapshots are committed together, and a restart on the same
database resumes each strategy where it stood. ``stop`` (set by a signal
handler) ends the loop between two candles; the engine then flushes and
unloads every strategy. Failed orders (``ActionFailed``) are counted per
strategy and in total.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.data.plausibility import DEFAULT_CLOCK_SKEW, plausible_candles
from tradekit.data.sources import FrameSource
from tradekit.data.synthetic import synthetic_frame
from tradekit.domain import Candle
from tradekit.errors import ConfigError
from tradekit.events import ActionFailed
from tradekit.logs import flush_repeats, log
from tradekit.protocols import Exchange, Journal
from tradekit.runtime.bootstrap import Clock, RunMode, Runtime, bootstrap
from tradekit.runtime.control import (
    CONTROL_POLL_SECONDS,
    REGISTRY_POLL_SECONDS,
    CandleRoutes,
    RegistryControl,
    RunSelection,
)
from tradekit.runtime.engine_view import RunObserver
from tradekit.runtime.health import HealthReporter
from tradekit.runtime.live_guard import LiveMarketData, is_live_market_data, live_banner
from tradekit.runtime.pacing import CandlePacer
from tradekit.runtime.reconcile import reconcile_at_start
from tradekit.runtime.trade_log import install_trade_log
from tradekit.runtime.waking import Doorbell, Idle, WakingSource
from tradekit.services.journal.store import SqlJournal
from tradekit.services.market.clock import ManualClock

_LOOP_MODES = frozenset({RunMode.PAPER, RunMode.LIVE, RunMode.TEST})


@dataclass
class LiveRunSummary:
    """How a run ended: candles processed, whether it was stopped, per-strategy results
    (each with its ``failed_orders``), and the failed orders of all strategies."""

    candles: int
    stopped: bool
    report: dict[str, dict[str, Any]]
    entries_halted: str | None
    failed_orders: int = 0


@runtime_checkable
class CandleStream(Protocol):
    """A source that hands over closed candles one at a time."""

    def stream(self) -> Iterator[Candle]: ...


@runtime_checkable
class WarmupSource(Protocol):
    """A source that fetches history at start for the strategies to warm up on."""

    def warmup(self) -> list[Candle]: ...


def replay_source(configs: Sequence[StrategyConfig], bars: int, seed: int) -> Iterable[Candle]:
    """Synthetic candles for every (symbol, timeframe) the enabled strategies trade."""
    return replay_series(configs, bars, seed).stream()


def replay_series(configs: Sequence[StrategyConfig], bars: int, seed: int) -> FrameSource:
    """The synthetic series of ``replay_source``, as a source that says which it serves."""
    pairs = sorted(
        {
            (symbol, config.timeframe)
            for config in configs
            if config.enabled
            for symbol in config.symbols
        }
    )
    frames = {pair: synthetic_frame(pair[0], pair[1], bars, seed=seed) for pair in pairs}
    return FrameSource(frames)


def _print_to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _live_source(source: object) -> LiveMarketData:
    """``source`` when it declares real exchange market data; ``ConfigError`` otherwise."""
    if not is_live_market_data(source):
        raise ConfigError(
            "live mode needs real exchange market data (a source declaring "
            "live_market_data = True, such as tradekit.data.CcxtPollingSource); got "
            f"{type(source).__name__}. Synthetic candles and file or frame replays are never "
            "live: run them in paper mode"
        )
    return source


def _control(
    runtime: Runtime, selection: RunSelection | None, source: object
) -> RegistryControl | None:
    if selection is None:
        return None
    if not isinstance(runtime.journal, SqlJournal):
        runtime.close()
        raise ConfigError(
            "a run driven by the registry needs a journal database: pass persist=True or "
            "journal=SqlJournal(...)"
        )
    routes = source if isinstance(source, CandleRoutes) else None
    return RegistryControl(runtime.journal, runtime.engine, selection, routes)


def _pause(
    seconds: float,
    stop: threading.Event | None,
    awake: Callable[[], object],
    doorbell: Doorbell | None = None,
) -> None:
    """Wait ``seconds`` for the next candle's turn, less if ``stop`` is set, calling ``awake``
    at least every ``CONTROL_POLL_SECONDS`` meanwhile (health reports, registry changes),
    and at once on each ring of ``doorbell`` (whoever rings it also rings it after
    setting ``stop``)."""
    wait: Callable[[float], object] = time.sleep if stop is None else stop.wait
    if doorbell is not None:
        wait = doorbell.wait
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and not (stop is not None and stop.is_set()):
        wait(min(left, CONTROL_POLL_SECONDS))
        awake()


def run_live(
    settings: TradekitSettings,
    configs: Sequence[StrategyConfig],
    source: CandleStream | Iterable[Candle],
    *,
    history: Iterable[Candle] | None = None,
    mode: RunMode = RunMode.PAPER,
    exchange: Exchange | None = None,
    journal: Journal | None = None,
    persist: bool = False,
    replay_clock: bool | None = None,
    candles_per_second: float = 0.0,
    pacer: CandlePacer | None = None,
    stop: threading.Event | None = None,
    announce: Callable[[str], object] = _print_to_stderr,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    health_path: Path | None = None,
    health_interval: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    registry: RunSelection | None = None,
    observer: RunObserver | None = None,
    live_clock: Clock | None = None,
) -> LiveRunSummary:
    """Run ``configs`` over ``source`` until it ends or ``stop`` is set; then shut down cleanly.

    ``history`` (by default the source's ``warmup()`` when it has one) is loaded
    before the first candle: it fills the shared candle history, so indicators
    are ready at once, and the higher-timeframe gates, but no strategy trades on
    it and it is neither journaled nor counted (in live mode such candles would
    send real orders on stale prices).

    ``mode`` is ``PAPER`` (the paper exchange whatever the settings say), ``LIVE``
    (real orders: the settings must allow them and ``source`` must declare real
    exchange market data, else ``ConfigError``) or ``TEST``; ``exchange`` replaces
    the mode's exchange (a fake in tests). A live run passes its banner to
    ``announce`` (standard error by default) and logs it before the first candle.

    ``persist`` journals the run in the settings' database (``storage.database_url``);
    ``journal`` supplies another one instead. ``replay_clock`` stamps lifecycle
    events with candle time (replays are then repeatable); it is the default
    except in live mode, which always runs on the wall clock. On the wall clock,
    a candle closing after now plus ``clock_skew`` is refused with a warning.

    ``candles_per_second`` (0: as fast as they come) paces the candles exactly,
    processing time included; ``pacer`` replaces the pacer built from it (tests
    pass one with a fake clock). A pacing wait ends early when ``stop`` is set.

    Every entry, exit, fill, rejection and state change is logged as one INFO line
    (``tradekit.runtime.trade_log``). Every ``health_interval`` seconds (default:
    the ``logging.health_interval`` setting) of ``monotonic`` time, checked after
    each candle, at least every ``CONTROL_POLL_SECONDS`` while the run waits for a
    candle (or for its turn at ``candles_per_second``) and once at the end, one
    health line per strategy is logged and, with ``health_path``, written there as
    JSON (``tradekit.runtime.health``): a feed that stopped delivering is reported
    stale on time. The candles are read on a thread of their own so that the run
    can wake up meanwhile; they are processed on the run's thread only.
    ``live_clock`` replaces the wall clock of a run on live candles (tests pass a
    ``ManualClock``); a replay runs on candle time.

    With ``registry`` (a ``RunSelection``; needs a journal) the journal's registry
    decides what runs: ``configs`` only seed a new registry, and changes asked of
    the registry while the run goes (``tradekit strategies ...``) are applied
    between candles, looked for at most every ``REGISTRY_POLL_SECONDS`` (of
    ``monotonic`` time) and at least every ``CONTROL_POLL_SECONDS`` while the run waits for a
    candle (see ``tradekit.runtime.control``).

    ``observer`` (``tradekit.runtime.engine_view``) is told, on the engine's thread,
    when the strategies are loaded, after each candle, after each look at the
    registry, and when the run stops; when its ``wants_poll`` says so (a change was
    asked in this process), the run looks at the registry before the next candle.
    """
    mode = RunMode(mode)
    if mode not in _LOOP_MODES:
        raise ValueError(f"run_live runs paper, live or test runs, not {mode!r}")
    live_source = _live_source(source) if mode is RunMode.LIVE else None
    if live_source is not None and replay_clock:
        raise ValueError("a live run uses the wall clock; replay_clock is for replays")
    replaying = live_source is None if replay_clock is None else replay_clock
    candles = iter(source.stream() if isinstance(source, CandleStream) else source)
    clock: ManualClock | None = None
    first: Candle | None = None
    if replaying:
        first = next(candles, None)
        if first is not None:
            clock = ManualClock(first.ts)
    runtime = bootstrap(
        settings,
        mode=mode,
        exchange=exchange,
        clock=clock if replaying else live_clock,
        journal=journal,
        persist=persist,
    )
    failed: Counter[str] = Counter()

    def count_failure(event: ActionFailed) -> None:
        failed[event.strategy_id] += 1

    runtime.shared.event_bus().subscribe(count_failure, ActionFailed)
    install_trade_log(runtime.shared.event_bus())
    engine = runtime.engine
    health = HealthReporter(
        engine,
        interval=(
            runtime.settings.logging.health_interval if health_interval is None else health_interval
        ),
        now=runtime.shared.clock().now,
        path=health_path,
        monotonic=monotonic,
    )
    control = _control(runtime, registry, source)
    loaded = engine.load(configs) if control is None else control.start(configs)
    if history is None and isinstance(source, WarmupSource):
        history = source.warmup()
    if history is not None:
        engine.warm_up(history)
    if live_source is not None:
        banner = live_banner(runtime.settings, len(loaded), live_source.venue)
        log.warning("{banner}", banner=banner)
        announce(banner)
        reconcile_at_start(runtime, configs, announce)
    if not replaying:
        candles = plausible_candles(candles, runtime.shared.clock(), clock_skew)

    next_poll = 0.0

    def poll_registry() -> None:
        """Look at the registry when it is due, or at once when the observer asks."""
        nonlocal next_poll
        if control is None:
            return
        now = monotonic()
        asked = observer is not None and observer.wants_poll()
        if not asked and now < next_poll:
            return
        next_poll = now + REGISTRY_POLL_SECONDS
        changed = control.poll()
        if observer is not None:
            observer.polled(changed)

    def awake() -> None:
        """What the run does between candles and whenever it wakes up waiting for one."""
        health.tick()
        poll_registry()

    # The observer (the bot service) rings it to have a change applied now, not at the next
    # wake-up; and after setting ``stop``.
    doorbell = None if observer is None else Doorbell()
    if pacer is None and candles_per_second > 0:
        pacer = CandlePacer(
            candles_per_second, sleep=lambda seconds: _pause(seconds, stop, awake, doorbell)
        )
    if observer is not None:
        assert doorbell is not None
        observer.started(engine, runtime.shared.clock().now, doorbell)
    processed = 0
    stopped = False
    waking: WakingSource | None = None
    poll_registry()
    arrival: Candle | Idle | None = None
    if not replaying or first is not None:
        # The run wakes up without a candle too, the first one included: to apply registry
        # changes in time, and to report health (a feed gone silent is stale) meanwhile.
        waking = WakingSource(
            candles if first is None else itertools.chain([first], candles),
            CONTROL_POLL_SECONDS,
            doorbell,
        )
        arrivals = iter(waking)
        arrival = next(arrivals, None)
    try:
        while arrival is not None:
            if pacer is not None and isinstance(arrival, Candle):
                pacer.wait()
            if stop is not None and stop.is_set():
                stopped = True
                break
            if isinstance(arrival, Candle):
                if clock is not None:
                    clock.set(arrival.close_ts)
                started = time.perf_counter()
                engine.on_candle(arrival)
                took = time.perf_counter() - started
                health.on_candle(arrival)
                if observer is not None:
                    observer.candle(arrival, took)
                processed += 1
            awake()
            arrival = next(arrivals, None)
    finally:
        if waking is not None:
            waking.close()
        if observer is not None:
            observer.stopped()
    # A source that ends because ``stop`` closed it (a live feed) was stopped, not exhausted.
    stopped = stopped or (stop is not None and stop.is_set())
    health.report()
    flush_repeats()
    report = engine.report()
    for strategy_id, entry in report.items():
        entry["failed_orders"] = failed[strategy_id]
    halted = engine.entries_halted
    runtime.close()
    return LiveRunSummary(processed, stopped, report, halted, sum(failed.values()))


__all__ = [
    "CandleStream",
    "LiveRunSummary",
    "WarmupSource",
    "replay_series",
    "replay_source",
    "run_live",
]
