"""One writer per journal database: the SQLite writer lock, held, refused, released, taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from loguru import logger

from tradekit.errors import StorageError
from tradekit.services.journal.lock import WriterHolder
from tradekit.services.journal.store import SqlJournal

HOLDER_SCRIPT = """
import sys
from tradekit.services.journal.store import SqlJournal
journal = SqlJournal(sys.argv[1])
journal.acquire_writer()
print("holding", flush=True)
sys.stdin.readline()
journal.close()
"""


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def lock_file_of(path: Path) -> Path:
    return path.with_name(f"{path.name}.lock")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
def writer(db_path: Path) -> Iterator[SqlJournal]:
    journal = SqlJournal(url_of(db_path))
    journal.acquire_writer()
    yield journal
    journal.close()


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    messages: list[str] = []
    logger.enable("tradekit")  # a library's records are off until the application opts in
    sink = logger.add(lambda message: messages.append(str(message)), level="WARNING")
    yield messages
    logger.remove(sink)
    logger.disable("tradekit")


@contextmanager
def holding(db_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the writer lock until its stdin gets a line (or it is killed)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, url_of(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "holding\n"
            yield holder
        finally:
            if holder.poll() is None:
                holder.kill()


class TestOneWriter:
    def test_a_second_writer_on_the_same_file_is_refused_naming_the_holder(
        self, writer: SqlJournal, db_path: Path
    ) -> None:
        second = SqlJournal(url_of(db_path))
        try:
            with pytest.raises(StorageError) as caught:
                second.acquire_writer()
        finally:
            second.close()
        message = str(caught.value)
        assert "already being written by" in message
        assert f"pid {os.getpid()}" in message
        assert f"on host {socket.gethostname()}" in message
        holder = WriterHolder.from_json(lock_file_of(db_path).read_text())
        assert holder is not None
        assert f"writing since {holder.started_at}" in message

    def test_the_lock_file_records_the_holder(self, writer: SqlJournal, db_path: Path) -> None:
        recorded = json.loads(lock_file_of(db_path).read_text())
        assert recorded["pid"] == os.getpid()
        assert recorded["host"] == socket.gethostname()
        assert recorded["command"]

    def test_closing_releases_the_lock_and_removes_its_file(self, db_path: Path) -> None:
        first = SqlJournal(url_of(db_path))
        first.acquire_writer()
        first.close()
        assert not lock_file_of(db_path).exists()
        with SqlJournal(url_of(db_path)) as second:
            second.acquire_writer()
            assert lock_file_of(db_path).exists()

    def test_acquiring_twice_in_one_journal_is_harmless(self, writer: SqlJournal) -> None:
        writer.acquire_writer()
        assert writer.last_seq("any") == 0

    def test_readers_and_the_registry_never_take_it(
        self, writer: SqlJournal, db_path: Path
    ) -> None:
        writer.register_strategy("a", "A", "rsi", "{}")
        with SqlJournal(url_of(db_path)) as registry:
            registry.set_status("a", "disabled")
        with SqlJournal(url_of(db_path), read_only=True) as reader:
            assert [info.status.value for info in reader.strategies()] == ["disabled"]

    def test_a_read_only_journal_cannot_become_a_writer(self, db_path: Path) -> None:
        SqlJournal(url_of(db_path)).close()
        with (
            SqlJournal(url_of(db_path), read_only=True) as reader,
            pytest.raises(StorageError, match="read-only"),
        ):
            reader.acquire_writer()

    def test_an_in_memory_journal_needs_no_lock(self) -> None:
        with SqlJournal("sqlite://") as first, SqlJournal("sqlite://") as second:
            first.acquire_writer()
            second.acquire_writer()
            assert first.last_seq("a") == second.last_seq("a") == 0

    def test_a_lock_file_that_cannot_be_created_is_a_storage_error(self, tmp_path: Path) -> None:
        path = tmp_path / "journal.db"
        lock_file_of(path).mkdir()
        with SqlJournal(url_of(path)) as journal, pytest.raises(StorageError) as caught:
            journal.acquire_writer()
        assert str(lock_file_of(path)) in str(caught.value)


class TestAnotherProcess:
    def test_a_writer_in_another_process_blocks_this_one_until_it_releases(
        self, db_path: Path
    ) -> None:
        with holding(db_path) as holder, SqlJournal(url_of(db_path)) as journal:
            with pytest.raises(StorageError, match=f"pid {holder.pid} on host"):
                journal.acquire_writer()
            holder.communicate("\n", timeout=60)
            assert holder.returncode == 0
            journal.acquire_writer()

    def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_warning(
        self, db_path: Path, warnings: list[str]
    ) -> None:
        with holding(db_path) as holder:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=60)
        left = WriterHolder.from_json(lock_file_of(db_path).read_text())
        assert left is not None
        assert left.pid == holder.pid
        with SqlJournal(url_of(db_path)) as journal:
            journal.acquire_writer()
            mine = WriterHolder.from_json(lock_file_of(db_path).read_text())
            assert mine is not None
            assert mine.pid == os.getpid()
        assert len(warnings) == 1
        assert "taking over the writer lock" in warnings[0]
        assert f"pid {holder.pid} on host" in warnings[0]
        assert not lock_file_of(db_path).exists()

    def test_a_lock_file_with_unreadable_contents_is_taken_over(
        self, db_path: Path, warnings: list[str]
    ) -> None:
        lock_file_of(db_path).write_text("{not json")
        with SqlJournal(url_of(db_path)) as journal:
            journal.acquire_writer()
        assert warnings == []
        assert not lock_file_of(db_path).exists()
