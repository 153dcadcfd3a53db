"""A paper session killed with SIGKILL resumes on the same database as if never interrupted.

The session runs through ``paused_run.py``, which announces on stdout that it has
committed ``PAUSE_AT`` candles and waits there: the test kills (or stops) it at
exactly that point, with no clock involved.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent.parent
PAUSED_RUN = Path(__file__).with_name("paused_run.py")

Journaled = dict[str, list[tuple[int, str, str]]]
Resumed = tuple[Journaled, int, dict[str, int], str]
"""The resumed run's journal, events committed at the kill, snapshot seqs then, restart log."""
BARS = 240
PAUSE_AT = 900
"""Candles committed before the kill, of 1,440: every strategy has a snapshot by then."""


def run_args(db: Path, bars: int = BARS) -> list[str]:
    return [
        "run",
        "--mode",
        "paper",
        "--bars",
        str(bars),
        "--db",
        f"sqlite:///{db}",
        "--strategies",
        str(REPO / "strategies"),
        "--config",
        str(REPO / "config.json"),
    ]


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("TRADEKIT_")}


def tradekit(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "tradekit", *arguments]


def paused_session(db: Path, stderr: Path) -> subprocess.Popen[str]:
    """A ``tradekit run`` on ``db`` that has committed ``PAUSE_AT`` candles and waits there."""
    with stderr.open("w") as log:
        session = subprocess.Popen(
            [sys.executable, str(PAUSED_RUN), str(PAUSE_AT), *run_args(db)],
            cwd=db.parent,
            env=clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert session.stdout is not None
    announced = f"paused after {PAUSE_AT} candles"
    for line in session.stdout:
        if line.strip() == announced:
            return session
    session.wait(timeout=30)
    raise AssertionError(
        f"the session ended (exit code {session.returncode}) without saying {announced!r}:\n"
        + stderr.read_text()[-2000:]
    )


def committed_events(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def snapshot_seqs(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT strategy_id, seq FROM snapshots").fetchall())


def journal(db: Path) -> dict[str, list[tuple[int, str, str]]]:
    """Every strategy's journaled events: (seq, type, payload) in seq order."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT strategy_id, seq, event_type, payload FROM events ORDER BY strategy_id, seq"
        ).fetchall()
    events: dict[str, list[tuple[int, str, str]]] = {}
    for strategy_id, seq, event_type, payload in rows:
        events.setdefault(strategy_id, []).append((seq, event_type, payload))
    return events


def realized_pnl(events: list[tuple[int, str, str]]) -> float:
    return sum(
        json.loads(payload)["realized_pnl"]
        for _, event_type, payload in events
        if event_type == "PositionClosed"
    )


@pytest.fixture(scope="module")
def uninterrupted(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, list[tuple[int, str, str]]]:
    db = tmp_path_factory.mktemp("whole") / "journal.db"
    subprocess.run(
        tradekit(*run_args(db)),
        cwd=db.parent,
        env=clean_env(),
        check=True,
        timeout=300,
        capture_output=True,
    )
    return journal(db)


@pytest.fixture(scope="module")
def resumed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Resumed:
    db = tmp_path_factory.mktemp("crashed") / "journal.db"
    victim = paused_session(db, db.parent / "victim.log")
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    at_kill = committed_events(db)
    snapshots_at_kill = snapshot_seqs(db)
    restart = subprocess.run(
        tradekit(*run_args(db)),
        cwd=db.parent,
        env=clean_env(),
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    return journal(db), at_kill, snapshots_at_kill, restart.stderr


@pytest.mark.slow
class TestCrashRecovery:
    def test_the_restart_resumed_each_snapshotted_strategy_at_its_next_seq(
        self, resumed: Resumed
    ) -> None:
        _, _, snapshots, stderr = resumed
        assert snapshots, "nothing was snapshotted before the kill"
        for strategy_id, seq in snapshots.items():
            line = f"{strategy_id} | resumed from the journal at seq"
            resumed_at = [row for row in stderr.splitlines() if line in row]
            assert resumed_at, f"{strategy_id} was not resumed:\n{stderr[-2000:]}"
            assert int(resumed_at[0].rsplit(" ", 1)[1]) >= seq + 1

    def test_the_session_really_died_mid_run(
        self,
        resumed: Resumed,
        uninterrupted: dict[str, list[tuple[int, str, str]]],
    ) -> None:
        _, at_kill, snapshots, _ = resumed
        total = sum(len(events) for events in uninterrupted.values())
        assert 0 < at_kill < total
        assert set(snapshots) == set(uninterrupted), "a strategy had no snapshot at the kill"

    def test_no_event_is_lost_or_duplicated(self, resumed: Resumed) -> None:
        events, _, snapshots, _ = resumed
        assert set(events) == set(snapshots), "a strategy had no snapshot at the kill"
        for strategy_id, rows in events.items():
            seqs = [seq for seq, _, _ in rows]
            assert seqs == list(range(1, len(seqs) + 1)), strategy_id

    def test_every_strategy_ends_exactly_as_an_uninterrupted_run(
        self,
        resumed: Resumed,
        uninterrupted: dict[str, list[tuple[int, str, str]]],
    ) -> None:
        events, _, _, _ = resumed
        assert set(events) == set(uninterrupted)
        for strategy_id, rows in uninterrupted.items():
            assert events[strategy_id] == rows, strategy_id

    def test_positions_and_pnl_match(
        self,
        resumed: Resumed,
        uninterrupted: dict[str, list[tuple[int, str, str]]],
    ) -> None:
        events, _, _, _ = resumed
        traded = [sid for sid, rows in uninterrupted.items() if realized_pnl(rows) != 0.0]
        assert traded, "no strategy closed a trade: the comparison would prove little"
        for strategy_id in uninterrupted:
            assert realized_pnl(events[strategy_id]) == realized_pnl(uninterrupted[strategy_id])


class TestUnopenableJournal:
    def test_run_on_a_folder_instead_of_a_database_exits_2_and_names_it(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / "journal.db"
        folder.mkdir()
        result = subprocess.run(
            tradekit(*run_args(folder, bars=20)),
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2
        assert f"{folder} is a directory" in result.stderr
        assert "Traceback" not in result.stderr
        assert list(folder.iterdir()) == []


@pytest.mark.slow
class TestGracefulStop:
    def test_sigterm_flushes_snapshots_and_exits_0(self, tmp_path: Path) -> None:
        db = tmp_path / "journal.db"
        session = paused_session(db, tmp_path / "session.log")
        at_stop = committed_events(db)
        session.send_signal(signal.SIGTERM)
        stdout, _ = session.communicate("", timeout=120)
        assert session.returncode == 0
        assert f"{PAUSE_AT} candles processed (stopped on request)" in stdout
        assert committed_events(db) > at_stop, "nothing was flushed at the stop"
        events = journal(db)
        assert events, "nothing was journaled"
        for strategy_id, rows in events.items():
            assert rows[-1][1] == "StrategyUnloaded", strategy_id
        assert set(snapshot_seqs(db)) <= set(events)
