"""The registry is the truth, and a running paper run follows it.

``run_live`` runs on a thread over a source the test feeds; registry changes
go through the ``tradekit strategies`` commands, as from another process. The
test waits on the journal's own notifications (a change settled, a commit),
never on sleeps, and checks the outcome in the journal: which events came
after the change's ``StrategyControlled`` event.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ticker_strategies import ticker_data
from typer.testing import CliRunner

from tradekit.cli import app
from tradekit.config import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Candle
from tradekit.errors import ExchangeError
from tradekit.events import (
    Event,
    OrderCancelled,
    OrderFilled,
    PositionClosed,
    PositionOpened,
    SignalGenerated,
    StrategyControlled,
    StrategyLoaded,
    StrategyReloaded,
    StrategyUnloaded,
)
from tradekit.runtime.control import RunSelection
from tradekit.runtime.live import LiveRunSummary, run_live
from tradekit.runtime.warmup import warmup_bars
from tradekit.services.journal.store import SqlJournal, StrategyStatus
from tradekit.testing import (
    FakeCandleSource,
    FakeExchange,
    settings_from_dict,
    strategy_config_from_dict,
)

WAIT_SECONDS = 20.0
"""How long a condition may take before the test fails (a hung run, not a slow one)."""


class NotifyingJournal(SqlJournal):
    """The run's journal; it wakes the test up after every commit and settled change."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.changed = threading.Condition()
        self.commits = 0
        """Commits made through this journal: by its own run only, whatever the file held."""

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def commit(self) -> None:
        super().commit()
        self.commits += 1
        self._notify()

    def settle_change(self, change_id: int, outcome: str, applied_at: datetime) -> None:
        super().settle_change(change_id, outcome, applied_at)
        self._notify()


class FedSource:
    """Candles the test hands over batch by batch; the run waits for them in between."""

    def __init__(self, closes: Sequence[float]) -> None:
        self.candles = list(FakeCandleSource.from_closes(closes).stream())
        self._queue: queue.Queue[Candle | None] = queue.Queue()
        self._given = 0

    def give(self, count: int) -> Candle:
        """Hand over the next ``count`` candles; returns the last one."""
        for candle in self.candles[self._given : self._given + count]:
            self._queue.put(candle)
        self._given += count
        return self.candles[self._given - 1]

    def end(self) -> None:
        self._queue.put(None)

    def __iter__(self) -> Iterator[Candle]:
        while (candle := self._queue.get()) is not None:
            yield candle


class RoutedSource(FedSource):
    """A fed source that says which series it delivers, as a replay or the live feeds do."""

    def serves(self, symbol: str, timeframe: str) -> bool:
        return any((c.symbol, c.timeframe) == (symbol, timeframe) for c in self.candles)


class FollowingSource(RoutedSource):
    """A routed source that starts ETH/USDT 1h when asked, as the live ccxt feeds start a new
    series: it returns the history asked for, then the test hands over the live candles.
    Any other symbol is one the venue does not list."""

    def __init__(self, closes: Sequence[float]) -> None:
        super().__init__(closes)
        eth = FakeCandleSource.from_closes([2000.0] * len(closes), symbol="ETH/USDT").stream()
        self.eth = list(eth)
        self.followed: list[tuple[str, str, int]] = []

    def serves(self, symbol: str, timeframe: str) -> bool:
        return super().serves(symbol, timeframe) or any(
            (symbol, timeframe) == followed[:2] for followed in self.followed
        )

    def follow(self, symbol: str, timeframe: str, warmup_bars: int) -> list[Candle]:
        if symbol != "ETH/USDT":
            raise ExchangeError(f"venue {symbol} {timeframe}: BadSymbol: no market {symbol}")
        self.followed.append((symbol, timeframe, warmup_bars))
        return self.eth[self.ETH_LIVE - warmup_bars : self.ETH_LIVE]

    ETH_LIVE = 20
    """The index of the first ETH candle after the history."""

    def give_eth(self, count: int) -> list[Candle]:
        given = self.eth[self.ETH_LIVE : self.ETH_LIVE + count]
        for candle in given:
            self._queue.put(candle)
        return given


def sma_data(strategy_id: str, symbol: str) -> dict[str, Any]:
    """Buys on every candle its sma(5) has a value for: one signal per candle once warm."""
    return {
        "strategy_id": strategy_id,
        "symbols": [symbol],
        "timeframe": "1h",
        "indicators": [{"name": "sma", "params": {"length": 5}}],
        "analyzers": [
            {
                "type": "threshold",
                "params": {"source": "sma", "above": 0, "mode": "level", "above_direction": "long"},
            }
        ],
        "exit": {"stop_loss_pct": 50},
    }


def sma_config(strategy_id: str) -> StrategyConfig:
    return strategy_config_from_dict(sma_data(strategy_id, "ETH/USDT"))


def settings(**sections: Any) -> TradekitSettings:
    return settings_from_dict(
        {"exchange": {"kind": "paper", "fee_bps": 0.0, "slippage_bps": 0.0}, **sections}
    )


def trader_data(strategy_id: str, **options: Any) -> dict[str, Any]:
    """Buys on every even bar, sells on the odd bar after."""
    return ticker_data(strategy_id, every=2, exit_offset=1, **options)


def holder_data(strategy_id: str, **options: Any) -> dict[str, Any]:
    """Buys on bar 0 and holds: only its stop (5%) would sell."""
    return ticker_data(strategy_id, every=1000, exit_offset=None, **options)


def write(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / f"{data['strategy_id']}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


class Run:
    """A paper run driven by the registry, on a thread; one per test."""

    def __init__(
        self,
        url: str,
        seed: Sequence[StrategyConfig],
        closes: Sequence[float],
        run_settings: TradekitSettings | None = None,
        selection: RunSelection | None = None,
        exchange: FakeExchange | None = None,
        source: type[FedSource] = FedSource,
        replay_clock: bool = True,
    ) -> None:
        self.url = url
        self.exchange = exchange
        self.replay_clock = replay_clock
        self.source = source(closes)
        self.journal = NotifyingJournal(url)
        self.summary: LiveRunSummary | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(run_settings or settings(), list(seed), selection or RunSelection()),
        )
        self._thread.start()

    def _run(
        self, run_settings: TradekitSettings, seed: list[StrategyConfig], selection: RunSelection
    ) -> None:
        try:
            self.summary = run_live(
                run_settings,
                seed,
                self.source,
                journal=self.journal,
                exchange=self.exchange,
                replay_clock=self.replay_clock,
                registry=selection,
            )
        except BaseException as exc:  # reported by finish()
            self.error = exc
        finally:
            self.journal._notify()

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        with self.journal.changed:
            met = self.journal.changed.wait_for(
                lambda: condition() or self.error is not None, timeout=WAIT_SECONDS
            )
        assert self.error is None, f"the run failed: {self.error!r}"
        assert met, f"timed out waiting for {what}"

    def started(self) -> None:
        """Wait until the run took the registry in and committed its first candle.

        Counted on this run's own commits: a database a previous run wrote already
        holds events, so looking at them would not tell that this run started.
        """
        self.wait_for(lambda: self.journal.commits > 0, "the run to start")

    def settled(self, change_id: int) -> str:
        """Wait until the run applied change ``change_id``; its outcome."""

        def outcome() -> str | None:
            changes = self.journal.registry_changes(after_id=change_id - 1)
            return changes[0].outcome if changes and changes[0].applied_at else None

        self.wait_for(lambda: outcome() is not None, f"change #{change_id} to be applied")
        found = outcome()
        assert found is not None
        return found

    def finish(self) -> LiveRunSummary:
        self.source.end()
        self._thread.join(WAIT_SECONDS)
        assert not self._thread.is_alive(), "the run did not end"
        self.journal.close()
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


def cli(args: list[str], url: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(app, [*args, "--db", url])
    assert result.exit_code == 0, result.output
    return result.output


def change_id(output: str) -> int:
    return int(output.split("#", 1)[1].split(")", 1)[0].split(",", 1)[0])


def events_of(url: str, strategy_id: str) -> list[Event]:
    with SqlJournal(url, read_only=True) as journal:
        return journal.events(strategy_id)


def after_control(events: list[Event], action: str) -> list[Event]:
    """The events published after the strategy's ``StrategyControlled`` for ``action``."""
    marks = [e.seq for e in events if isinstance(e, StrategyControlled) and e.action == action]
    assert marks, f"no StrategyControlled({action}) in {[e.event_type for e in events]}"
    return [e for e in events if e.seq > marks[0]]


def opened_positions(run: Run, strategy_id: str) -> bool:
    return bool(run.journal.open_positions(strategy_id))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'journal.db'}"


FLAT = [100.0] * 40


class TestRunningRunFollowsTheRegistry:
    def test_add_starts_the_new_strategy(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = Run(url, [strategy_config_from_dict(trader_data("a"))], FLAT)
        run.source.give(10)
        run.started()
        added = change_id(
            cli(
                ["strategies", "add", str(write(tmp_path, trader_data("b")))],
                url,
                tmp_path,
                monkeypatch,
            )
        )
        assert run.settled(added) == "applied"
        run.source.give(10)
        summary = run.finish()

        after = after_control(events_of(url, "b"), "add")
        assert any(isinstance(e, PositionOpened) for e in after)
        assert summary.report["b"]["candles_processed"] > 0
        loaded = [e for e in events_of(url, "b") if isinstance(e, StrategyLoaded)]
        assert len(loaded) == 1

    def test_disable_stops_entries_of_the_running_strategy(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = Run(url, [strategy_config_from_dict(trader_data("a"))], FLAT)
        last = run.source.give(5)  # bar 4 decided a buy, pending until bar 5's open
        run.started()

        def processed_the_last_candle() -> bool:
            snapshot = run.journal.latest_snapshot("a")
            return (
                snapshot is not None
                and snapshot.state["last_ts"].get("BTC/USDT") == last.ts.isoformat()
            )

        # Disable only once bar 4 ran: its buy is then pending, and no later bar ran yet.
        run.wait_for(processed_the_last_candle, "bar 4 to be processed")
        disabled = change_id(cli(["strategies", "disable", "a"], url, tmp_path, monkeypatch))
        assert run.settled(disabled) == "applied"
        run.source.give(20)
        summary = run.finish()

        events = events_of(url, "a")
        control = next(e for e in events if isinstance(e, StrategyControlled))
        assert control.by
        assert control.action == "disable"
        after = after_control(events, "disable")
        assert not any(isinstance(e, SignalGenerated) for e in after)
        # The buy pending at the disable is cancelled: nothing fills after the change.
        assert not any(isinstance(e, (PositionOpened, OrderFilled)) for e in after)
        # Cancelled while the change is applied, so journaled just before its record.
        cancelled = [e for e in events if isinstance(e, OrderCancelled)]
        assert [(e.side.value, e.symbol) for e in cancelled] == [("buy", "BTC/USDT")]
        assert summary.report["a"]["state"] == "disabled"
        with SqlJournal(url, read_only=True) as journal:
            assert journal.registered("a").status is StrategyStatus.DISABLED

    def test_enable_after_disable_trades_again(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = Run(url, [strategy_config_from_dict(trader_data("a"))], FLAT)
        run.source.give(4)
        run.started()
        assert (
            run.settled(change_id(cli(["strategies", "disable", "a"], url, tmp_path, monkeypatch)))
            == "applied"
        )
        run.source.give(6)
        assert (
            run.settled(change_id(cli(["strategies", "enable", "a"], url, tmp_path, monkeypatch)))
            == "applied"
        )
        run.source.give(10)
        run.finish()

        assert any(
            isinstance(e, PositionOpened) for e in after_control(events_of(url, "a"), "enable")
        )

    def test_update_reloads_and_keeps_the_open_position_and_its_stop(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = Run(url, [strategy_config_from_dict(holder_data("a"))], FLAT)
        run.source.give(3)
        run.started()
        run.wait_for(lambda: opened_positions(run, "a"), "the position to open")
        [before] = run.journal.open_positions("a")
        changed = holder_data("a", exit={"stop_loss_pct": 2, "take_profit_pct": 3})
        updated = change_id(
            cli(["strategies", "update", str(write(tmp_path, changed))], url, tmp_path, monkeypatch)
        )
        assert run.settled(updated) == "applied"
        run.source.give(5)
        summary = run.finish()

        with SqlJournal(url, read_only=True) as journal:
            [after] = journal.open_positions("a")
            assert json.loads(journal.registered("a").config_json)["exit"]["stop_loss_pct"] == 2
        assert after.position_id == before.position_id
        assert (after.stop_loss, after.take_profit) == (before.stop_loss, before.take_profit)
        assert any(isinstance(e, StrategyReloaded) for e in events_of(url, "a"))
        assert summary.report["a"]["open_positions"] == 1

    def test_remove_with_close_closes_at_market_then_removes(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = Run(url, [strategy_config_from_dict(holder_data("a"))], FLAT)
        run.source.give(3)
        run.started()
        run.wait_for(lambda: opened_positions(run, "a"), "the position to open")
        removed = change_id(
            cli(["strategies", "remove", "a", "--close"], url, tmp_path, monkeypatch)
        )
        assert run.settled(removed) == "applied"
        run.source.give(5)
        summary = run.finish()

        events = events_of(url, "a")
        closed = [e for e in events if isinstance(e, PositionClosed)]
        assert [e.reason for e in closed] == ["operator"]
        assert isinstance(events[-1], StrategyUnloaded)
        assert "a" not in summary.report
        with SqlJournal(url, read_only=True) as journal:
            assert journal.registered("a").status is StrategyStatus.REMOVED
            assert journal.open_positions("a") == []

    def test_the_run_refuses_a_remove_while_the_strategy_holds_a_position(
        self, url: str, tmp_path: Path
    ) -> None:
        """The CLI checks the journal; the run checks again, with what it really holds."""
        run = Run(url, [strategy_config_from_dict(holder_data("a"))], FLAT)
        run.source.give(3)
        run.started()
        run.wait_for(lambda: opened_positions(run, "a"), "the position to open")
        asked = run.journal.request_change("a", "remove", "api")
        outcome = run.settled(asked)
        summary = run.finish()

        assert outcome.startswith("refused: the strategy holds 1 open position")
        assert summary.report["a"]["open_positions"] == 1
        with SqlJournal(url, read_only=True) as journal:
            assert journal.registered("a").status is StrategyStatus.ACTIVE

    def test_a_start_beyond_max_concurrent_strategies_is_refused_and_says_why(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = Run(
            url,
            [strategy_config_from_dict(trader_data("a"))],
            FLAT,
            settings(engine={"max_concurrent_strategies": 1}),
        )
        run.source.give(2)
        run.started()
        added = change_id(
            cli(
                ["strategies", "add", str(write(tmp_path, trader_data("b")))],
                url,
                tmp_path,
                monkeypatch,
            )
        )
        outcome = run.settled(added)
        summary = run.finish()

        assert "max_concurrent_strategies = 1" in outcome
        assert "b" not in summary.report
        listed = cli(["strategies", "list"], url, tmp_path, monkeypatch)
        assert "max_concurrent_strategies" in listed
        with SqlJournal(url, read_only=True) as journal:
            assert journal.registered("b").status is StrategyStatus.DISABLED


RISING = [100.0 + index for index in range(40)]
# The lifecycle events of a run on live candles are stamped with the wall clock; every other
# event carries its candle's time, so two runs making the same changes at the same candles
# journal them alike.
WALL_CLOCK_STAMPED = frozenset(
    {"StrategyLoaded", "StrategyReloaded", "StrategyControlled", "StrategyUnloaded"}
)


def trading_events(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every strategy's events (type, seq, payload), without wall-clock times."""
    with SqlJournal(url, read_only=True) as journal:
        found = {
            info.strategy_id: journal.events(info.strategy_id) for info in journal.strategies()
        }
    return {
        strategy_id: [
            {
                name: value
                for name, value in event.to_dict().items()
                if name != "ts" or event.event_type not in WALL_CLOCK_STAMPED
            }
            for event in events
        ]
        for strategy_id, events in found.items()
    }


def close_while_a_close_is_pending(
    url: str, folder: Path, monkeypatch: pytest.MonkeyPatch, *, replay_clock: bool
) -> Run:
    """Bots "a" and "b" buy on bar 0, fill on bar 1's open and decide their exit on bar 1 (a
    paper fill waits for bar 2's open); then "a" is removed and "b" disabled, both --close."""
    seed = [strategy_config_from_dict(trader_data(sid)) for sid in ("a", "b")]
    run = Run(url, seed, RISING, replay_clock=replay_clock)
    run.source.give(2)
    run.wait_for(
        lambda: opened_positions(run, "a") and opened_positions(run, "b"), "the positions to open"
    )
    for arguments in (["remove", "a", "--close"], ["disable", "b", "--close"]):
        asked = change_id(cli(["strategies", *arguments], url, folder, monkeypatch))
        # Applied while the run waits: no other candle has come.
        assert run.settled(asked) == "applied"
    return run


class TestOperatorCloseAtMarket:
    def test_a_close_pending_at_the_paper_exchange_is_replaced_by_a_close_now(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = close_while_a_close_is_pending(url, tmp_path, monkeypatch, replay_clock=False)
        run.source.give(3)
        summary = run.finish()

        bar_1 = run.source.candles[1]
        for strategy_id in ("a", "b"):
            events = events_of(url, strategy_id)
            [cancelled] = [e for e in events if isinstance(e, OrderCancelled)]
            assert cancelled.side == "sell"
            assert cancelled.reason == "replaced by a close at market (operator)"
            [closed] = [e for e in events if isinstance(e, PositionClosed)]
            assert (closed.reason, closed.exit_price) == ("operator", bar_1.close)
            assert closed.ts == bar_1.close_ts
        assert "a" not in summary.report
        assert summary.report["b"]["open_positions"] == 0
        with SqlJournal(url, read_only=True) as journal:
            assert journal.registered("a").status is StrategyStatus.REMOVED
            assert journal.registered("b").status is StrategyStatus.DISABLED
            assert journal.open_positions("a") == journal.open_positions("b") == []

    def test_on_live_candles_it_journals_as_a_replay_making_it_at_the_same_candle(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        journals = {}
        for name, replay_clock in (("live", False), ("replay", True)):
            folder = tmp_path / name
            folder.mkdir()
            url = f"sqlite:///{folder / 'journal.db'}"
            run = close_while_a_close_is_pending(
                url, folder, monkeypatch, replay_clock=replay_clock
            )
            run.source.give(5)
            run.finish()
            journals[name] = trading_events(url)

        assert set(journals["live"]) == {"a", "b"}
        assert journals["live"] == journals["replay"]


class TestChangesNeedingSeriesTheRunLacks:
    def test_an_add_on_a_series_the_source_lacks_is_refused_and_says_why(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = Run(url, [strategy_config_from_dict(trader_data("a"))], FLAT, source=RoutedSource)
        run.source.give(2)
        run.started()
        eth = write(tmp_path, trader_data("eth", symbols=["ETH/USDT"]))
        refused = run.settled(
            change_id(cli(["strategies", "add", str(eth)], url, tmp_path, monkeypatch))
        )
        btc = write(tmp_path, trader_data("btc"))
        applied = run.settled(
            change_id(cli(["strategies", "add", str(btc)], url, tmp_path, monkeypatch))
        )
        run.source.give(4)
        summary = run.finish()

        assert refused.startswith("refused: no candles for ETH/USDT 1h in this run")
        assert "restart the run" in refused
        assert applied == "applied"
        assert "eth" not in summary.report
        assert summary.report["btc"]["candles_processed"] > 0
        with SqlJournal(url, read_only=True) as journal:
            assert journal.registered("eth").status is StrategyStatus.DISABLED
            assert journal.registered("btc").status is StrategyStatus.ACTIVE
        listed = cli(["strategies", "list"], url, tmp_path, monkeypatch)
        assert "no candles for ETH/USDT 1h" in listed

    def test_an_update_to_a_series_the_source_lacks_keeps_the_running_config(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = Run(url, [strategy_config_from_dict(trader_data("a"))], FLAT, source=RoutedSource)
        run.source.give(2)
        run.started()
        moved = write(tmp_path, trader_data("a", symbols=["ETH/USDT"]))
        outcome = run.settled(
            change_id(cli(["strategies", "update", str(moved)], url, tmp_path, monkeypatch))
        )
        run.source.give(4)
        summary = run.finish()

        assert outcome.startswith("refused: no candles for ETH/USDT 1h in this run")
        assert summary.report["a"]["candles_processed"] == 6
        with SqlJournal(url, read_only=True) as journal:
            assert journal.registered("a").status is StrategyStatus.ACTIVE

    def test_a_refused_update_puts_the_running_config_back_in_the_registry(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        running = trader_data("a", name="on btc")
        run = Run(url, [strategy_config_from_dict(running)], FLAT, source=RoutedSource)
        run.source.give(2)
        run.started()
        moved = write(tmp_path, trader_data("a", name="on eth", symbols=["ETH/USDT"]))
        outcome = run.settled(
            change_id(cli(["strategies", "update", str(moved)], url, tmp_path, monkeypatch))
        )
        run.source.give(2)
        run.finish()

        assert outcome.startswith("refused: no candles for ETH/USDT 1h in this run")
        assert outcome.endswith("; the registry holds the config this run runs again")
        with SqlJournal(url, read_only=True) as journal:
            info = journal.registered("a")
        assert info.name == "on btc"
        assert json.loads(info.config_json)["symbols"] == ["BTC/USDT"]
        listed = cli(["strategies", "list"], url, tmp_path, monkeypatch)
        assert "on btc" in listed
        assert "ETH/USDT" not in listed.split("no candles", 1)[0]


class TestChangesNeedingSeriesTheRunCanFollow:
    def test_an_update_onto_a_new_series_follows_it_and_trades_it_warm_from_its_first_candle(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # On BTC it has no sma(5) yet after 2 candles: it holds nothing when it moves.
        seed = [strategy_config_from_dict(sma_data("a", "BTC/USDT"))]
        run = Run(url, seed, FLAT, source=FollowingSource)
        source = run.source
        assert isinstance(source, FollowingSource)
        source.give(2)
        run.started()
        moved = write(tmp_path, sma_data("a", "ETH/USDT"))
        outcome = run.settled(
            change_id(cli(["strategies", "update", str(moved)], url, tmp_path, monkeypatch))
        )
        live = source.give_eth(2)
        summary = run.finish()

        assert outcome == "applied"
        assert source.followed == [("ETH/USDT", "1h", warmup_bars(sma_config("a")))]
        after = after_control(events_of(url, "a"), "update")
        signals = [e.ts for e in after if isinstance(e, SignalGenerated)]
        assert signals == [candle.close_ts for candle in live]
        opened = [e.symbol for e in after if isinstance(e, PositionOpened)]
        assert opened == ["ETH/USDT"]
        assert summary.report["a"]["state"] == "active"
        opened = [e.symbol for e in after if isinstance(e, PositionOpened)]
        assert opened == ["ETH/USDT"]
        assert summary.report["a"]["state"] == "active"

    def test_a_series_the_venue_cannot_start_refuses_the_update_and_keeps_the_running_config(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run = Run(url, [strategy_config_from_dict(trader_data("a"))], FLAT, source=FollowingSource)
        run.source.give(2)
        run.started()
        moved = write(tmp_path, sma_data("a", "DOGE/USDT"))
        outcome = run.settled(
            change_id(cli(["strategies", "update", str(moved)], url, tmp_path, monkeypatch))
        )
        run.source.give(2)
        summary = run.finish()

        assert outcome == (
            "refused: no candles for DOGE/USDT 1h: venue DOGE/USDT 1h: BadSymbol: no market "
            "DOGE/USDT; the registry holds the config this run runs again"
        )
        assert summary.report["a"]["candles_processed"] == 4
        with SqlJournal(url, read_only=True) as journal:
            info = journal.registered("a")
        assert json.loads(info.config_json)["symbols"] == ["BTC/USDT"]
        assert info.status is StrategyStatus.ACTIVE


class TestQuarantineInTheRegistry:
    def test_a_quarantine_is_written_back_survives_a_restart_and_resume_lifts_it(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        failing = FakeExchange()
        failing.fail_next_submit()
        quarantining = settings(engine={"failures_before_quarantine": 1})
        seed = [strategy_config_from_dict(trader_data("a"))]
        run = Run(url, seed, FLAT, quarantining, exchange=failing)
        run.source.give(8)
        run.started()
        run.wait_for(
            lambda: run.journal.registered("a").status is StrategyStatus.QUARANTINED,
            "the quarantine to reach the registry",
        )
        run.finish()

        again = Run(url, seed, FLAT, quarantining)
        again.source.give(2)
        again.started()
        resumed = change_id(cli(["strategies", "resume", "a"], url, tmp_path, monkeypatch))
        assert again.settled(resumed) == "applied"
        again.source.give(6)
        summary = again.finish()

        events = events_of(url, "a")
        restarted = next(e.seq for e in reversed(events) if isinstance(e, StrategyLoaded))
        resume_seq = next(e.seq for e in events if isinstance(e, StrategyControlled))
        between = [e for e in events if restarted < e.seq < resume_seq]
        assert not any(isinstance(e, PositionOpened) for e in between)
        assert any(isinstance(e, PositionOpened) for e in after_control(events, "resume"))
        assert summary.report["a"]["state"] == "active"


class TestRegistryIsTheTruth:
    def test_a_remove_with_close_asked_while_no_run_went_is_done_by_the_next_run(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        seed = [strategy_config_from_dict(holder_data("a"))]
        run = Run(url, seed, FLAT)
        run.source.give(3)
        run.started()
        run.wait_for(lambda: opened_positions(run, "a"), "the position to open")
        run.finish()
        asked = change_id(cli(["strategies", "remove", "a", "--close"], url, tmp_path, monkeypatch))

        again = Run(url, seed, FLAT)
        again.source.give(3)
        assert again.settled(asked) == "applied"
        again.finish()

        closed = [e for e in events_of(url, "a") if isinstance(e, PositionClosed)]
        assert [e.reason for e in closed] == ["operator"]
        with SqlJournal(url, read_only=True) as journal:
            assert journal.registered("a").status is StrategyStatus.REMOVED

    def test_a_new_database_is_seeded_and_the_registry_wins_afterwards(self, url: str) -> None:
        first = Run(url, [strategy_config_from_dict(trader_data("a"))], FLAT)
        first.source.give(3)
        first.started()
        first.finish()
        # The files now say something else; the registry still says "a" only.
        second = Run(url, [strategy_config_from_dict(trader_data("other"))], FLAT)
        second.source.give(3)
        second.started()
        summary = second.finish()

        assert list(summary.report) == ["a"]
        with SqlJournal(url, read_only=True) as journal:
            assert [info.strategy_id for info in journal.strategies()] == ["a"]

    def test_only_and_symbols_narrow_a_run(self, url: str) -> None:
        seed = [
            strategy_config_from_dict(trader_data("a")),
            strategy_config_from_dict(trader_data("b")),
            strategy_config_from_dict(trader_data("c", symbols=["ETH/USDT", "BTC/USDT"])),
        ]
        run = Run(url, seed, FLAT, selection=RunSelection(only=frozenset({"a", "c"})))
        run.source.give(2)
        run.started()
        summary = run.finish()
        assert sorted(summary.report) == ["a", "c"]

        run = Run(url, seed, FLAT, selection=RunSelection(symbols=frozenset({"ETH/USDT"})))
        run.source.give(2)
        summary = run.finish()
        assert list(summary.report) == ["c"]
        with SqlJournal(url, read_only=True) as journal:
            # Narrowing a run never changes the registry.
            assert {info.status for info in journal.strategies()} == {StrategyStatus.ACTIVE}


class TestRunCommand:
    def test_run_never_brings_a_removed_strategy_back(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        folder = tmp_path / "strategies"
        folder.mkdir()
        write(folder, trader_data("a"))
        write(folder, trader_data("b"))
        run = ["run", "--bars", "5", "--strategies", str(folder)]
        cli(run, url, tmp_path, monkeypatch)
        cli(["strategies", "remove", "b"], url, tmp_path, monkeypatch)
        output = cli(run, url, tmp_path, monkeypatch)

        assert "b " not in output.split("strategies", 1)[1]
        with SqlJournal(url, read_only=True) as journal:
            assert journal.registered("b").status is StrategyStatus.REMOVED
            assert journal.registered("a").status is StrategyStatus.ACTIVE
        b_loaded = [e for e in events_of(url, "b") if isinstance(e, StrategyLoaded)]
        a_loaded = [e for e in events_of(url, "a") if isinstance(e, StrategyLoaded)]
        assert (len(b_loaded), len(a_loaded)) == (1, 2)

    def test_only_names_the_strategies_a_run_takes(
        self, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        folder = tmp_path / "strategies"
        folder.mkdir()
        write(folder, trader_data("a"))
        write(folder, trader_data("b", symbols=["ETH/USDT"]))
        cli(
            ["run", "--bars", "5", "--strategies", str(folder), "--symbols", "ETH/USDT"],
            url,
            tmp_path,
            monkeypatch,
        )

        assert events_of(url, "a") == []
        assert events_of(url, "b")
