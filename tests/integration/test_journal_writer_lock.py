"""``tradekit run`` is refused on a journal another process writes, and takes over a dead one's."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent.parent

HOLDER_SCRIPT = """
import sys
from tradekit.services.journal.store import SqlJournal
journal = SqlJournal(sys.argv[1])
journal.acquire_writer()
print("holding", flush=True)
sys.stdin.readline()
journal.close()
"""


def run_args(db: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tradekit",
        "run",
        "--bars",
        "20",
        "--db",
        f"sqlite:///{db}",
        "--strategies",
        str(REPO / "strategies"),
        "--config",
        str(REPO / "config.json"),
    ]


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("TRADEKIT_")}


def run(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        run_args(db),
        cwd=db.parent,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def stored_events(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        count = int(connection.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    connection.close()
    return count


@contextmanager
def holding(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process writing ``db`` until its stdin gets a line (or it is killed)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, f"sqlite:///{db}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=clean_env(),
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "holding\n"
            yield holder
        finally:
            if holder.poll() is None:
                holder.kill()


@pytest.mark.slow
class TestOneRunPerJournal:
    def test_a_second_run_is_refused_with_exit_2_naming_the_holder(self, tmp_path: Path) -> None:
        db = tmp_path / "journal.db"
        with holding(db) as holder:
            refused = run(db)
            assert holder.poll() is None
        assert refused.returncode == 2
        assert "already being written by" in refused.stderr
        assert f"pid {holder.pid} on host {socket.gethostname()}, writing since" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert stored_events(db) == 0

    def test_a_run_takes_over_the_lock_of_a_killed_run_and_journals(self, tmp_path: Path) -> None:
        db = tmp_path / "journal.db"
        with holding(db) as holder:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=60)
        assert db.with_name("journal.db.lock").exists()
        resumed = run(db)
        assert resumed.returncode == 0, resumed.stderr
        assert f"taking over the writer lock left by pid {holder.pid}" in resumed.stderr
        assert stored_events(db) > 0
        assert not db.with_name("journal.db.lock").exists()
