"""The engine's own per-candle latency: carried by its published view and summed up by
``GET /api/engine`` (median, 99th percentile, worst)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from tradekit.config import TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.data import synthetic_candles
from tradekit.runtime.engine import Engine
from tradekit.runtime.engine_view import CANDLE_TIMES_KEPT, EngineView, EngineViewPublisher
from tradekit.runtime.waking import Doorbell
from tradekit.service.app import create_app
from tradekit.service.routers.engine import candle_times
from tradekit.services.journal.store import SqlJournal

TOKEN = "a-test-token-of-enough-length"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


class ViewOnly:
    """An engine link that only shows one view."""

    polls = 0

    def __init__(self, view: EngineView) -> None:
        self._view = view

    def view(self) -> EngineView | None:
        return self._view

    def ask_poll(self) -> None:
        """Nothing to look at."""

    def wait_for_poll(self, after: int, timeout: float) -> bool:
        return True

    def stop(self) -> None:
        """Nothing to stop."""


def published(durations: list[float]) -> EngineView:
    shared = SharedContainer(settings=TradekitSettings(_env_file=None))
    publisher = EngineViewPublisher("paper", "file")
    publisher.started(Engine(TradingOrchestratorFactory(shared)), lambda: T0, Doorbell())
    candles = synthetic_candles("BTC/USDT", "1h", len(durations), seed=1) if durations else []
    for candle, seconds in zip(candles, durations, strict=True):
        publisher.candle(candle, seconds)
    view = publisher.latest()
    assert view is not None
    return view


class TestCandleTimes:
    def test_the_view_carries_each_candles_duration_oldest_first(self) -> None:
        view = published([0.001, 0.003, 0.002])
        assert view.candle_seconds == (0.001, 0.003, 0.002)
        assert view.candles == 3

    def test_the_view_keeps_only_the_latest_durations(self) -> None:
        durations = [float(index) for index in range(CANDLE_TIMES_KEPT + 5)]
        view = published(durations)
        assert view.candle_seconds == tuple(durations[5:])

    def test_median_99th_percentile_worst_and_last_by_nearest_rank(self) -> None:
        times = candle_times([float(value) for value in range(100, 0, -1)])
        assert times is not None
        assert (times.candles, times.p50_seconds, times.p99_seconds) == (100, 50.0, 99.0)
        assert (times.max_seconds, times.last_seconds) == (100.0, 1.0)
        assert candle_times([]) is None

    def test_the_engine_route_answers_the_figures(self, tmp_path: Path) -> None:
        with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as journal:
            app = create_app(
                journal=journal, token=TOKEN, engine_link=ViewOnly(published([0.004, 0.002]))
            )
            body = (
                TestClient(app)
                .get("/api/engine", headers={"Authorization": f"Bearer {TOKEN}"})
                .json()
            )
        assert body["candle_seconds"] == {
            "candles": 2,
            "last_seconds": 0.002,
            "p50_seconds": 0.002,
            "p99_seconds": 0.004,
            "max_seconds": 0.004,
        }

    def test_before_the_first_candle_the_figures_are_null(self, tmp_path: Path) -> None:
        with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as journal:
            app = create_app(journal=journal, token=TOKEN, engine_link=ViewOnly(published([])))
            body = (
                TestClient(app)
                .get("/api/engine", headers={"Authorization": f"Bearer {TOKEN}"})
                .json()
            )
        assert body["candle_seconds"] is None
