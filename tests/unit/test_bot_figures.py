"""Bot statistics and equity from a small hand-written journal, with every figure worked out
by hand, and the journal's price marks."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tradekit.domain import Fill, Order, OrderSide, Side
from tradekit.errors import StorageError
from tradekit.events import PositionClosed, PositionOpened, StrategyLoaded
from tradekit.insights import bot_equity, bot_stats
from tradekit.services.journal.store import SqlJournal

T0 = datetime(2024, 1, 1, tzinfo=UTC)
X = "X/USDT"
CLOSES = [10.0, 11.0, 9.0, 12.0]


def at(hour: int) -> datetime:
    return T0 + timedelta(hours=hour)


def register(journal: SqlJournal, strategy_id: str) -> None:
    config = {"strategy_id": strategy_id, "symbols": [X], "timeframe": "1h", "capital": 1000.0}
    journal.register_strategy(strategy_id, strategy_id, "threshold", json.dumps(config))
    journal.record(
        [
            StrategyLoaded(
                ts=at(0), strategy_id=strategy_id, seq=1, name="b", symbols=(X,), timeframe="1h"
            )
        ]
    )


@pytest.fixture
def journal() -> Iterator[SqlJournal]:
    """'trader' buys 50 X at 10 on the first candle and sells them at 12 on the fourth
    (fee 1 each); 'idle' never trades. Closes: 10, 11, 9, 12."""
    with SqlJournal("sqlite://") as journal:
        register(journal, "trader")
        register(journal, "idle")
        for hour, close in enumerate(CLOSES):
            journal.record_price_mark(X, "1h", at(hour), close)
        for order_id, side, price, hour in (
            ("b", OrderSide.BUY, 10.0, 0),
            ("s", OrderSide.SELL, 12.0, 3),
        ):
            order = Order(order_id, "trader", X, side, 50.0, at(hour))
            journal.record_fill(
                order, Fill(order_id, "trader", X, side, 50.0, price, 1.0, at(hour))
            )
        journal.record(
            [
                PositionOpened(
                    ts=at(0),
                    strategy_id="trader",
                    seq=2,
                    position_id="p1",
                    symbol=X,
                    side=Side.LONG,
                    quantity=50.0,
                    price=10.0,
                    fee=1.0,
                    stop_loss=None,
                    take_profit=None,
                ),
                PositionClosed(
                    ts=at(3),
                    strategy_id="trader",
                    seq=3,
                    position_id="p1",
                    symbol=X,
                    side=Side.LONG,
                    quantity=50.0,
                    avg_entry_price=10.0,
                    exit_price=12.0,
                    fees=2.0,
                    realized_pnl=98.0,
                    reason="signal",
                    bars_held=3,
                ),
            ]
        )
        journal.commit()
        yield journal


# Cash 1000 - 500 - 1 = 499 while holding 50 X; 499 + 600 - 1 after the sale.
TRADER_EQUITY = [999.0, 1049.0, 949.0, 1098.0]


class TestBotEquity:
    def test_is_cash_plus_holdings_at_each_mark(self, journal: SqlJournal) -> None:
        assert bot_equity(journal, "trader") == list(
            zip([at(hour) for hour in range(4)], TRADER_EQUITY, strict=True)
        )

    def test_an_idle_bot_stays_at_its_capital(self, journal: SqlJournal) -> None:
        assert [value for _, value in bot_equity(journal, "idle")] == [1000.0] * 4


class TestBotStats:
    def test_hand_computed_figures(self, journal: SqlJournal) -> None:
        stats = bot_stats(journal, "trader")
        line = [1000.0, *TRADER_EQUITY]
        returns = np.diff(line) / line[:-1]
        per_year = 365 * 24
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0) ** 2)))
        assert stats.start == at(0)
        assert stats.end == at(3)
        assert stats.final_equity == 1098.0
        assert stats.total_return_pct == pytest.approx(9.8)
        assert stats.max_drawdown_pct == pytest.approx(100 / 1049 * 100)
        assert stats.sharpe == pytest.approx(
            returns.mean() / returns.std(ddof=1) * math.sqrt(per_year)
        )
        assert stats.sortino == pytest.approx(returns.mean() / downside * math.sqrt(per_year))
        assert stats.trade_count == 1
        assert stats.win_rate_pct == 100.0
        assert stats.profit_factor is None  # no losing trade: unbounded
        assert stats.average_trade_pnl == 98.0
        assert stats.average_trade_return_pct == pytest.approx(98 / 500 * 100)
        assert stats.average_trade_duration_seconds == 3 * 3600
        assert stats.exposure_time_pct == pytest.approx(100.0)
        assert stats.buy_and_hold_return_pct == pytest.approx(20.0)
        assert stats.equity_points == 4

    def test_since_starts_from_the_equity_standing_then(self, journal: SqlJournal) -> None:
        stats = bot_stats(journal, "trader", since=at(2))
        assert stats.start_equity == 1049.0  # the point at 1h stands until the next one
        assert stats.total_return_pct == pytest.approx((1098 / 1049 - 1) * 100)
        assert stats.buy_and_hold_return_pct == pytest.approx((12 / 11 - 1) * 100)
        assert stats.exposure_time_pct == pytest.approx(100.0)
        assert stats.trade_count == 1

    def test_flat_equity_has_zero_ratios_and_no_trade_figures(self, journal: SqlJournal) -> None:
        stats = bot_stats(journal, "idle")
        assert stats.total_return_pct == 0.0
        assert stats.max_drawdown_pct == 0.0
        assert stats.sharpe == 0.0
        assert stats.sortino == 0.0
        assert stats.exposure_time_pct == 0.0
        assert stats.trade_count == 0
        for undefined in (
            stats.win_rate_pct,
            stats.profit_factor,
            stats.average_trade_pnl,
            stats.average_trade_return_pct,
            stats.average_trade_duration_seconds,
        ):
            assert undefined is None
        json.dumps(stats.model_dump(mode="json"), allow_nan=False)


class TestPriceMarks:
    def test_are_read_back_from_a_time_on(self, journal: SqlJournal) -> None:
        assert journal.price_marks(X, "1h", since=at(2)) == [(at(2), 9.0), (at(3), 12.0)]
        assert journal.price_marks(X, "4h") == []

    def test_a_mark_recorded_again_is_stored_once(self, journal: SqlJournal) -> None:
        journal.record_price_mark(X, "1h", at(0), 99.0)
        journal.commit()
        assert journal.price_marks(X, "1h")[0] == (at(0), 10.0)

    def test_a_naive_time_is_refused(self, journal: SqlJournal) -> None:
        with pytest.raises(StorageError, match=r"price mark of X/USDT 1h.*no time zone"):
            journal.record_price_mark(X, "1h", datetime(2024, 1, 1), 1.0)

    def test_a_journal_from_before_price_marks_reads_as_having_none(self, tmp_path: Path) -> None:
        path = tmp_path / "old.db"
        with SqlJournal(f"sqlite:///{path}") as journal:
            register(journal, "trader")
        with sqlite3.connect(path) as connection:
            connection.execute("DROP TABLE price_marks")
        with SqlJournal(f"sqlite:///{path}", read_only=True) as journal:
            assert journal.price_marks(X, "1h") == []
            assert bot_equity(journal, "trader") == []
            assert bot_stats(journal, "trader").trade_count == 0
