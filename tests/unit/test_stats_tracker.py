"""``StatsTracker`` answers exactly what ``bot_stats`` answers after every step of a growing
journal, reading from the start again only when what it holds cannot be extended."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradekit.domain import Direction, Fill, Order, OrderSide, Side
from tradekit.events import (
    Event,
    PositionClosed,
    PositionIncreased,
    PositionOpened,
    SignalGenerated,
)
from tradekit.insights import BotStats, StatsTracker, bot_stats
from tradekit.services.journal.store import SqlJournal

T0 = datetime(2024, 1, 1, tzinfo=UTC)
X, Y = "X/USDT", "Y/USDT"
BOT = "bot"
QUARTER = timedelta(minutes=15)


@dataclass
class BotJournal:
    """A journal one bot writes to, as the engine would, with a clock that only moves on."""

    journal: SqlJournal
    clock: datetime = T0
    seq: int = 0
    orders: int = 0
    open_ids: list[str] = field(default_factory=list)
    positions: int = 0

    def configure(
        self, capital: float = 1000.0, symbols: tuple[str, ...] = (X,), tf: str = "1h"
    ) -> None:
        config = {"strategy_id": BOT, "symbols": list(symbols), "timeframe": tf, "capital": capital}
        self.journal.register_strategy(BOT, BOT, "threshold", json.dumps(config))

    def event(self, make: type[Event], **fields: object) -> None:
        self.seq += 1
        self.journal.record([make(ts=self.clock, strategy_id=BOT, seq=self.seq, **fields)])

    def mark(self, symbol: str, close: float, back: int = 0) -> None:
        self.journal.record_price_mark(symbol, "1h", self.clock - back * QUARTER, close)

    def fill(
        self, symbol: str, side: OrderSide, quantity: float, price: float, back: int = 0
    ) -> None:
        self.orders += 1
        order_id = f"o{self.orders}"
        ts = self.clock - back * QUARTER
        order = Order(order_id, BOT, symbol, side, quantity, ts)
        fill = Fill(order_id, BOT, symbol, side, quantity, price, 0.5, ts)
        self.journal.record_fill(order, fill)

    def snapshot(self, prices: dict[str, float], ahead: int) -> None:
        last_ts = {symbol: (self.clock + ahead * QUARTER).isoformat() for symbol in prices}
        state = {"last_ts": last_ts, "positions": {"last_prices": prices, "positions": []}}
        self.journal.save_snapshot(BOT, self.seq, self.clock, state)


prices = st.floats(min_value=1.0, max_value=200.0, allow_nan=False)
symbols = st.sampled_from([X, Y])
steps = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 8)),
    st.tuples(st.just("mark"), symbols, prices),
    st.tuples(st.just("old mark"), symbols, prices, st.integers(1, 6)),
    st.tuples(st.just("fill"), symbols, st.sampled_from(OrderSide), st.floats(0.1, 5.0), prices),
    st.tuples(st.just("old fill"), symbols, prices, st.integers(1, 6)),
    st.tuples(st.just("open"), symbols, st.floats(0.1, 5.0), prices),
    st.tuples(st.just("increase"), prices),
    st.tuples(st.just("close"), st.floats(-50.0, 50.0)),
    st.tuples(st.just("signal")),
    st.tuples(st.just("snapshot"), st.dictionaries(symbols, prices), st.integers(-2, 3)),
    st.tuples(st.just("config"), st.sampled_from([500.0, 1000.0]), st.sampled_from(["1h", "4h"])),
    st.tuples(st.just("symbols"), st.sampled_from([(X,), (X, Y), (Y, X), ()])),
)


def apply(bot: BotJournal, step: tuple[Any, ...]) -> None:
    kind, *args = step
    if kind == "advance":
        bot.clock += args[0] * QUARTER
    elif kind == "mark":
        bot.mark(args[0], args[1])
    elif kind == "old mark":
        bot.mark(args[0], args[1], back=args[2])
    elif kind == "fill":
        bot.fill(args[0], args[1], args[2], args[3])
    elif kind == "old fill":
        bot.fill(args[0], OrderSide.BUY, 1.0, args[1], back=args[2])
    elif kind == "open":
        bot.positions += 1
        position_id = f"p{bot.positions}"
        bot.open_ids.append(position_id)
        quantity, price = args[1], args[2]
        bot.event(
            PositionOpened,
            position_id=position_id,
            symbol=args[0],
            side=Side.LONG,
            quantity=quantity,
            price=price,
            fee=0.5,
            stop_loss=None,
            take_profit=None,
        )
    elif kind == "increase" and bot.open_ids:
        bot.event(
            PositionIncreased,
            position_id=bot.open_ids[-1],
            symbol=X,
            side=Side.LONG,
            quantity_added=1.0,
            price=args[0],
            fee=0.5,
            quantity=2.0,
            avg_entry_price=args[0],
        )
    elif kind == "close":
        # Now and then a close whose opening the journal does not hold.
        position_id = bot.open_ids.pop(0) if bot.open_ids else f"unknown{bot.seq}"
        bot.event(
            PositionClosed,
            position_id=position_id,
            symbol=X,
            side=Side.LONG,
            quantity=1.0,
            avg_entry_price=100.0,
            exit_price=100.0,
            fees=1.0,
            realized_pnl=args[0],
            reason="signal",
            bars_held=3,
        )
    elif kind == "signal":
        bot.event(
            SignalGenerated,
            symbol=X,
            direction=Direction.LONG,
            strength=0.5,
            reason="rsi",
            source="threshold",
        )
    elif kind == "snapshot":
        bot.snapshot(args[0], args[1])
    elif kind == "config":
        bot.configure(capital=args[0], tf=args[1])
    elif kind == "symbols":
        bot.configure(symbols=args[0])


class TestAgainstBotStats:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.lists(steps, min_size=1, max_size=6), min_size=1, max_size=14))
    def test_every_step_of_a_growing_journal_gives_what_bot_stats_gives(
        self, batches: list[list[tuple[Any, ...]]]
    ) -> None:
        """Each batch is one commit (a candle); the tracker is asked after each."""
        with SqlJournal("sqlite://") as journal:
            bot = BotJournal(journal)
            bot.configure()
            tracker = StatsTracker(journal, BOT)
            for batch in batches:
                for step in batch:
                    apply(bot, step)
                journal.commit()
                assert tracker.stats() == bot_stats(journal, BOT)


def candle(bot: BotJournal, close: float, *, trade: str | None = None) -> None:
    """One candle as the engine commits it: its mark, a fill and a position event if it
    trades, a snapshot a little after the mark."""
    bot.clock += 4 * QUARTER
    bot.mark(X, close)
    if trade == "open":
        bot.fill(X, OrderSide.BUY, 1.0, close)
        apply(bot, ("open", X, 1.0, close))
    elif trade == "close":
        bot.fill(X, OrderSide.SELL, 1.0, close)
        apply(bot, ("close", close - 100.0))
    bot.snapshot({X: close + 1.0}, ahead=2)
    bot.journal.commit()


@pytest.fixture
def bot() -> Iterator[BotJournal]:
    with SqlJournal("sqlite://") as journal:
        opened = BotJournal(journal)
        opened.configure()
        yield opened


class TestIncremental:
    def test_new_candles_are_added_to_what_is_held(self, bot: BotJournal) -> None:
        tracker = StatsTracker(bot.journal, BOT)
        for index, trade in enumerate([None, "open", None, None, "close", None, "open"]):
            candle(bot, 100.0 + index, trade=trade)
            assert tracker.stats() == bot_stats(bot.journal, BOT)
        assert tracker.rebuilds == 1
        assert tracker.stats().trade_count == 1

    def test_since_answers_what_bot_stats_answers(self, bot: BotJournal) -> None:
        for index, trade in enumerate([None, "open", None, "close", None]):
            candle(bot, 100.0 + index, trade=trade)
        since = T0 + timedelta(hours=3)
        assert StatsTracker(bot.journal, BOT).stats(since=since) == bot_stats(
            bot.journal, BOT, since=since
        )


class TestReadAgain:
    """What cannot be added to what is held makes the tracker read the journal again."""

    def test_a_fill_at_a_time_already_valued(self, bot: BotJournal) -> None:
        """As a fill recovered from the venue at start, older than the last price mark."""
        tracker = StatsTracker(bot.journal, BOT)
        candle(bot, 100.0)
        candle(bot, 110.0)
        tracker.stats()
        bot.fill(X, OrderSide.BUY, 2.0, 90.0, back=4)
        bot.journal.commit()
        assert tracker.stats() == bot_stats(bot.journal, BOT)
        assert tracker.rebuilds == 2

    def test_a_price_mark_older_than_the_newest(self, bot: BotJournal) -> None:
        tracker = StatsTracker(bot.journal, BOT)
        candle(bot, 100.0, trade="open")
        candle(bot, 110.0)
        tracker.stats()
        bot.mark(X, 50.0, back=2)
        bot.journal.commit()
        assert tracker.stats() == bot_stats(bot.journal, BOT)
        assert tracker.rebuilds == 2

    def test_another_capital_in_the_registry(self, bot: BotJournal) -> None:
        tracker = StatsTracker(bot.journal, BOT)
        candle(bot, 100.0, trade="open")
        tracker.stats()
        bot.configure(capital=5000.0)
        assert tracker.stats() == bot_stats(bot.journal, BOT)
        assert (tracker.stats().capital, tracker.rebuilds) == (5000.0, 2)


class TestThreads:
    def test_concurrent_calls_while_candles_are_committed_agree_with_bot_stats(
        self, bot: BotJournal
    ) -> None:
        tracker = StatsTracker(bot.journal, BOT)
        answers: list[BotStats] = []
        start = threading.Barrier(4)

        def ask() -> None:
            start.wait()
            for _ in range(30):
                answers.append(tracker.stats())

        readers = [threading.Thread(target=ask) for _ in range(3)]
        for reader in readers:
            reader.start()
        start.wait()
        for index in range(30):
            candle(bot, 100.0 + index, trade=("open", None, "close")[index % 3])
        for reader in readers:
            reader.join()
        assert len(answers) == 90
        assert tracker.stats() == bot_stats(bot.journal, BOT)
        assert tracker.rebuilds == 1
