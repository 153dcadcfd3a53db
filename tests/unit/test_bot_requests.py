"""Asking the registry for a change (``tradekit.runtime.bot_requests``): a bot's new status and
the change row that has a run apply it are written together or not at all, once, and a
running engine applies the change once."""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakes import candle_stream

from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Candle
from tradekit.errors import StorageError
from tradekit.events import StrategyControlled
from tradekit.runtime.bot_requests import (
    ChangeAsked,
    add_bot,
    disable_bot,
    enable_bot,
    resume_bot,
    update_bot,
)
from tradekit.runtime.control import RunSelection
from tradekit.runtime.live import run_live
from tradekit.services.journal.store import SqlJournal, StrategyStatus
from tradekit.testing import settings_from_dict, strategy_config_from_dict

Ask = Callable[[SqlJournal], ChangeAsked]

STOP: Ask = lambda journal: disable_bot(journal, "alpha", "api")  # noqa: E731
START: Ask = lambda journal: enable_bot(journal, "alpha", "api")  # noqa: E731
RESUME: Ask = lambda journal: resume_bot(journal, "alpha", "api")  # noqa: E731
# Each change, asked of alpha in the status it changes.
CHANGES = [
    pytest.param(STOP, StrategyStatus.ACTIVE, StrategyStatus.DISABLED, id="stop"),
    pytest.param(START, StrategyStatus.DISABLED, StrategyStatus.ACTIVE, id="start"),
    pytest.param(RESUME, StrategyStatus.QUARANTINED, StrategyStatus.ACTIVE, id="resume"),
]


def bot_config(strategy_id: str, every_bars: int = 3, *, enabled: bool = True) -> StrategyConfig:
    return strategy_config_from_dict(
        {
            "strategy_id": strategy_id,
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "enabled": enabled,
            "analyzers": [{"type": "time_interval", "params": {"every_bars": every_bars}}],
        }
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
def journal(db_path: Path) -> Iterator[SqlJournal]:
    with SqlJournal(f"sqlite:///{db_path}") as journal:
        journal.register_strategy("alpha", "Alpha", "rsi", "{}")
        yield journal


def fail_on(db_path: Path, event: str, table: str) -> None:
    """Make every ``event`` (INSERT, UPDATE) on ``table`` fail, as a disk gone mid-transaction."""
    with sqlite3.connect(db_path) as connection:
        connection.execute(
            f"CREATE TRIGGER fail_{table} BEFORE {event} ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'disk gone'); END"
        )


class TestStatusAndChangeTogether:
    @pytest.mark.parametrize(("ask", "before", "after"), CHANGES)
    def test_a_change_that_cannot_be_recorded_leaves_the_status_as_it_was(
        self,
        journal: SqlJournal,
        db_path: Path,
        ask: Ask,
        before: StrategyStatus,
        after: StrategyStatus,
    ) -> None:
        journal.set_status("alpha", before)
        version = journal.registry_version()
        fail_on(db_path, "INSERT", "registry_changes")

        with pytest.raises(StorageError, match="disk gone"):
            ask(journal)

        info = journal.strategy_info("alpha")
        assert info is not None
        assert info.status is before
        assert journal.registry_changes() == []
        assert journal.registry_version() == version

    @pytest.mark.parametrize(("ask", "before", "after"), CHANGES)
    def test_a_status_that_cannot_be_written_records_no_change(
        self,
        journal: SqlJournal,
        db_path: Path,
        ask: Ask,
        before: StrategyStatus,
        after: StrategyStatus,
    ) -> None:
        journal.set_status("alpha", before)
        fail_on(db_path, "UPDATE", "strategies")

        with pytest.raises(StorageError, match="disk gone"):
            ask(journal)

        assert journal.registry_changes() == []

    @pytest.mark.parametrize(("ask", "before", "after"), CHANGES)
    def test_a_change_is_recorded_once_with_its_status_in_one_write(
        self, journal: SqlJournal, ask: Ask, before: StrategyStatus, after: StrategyStatus
    ) -> None:
        journal.set_status("alpha", before)
        version = journal.registry_version() or 0

        asked = ask(journal)

        [change] = journal.registry_changes()
        assert (change.change_id, change.strategy_id) == (asked.change_id, "alpha")
        assert change.by == "api"
        assert (change.action, change.applied_at) == (asked.action, None)
        info = journal.strategy_info("alpha")
        assert info is not None
        assert info.status is after is asked.status
        assert journal.registry_version() == version + 1

    def test_an_unknown_status_writes_nothing(self, journal: SqlJournal) -> None:
        with pytest.raises(StorageError, match="unknown status 'paused'"):
            journal.request_change("alpha", "disable", "api", status="paused")
        assert journal.registry_changes() == []


class TestConfigAndChangeTogether:
    def test_an_add_that_cannot_be_recorded_registers_nothing(
        self, journal: SqlJournal, db_path: Path
    ) -> None:
        fail_on(db_path, "INSERT", "registry_changes")

        with pytest.raises(StorageError, match="disk gone"):
            add_bot(journal, bot_config("beta"), "api")

        assert journal.strategy_info("beta") is None

    def test_a_removed_bot_added_again_stays_removed_when_the_add_cannot_be_recorded(
        self, journal: SqlJournal, db_path: Path
    ) -> None:
        journal.register_strategy(
            "beta", "beta", "time_interval", bot_config("beta").model_dump_json()
        )
        journal.remove_strategy("beta")
        before = journal.strategy_info("beta")
        fail_on(db_path, "INSERT", "registry_changes")

        with pytest.raises(StorageError, match="disk gone"):
            add_bot(journal, bot_config("beta", every_bars=5), "api")

        assert journal.strategy_info("beta") == before

    @pytest.mark.parametrize("enabled", [True, False])
    def test_an_update_that_cannot_be_recorded_keeps_the_config_and_status(
        self, journal: SqlJournal, db_path: Path, enabled: bool
    ) -> None:
        add_bot(journal, bot_config("beta"), "api")
        before = journal.strategy_info("beta")
        fail_on(db_path, "INSERT", "registry_changes")

        with pytest.raises(StorageError, match="disk gone"):
            update_bot(journal, bot_config("beta", every_bars=5, enabled=enabled), "api")

        assert journal.strategy_info("beta") == before

    @pytest.mark.parametrize("enabled", [True, False])
    def test_an_add_registers_the_bot_with_its_status_and_change_in_one_write(
        self, journal: SqlJournal, enabled: bool
    ) -> None:
        version = journal.registry_version() or 0

        asked = add_bot(journal, bot_config("beta", enabled=enabled), "api", kind="rsi")

        info = journal.strategy_info("beta")
        assert info is not None
        assert (info.kind, info.status, asked.status) == (
            "rsi",
            StrategyStatus.ACTIVE if enabled else StrategyStatus.DISABLED,
            info.status,
        )
        assert [change.change_id for change in journal.registry_changes()] == [asked.change_id]
        assert journal.registry_version() == version + 1

    def test_an_update_replaces_the_config_and_keeps_created_at_in_one_write(
        self, journal: SqlJournal
    ) -> None:
        add_bot(journal, bot_config("beta"), "api")
        before = journal.strategy_info("beta")
        version = journal.registry_version() or 0

        update_bot(journal, bot_config("beta", every_bars=5, enabled=False), "api")

        after = journal.strategy_info("beta")
        assert before is not None
        assert after is not None
        assert (
            after.config_json == bot_config("beta", every_bars=5, enabled=False).model_dump_json()
        )
        assert (after.created_at, after.status) == (before.created_at, StrategyStatus.DISABLED)
        assert journal.registry_version() == version + 1


class TestAppliedOnce:
    def test_a_stop_then_a_start_asked_of_a_run_are_each_applied_once(self, db_path: Path) -> None:
        url = f"sqlite:///{db_path}"
        asked: list[ChangeAsked] = []

        def candles() -> Iterator[Candle]:
            for index, candle in enumerate(candle_stream([100.0 + i for i in range(10)])):
                if index in (3, 6):
                    with SqlJournal(url) as api:
                        asked.append((STOP if index == 3 else START)(api))
                yield candle

        run_live(
            settings_from_dict({"exchange": {"kind": "paper"}}),
            [bot_config("alpha")],
            candles(),
            journal=SqlJournal(url),
            registry=RunSelection(),
            # A second passes at each look at the clock: the run looks at the registry after
            # every candle.
            monotonic=functools.partial(next, itertools.count(0.0, 1.0)),
        )

        with SqlJournal(url, read_only=True) as journal:
            changes = journal.registry_changes()
            controlled = journal.events("alpha", types=[StrategyControlled])
            info = journal.strategy_info("alpha")
        assert [(change.change_id, change.outcome) for change in changes] == [
            (asked[0].change_id, "applied"),
            (asked[1].change_id, "applied"),
        ]
        assert [
            (event.change_id, event.action, event.outcome)
            for event in controlled
            if isinstance(event, StrategyControlled)
        ] == [(asked[0].change_id, "disable", "applied"), (asked[1].change_id, "enable", "applied")]
        assert info is not None
        assert info.status is StrategyStatus.ACTIVE
