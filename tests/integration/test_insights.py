"""Equity history, bot statistics and the symbols view, read back from a real SQLite journal
written by the engine over replayed candles, against what the running strategies held."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from ticker_strategies import ticker

from tradekit.config import TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.data import synthetic_candles
from tradekit.events import PositionClosed
from tradekit.insights import (
    bot_equity,
    bot_stats,
    strategy_reports,
    symbol_exposures,
)
from tradekit.runtime.engine import Engine
from tradekit.services.journal.store import SqlJournal
from tradekit.stats import max_drawdown_pct

BTC = "BTC/USDT"
ETH = "ETH/USDT"
BARS = 80
CAP = 50_000.0


@dataclass(frozen=True)
class Run:
    """A finished engine run over a journal: the database and each strategy's in-memory curve."""

    url: str
    curves: dict[str, list[tuple[datetime, float]]]


def run_engine(url: str, timeframe: str = "1h", bars: int = BARS) -> Run:
    configs = [
        ticker("btc-trader", every=5, exit_offset=3),
        ticker("pair-trader", every=4, exit_offset=2, symbols=[BTC, ETH]),
        ticker("btc-holder", every=3, exit_offset=None, exit={"stop_loss_pct": 60}),
    ]
    if timeframe != "1h":
        configs = [config.model_copy(update={"timeframe": timeframe}) for config in configs]
    candles = sorted(
        [
            *synthetic_candles(BTC, timeframe, bars, seed=3),
            *synthetic_candles(ETH, timeframe, bars, seed=4),
        ],
        key=lambda candle: (candle.ts, candle.symbol),
    )
    with SqlJournal(url) as journal:
        factory = TradingOrchestratorFactory(
            SharedContainer(settings=TradekitSettings(_env_file=None))
        )
        engine = Engine(factory, journal=journal)
        engine.load(configs)
        for candle in candles:
            engine.on_candle(candle)
        curves = {
            config.strategy_id: list(
                factory.get(config.strategy_id).position_lifecycle().equity_curve
            )
            for config in configs
        }
        engine.shutdown()
    return Run(url, curves)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    path = tmp_path_factory.mktemp("insights") / "journal.db"
    return run_engine(f"sqlite:///{path}")


@pytest.fixture
def journal(run: Run) -> Iterator[SqlJournal]:
    with SqlJournal(run.url, read_only=True) as reader:
        yield reader


def last_per_time(curve: list[tuple[datetime, float]]) -> dict[datetime, float]:
    """A curve with one point per time: a two-symbol strategy marks twice per time."""
    return dict(curve)


class TestBotEquity:
    @pytest.mark.parametrize("strategy_id", ["btc-trader", "pair-trader", "btc-holder"])
    def test_equals_the_running_strategys_curve_at_every_candle(
        self, run: Run, journal: SqlJournal, strategy_id: str
    ) -> None:
        expected = last_per_time(run.curves[strategy_id])
        points = bot_equity(journal, strategy_id, max_points=10_000)
        assert [ts for ts, _ in points] == sorted(expected)
        assert [value for _, value in points] == pytest.approx(
            [expected[ts] for ts, _ in points], rel=1e-12
        )

    def test_the_curve_moves_with_the_prices_while_a_position_is_open(
        self, journal: SqlJournal
    ) -> None:
        values = {value for _, value in bot_equity(journal, "btc-holder", max_points=10_000)}
        assert len(values) > BARS // 2

    def test_since_and_max_points_thin_the_curve_keeping_both_ends(
        self, run: Run, journal: SqlJournal
    ) -> None:
        full = bot_equity(journal, "btc-trader", max_points=10_000)
        since = full[20][0]
        thinned = bot_equity(journal, "btc-trader", since=since, max_points=7)
        assert len(thinned) == 7
        assert thinned[0] == full[20]
        assert thinned[-1] == full[-1]
        assert all(ts >= since for ts, _ in thinned)

    def test_max_points_below_two_is_refused(self, journal: SqlJournal) -> None:
        with pytest.raises(ValueError, match="max_points must be at least 2, got 1"):
            bot_equity(journal, "btc-trader", max_points=1)

    def test_unknown_strategy_has_no_curve(self, journal: SqlJournal) -> None:
        assert bot_equity(journal, "nobody") == []


class TestBotStats:
    def test_agrees_with_the_report_and_the_running_strategy(
        self, run: Run, journal: SqlJournal
    ) -> None:
        reports = {report.strategy_id: report for report in strategy_reports(journal)}
        for strategy_id, curve in run.curves.items():
            stats = bot_stats(journal, strategy_id)
            report = reports[strategy_id]
            assert report.equity is not None
            assert stats.final_equity == pytest.approx(report.equity, rel=1e-12)
            assert stats.total_return_pct == pytest.approx(report.return_pct, abs=1e-9)
            assert stats.trade_count == report.closed
            if report.closed:
                assert stats.win_rate_pct == pytest.approx(report.wins / report.closed * 100)
            capital = stats.capital
            assert capital is not None
            values = list(last_per_time(curve).values())
            assert stats.max_drawdown_pct == pytest.approx(max_drawdown_pct([capital, *values]))

    def test_trades_figures_come_from_the_closed_positions(self, journal: SqlJournal) -> None:
        closed = [e for e in journal.events("btc-trader") if isinstance(e, PositionClosed)]
        stats = bot_stats(journal, "btc-trader")
        assert stats.trade_count == len(closed) > 3
        assert stats.average_trade_pnl == pytest.approx(
            sum(event.realized_pnl for event in closed) / len(closed)
        )
        # Buys every 5 bars and sells 3 bars later (an hour each); fills are at the next open.
        assert stats.average_trade_duration_seconds == pytest.approx(3 * 3600)
        assert stats.exposure_time_pct is not None
        assert 0 < stats.exposure_time_pct < 100

    def test_a_holder_is_in_the_market_from_its_first_entry_on(self, journal: SqlJournal) -> None:
        stats = bot_stats(journal, "btc-holder")
        assert stats.trade_count == 0
        assert stats.win_rate_pct is None
        assert stats.profit_factor is None
        assert stats.average_trade_pnl is None
        assert stats.exposure_time_pct is not None
        assert stats.exposure_time_pct > 90

    def test_buy_and_hold_averages_the_bots_symbols(self, journal: SqlJournal) -> None:
        btc = journal.price_marks(BTC, "1h")
        eth = journal.price_marks(ETH, "1h")
        btc_return = (btc[-1][1] / btc[0][1] - 1) * 100
        eth_return = (eth[-1][1] / eth[0][1] - 1) * 100
        assert bot_stats(journal, "btc-trader").buy_and_hold_return_pct == pytest.approx(btc_return)
        assert bot_stats(journal, "pair-trader").buy_and_hold_return_pct == pytest.approx(
            (btc_return + eth_return) / 2
        )

    def test_since_measures_from_the_equity_standing_then(self, journal: SqlJournal) -> None:
        full = bot_equity(journal, "btc-trader", max_points=10_000)
        since = full[40][0] + timedelta(minutes=30)
        stats = bot_stats(journal, "btc-trader", since=since)
        assert stats.start == since
        assert stats.start_equity == full[40][1]
        assert stats.total_return_pct == pytest.approx((full[-1][1] / full[40][1] - 1) * 100)
        closed_after = [
            e
            for e in journal.events("btc-trader")
            if isinstance(e, PositionClosed) and e.ts >= since
        ]
        assert stats.trade_count == len(closed_after)

    def test_serializes_to_strict_json(self, journal: SqlJournal) -> None:
        for strategy_id in ("btc-trader", "pair-trader", "btc-holder", "nobody"):
            document = bot_stats(journal, strategy_id).model_dump(mode="json")
            json.dumps(document, allow_nan=False)

    def test_a_strategy_with_nothing_journaled_has_only_undefined_figures(
        self, journal: SqlJournal
    ) -> None:
        stats = bot_stats(journal, "nobody")
        assert stats.trade_count == 0
        assert stats.equity_points == 0
        assert stats.final_equity is None
        assert stats.sharpe is None
        assert stats.exposure_time_pct is None


class TestSymbolExposures:
    def test_lists_each_symbols_bots_positions_and_exposure_against_the_cap(
        self, journal: SqlJournal
    ) -> None:
        reports = strategy_reports(journal)
        by_symbol = {item.symbol: item for item in symbol_exposures(reports, CAP)}
        assert set(by_symbol) == {BTC, ETH}
        assert by_symbol[BTC].strategies == ["btc-holder", "btc-trader", "pair-trader"]
        assert by_symbol[ETH].strategies == ["pair-trader"]
        holder = {bot.strategy_id: bot for bot in by_symbol[BTC].bots}["btc-holder"]
        [position] = holder.positions
        assert holder.exposure == position.notional > 0
        assert by_symbol[BTC].exposure == pytest.approx(
            sum(bot.exposure for bot in by_symbol[BTC].bots)
        )
        assert by_symbol[BTC].cap_used_pct == pytest.approx(by_symbol[BTC].exposure / CAP * 100)

    def test_serializes_with_the_cap_used(self, journal: SqlJournal) -> None:
        [first, *_] = symbol_exposures(strategy_reports(journal), None)
        document = json.loads(first.model_dump_json())
        assert document["cap"] is None
        assert document["cap_used_pct"] is None
        assert {"symbol", "bots", "exposure"} <= set(document)


class TestPriceMarks:
    def test_one_mark_per_series_per_quarter_hour(self, tmp_path: Path) -> None:
        run = run_engine(f"sqlite:///{tmp_path / 'minutes.db'}", timeframe="1m", bars=60)
        with SqlJournal(run.url, read_only=True) as journal:
            marks = journal.price_marks(BTC, "1m")
            assert [ts.minute for ts, _ in marks] == [0, 15, 30, 45]
            # Four marks and the unload snapshot at the last candle: the curve ends now.
            points = bot_equity(journal, "btc-holder")
            assert [ts.minute for ts, _ in points] == [0, 15, 30, 45, 59]
            expected = last_per_time(run.curves["btc-holder"])
            assert [value for _, value in points] == pytest.approx(
                [expected[ts] for ts, _ in points], rel=1e-12
            )

    def test_a_run_over_the_same_candles_again_stores_each_mark_once(self, tmp_path: Path) -> None:
        path = tmp_path / "again.db"
        run_engine(f"sqlite:///{path}")
        run_engine(f"sqlite:///{path}")
        with sqlite3.connect(path) as connection:
            count = connection.execute("SELECT COUNT(*) FROM price_marks").fetchone()[0]
        assert count == 2 * BARS
