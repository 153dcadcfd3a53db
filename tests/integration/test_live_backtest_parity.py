"""A live run over a candle stream and a backtest over the same candles as frames agree.

The bundled strategies run twice over a few thousand synthetic candles: once
through ``run_live`` (paper, replay clock, indicators stepped one bar at a time
from their incremental state) and once through ``backtest`` (whole-series
indicators, quiet candles passed over in bulk). Each strategy must publish the
same events, in the same order with the same fields, and make the same trades.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tradekit.config import load_settings, load_strategy_configs
from tradekit.data import synthetic_frame
from tradekit.data.sources import FrameSource
from tradekit.domain import Candle
from tradekit.events import (
    Event,
    PositionClosed,
    PositionOpened,
    SignalGenerated,
    StrategyLoaded,
    StrategyUnloaded,
)
from tradekit.runtime.backtest import backtest
from tradekit.runtime.engine import Engine
from tradekit.runtime.live import run_live
from tradekit.runtime.waking import Doorbell

REPO = Path(__file__).parent.parent.parent

SERIES = (("15m", 3000), ("1h", 2000), ("4h", 800), ("1d", 200))


class EventRecorder:
    """A run observer that keeps every event the live run publishes, and its indicator cache."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.cache: Any = None

    def started(self, engine: Engine, now: Callable[[], datetime], doorbell: Doorbell) -> None:
        shared = engine.factory.shared
        self.cache = shared.indicator_cache()
        shared.event_bus().subscribe(self.events.append)

    def candle(self, candle: Candle, seconds: float) -> None:
        """Nothing to do per candle."""

    def polled(self, applied: int) -> None:
        """Nothing to do per look at the registry."""

    def stopped(self) -> None:
        """Nothing to do at the end."""


LIFECYCLE = (StrategyLoaded, StrategyUnloaded)
"""Published around the run, not by it: the observer subscribes after the strategies are
loaded, and the two runs shut down differently; ``seq`` still shows nothing in between
is missing."""


def by_strategy(events: list[Event]) -> dict[str, list[dict[str, Any]]]:
    """Each strategy's events as dicts, in the order it published them, lifecycle aside."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if not isinstance(event, LIFECYCLE):
            found.setdefault(event.strategy_id, []).append(event.to_dict())
    return found


@pytest.fixture(scope="module")
def runs() -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]], Any]:
    settings = load_settings(REPO / "config.json", env_file=None)
    configs = load_strategy_configs(REPO / "strategies", settings)
    frames: dict[tuple[str, str], pd.DataFrame] = {
        (symbol, timeframe): synthetic_frame(symbol, timeframe, bars, seed=5)
        for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT")
        for timeframe, bars in SERIES
    }
    tested = backtest(settings, configs, frames)
    recorder = EventRecorder()
    summary = run_live(
        settings,
        configs,
        FrameSource(frames),
        replay_clock=True,
        observer=recorder,
        announce=lambda _text: None,
    )
    assert summary.candles == sum(len(frame) for frame in frames.values())
    return by_strategy(tested.events), by_strategy(recorder.events), recorder.cache


class TestLiveMatchesBacktest:
    def test_every_strategy_publishes_the_same_events(
        self, runs: tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]], Any]
    ) -> None:
        tested, live, _cache = runs
        assert sorted(live) == sorted(tested)
        for strategy_id, events in tested.items():
            assert live[strategy_id] == events, strategy_id

    def test_signals_and_positions_are_there_to_compare(
        self, runs: tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]], Any]
    ) -> None:
        tested, _live, _cache = runs
        kinds = {event["event_type"] for events in tested.values() for event in events}
        for kind in (SignalGenerated, PositionOpened, PositionClosed):
            assert kind.__name__ in kinds

    def test_the_live_indicators_were_stepped_not_recomputed(
        self, runs: tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]], Any]
    ) -> None:
        """Indicators read on every candle step their state; one read only now and then (an
        entry filter's ATR) catches up on the bars it missed in one backend call."""
        _tested, _live, cache = runs
        stepped = cache.computations - cache.backend_calls
        assert stepped > 100 * cache.backend_calls
