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

from tradekit.domain import Candle
from tradekit.errors import StorageError
from tradekit.events import StrategyControlled
from tradekit.runtime.bot_requests import ChangeAsked, disable_bot, enable_bot, resume_bot
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

        config = strategy_config_from_dict(
            {
                "strategy_id": "alpha",
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "analyzers": [{"type": "time_interval", "params": {"every_bars": 3}}],
            }
        )
        run_live(
            settings_from_dict({"exchange": {"kind": "paper"}}),
            [config],
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
