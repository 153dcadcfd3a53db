"""One writer per journal database: an OS lock beside a SQLite file, an advisory lock on PostgreSQL.

Both locks die with the process that holds them, so a writer killed mid-run never
blocks the next one: its record of who held the lock is found unlocked, named in a
warning, and replaced.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import socket
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import BigInteger, Column, Connection, Engine, MetaData, Table, Text, delete, text
from sqlalchemy import select as core_select
from sqlalchemy.exc import SQLAlchemyError

from tradekit.errors import StorageError
from tradekit.logs import log

# Longer command lines are cut: the holder's record stays one small read.
_COMMAND_CHARS = 300
_HOLDER_BYTES = 4096


@dataclass(frozen=True, slots=True)
class WriterHolder:
    """Who holds a journal's writer lock: enough for an operator to find the process."""

    pid: int
    host: str
    started_at: str
    command: str

    @classmethod
    def of_this_process(cls) -> WriterHolder:
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            command=shlex.join(sys.argv)[:_COMMAND_CHARS],
        )

    @classmethod
    def from_json(cls, document: str) -> WriterHolder | None:
        """The holder recorded in ``document``; ``None`` when it is empty or unreadable."""
        try:
            values = json.loads(document)
            return cls(
                pid=int(values["pid"]),
                host=str(values["host"]),
                started_at=str(values["started_at"]),
                command=str(values.get("command", "")),
            )
        except (ValueError, TypeError, KeyError):
            return None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def __str__(self) -> str:
        command = f" ({self.command})" if self.command else ""
        return f"pid {self.pid} on host {self.host}, writing since {self.started_at}{command}"


class WriterLock(Protocol):
    """A held writer lock; ``release`` gives it up (once)."""

    def release(self) -> None: ...


def _refusal(database: str, holder: WriterHolder | None) -> StorageError:
    who = str(holder) if holder else "another process (it has not recorded itself yet)"
    return StorageError(
        f"journal {database} is already being written by {who}; one writer per database: "
        "stop that run first, or give this one another database with --db"
    )


def _warn_takeover(database: str, previous: WriterHolder | None) -> None:
    if previous is not None:
        log.warning(
            "journal {}: taking over the writer lock left by {}; that process ended "
            "without releasing it",
            database,
            previous,
        )


class FileWriterLock:
    """An exclusive ``flock`` on ``<database>.lock``, which holds the holder as JSON.

    One per writing journal, held until ``release``. The file is removed on release,
    so one that exists unlocked was left by a process that died.
    """

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    @classmethod
    def acquire(cls, path: Path, database: str) -> FileWriterLock:
        """Take the lock at ``path``; ``StorageError`` naming the holder when it is taken."""
        # A releasing holder removes the file between our open and our lock: lock the
        # file that is at the path, or try again.
        for _ in range(10):
            descriptor = cls._open(path, database)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(descriptor)
                os.close(descriptor)
                raise _refusal(database, holder) from None
            except OSError as exc:
                os.close(descriptor)
                raise StorageError(
                    f"journal {database}: cannot lock {path} ({exc.strerror or exc}); the "
                    "file system must support file locks"
                ) from exc
            if _is_at(descriptor, path):
                break
            os.close(descriptor)
        else:
            raise StorageError(f"journal {database}: the lock file {path} keeps being replaced")
        _warn_takeover(database, _read_holder(descriptor))
        document = WriterHolder.of_this_process().to_json().encode()
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, document, 0)
        os.fsync(descriptor)
        return cls(path, descriptor)

    @staticmethod
    def _open(path: Path, database: str) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError(
                f"journal {database}: cannot create its writer lock file {path} "
                f"({exc.strerror or exc})"
            ) from exc

    def release(self) -> None:
        if self._descriptor is None:
            return
        # Removed while still locked, so no one can take a lock on a file about to vanish.
        self.path.unlink(missing_ok=True)
        os.close(self._descriptor)
        self._descriptor = None


def _read_holder(descriptor: int) -> WriterHolder | None:
    return WriterHolder.from_json(os.pread(descriptor, _HOLDER_BYTES, 0).decode(errors="replace"))


def _is_at(descriptor: int, path: Path) -> bool:
    try:
        at_path = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (opened.st_dev, opened.st_ino) == (at_path.st_dev, at_path.st_ino)


_WRITERS_METADATA = MetaData()
WRITERS = Table(
    "journal_writer",
    _WRITERS_METADATA,
    Column("lock_key", BigInteger, primary_key=True),
    Column("holder", Text, nullable=False),
)
"""Who holds each advisory writer lock, so a refused writer can name it."""


def advisory_key(database_name: str) -> int:
    """The signed 64-bit advisory lock key of the journal in database ``database_name``."""
    digest = hashlib.blake2b(f"tradekit journal {database_name}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


class AdvisoryWriterLock:
    """A session-level ``pg_advisory_lock`` held on a connection of its own for the run.

    One per writing journal; the server releases it when that session ends, however
    the process ends.
    """

    def __init__(self, connection: Connection, key: int) -> None:
        self._connection: Connection | None = connection
        self._key = key

    @classmethod
    def acquire(cls, engine: Engine, database: str) -> AdvisoryWriterLock:
        """Take the database's writer lock; ``StorageError`` naming the holder when taken."""
        try:
            connection = engine.connect()
        except SQLAlchemyError as exc:
            raise StorageError(f"journal {database}: cannot take the writer lock ({exc})") from exc
        try:
            return cls._take(connection, database)
        except SQLAlchemyError as exc:
            connection.close()
            raise StorageError(f"journal {database}: cannot take the writer lock ({exc})") from exc
        except StorageError:
            connection.close()
            raise

    @classmethod
    def _take(cls, connection: Connection, database: str) -> AdvisoryWriterLock:
        key = advisory_key(connection.execute(text("SELECT current_database()")).scalar_one())
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
        ).scalar_one()
        connection.commit()
        if not taken:
            raise _refusal(database, _stored_holder(connection, key))
        # Only the holder creates the table, so two writers never race to create it.
        WRITERS.create(connection, checkfirst=True)
        _warn_takeover(database, _stored_holder(connection, key))
        connection.execute(delete(WRITERS).where(WRITERS.c.lock_key == key))
        connection.execute(
            WRITERS.insert(),
            {"lock_key": key, "holder": WriterHolder.of_this_process().to_json()},
        )
        connection.commit()
        return cls(connection, key)

    def release(self) -> None:
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        try:
            connection.execute(delete(WRITERS).where(WRITERS.c.lock_key == self._key))
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            connection.commit()
        except SQLAlchemyError as exc:
            # The session is gone (server restart), and its lock with it.
            log.warning("journal writer lock: could not release it cleanly ({})", exc)
        finally:
            connection.close()


def _stored_holder(connection: Connection, key: int) -> WriterHolder | None:
    statement = core_select(WRITERS.c.holder).where(WRITERS.c.lock_key == key)
    try:
        document = connection.execute(statement).scalar_one_or_none()
    except SQLAlchemyError:
        # The first holder may not have created the table yet.
        connection.rollback()
        return None
    connection.commit()
    return None if document is None else WriterHolder.from_json(document)


__all__ = [
    "WRITERS",
    "AdvisoryWriterLock",
    "FileWriterLock",
    "WriterHolder",
    "WriterLock",
    "advisory_key",
]
