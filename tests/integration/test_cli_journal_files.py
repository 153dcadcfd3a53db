"""``tradekit report`` and ``strategies list`` on damaged journals and on read-only copies."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradekit.cli import EXIT_CONFIG_ERROR, app
from tradekit.domain import Side
from tradekit.events import PositionClosed, PositionOpened
from tradekit.services.journal.store import SqlJournal

T0 = datetime(2024, 3, 1, tzinfo=UTC)
PAGE = 4096
COMMANDS = {"report": ["report"], "strategies list": ["strategies", "list"]}


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def trade(strategy_id: str, number: int) -> list[PositionOpened | PositionClosed]:
    opened_at = T0 + timedelta(hours=2 * number)
    position_id = f"{strategy_id}-pos-{number}"
    common = {"strategy_id": strategy_id, "position_id": position_id, "symbol": "BTC/USDT"}
    return [
        PositionOpened(
            ts=opened_at,
            seq=2 * number + 1,
            side=Side.LONG,
            quantity=1.0,
            price=100.0,
            fee=0.1,
            stop_loss=None,
            take_profit=None,
            **common,
        ),
        PositionClosed(
            ts=opened_at + timedelta(hours=1),
            seq=2 * number + 2,
            side=Side.LONG,
            quantity=1.0,
            avg_entry_price=100.0,
            exit_price=101.0,
            fees=0.2,
            realized_pnl=0.8,
            reason="take_profit",
            bars_held=1,
            **common,
        ),
    ]


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    """Three registered strategies with 100 trades each: a journal of many pages."""
    path = tmp_path / "journal.db"
    with SqlJournal(url_of(path)) as journal:
        for strategy_id in ("alpha", "beta", "gamma"):
            journal.register_strategy(strategy_id, strategy_id, "rsi", "{}")
            for number in range(100):
                journal.record(trade(strategy_id, number))
            journal.commit()
    return path


def invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def files_in(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {item.name: (item.read_bytes(), item.stat().st_mtime_ns) for item in folder.iterdir()}


@pytest.fixture
def read_only_copy(journal_file: Path, tmp_path: Path) -> Iterator[Path]:
    """The journal copied into a folder nobody may write in, the file itself 0444."""
    folder = tmp_path / "archive"
    folder.mkdir()
    copy = folder / "journal.db"
    shutil.copy(journal_file, copy)
    copy.chmod(0o444)
    folder.chmod(0o555)
    yield copy
    folder.chmod(0o755)
    copy.chmod(0o644)


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """Make ``paths`` unchangeable even for root (the immutable flag), or skip the test."""
    chattr = shutil.which("chattr")
    done: list[Path] = []
    try:
        for path in paths:
            if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
                pytest.skip("the immutable flag cannot be set here (chattr missing or refused)")
            done.append(path)
        yield
    finally:
        for path in reversed(done):
            subprocess.run([chattr, "-i", str(path)], check=True)


class TestDamagedJournal:
    @pytest.mark.parametrize("command", list(COMMANDS), ids=list(COMMANDS))
    def test_random_bytes_in_the_middle_exit_2_with_a_clear_message(
        self, command: str, journal_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = bytearray(journal_file.read_bytes())
        middle = len(data) // PAGE // 2
        data[middle * PAGE : (middle + 1) * PAGE] = random.Random(11).randbytes(PAGE)
        damaged = tmp_path / "damaged.db"
        damaged.write_bytes(bytes(data))
        code, output = invoke([*COMMANDS[command], "--db", url_of(damaged)], tmp_path, monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert f"cannot open journal {url_of(damaged)}: the file is damaged" in output
        assert "Traceback" not in output
        assert damaged.read_bytes() == bytes(data)

    @pytest.mark.parametrize("command", list(COMMANDS), ids=list(COMMANDS))
    def test_a_file_that_is_no_database_exits_2_saying_so(
        self, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        notes = tmp_path / "notes.db"
        notes.write_text("remember the milk\n" * 300)
        code, output = invoke([*COMMANDS[command], "--db", url_of(notes)], tmp_path, monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "is not a tradekit journal (file is not a database)" in output
        assert "Traceback" not in output


class TestReadOnlyCopy:
    def test_report_reads_it_and_changes_nothing(
        self, read_only_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        before = files_in(read_only_copy.parent)
        code, output = invoke(["report", "--db", url_of(read_only_copy)], tmp_path, monkeypatch)
        assert code == 0, output
        for strategy_id in ("alpha", "beta", "gamma"):
            assert strategy_id in output
        assert "240.00" in output  # 300 trades of 0.80
        assert files_in(read_only_copy.parent) == before

    def test_strategies_list_reads_it_and_changes_nothing(
        self, read_only_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        before = files_in(read_only_copy.parent)
        code, output = invoke(
            ["strategies", "list", "--db", url_of(read_only_copy)], tmp_path, monkeypatch
        )
        assert code == 0, output
        assert output.count("active") == 3
        assert files_in(read_only_copy.parent) == before

    @pytest.mark.parametrize("command", list(COMMANDS), ids=list(COMMANDS))
    def test_it_works_where_no_file_can_be_created_or_changed_even_by_root(
        self, command: str, journal_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        folder = tmp_path / "frozen"
        folder.mkdir()
        copy = folder / "journal.db"
        shutil.copy(journal_file, copy)
        with immutable(copy, folder):
            code, output = invoke([*COMMANDS[command], "--db", url_of(copy)], tmp_path, monkeypatch)
        assert code == 0, output
        assert "gamma" in output
        assert [item.name for item in folder.iterdir()] == ["journal.db"]

    def test_report_on_a_writable_copy_leaves_no_wal_or_shm_file(
        self, journal_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        before = files_in(tmp_path)
        code, output = invoke(["report", "--db", url_of(journal_file)], tmp_path, monkeypatch)
        assert code == 0, output
        assert files_in(tmp_path) == before
