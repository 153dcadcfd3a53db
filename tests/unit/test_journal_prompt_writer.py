"""A journal opened with ``prompt_writer=True`` (the run's) takes SQLite's write lock as soon as
another connection releases it: it tries again every ``PROMPT_RETRY_SECONDS``, never with
SQLite's backing-off sleeps, and leaves its connections with their busy timeout as
configured. That it still gives up after its busy timeout is tested with the other
journals' (``test_journal.py``)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from tradekit.errors import StorageError
from tradekit.events import StrategyFailed
from tradekit.services.journal import sqlite as journal_sqlite
from tradekit.services.journal.sqlite import PROMPT_RETRY_SECONDS
from tradekit.services.journal.store import SqlJournal

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def failed(seq: int) -> StrategyFailed:
    return StrategyFailed(
        ts=T0,
        strategy_id="bot",
        seq=seq,
        error_type="RuntimeError",
        error="boom",
        consecutive_failures=1,
    )


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.db"
    SqlJournal(url_of(path)).close()  # the tables exist before anyone holds the lock
    return path


def test_the_commit_retries_at_short_steps_while_another_writer_holds_the_lock(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = SqlJournal(url_of(db_path), prompt_writer=True)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 5:
            holder.execute("COMMIT")  # the other writer is done

    monkeypatch.setattr(journal_sqlite.time, "sleep", sleep)
    journal.record([failed(1)])
    journal.commit()
    assert sleeps == [PROMPT_RETRY_SECONDS] * 5
    assert journal.last_seq("bot") == 1
    holder.close()
    journal.close()


def test_its_connections_keep_their_busy_timeout_for_other_statements(db_path: Path) -> None:
    journal = SqlJournal(url_of(db_path), busy_timeout_ms=1234, prompt_writer=True)
    returned: list[int] = []

    def timeout_of(dbapi_connection: sqlite3.Connection, record: object) -> None:
        returned.append(dbapi_connection.execute("PRAGMA busy_timeout").fetchone()[0])

    # Every connection the commits used is looked at as it goes back to the pool.
    event.listen(journal._engine, "checkin", timeout_of)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    journal.record([failed(1)])
    with pytest.raises(StorageError):
        journal.commit()  # the failed wait restores the timeout too
    holder.execute("ROLLBACK")
    holder.close()
    journal.commit()
    assert len(returned) >= 2
    assert set(returned) == {1234}
    journal.close()
