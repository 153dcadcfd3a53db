"""The journal on a real PostgreSQL server: one writer per database, events and collisions.

A throwaway cluster is started in a temporary folder, reachable only through a
Unix socket there. The tests skip, saying why, when the server binaries or the
psycopg driver are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from loguru import logger
from sqlalchemy import create_engine

from tradekit.errors import JournalConflictError, StorageError
from tradekit.events import StrategyFailed
from tradekit.services.journal.lock import WRITERS, WriterHolder, advisory_key
from tradekit.services.journal.store import SqlJournal

POSTGRES_BIN = Path(os.environ.get("TRADEKIT_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
T0 = datetime(2024, 3, 1, tzinfo=UTC)
DATABASE = "postgres"

pytestmark = pytest.mark.slow


def as_server_user() -> list[str]:
    """The prefix running a server command: initdb refuses root, so root runs it as postgres."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root, and runuser is missing to start PostgreSQL as 'postgres'")
    return [runuser, "-u", "postgres", "--"]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed (dev extra)")
    if not (POSTGRES_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {POSTGRES_BIN}")
    prefix = as_server_user()
    base = Path(tempfile.mkdtemp(prefix="tradekit-pg-"))
    base.chmod(0o755)
    if prefix:
        shutil.chown(base, user="postgres")
    data = base / "data"

    def server(*args: str) -> None:
        result = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode:
            pytest.skip(f"cannot run a PostgreSQL cluster here: {args[0]}: {result.stderr[-300:]}")

    try:
        server(str(POSTGRES_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "tradekit")
        server(
            str(POSTGRES_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "server.log"),
            "-o",
            f"-k {base} -c listen_addresses='' -F",
            "-w",
            "start",
        )
        yield f"postgresql+psycopg://tradekit@/{DATABASE}?host={base}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh_url(postgres_url: str) -> Iterator[str]:
    """The server's database, emptied of every table before and after the test."""
    engine = create_engine(postgres_url)

    def drop_all() -> None:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")

    drop_all()
    yield postgres_url
    drop_all()
    engine.dispose()


def failed(seq: int, error: str = "boom") -> StrategyFailed:
    return StrategyFailed(
        ts=T0 + timedelta(minutes=seq),
        strategy_id="rsi-btc",
        seq=seq,
        error_type="RuntimeError",
        error=error,
        consecutive_failures=1,
    )


class TestWriterLock:
    def test_a_second_writer_is_refused_naming_the_holder(self, fresh_url: str) -> None:
        with SqlJournal(fresh_url) as first, SqlJournal(fresh_url) as second:
            first.acquire_writer()
            with pytest.raises(StorageError) as caught:
                second.acquire_writer()
        message = str(caught.value)
        assert "already being written by" in message
        assert f"pid {os.getpid()} on host {socket.gethostname()}, writing since" in message

    def test_closing_releases_it_for_the_next_writer(self, fresh_url: str) -> None:
        first = SqlJournal(fresh_url)
        first.acquire_writer()
        first.close()
        with SqlJournal(fresh_url) as second:
            second.acquire_writer()
            assert second.last_seq("rsi-btc") == 0

    def test_the_holder_record_of_a_dead_session_is_replaced_with_a_warning(
        self, fresh_url: str
    ) -> None:
        # A writer whose session ended (its process was killed) leaves its record behind;
        # the server has already dropped its advisory lock.
        with SqlJournal(fresh_url) as journal:
            journal.acquire_writer()
        gone = WriterHolder(pid=999_999, host="elsewhere", started_at="2024-03-01", command="")
        engine = create_engine(fresh_url)
        with engine.begin() as connection:
            connection.execute(
                WRITERS.insert(), {"lock_key": advisory_key(DATABASE), "holder": gone.to_json()}
            )
        messages: list[str] = []
        logger.enable("tradekit")  # a library's records are off until the application opts in
        sink = logger.add(lambda message: messages.append(str(message)), level="WARNING")
        try:
            with SqlJournal(fresh_url) as journal:
                journal.acquire_writer()
                with engine.connect() as connection:
                    stored = connection.execute(WRITERS.select()).all()
        finally:
            logger.remove(sink)
            logger.disable("tradekit")
            engine.dispose()
        assert len(stored) == 1
        holder = WriterHolder.from_json(stored[0].holder)
        assert holder is not None
        assert holder.pid == os.getpid()
        assert len(messages) == 1
        assert "taking over the writer lock left by pid 999999 on host elsewhere" in messages[0]


class TestEvents:
    def test_events_round_trip_and_a_collision_is_refused(self, fresh_url: str) -> None:
        with SqlJournal(fresh_url) as journal:
            journal.record([failed(1), failed(2)])
            journal.commit()
            journal.record([failed(2), failed(3)])
            journal.commit()
            journal.record([failed(3, error="reused"), failed(4)])
            with pytest.raises(JournalConflictError, match="'rsi-btc' seq 3"):
                journal.commit()
            assert [event.seq for event in journal.events("rsi-btc")] == [1, 2, 3]
            with pytest.raises(JournalConflictError):
                journal.close()


class TestRegistry:
    def test_a_change_is_recorded_with_its_status_and_settled(self, fresh_url: str) -> None:
        with SqlJournal(fresh_url) as journal:
            journal.register_strategy("a", "A", "rsi", "{}")
            journal.register_strategy("a", "A renamed", "rsi", '{"v": 2}')
            first = journal.request_change("a", "disable", "api", status="disabled")
            second = journal.request_change("a", "enable", "api")
            with pytest.raises(StorageError, match="unknown strategy 'b'"):
                journal.request_change("b", "disable", "api", status="disabled")
            journal.settle_change(first, "applied", T0)

            read = journal.registry_change_and_entry(first)
            assert read is not None
            change, info = read
            assert (change.change_id, change.outcome, change.applied_at) == (first, "applied", T0)
            assert info is not None
            assert (info.name, info.config_json, info.status.value) == (
                "A renamed",
                '{"v": 2}',
                "disabled",
            )
            assert [item.change_id for item in journal.registry_changes()] == [first, second]
