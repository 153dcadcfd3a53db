"""Two processes: ``tradekit run`` replays candles slowly while ``tradekit strategies`` changes
the registry from another process; the journal shows each change taking effect within 2 s.

The delay is measured in the journal, from the change's ``requested_at`` (written by the
command) to its ``applied_at`` (written by the run when it applied it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from drained_process import DrainedProcess
from ticker_strategies import ticker_data

from tradekit.errors import StorageError
from tradekit.events import (
    PositionOpened,
    SignalGenerated,
    StrategyControlled,
    StrategyLoaded,
)
from tradekit.services.journal.store import RegistryChange, SqlJournal, StrategyStatus

pytestmark = pytest.mark.slow

TAKES_EFFECT_WITHIN = timedelta(seconds=2)
DEADLINE_SECONDS = 30.0


def tradekit(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "tradekit", *arguments]


def environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("TRADEKIT_")}


def command(folder: Path, *arguments: str) -> str:
    done = subprocess.run(
        tradekit(*arguments),
        cwd=folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def eventually(check: Callable[[], bool], what: str, run: DrainedProcess) -> None:
    """Another process's journal can only be looked at: look again until ``check`` holds."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        assert run.process.poll() is None, f"the run ended early while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def write(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / f"{data['strategy_id']}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def trader(strategy_id: str, **options: Any) -> dict[str, Any]:
    return ticker_data(strategy_id, every=2, exit_offset=1, **options)


def test_strategies_commands_reach_a_running_run_within_two_seconds(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    write(folder, trader("a"))
    url = f"sqlite:///{tmp_path / 'journal.db'}"

    def journal_says(read: Callable[[SqlJournal], bool]) -> Callable[[], bool]:
        def check() -> bool:
            if not (tmp_path / "journal.db").exists():
                return False
            try:
                with SqlJournal(url, read_only=True) as journal:
                    return read(journal)
            except StorageError:
                return False  # the run is still creating it

        return check

    def change(journal: SqlJournal, change_id: int) -> RegistryChange:
        [found] = journal.registry_changes(after_id=change_id - 1)[:1]
        return found

    def ask(*arguments: str) -> int:
        output = command(tmp_path, "strategies", *arguments, "--db", url)
        return int(output.split("#", 1)[1].split(")", 1)[0].split(",", 1)[0])

    # Its output is read while it runs: it logs every fill, and a full pipe would stall it.
    run = DrainedProcess(
        tradekit(
            "run", "--mode", "paper", "--speed", "20", "--bars", "2000",
            "--strategies", str(folder), "--db", url,
        ),
        cwd=tmp_path,
        env=environment(),
    )  # fmt: skip
    try:
        eventually(journal_says(lambda j: j.last_seq("a") > 0), "the run to start", run)
        asked = [
            ask("add", str(write(tmp_path, trader("b")))),
            ask("disable", "a"),
            ask("update", str(write(tmp_path, trader("b", name="renamed")))),
            ask("remove", "b", "--close"),
        ]
        for change_id in asked:
            eventually(
                journal_says(lambda j, c=change_id: change(j, c).applied_at is not None),
                f"change #{change_id} to be applied",
                run,
            )
    finally:
        run.process.send_signal(signal.SIGTERM)
        stdout, stderr = run.finish(DEADLINE_SECONDS)
    assert run.process.returncode == 0, stdout + stderr

    with SqlJournal(url, read_only=True) as journal:
        changes = [change(journal, change_id) for change_id in asked]
        a_events = journal.events("a")
        b_events = journal.events("b")
        statuses = {info.strategy_id: info.status for info in journal.strategies()}
    for applied in changes:
        assert applied.outcome == "applied", applied
        assert applied.applied_at is not None
        assert applied.applied_at - applied.requested_at <= TAKES_EFFECT_WITHIN, applied
    assert [e.action for e in b_events if isinstance(e, StrategyControlled)] == [
        "add",
        "update",
        "remove",
    ]
    assert any(isinstance(e, StrategyLoaded) for e in b_events)
    disabled_at = next(e.seq for e in a_events if isinstance(e, StrategyControlled))
    assert not any(isinstance(e, SignalGenerated) and e.seq > disabled_at for e in a_events)
    assert sum(isinstance(e, PositionOpened) and e.seq > disabled_at for e in a_events) <= 1
    assert statuses == {"a": StrategyStatus.DISABLED, "b": StrategyStatus.REMOVED}
