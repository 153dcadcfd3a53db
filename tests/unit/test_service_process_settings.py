"""What ``tradekit serve`` sets for its process while it serves, and puts back when it ends:
a shorter interpreter-lock switch interval, and start-up objects frozen out of the
collector's full passes."""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path

from tradekit.runtime.engine_view import RunObserver
from tradekit.runtime.live import LiveRunSummary
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
