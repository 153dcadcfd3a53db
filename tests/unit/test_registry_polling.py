"""How often a run driven by the registry looks at it: at most every ``REGISTRY_POLL_SECONDS``
between candles, and at once when a change was asked in its own process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest
from fakes import candle_stream

from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Candle
from tradekit.runtime import live
from tradekit.runtime.bot_requests import disable_bot
from tradekit.runtime.control import REGISTRY_POLL_SECONDS, RunSelection
from tradekit.runtime.engine import Engine
from tradekit.runtime.live import run_live
from tradekit.runtime.waking import Doorbell
from tradekit.services.journal.store import SqlJournal
from tradekit.testing import settings_from_dict, strategy_config_from_dict

CANDLES = 10
WAIT_SECONDS = 10.0


def bot_config(strategy_id: str) -> StrategyConfig:
    return strategy_config_from_dict(
        {
            "strategy_id": strategy_id,
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "analyzers": [{"type": "time_interval", "params": {"every_bars": 3}}],
        }
    )


class FrozenMonotonic:
    """Seconds that move only when the test moves them."""

    def __init__(self) -> None:
        self.seconds = 100.0

    def __call__(self) -> float:
        return self.seconds


class PollCounter:
    """A run observer that counts the run's looks at the registry and can ask for one."""

    def __init__(self) -> None:
        self.polls = 0
        self.asked = False
        self.doorbell: Doorbell | None = None
        self.looked = threading.Event()

    def started(self, engine: Engine, now: Callable[[], datetime], doorbell: Doorbell) -> None:
        self.doorbell = doorbell

    def candle(self, candle: Candle, seconds: float) -> None:
        """Nothing to keep."""

    def polled(self, changed: Sequence[str]) -> None:
        self.polls += 1
        self.looked.set()

    def wants_poll(self) -> bool:
        asked, self.asked = self.asked, False
        return asked

    def stopped(self) -> None:
        """Nothing to keep."""


def run(
    journal: SqlJournal,
    observer: PollCounter,
    monotonic: FrozenMonotonic,
    before_candle: Callable[[int], None] = lambda index: None,
) -> None:
    def candles() -> Iterator[Candle]:
        for index, candle in enumerate(candle_stream([100.0 + i for i in range(CANDLES)])):
            before_candle(index)
            yield candle

    run_live(
        settings_from_dict({"exchange": {"kind": "paper"}}),
        [bot_config("alpha")],
        candles(),
        journal=journal,
        registry=RunSelection(),
        observer=observer,
        monotonic=monotonic,
    )


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'journal.db'}"


class TestRegistryPolling:
    def test_candles_within_one_interval_look_at_the_registry_once(self, database: str) -> None:
        observer = PollCounter()
        run(SqlJournal(database), observer, FrozenMonotonic())
        assert observer.polls == 1

    def test_it_looks_again_once_the_interval_passed(self, database: str) -> None:
        observer, seconds = PollCounter(), FrozenMonotonic()

        def tick(index: int) -> None:
            seconds.seconds += REGISTRY_POLL_SECONDS

        run(SqlJournal(database), observer, seconds, tick)
        # At start, then after each candle but the first (read before the run started).
        assert observer.polls == CANDLES

    def test_a_change_asked_in_process_is_applied_before_the_next_candle(
        self, database: str
    ) -> None:
        observer = PollCounter()
        asked: list[int] = []

        def stop_alpha(index: int) -> None:
            if index == 4:
                with SqlJournal(database) as other:
                    asked.append(disable_bot(other, "alpha", "test").change_id)
                observer.asked = True

        run(SqlJournal(database), observer, FrozenMonotonic(), stop_alpha)
        assert observer.polls == 2
        with SqlJournal(database, read_only=True) as journal:
            change = journal.registry_change(asked[0])
        assert change is not None
        assert change.outcome == "applied"

    def test_a_change_not_asked_in_process_waits_for_the_interval(self, database: str) -> None:
        asked: list[int] = []

        def stop_alpha(index: int) -> None:
            if index == 4:
                with SqlJournal(database) as other:
                    asked.append(disable_bot(other, "alpha", "test").change_id)

        run(SqlJournal(database), PollCounter(), FrozenMonotonic(), stop_alpha)
        with SqlJournal(database, read_only=True) as journal:
            change = journal.registry_change(asked[0])
        assert change is not None
        assert change.applied_at is None


class TestWokenForAChange:
    def test_a_change_asked_while_the_run_waits_for_a_candle_is_applied_at_once(
        self, database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Waiting an hour for its next candle, the run still applies a change as soon as
        the doorbell rings (as the bot service does after writing one), not at its next
        wake-up; the candle still comes afterwards."""
        monkeypatch.setattr(live, "CONTROL_POLL_SECONDS", 3600.0)
        observer, gate, stop = PollCounter(), threading.Event(), threading.Event()
        first, second = candle_stream([100.0, 101.0])

        def candles() -> Iterator[Candle]:
            yield first
            gate.wait(WAIT_SECONDS)
            yield second

        def go() -> None:
            run_live(
                settings_from_dict({"exchange": {"kind": "paper"}}),
                [bot_config("alpha")],
                candles(),
                journal=SqlJournal(database),
                registry=RunSelection(),
                observer=observer,
                monotonic=FrozenMonotonic(),
                stop=stop,
            )

        runner = threading.Thread(target=go)
        runner.start()
        try:
            assert observer.looked.wait(WAIT_SECONDS)  # the look at start
            observer.looked.clear()
            with SqlJournal(database) as other:
                change_id = disable_bot(other, "alpha", "test").change_id
            observer.asked = True
            assert observer.doorbell is not None
            observer.doorbell.ring()
            assert observer.looked.wait(WAIT_SECONDS)
            with SqlJournal(database, read_only=True) as journal:
                change = journal.registry_change(change_id)
            assert change is not None
            assert change.outcome == "applied"
            assert not gate.is_set()  # applied while the second candle had not come
        finally:
            gate.set()
            stop.set()
            runner.join(WAIT_SECONDS)
        assert not runner.is_alive()
