"""How ``SqlJournal`` opens SQLite: connection settings, read-only access, and the integrity check.

Writers run in WAL mode; readers open the file read-only, and as an immutable
file when nothing is writing it or its folder cannot be written, so reading a
journal never creates or changes a file.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

WRITE_OPTION = "tradekit_journal_write"
"""Execution option marking a connection whose transactions write (``BEGIN IMMEDIATE``)."""

# sqlite3's primary result codes for a damaged file and for one that is not a database.
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26

WAL_CHECKPOINT_PAGES = 10_000
"""Pages a writer's WAL grows to before SQLite copies it into the database file."""

# The integrity check reports up to this many problems: enough to show it is real.
_PROBLEMS_SHOWN = 3


def connection_setup(busy_timeout_ms: int, *, read_only: bool) -> Callable[[Any, Any], None]:
    """A ``connect`` listener setting each new SQLite connection up for many readers, one writer."""

    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so switching to WAL waits for a lock instead of failing.
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if read_only:
                cursor.execute("PRAGMA query_only = ON")
            else:
                cursor.execute("PRAGMA journal_mode = WAL")
                # In WAL mode NORMAL is durable across application crashes, and fsyncs far
                # less than FULL.
                cursor.execute("PRAGMA synchronous = NORMAL")
                # Checkpoint every ~40 MiB of WAL instead of every 4 MiB: a checkpoint per
                # few commits cost a third of the commit time. Durability is unchanged.
                cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()
        # The driver's own transaction handling skips BEGIN before DDL, which would make
        # schema creation non-transactional; ``begin_transaction`` emits every BEGIN instead.
        dbapi_connection.isolation_level = None

    return on_connect


PROMPT_RETRY_SECONDS = 0.0002
"""How often a prompt writer tries again for the write lock while another holds it."""

_SQLITE_BUSY = 5


def begin_transaction(connection: Connection) -> None:
    """Start each SQLite transaction: IMMEDIATE for writers, deferred for readers."""
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def prompt_transaction_begin(busy_timeout_ms: int) -> Callable[[Connection], None]:
    """A ``begin`` listener like ``begin_transaction`` whose writers take the write lock as soon
    as it is free: they try again every ``PROMPT_RETRY_SECONDS`` for up to
    ``busy_timeout_ms``, where SQLite's own wait backs off (sleeps of 1, 2, 5, 10, 15 ms
    and more). Writers that back off wait for this one; the engine's journal is opened so,
    and its commits no longer wait out a sleep when the API or a command wrote meanwhile."""

    def begin(connection: Connection) -> None:
        if not connection.get_execution_options().get(WRITE_OPTION, False):
            connection.exec_driver_sql("BEGIN")
            return
        driver = connection.connection.dbapi_connection
        assert driver is not None  # a connection in use has its driver's connection
        driver.execute("PRAGMA busy_timeout = 0")
        try:
            deadline = time.monotonic() + busy_timeout_ms / 1000
            while time.monotonic() < deadline:
                try:
                    driver.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if getattr(exc, "sqlite_errorcode", None) != _SQLITE_BUSY:
                        break
                time.sleep(PROMPT_RETRY_SECONDS)
            # The last try through SQLAlchemy, whose error the journal reports as any other.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            driver.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")

    return begin


def is_in_memory(url: URL) -> bool:
    database = url.database or ""
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or url.query.get("mode") == "memory"
    )


def database_file(url: URL) -> Path | None:
    """The file a SQLite URL names, as a path or a ``file:`` URI; ``None`` in memory."""
    if is_in_memory(url):
        return None
    database = url.database or ""
    if database.startswith("file:"):
        return Path(unquote(urlsplit(database).path))
    return Path(database)


def beside_journal(database_url: str, suffix: str) -> Path:
    """A file next to a SQLite journal file (``tradekit.db`` -> ``tradekit.db<suffix>``), or
    ``./tradekit<suffix>`` for other databases, in-memory ones and URLs that do not parse."""
    try:
        url: URL | None = make_url(database_url)
    except ArgumentError:
        url = None
    path = None if url is None or url.get_backend_name() != "sqlite" else database_file(url)
    if path is None:
        return Path("tradekit" + suffix)
    return path.with_name(path.name + suffix)


def writer_lock_file(database: Path) -> Path:
    """The writer lock file beside ``database``."""
    return database.with_name(f"{database.name}.lock")


def read_only_url(url: URL, database: Path) -> URL:
    """``url`` opening ``database`` read-only, as an immutable file when that is safe.

    A file opened read-only in WAL mode still gets -wal and -shm files beside it;
    an immutable one gets none. Immutable is safe when no writer can be changing the
    file: no -wal file (nothing uncheckpointed to read) and no writer lock file, or a
    folder nobody may write in (checked on the mode bits, which bind even root by intent).
    """
    resolved = database.resolve()
    query = {"mode": "ro", "uri": "true"}
    has_wal = Path(f"{resolved}-wal").exists()
    being_written = writer_lock_file(resolved).exists()
    if not has_wal and (not being_written or not _folder_writable(resolved.parent)):
        query["immutable"] = "1"
    return URL.create(url.drivername, database=f"file:{quote(str(resolved))}", query=query)


def _folder_writable(folder: Path) -> bool:
    try:
        mode = stat.S_IMODE(folder.stat().st_mode)
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def integrity_problems(connection: Connection) -> list[str]:
    """What ``PRAGMA quick_check`` finds wrong in the database's structure; empty when sound.

    SQLite keeps no checksums: bytes changed inside a stored value go unseen here, and
    surface as a ``StorageError`` when that value is read.
    """
    rows = connection.execute(text(f"PRAGMA quick_check({_PROBLEMS_SHOWN})")).scalars().all()
    if rows == ["ok"]:
        return []
    # Each finding may span lines, under a "*** in database main ***" heading.
    lines = (line.strip() for row in rows for line in str(row).splitlines())
    return [line for line in lines if line and not line.startswith("***")]


def is_damage(exc: BaseException) -> bool:
    """Whether SQLite failed because the file is damaged or is not a database at all."""
    if not isinstance(exc, DBAPIError):
        return False
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


__all__ = [
    "WRITE_OPTION",
    "begin_transaction",
    "connection_setup",
    "database_file",
    "integrity_problems",
    "is_damage",
    "is_in_memory",
    "prompt_transaction_begin",
    "read_only_url",
    "writer_lock_file",
]
