"""What ``tradekit serve`` sets for its process while it serves, and puts back when it ends:
a shorter interpreter-lock switch interval, and start-up objects frozen out of the
collector's full passes."""

from __future__ import annotations

import gc
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradekit.config import TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.errors import TradekitError
from tradekit.runtime.engine import Engine
from tradekit.runtime.engine_view import RunObserver
from tradekit.runtime.live import LiveRunSummary
from tradekit.runtime.waking import Doorbell
from tradekit.service.server import SWITCH_INTERVAL_SECONDS, ServiceOptions, serve


def test_serve_shortens_the_switch_interval_freezes_start_up_and_puts_both_back(
    tmp_path: Path,
) -> None:
    seen: dict[str, float] = {}

    def engine_run(stop: threading.Event, observer: RunObserver) -> LiveRunSummary:
        seen["engine's interval"] = sys.getswitchinterval()
        stop.set()  # an engine that ends at once: the service stops right after starting
        return LiveRunSummary(0, True, {}, None)

    def announce(message: str) -> None:
        seen["frozen when listening"] = gc.get_freeze_count()

    before = sys.getswitchinterval()
    assert before != SWITCH_INTERVAL_SECONDS
    summary = serve(
        engine_run,
        mode="paper",
        source="synthetic",
        database_url=f"sqlite:///{tmp_path / 'journal.db'}",
        options=ServiceOptions(host="127.0.0.1", port=0, token="t" * 32),
        stop=threading.Event(),
        announce=announce,
    )
    assert summary is not None
    assert summary.stopped
    assert seen["engine's interval"] == SWITCH_INTERVAL_SECONDS
    assert seen["frozen when listening"] > 0
    assert sys.getswitchinterval() == before
    assert gc.get_freeze_count() == 0


def test_an_api_that_cannot_start_is_reported_after_the_engine_stopped(tmp_path: Path) -> None:
    ran: list[str] = []

    def engine_run(stop: threading.Event, observer: RunObserver) -> LiveRunSummary:
        engine = Engine(
            TradingOrchestratorFactory(SharedContainer(settings=TradekitSettings(_env_file=None)))
        )
        observer.started(engine, lambda: datetime.now(UTC), Doorbell())
        ran.append("started")
        stop.wait(30)
        ran.append("stopped" if stop.is_set() else "timed out")
        return LiveRunSummary(0, True, {}, None)

    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("not a folder", encoding="utf-8")
    with pytest.raises(TradekitError, match="the API could not start: ConfigError") as caught:
        serve(
            engine_run,
            mode="paper",
            source="synthetic",
            database_url=f"sqlite:///{tmp_path / 'journal.db'}",
            options=ServiceOptions(
                host="127.0.0.1",
                port=0,
                token="t" * 32,
                log_json_path=str(not_a_folder / "api.json"),
            ),
            stop=threading.Event(),
            announce=lambda message: ran.append(message),
        )
    assert "cannot write the JSON log file" in str(caught.value)
    assert ran == ["started", "stopped"]  # never announced, and the engine stopped
