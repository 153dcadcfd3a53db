"""Benchmark: the CPU time and SQL queries of one running bot's statistics, by the length of its
history.

Run: ``python benchmarks/bench_bot_stats.py [--marks 2000 20000] [--calls 200]``. For each
length it writes a SQLite journal of one RSI-like bot on one hourly series: a price mark
per candle, a trade (open and close, two fills) every ``TRADE_EVERY`` candles, a signal
event per candle and a snapshot after each. Then, ``--calls`` times, it adds one candle
(as the engine commits it) and asks for the statistics, as the bot service does for a
running bot between two candles. It prints the CPU time (process time) per call and the
SQL statements per call of ``bot_stats`` (the whole journal read again) and of
``StatsTracker`` (what is new since the last call), and checks that both agree.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

from tradekit.domain import Direction, Fill, Order, OrderSide, Side
from tradekit.events import Event, PositionClosed, PositionOpened, SignalGenerated
from tradekit.insights import BotStats, StatsTracker, bot_stats
from tradekit.services.journal.store import SqlJournal

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOL = "S0/USDT"
BOT = "rsi-0"
TRADE_EVERY = 24
TRADE_LENGTH = 6


class Writer:
    """Writes one bot's candles to a journal as the engine does: one commit per candle."""

    def __init__(self, journal: SqlJournal) -> None:
        self.journal = journal
        self.candle = 0
        self.seq = 0
        config = {"strategy_id": BOT, "symbols": [SYMBOL], "timeframe": "1h", "capital": 10_000.0}
        journal.register_strategy(BOT, BOT, "threshold", json.dumps(config))

    def _event(self, make: Callable[[int], Event]) -> None:
        self.seq += 1
        self.journal.record([make(self.seq)])

    def _fill(self, side: OrderSide, price: float, ts: datetime) -> None:
        order_id = f"o-{self.seq}"
        order = Order(order_id, BOT, SYMBOL, side, 1.0, ts)
        self.journal.record_fill(order, Fill(order_id, BOT, SYMBOL, side, 1.0, price, 0.1, ts))

    def next_candle(self) -> None:
        index = self.candle
        ts = T0 + timedelta(hours=index)
        close = 100.0 + 10 * math.sin(index / 7)
        self.journal.record_price_mark(SYMBOL, "1h", ts, close)
        self._event(
            lambda seq: SignalGenerated(
                ts=ts,
                strategy_id=BOT,
                seq=seq,
                symbol=SYMBOL,
                direction=Direction.LONG,
                strength=0.5,
                reason="rsi",
                source="threshold",
            )
        )
        position_id = f"p-{index // TRADE_EVERY}"
        if index % TRADE_EVERY == 0:
            self._fill(OrderSide.BUY, close, ts)
            self._event(
                lambda seq: PositionOpened(
                    ts=ts,
                    strategy_id=BOT,
                    seq=seq,
                    position_id=position_id,
                    symbol=SYMBOL,
                    side=Side.LONG,
                    quantity=1.0,
                    price=close,
                    fee=0.1,
                    stop_loss=None,
                    take_profit=None,
                )
            )
        elif index % TRADE_EVERY == TRADE_LENGTH:
            self._fill(OrderSide.SELL, close, ts)
            self._event(
                lambda seq: PositionClosed(
                    ts=ts,
                    strategy_id=BOT,
                    seq=seq,
                    position_id=position_id,
                    symbol=SYMBOL,
                    side=Side.LONG,
                    quantity=1.0,
                    avg_entry_price=100.0,
                    exit_price=close,
                    fees=0.2,
                    realized_pnl=close - 100.0 - 0.2,
                    reason="signal",
                    bars_held=TRADE_LENGTH,
                )
            )
        state = {
            "last_ts": {SYMBOL: (ts + timedelta(minutes=30)).isoformat()},
            "positions": {"last_prices": {SYMBOL: close + 0.5}, "positions": []},
        }
        self.journal.save_snapshot(BOT, self.seq, ts, state)
        self.journal.commit()
        self.candle += 1


def measure(writer: Writer, calls: int, stats: Callable[[], BotStats]) -> tuple[float, float]:
    """CPU milliseconds and SQL statements per ``stats`` call, a candle written before each."""
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    stats()
    cpu = 0.0
    event.listen(Engine, "before_cursor_execute", count)
    try:
        for _ in range(calls):
            event.remove(Engine, "before_cursor_execute", count)
            writer.next_candle()
            event.listen(Engine, "before_cursor_execute", count)
            started = time.process_time()
            stats()
            cpu += time.process_time() - started
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return cpu / calls * 1000, statements / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marks", type=int, nargs="+", default=[2_000, 20_000])
    parser.add_argument("--calls", type=int, default=200)
    options = parser.parse_args()
    print(f"{'marks':>7} {'what':<13} {'ms/call':>8} {'queries/call':>13}")
    for marks in options.marks:
        with tempfile.TemporaryDirectory() as folder:
            with SqlJournal(f"sqlite:///{Path(folder) / 'journal.db'}") as journal:
                writer = Writer(journal)
                for _ in range(marks):
                    writer.next_candle()
                reference = measure(writer, options.calls, lambda: bot_stats(journal, BOT))
                tracker = StatsTracker(journal, BOT)
                tracked = measure(writer, options.calls, tracker.stats)
                if tracker.stats() != bot_stats(journal, BOT):
                    raise SystemExit("the tracker and bot_stats disagree")
            for name, (ms, queries) in (("bot_stats", reference), ("StatsTracker", tracked)):
                print(f"{marks:>7} {name:<13} {ms:>8.3f} {queries:>13.1f}")


if __name__ == "__main__":
    main()
