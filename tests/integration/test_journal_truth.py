"""The journal tells the truth: seq is never reused, closed positions stay closed, a restart
after a clean shutdown is logged once, and snapshots hold state (not history) yet resume
exactly.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from ticker_strategies import ticker

from tradekit.config import (
    StrategyConfig,
    TradekitSettings,
    load_settings,
    load_strategy_configs,
)
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.data import synthetic_candles
from tradekit.domain import Candle
from tradekit.events import Event, PositionClosed, StrategyLoaded, StrategyUnloaded
from tradekit.insights.holdings import strategy_report
from tradekit.runtime.engine import Engine
from tradekit.runtime.live import replay_source, run_live
from tradekit.services.journal.store import SqlJournal
from tradekit.services.market.clock import ManualClock

BTC = "BTC/USDT"
ETH = "ETH/USDT"


class CountingJournal:
    """The real journal, counting what the engine hands it."""

    def __init__(self, journal: SqlJournal) -> None:
        self.inner = journal
        self.recorded: list[Event] = []
        self.snapshots: list[tuple[str, int]] = []

    def record(self, events: Sequence[Event]) -> None:
        self.recorded.extend(events)
        self.inner.record(events)

    def save_snapshot(self, strategy_id: str, seq: int, ts: Any, state: Any) -> None:
        self.snapshots.append((strategy_id, seq))
        self.inner.save_snapshot(strategy_id, seq, ts, state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'journal.db'}"


def settings() -> TradekitSettings:
    return TradekitSettings(_env_file=None)


def engine_on(journal: Any) -> Engine:
    return Engine(TradingOrchestratorFactory(SharedContainer(settings=settings())), journal=journal)


def candles(symbol: str = BTC, count: int = 60, seed: int = 3) -> list[Candle]:
    return synthetic_candles(symbol, "1h", count, seed=seed)


def seqs(journal: SqlJournal, strategy_id: str) -> list[int]:
    return [event.seq for event in journal.events(strategy_id)]


def lifecycle(journal: SqlJournal, strategy_id: str) -> list[str]:
    return [
        event.event_type
        for event in journal.events(strategy_id)
        if isinstance(event, StrategyLoaded | StrategyUnloaded)
    ]


def holder() -> StrategyConfig:
    """Buys on bar 3 and holds: never sells on a signal, stop far away."""
    return ticker("holder", every=3, exit_offset=None, exit={"stop_loss_pct": 50})


class TestSeqIsNeverReused:
    def test_unload_then_load_continues_seq_without_a_journal(self) -> None:
        factory = TradingOrchestratorFactory(SharedContainer(settings=settings()))
        published: list[Event] = []
        factory.shared.event_bus().subscribe(published.append)
        engine = Engine(factory)
        engine.load([holder()])
        for candle in candles(count=10):
            engine.on_candle(candle)
        engine.unload("holder")
        engine.load([holder()])
        numbers = [event.seq for event in published]
        assert numbers == list(range(1, len(numbers) + 1))
        assert isinstance(published[-1], StrategyLoaded)

    def test_unload_before_any_snapshot_then_load_stores_every_event(self, database: str) -> None:
        journal = CountingJournal(SqlJournal(database))
        engine = engine_on(journal)
        engine.load([holder()])
        engine.unload("holder")
        engine.load([holder()])
        for candle in candles(count=20):
            engine.on_candle(candle)
        engine.unload("holder", close_positions=True)
        engine.load([holder()])
        engine.shutdown()
        stored = journal.inner.events("holder")
        assert len(stored) == len(journal.recorded) > 6
        assert [event.seq for event in stored] == list(range(1, len(stored) + 1))

    def test_a_restart_continues_after_the_last_stored_seq_without_a_snapshot(
        self, database: str
    ) -> None:
        # The BTC strategy gets no candle: it has events (loaded, unloaded) but no snapshot
        # from the candle loop, and its next run must not number from 1 again.
        configs = [holder(), ticker("eth-only", symbols=[ETH])]
        for _ in range(2):
            with SqlJournal(database) as journal:
                run_live(settings(), configs, candles(ETH, count=5), journal=journal)
        with SqlJournal(database) as journal:
            assert seqs(journal, "holder") == [1, 2, 3, 4]
            assert lifecycle(journal, "holder") == [
                "StrategyLoaded",
                "StrategyUnloaded",
                "StrategyLoaded",
                "StrategyUnloaded",
            ]


class TestClosedPositionStaysClosed:
    def open_then_unload(self, database: str, *, through_factory: bool) -> SqlJournal:
        journal = SqlJournal(database)
        engine = engine_on(journal)
        engine.load([holder()])
        for candle in candles(count=10):
            engine.on_candle(candle)
        assert engine.factory.get("holder").position_lifecycle().open_count() == 1
        if through_factory:
            engine.factory.unload("holder", close_positions=True)
        else:
            engine.unload("holder", close_positions=True)
        return journal

    @pytest.mark.parametrize("through_factory", [False, True])
    def test_unload_with_close_leaves_no_position_in_the_journal(
        self, database: str, through_factory: bool
    ) -> None:
        journal = self.open_then_unload(database, through_factory=through_factory)
        with SqlJournal(database) as reader:  # only what was committed
            assert reader.open_positions("holder") == []
            snapshot = reader.latest_snapshot("holder")
            assert snapshot is not None
            assert snapshot.state["positions"]["positions"] == []
            assert snapshot.seq == reader.last_seq("holder")
            closed = [e for e in reader.events("holder") if isinstance(e, PositionClosed)]
            assert [event.reason for event in closed] == ["unload"]
        journal.close()

    def test_the_closed_position_does_not_come_back_on_restart(self, database: str) -> None:
        self.open_then_unload(database, through_factory=False).close()
        with SqlJournal(database) as journal:
            engine = engine_on(journal)
            engine.load([holder()])
            assert engine.factory.get("holder").position_lifecycle().open_count() == 0
            engine.shutdown()
            report = strategy_report(journal, "holder", None)
            assert report.open_positions == []
            assert report.closed == 1

    def test_after_shutdown_positions_and_snapshot_agree(self, database: str) -> None:
        with SqlJournal(database) as journal:
            summary = run_live(settings(), [holder()], candles(count=30), journal=journal)
            assert summary.report["holder"]["open_positions"] == 1
            snapshot = journal.latest_snapshot("holder")
            assert snapshot is not None
            held = [p["position"] for p in snapshot.state["positions"]["positions"]]
            stored = journal.open_positions("holder")
            assert [(p["symbol"], p["quantity"]) for p in held] == [
                (p.symbol, p.quantity) for p in stored
            ]
            assert snapshot.seq == journal.last_seq("holder")


class TestRestartAfterCleanShutdown:
    @pytest.mark.parametrize("second_source", ["same candles", "nothing new"])
    def test_each_session_logs_one_load_and_one_unload(
        self, database: str, second_source: str
    ) -> None:
        stream = candles(count=40)
        configs = [holder(), ticker("trader")]
        with SqlJournal(database) as journal:
            run_live(settings(), configs, stream, journal=journal)
        again = stream if second_source == "same candles" else []
        with SqlJournal(database) as journal:
            run_live(settings(), configs, again, journal=journal)
            for strategy_id in ("holder", "trader"):
                assert lifecycle(journal, strategy_id) == [
                    "StrategyLoaded",
                    "StrategyUnloaded",
                    "StrategyLoaded",
                    "StrategyUnloaded",
                ], strategy_id
                numbers = seqs(journal, strategy_id)
                assert numbers == list(range(1, len(numbers) + 1))


def journaled(journal: SqlJournal, strategy_id: str) -> list[tuple[int, str, str]]:
    return [
        (event.seq, event.event_type, json.dumps(event.to_dict()))
        for event in journal.events(strategy_id)
    ]


def managed() -> list[StrategyConfig]:
    """Strategies whose open positions change every bar: trailing stops, time stops, DCA."""
    return [
        ticker(
            "trailing",
            every=7,
            exit_offset=None,
            exit={"stop_loss_pct": 8, "trailing_activation_pct": 1, "trailing_distance_pct": 2},
        ),
        ticker("timed", every=5, exit_offset=None, exit={"stop_loss_pct": 20, "time_stop_bars": 9}),
        ticker("swing", every=6, exit_offset=4),
    ]


class TestSnapshotsHoldState:
    def test_a_holder_is_snapshotted_only_when_it_publishes(self, database: str) -> None:
        journal = CountingJournal(SqlJournal(database))
        engine = engine_on(journal)
        engine.load([holder()])
        touched_candles = 0
        for candle in candles(count=40):
            before = len(journal.recorded)
            engine.on_candle(candle)
            touched_candles += len(journal.recorded) > before
        holding = engine.factory.get("holder").position_lifecycle().open_count()
        assert holding == 1
        assert len(journal.snapshots) == touched_candles < 40
        engine.shutdown()
        journal.close()

    def test_a_snapshot_carries_no_trade_list(self, database: str) -> None:
        with SqlJournal(database) as journal:
            run_live(settings(), [ticker("trader")], candles(count=120), journal=journal)
            snapshot = journal.latest_snapshot("trader")
            assert snapshot is not None
            book = snapshot.state["positions"]
            closed = [e for e in journal.events("trader") if isinstance(e, PositionClosed)]
            assert "trades" not in book
            assert book["trade_count"] == len(closed) > 10
            assert len(json.dumps(snapshot.state)) < 3_000

    @pytest.mark.parametrize("stop_after", [17, 33, 50])
    def test_resume_from_an_older_snapshot_ends_as_an_uninterrupted_run(
        self, tmp_path: Path, stop_after: int
    ) -> None:
        stream = candles(count=90, seed=11)
        with SqlJournal(f"sqlite:///{tmp_path / 'whole.db'}") as journal:
            run_live(settings(), managed(), stream, journal=journal)
            expected = {
                config.strategy_id: journaled(journal, config.strategy_id) for config in managed()
            }
        crashed = f"sqlite:///{tmp_path / 'crashed.db'}"
        journal = SqlJournal(crashed)
        engine = engine_on(journal)
        clock = ManualClock(stream[0].ts)  # candle time, as run_live stamps a replay
        engine.factory.shared.clock.override(clock)
        engine.load(managed())
        for candle in stream[:stop_after]:
            clock.set(candle.close_ts)
            engine.on_candle(candle)
        journal.close()  # the process dies here: no shutdown, no final snapshot
        with SqlJournal(crashed) as journal:
            run_live(settings(), managed(), stream, journal=journal)
            for strategy_id, rows in expected.items():
                assert journaled(journal, strategy_id) == rows, strategy_id


class TestBoundedHistory:
    def test_a_factory_bounds_equity_points_and_trades_kept(self) -> None:
        factory = TradingOrchestratorFactory(
            SharedContainer(settings=settings()), max_equity_points=25, max_trades_kept=3
        )
        engine = Engine(factory)
        engine.load([ticker("trader")])
        for candle in candles(count=120):
            engine.on_candle(candle)
        positions = factory.get("trader").position_lifecycle()
        assert len(positions.equity_curve) == 25
        assert positions.equity_curve[-1][0] == candles(count=120)[-1].ts
        assert len(positions.trades) == 3
        assert positions.trade_count > 10
        assert engine.report()["trader"]["trades"] == positions.trade_count

    def test_run_live_bounds_each_strategys_history(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The package exports the function under the module's name: reach the module itself.
        bootstrap_module = importlib.import_module("tradekit.runtime.bootstrap")
        monkeypatch.setattr(bootstrap_module, "LIVE_EQUITY_POINTS", 10)
        monkeypatch.setattr(bootstrap_module, "LIVE_TRADES_KEPT", 2)
        factories: list[TradingOrchestratorFactory] = []

        class Recorded(TradingOrchestratorFactory):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                factories.append(self)

        monkeypatch.setattr(bootstrap_module, "TradingOrchestratorFactory", Recorded)
        seen: list[tuple[int, int, int]] = []

        def source() -> Iterator[Candle]:
            yield from candles(count=120)
            positions = factories[0].get("trader").position_lifecycle()
            seen.append((len(positions.equity_curve), len(positions.trades), positions.trade_count))

        summary = run_live(settings(), [ticker("trader")], source())
        assert seen == [(10, 2, summary.report["trader"]["trades"])]
        assert summary.report["trader"]["trades"] > 10


class TestReportAgreesWithTheRun:
    def test_realized_pnl_and_fees_equal_the_engines_with_partial_exits_on_open_positions(
        self, tmp_path: Path
    ) -> None:
        """The bundled strategies hold positions that took partial profits when the run ends:
        the journal's report counts those, as the running strategy does."""
        root = Path(__file__).resolve().parents[2]
        bundled = load_settings(root / "config.json", env_file=None)
        configs = load_strategy_configs(root / "strategies", bundled)
        with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as journal:
            summary = run_live(bundled, configs, replay_source(configs, 300, 7), journal=journal)
            reports = {
                strategy_id: strategy_report(journal, strategy_id, None)
                for strategy_id in summary.report
            }
        partial_while_open = [
            strategy_id
            for strategy_id, entry in summary.report.items()
            if entry["open_positions"] and reports[strategy_id].realized_pnl != 0.0
        ]
        assert partial_while_open, "no strategy realized anything on a position still open"
        for strategy_id, entry in summary.report.items():
            report = reports[strategy_id]
            assert report.realized_pnl == pytest.approx(entry["realized_pnl"], abs=1e-9)
            assert report.fees == pytest.approx(entry["fees_paid"], abs=1e-9)
            assert len(report.open_positions) == entry["open_positions"]

    def test_unrealized_pnl_and_equity_at_the_last_price_equal_the_engines(
        self, tmp_path: Path
    ) -> None:
        """Open positions valued at the snapshot's last prices give the running strategy's
        unrealized P&L, and capital + realized + unrealized its equity."""
        root = Path(__file__).resolve().parents[2]
        bundled = load_settings(root / "config.json", env_file=None)
        configs = load_strategy_configs(root / "strategies", bundled)
        with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as journal:
            summary = run_live(bundled, configs, replay_source(configs, 300, 7), journal=journal)
            registry = {info.strategy_id: info for info in journal.strategies()}
            reports = {
                strategy_id: strategy_report(journal, strategy_id, registry[strategy_id])
                for strategy_id in summary.report
            }
        assert any(report.unrealized_pnl != 0.0 for report in reports.values())
        for strategy_id, entry in summary.report.items():
            report = reports[strategy_id]
            assert report.unrealized_pnl == pytest.approx(entry["unrealized_pnl"], abs=1e-9)
            assert report.equity == pytest.approx(entry["equity"], abs=1e-6)
