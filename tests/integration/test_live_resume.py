"""A paper run interrupted after K candles and restarted on its journal ends as if uninterrupted.

The in-process counterpart of the SIGKILL tests in ``test_crash_recovery.py``:
``run_live`` runs here, so the resume path (snapshot restore, seq continuation,
catching up on candles already seen) is measured by coverage. A run is
interrupted either as a kill would (the source raises between two candles, so
nothing runs after the K-th commit) or cleanly (``stop`` is set before candle
K + 1), then run again on the same SQLite file with the whole source.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tradekit.config import StrategyConfig, TradekitSettings, load_strategy_configs
from tradekit.domain import Candle, Fill, Order, Position
from tradekit.events import Event
from tradekit.runtime.live import LiveRunSummary, replay_source, run_live
from tradekit.services.journal.store import SqlJournal
from tradekit.testing import settings_from_dict

REPO = Path(__file__).resolve().parents[2]
BARS = 120
"""Candles per series: the bundled strategies trade six series, 720 candles in all."""
LATE_CUT = 550
"""By then every bundled strategy has published events since its first candle and one
holds a position."""
EARLY_CUT = 60
"""Before three of the bundled strategies have published anything but ``StrategyLoaded``."""
LIFECYCLE = ("StrategyLoaded", "StrategyUnloaded")
pytestmark = pytest.mark.slow

RESULT_FIELDS = ("realized_pnl", "unrealized_pnl", "equity", "fees_paid", "open_positions")


class SourceDiedError(Exception):
    """Raised by a source to end a run as a kill would: the engine is not shut down."""


class RecordingJournal(SqlJournal):
    """A SQLite journal that also remembers the (strategy_id, seq) of every event recorded."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.recorded: list[tuple[str, int]] = []

    def record(self, events: Sequence[Event]) -> None:
        self.recorded.extend((event.strategy_id, event.seq) for event in events)
        super().record(events)


@dataclass(frozen=True)
class Outcome:
    """What a run leaves behind, per strategy: the journal's contents and the final results."""

    events: dict[str, list[dict[str, Any]]]
    fills: dict[str, list[Fill]]
    orders: dict[str, list[Order]]
    open_positions: dict[str, list[Position]]
    results: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Interrupted:
    """The interrupted run, what the journal held when it ended, and the restart."""

    summary: LiveRunSummary
    snapshot_seqs: dict[str, int]
    last_seqs: dict[str, int]
    open_at_cut: int
    restart_recorded: list[tuple[str, int]]
    outcome: Outcome


def settings() -> TradekitSettings:
    data: dict[str, Any] = json.loads((REPO / "config.json").read_text(encoding="utf-8"))
    data["storage"] = {"database_url": "sqlite://"}
    return settings_from_dict(data)


def bundled() -> list[StrategyConfig]:
    return load_strategy_configs(REPO / "strategies", settings())


def source() -> Iterator[Candle]:
    return iter(replay_source(bundled(), BARS, seed=7))


def dying_after(candles: Iterable[Candle], count: int) -> Iterator[Candle]:
    yield from itertools.islice(candles, count)
    raise SourceDiedError(f"killed after {count} candles")


def stopping_after(
    candles: Iterable[Candle], count: int, stop: threading.Event
) -> Iterator[Candle]:
    """Sets ``stop`` when candle ``count + 1`` is asked for: the run ends before processing it."""
    for number, candle in enumerate(candles):
        if number == count:
            stop.set()
        yield candle


def run(
    database: Path, candles: Iterable[Candle], stop: threading.Event | None = None
) -> tuple[LiveRunSummary, RecordingJournal]:
    with RecordingJournal(f"sqlite:///{database}") as journal:
        return run_live(settings(), bundled(), candles, journal=journal, stop=stop), journal


def outcome(database: Path, summary: LiveRunSummary) -> Outcome:
    with SqlJournal(f"sqlite:///{database}") as journal:
        ids = journal.strategy_ids()
        return Outcome(
            events={sid: [event.to_dict() for event in journal.events(sid)] for sid in ids},
            fills={sid: journal.fills(sid) for sid in ids},
            orders={sid: journal.orders(sid) for sid in ids},
            open_positions={sid: journal.open_positions(sid) for sid in ids},
            results={
                sid: {name: summary.report[sid][name] for name in RESULT_FIELDS}
                for sid in summary.report
            },
        )


def interrupted_then_restarted(database: Path, cut: int, *, clean: bool) -> Interrupted:
    if clean:
        stop = threading.Event()
        summary, _ = run(database, stopping_after(source(), cut, stop), stop)
    else:
        with pytest.raises(SourceDiedError):
            run(database, dying_after(source(), cut))
        summary = LiveRunSummary(cut, True, {}, None)
    with SqlJournal(f"sqlite:///{database}") as journal:
        ids = journal.strategy_ids()
        snapshots = {sid: journal.latest_snapshot(sid) for sid in ids}
        snapshot_seqs = {sid: stored.seq for sid, stored in snapshots.items() if stored}
        last_seqs = {sid: journal.last_seq(sid) for sid in ids}
        open_at_cut = sum(len(journal.open_positions(sid)) for sid in ids)
    restarted, journal = run(database, source())
    return Interrupted(
        summary,
        snapshot_seqs,
        last_seqs,
        open_at_cut,
        journal.recorded,
        outcome(database, restarted),
    )


def trading_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events that are not about the run starting or stopping, without their seq."""
    return [
        {key: value for key, value in event.items() if key != "seq"}
        for event in events
        if event["event_type"] not in LIFECYCLE
    ]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    database = tmp_path_factory.mktemp("whole") / "journal.db"
    summary, _ = run(database, source())
    assert not summary.stopped
    return outcome(database, summary)


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Interrupted:
    return interrupted_then_restarted(
        tmp_path_factory.mktemp("killed") / "journal.db", LATE_CUT, clean=False
    )


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Interrupted:
    return interrupted_then_restarted(
        tmp_path_factory.mktemp("stopped") / "journal.db", LATE_CUT, clean=True
    )


def assert_same_trading(found: Outcome, expected: Outcome) -> None:
    assert found.fills == expected.fills
    assert found.orders == expected.orders
    assert found.open_positions == expected.open_positions
    assert found.results == expected.results


class TestKilledBetweenTwoCandles:
    def test_the_cut_fell_mid_run_with_every_strategy_snapshotted_and_a_position_open(
        self, killed: Interrupted, uninterrupted: Outcome
    ) -> None:
        assert set(killed.snapshot_seqs) == set(uninterrupted.events)
        assert killed.open_at_cut > 0
        total = sum(len(events) for events in uninterrupted.events.values())
        assert 0 < sum(killed.last_seqs.values()) < total

    def test_the_restart_resumed_every_strategy_after_its_snapshot(
        self, killed: Interrupted
    ) -> None:
        first_recorded: dict[str, int] = {}
        for strategy_id, seq in killed.restart_recorded:
            first_recorded.setdefault(strategy_id, seq)
        assert set(first_recorded) == set(killed.snapshot_seqs)
        for strategy_id, snapshot_seq in killed.snapshot_seqs.items():
            assert first_recorded[strategy_id] == killed.last_seqs[strategy_id] + 1, strategy_id
            assert first_recorded[strategy_id] > snapshot_seq, strategy_id

    def test_every_event_is_the_uninterrupted_runs_with_the_same_seq(
        self, killed: Interrupted, uninterrupted: Outcome
    ) -> None:
        assert set(killed.outcome.events) == set(uninterrupted.events)
        for strategy_id, events in uninterrupted.events.items():
            assert killed.outcome.events[strategy_id] == events, strategy_id

    def test_fills_orders_positions_and_results_match(
        self, killed: Interrupted, uninterrupted: Outcome
    ) -> None:
        assert any(uninterrupted.fills.values()), "nothing traded: the comparison proves little"
        assert_same_trading(killed.outcome, uninterrupted)


class TestStoppedCleanly:
    def test_the_stop_ended_the_run_after_the_requested_candle(self, stopped: Interrupted) -> None:
        assert (stopped.summary.candles, stopped.summary.stopped) == (LATE_CUT, True)
        assert stopped.open_at_cut > 0

    def test_no_seq_is_lost_or_used_twice(
        self, stopped: Interrupted, uninterrupted: Outcome
    ) -> None:
        assert set(stopped.outcome.events) == set(uninterrupted.events)
        for strategy_id, events in stopped.outcome.events.items():
            seqs = [event["seq"] for event in events]
            assert seqs == list(range(1, len(seqs) + 1)), strategy_id

    def test_the_trading_events_are_the_uninterrupted_runs(
        self, stopped: Interrupted, uninterrupted: Outcome
    ) -> None:
        assert set(stopped.outcome.events) == set(uninterrupted.events)
        for strategy_id, events in uninterrupted.events.items():
            found = trading_events(stopped.outcome.events[strategy_id])
            assert found == trading_events(events), strategy_id

    def test_fills_orders_positions_and_results_match(
        self, stopped: Interrupted, uninterrupted: Outcome
    ) -> None:
        assert_same_trading(stopped.outcome, uninterrupted)


class TestStoppedBeforeSomeStrategiesPublished:
    def test_the_restart_loses_no_event_and_trades_as_the_uninterrupted_run(
        self, tmp_path: Path, uninterrupted: Outcome
    ) -> None:
        early = interrupted_then_restarted(tmp_path / "journal.db", EARLY_CUT, clean=True)
        for strategy_id, events in uninterrupted.events.items():
            found = trading_events(early.outcome.events[strategy_id])
            assert found == trading_events(events), strategy_id
        assert_same_trading(early.outcome, uninterrupted)
