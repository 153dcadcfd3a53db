"""``run_live``: the paper (or live) loop: candles in, engine, journal, graceful stop.

Candles come from any iterable (a synthetic replay, a file, a ccxt polling
source). With a journal, every candle's events and the changed strategies'
snapshots are committed together, and a restart on the same database resumes
each strategy where it stood. ``stop`` (set by a signal handler) ends the loop
between two candles; the engine then flushes and unloads every strategy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dependency_injector import providers

from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.data.plausibility import DEFAULT_CLOCK_SKEW, plausible_candles
from tradekit.data.sources import FrameSource
from tradekit.data.synthetic import synthetic_frame
from tradekit.domain import Candle
from tradekit.orchestrators.engine import Engine
from tradekit.protocols import Journal
from tradekit.services.clock import ManualClock


@dataclass
class LiveRunSummary:
    """How a run ended: candles processed, whether it was stopped, and per-strategy results."""

    candles: int
    stopped: bool
    report: dict[str, dict[str, Any]]
    entries_halted: str | None


def replay_source(configs: Sequence[StrategyConfig], bars: int, seed: int) -> Iterable[Candle]:
    """Synthetic candles for every (symbol, timeframe) the enabled strategies trade."""
    pairs = sorted(
        {
            (symbol, config.timeframe)
            for config in configs
            if config.enabled
            for symbol in config.symbols
        }
    )
    frames = {pair: synthetic_frame(pair[0], pair[1], bars, seed=seed) for pair in pairs}
    return FrameSource(frames).stream()


def run_live(
    settings: TradekitSettings,
    configs: Sequence[StrategyConfig],
    source: Iterable[Candle],
    *,
    journal: Journal | None = None,
    persist: bool = False,
    replay_clock: bool = True,
    candles_per_second: float = 0.0,
    stop: threading.Event | None = None,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> LiveRunSummary:
    """Run ``configs`` over ``source`` until it ends or ``stop`` is set; then shut down cleanly.

    ``persist`` journals the run in the shared container's ``journal`` (the
    ``storage.database_url`` setting); ``journal`` supplies another one instead.
    ``replay_clock`` stamps lifecycle events with candle time (replays are then
    repeatable); a live run passes ``False`` for the wall clock, and candles closing
    after it (plus ``clock_skew``) are then refused with a warning.
    """
    shared = SharedContainer(settings=settings)
    if journal is not None:
        shared.journal.override(providers.Object(journal))
    active_journal: Journal | None = shared.journal() if persist or journal is not None else None
    clock: ManualClock | None = None
    candles = iter(source)
    if not replay_clock:
        candles = plausible_candles(candles, shared.clock(), clock_skew)
    first = next(candles, None)
    if replay_clock and first is not None:
        clock = ManualClock(first.ts)
        shared.clock.override(clock)
    engine = Engine(TradingOrchestratorFactory(shared), journal=active_journal)
    engine.load(configs)
    interval = 1.0 / candles_per_second if candles_per_second > 0 else 0.0
    processed = 0
    stopped = False
    candle = first
    while candle is not None:
        if stop is not None and stop.is_set():
            stopped = True
            break
        if clock is not None:
            clock.set(candle.close_ts)
        engine.on_candle(candle)
        processed += 1
        if interval:
            time.sleep(interval)
        candle = next(candles, None)
    report = engine.report()
    halted = engine.entries_halted
    engine.shutdown()
    if active_journal is not None and journal is None:
        active_journal.close()
    return LiveRunSummary(processed, stopped, report, halted)
