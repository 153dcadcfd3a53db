"""A paper run on the fake venue's live candles starts following a series first needed by a
bot added while it runs: warm-up history, then each closed candle once, in order; a symbol
the venue does not list refuses the add and the run goes on.

The run is ``run_live`` on a thread over the real ccxt feeds; the bot is added through the
``tradekit strategies add`` command function, as from another process. The test waits on
the run's journal (a commit, a settled change), never on sleeps.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_binance import FakeBinance, Kline, flat_klines

from tradekit.cli.strategies_commands import add_strategy
from tradekit.data.ccxt_feeds import CcxtLiveFeeds
from tradekit.events import PositionOpened, SignalGenerated
from tradekit.runtime.control import RunSelection
from tradekit.runtime.live import LiveRunSummary, run_live
from tradekit.runtime.live_feeds import live_feeds
from tradekit.services.journal.store import SqlJournal, StrategyStatus
from tradekit.testing import settings_from_dict, strategy_config_from_dict

WAIT_SECONDS = 30.0
MINUTE_MS = 60_000
START = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE_MS
BTC = flat_klines(START, 20)
ETH = flat_klines(START, 40, price=2000.0)


def sma_bot(strategy_id: str, symbol: str) -> dict[str, Any]:
    """Buys on every candle its sma(5) has a value for: one signal per candle once warm."""
    return {
        "strategy_id": strategy_id,
        "symbols": [symbol],
        "timeframe": "1m",
        "indicators": [{"name": "sma", "params": {"length": 5}}],
        "analyzers": [
            {
                "type": "threshold",
                "params": {"source": "sma", "above": 0, "mode": "level", "above_direction": "long"},
            }
        ],
        "exit": {"stop_loss_pct": 50},
    }


def close_time(kline: Kline) -> datetime:
    return datetime.fromtimestamp(kline.open_ms / 1000, UTC) + timedelta(minutes=1)


class NotifyingJournal(SqlJournal):
    """The run's journal; it wakes the test up after every commit and settled change."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.changed = threading.Condition()

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def commit(self) -> None:
        super().commit()
        self._notify()

    def settle_change(self, change_id: int, outcome: str, applied_at: datetime) -> None:
        super().settle_change(change_id, outcome, applied_at)
        self._notify()


class Run:
    """``run_live`` on the venue's feeds for BTC/USDT 1m, on a thread; one per test."""

    def __init__(self, venue: FakeBinance, url: str) -> None:
        seed = [strategy_config_from_dict(sma_bot("btc", "BTC/USDT"))]
        self.stop = threading.Event()
        self.feeds: CcxtLiveFeeds = live_feeds(venue.ccxt_settings(), seed, stop=self.stop)
        self.journal = NotifyingJournal(url)
        self.summary: LiveRunSummary | None = None
        self.error: BaseException | None = None
        settings = settings_from_dict(
            {"exchange": {"ccxt": venue.ccxt_settings().model_dump(mode="json")}}
        )
        self._thread = threading.Thread(target=self._run, args=(settings, seed))
        self._thread.start()

    def _run(self, settings: Any, seed: list[Any]) -> None:
        try:
            self.summary = run_live(
                settings,
                seed,
                self.feeds,
                journal=self.journal,
                replay_clock=False,
                registry=RunSelection(),
                stop=self.stop,
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

    def signals(self, strategy_id: str) -> list[datetime]:
        return [e.ts for e in self.journal.events(strategy_id) if isinstance(e, SignalGenerated)]

    def add(self, data: dict[str, Any], folder: Path) -> str:
        """``tradekit strategies add`` of ``data``; the outcome the run settled it with."""
        path = folder / f"{data['strategy_id']}.json"
        path.write_text(json.dumps(data))
        add_strategy(path, database=self.journal.url)
        change_id = self.journal.last_change_id()

        def outcome() -> str | None:
            (change,) = self.journal.registry_changes(after_id=change_id - 1)
            return change.outcome if change.applied_at is not None else None

        self.wait_for(lambda: outcome() is not None, f"change #{change_id} to be applied")
        found = outcome()
        assert found is not None
        return found

    def end(self) -> None:
        """Stop the run (between two candles) and close what it used."""
        self.stop.set()
        self._thread.join(WAIT_SECONDS)
        self.feeds.close()
        self.journal.close()

    def finish(self) -> LiveRunSummary:
        self.end()
        assert not self._thread.is_alive(), "the run did not end"
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


@pytest.fixture
def run(venue: FakeBinance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.chdir(tmp_path)  # the command reads the config of its working directory
    for name in [name for name in os.environ if name.startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    venue.serve_history("BTC/USDT", "1m", BTC[:10])
    started = Run(venue, f"sqlite:///{tmp_path / 'journal.db'}")
    try:
        venue.wait_for_subscription("BTC/USDT", "1m")
        # Kline 9 was still forming for the warm-up: it closes once kline 10 starts.
        venue.push("BTC/USDT", "1m", BTC[9], closed=True)
        venue.push("BTC/USDT", "1m", BTC[10], closed=False)
        started.wait_for(lambda: len(started.signals("btc")) == 1, "the first BTC candle")
        yield started
    finally:
        started.end()


class TestABotOnANewSeriesAddedWhileTheRunGoes:
    def test_it_trades_its_closed_candles_once_in_order_with_warm_indicators(
        self, run: Run, venue: FakeBinance, tmp_path: Path
    ) -> None:
        venue.serve_history("ETH/USDT", "1m", ETH[:30])
        assert run.add(sma_bot("eth", "ETH/USDT"), tmp_path) == "applied"
        venue.wait_for_subscription("ETH/USDT", "1m")
        for index, closed in [(29, True), (30, True), (30, True), (28, True), (29, True)]:
            venue.push("ETH/USDT", "1m", ETH[index], closed=closed)
        venue.push("ETH/USDT", "1m", ETH[31], closed=False)
        venue.push("BTC/USDT", "1m", BTC[10], closed=True)
        venue.push("BTC/USDT", "1m", BTC[11], closed=False)
        run.wait_for(lambda: len(run.signals("eth")) == 2, "both ETH candles")
        run.wait_for(lambda: len(run.signals("btc")) == 2, "the second BTC candle")
        eth_events = run.journal.events("eth")
        summary = run.finish()

        # Every live candle signalled, the first one too: sma(5) was ready on the history,
        # and no history candle was traded on.
        signals = [e.ts for e in eth_events if isinstance(e, SignalGenerated)]
        assert signals == [close_time(ETH[29]), close_time(ETH[30])]
        assert summary.report["eth"]["candles_processed"] == 2
        assert [type(e) for e in eth_events].count(PositionOpened) == 1
        assert summary.report["btc"]["candles_processed"] == 2
        assert venue.subscription_count("ETH/USDT", "1m") == 1

    def test_a_symbol_the_venue_does_not_list_is_refused_with_its_answer_and_the_run_goes_on(
        self, run: Run, venue: FakeBinance, tmp_path: Path
    ) -> None:
        outcome = run.add(sma_bot("doge", "DOGE/USDT"), tmp_path)
        venue.push("BTC/USDT", "1m", BTC[10], closed=True)
        venue.push("BTC/USDT", "1m", BTC[11], closed=False)
        run.wait_for(lambda: len(run.signals("btc")) == 2, "the next BTC candle")
        summary = run.finish()

        assert outcome.startswith("refused: no candles for DOGE/USDT 1m: binance DOGE/USDT 1m")
        assert "BadSymbol" in outcome
        assert "binance does not have market symbol DOGE/USDT" in outcome
        assert "doge" not in summary.report
        assert summary.report["btc"]["candles_processed"] == 2
        with SqlJournal(run.journal.url, read_only=True) as journal:
            assert journal.registered("doge").status is StrategyStatus.DISABLED
