"""Benchmark: events per second the SQL journal commits to a SQLite file, by batch size.

Run with ``python benchmarks/bench_journal.py``. The engine commits once per candle
batch, so the batch size is how many events all strategies emitted on one candle.
Each figure is the median over several runs, each on a fresh database file in WAL
mode; it covers ``record`` plus ``commit`` (building the events is excluded).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tradekit.domain import Side
from tradekit.events import Event, PositionOpened
from tradekit.services.journal.store import SqlJournal

RUNS = 3
STRATEGIES = 10
# Events written per run, per batch size: enough commits to time, little enough to be quick.
EVENTS_PER_RUN = {1: 2_000, 10: 10_000, 100: 50_000, 1000: 100_000}
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def make_events(count: int) -> list[Event]:
    """``count`` events spread over ``STRATEGIES`` strategies, each with its own seq."""
    return [
        PositionOpened(
            ts=T0 + timedelta(minutes=index),
            strategy_id=f"strategy-{index % STRATEGIES}",
            seq=index // STRATEGIES + 1,
            position_id=f"strategy-{index % STRATEGIES}-pos-{index}",
            symbol="BTC/USDT",
            side=Side.LONG,
            quantity=0.5,
            price=60_000.0 + index,
            fee=30.0,
            stop_loss=58_000.0,
            take_profit=None,
        )
        for index in range(count)
    ]


def write_in_batches(journal: SqlJournal, events: list[Event], batch: int) -> float:
    """Seconds to record and commit ``events``, ``batch`` at a time."""
    start = time.perf_counter()
    for offset in range(0, len(events), batch):
        journal.record(events[offset : offset + batch])
        journal.commit()
    return time.perf_counter() - start


def median_rate(events: list[Event], run: Callable[[SqlJournal], float]) -> float:
    """Median events per second of ``run`` over ``RUNS`` fresh journals."""
    rates = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as folder:
            journal = SqlJournal(f"sqlite:///{Path(folder) / 'bench.db'}")
            try:
                rates.append(len(events) / run(journal))
            finally:
                journal.close()
    return statistics.median(rates)


def first_write(events: list[Event], batch: int) -> Callable[[SqlJournal], float]:
    """Writing new events, ``batch`` per commit."""

    def run(journal: SqlJournal) -> float:
        return write_in_batches(journal, events, batch)

    return run


def replay_rate(events: list[Event], batch: int) -> Callable[[SqlJournal], float]:
    """Re-recording events already stored: what at-least-once delivery costs."""

    def run(journal: SqlJournal) -> float:
        write_in_batches(journal, events, batch)
        return write_in_batches(journal, events, batch)

    return run


def read_rate(events: list[Event]) -> Callable[[SqlJournal], float]:
    """Reading every strategy's events back, rebuilt as event objects."""

    def run(journal: SqlJournal) -> float:
        write_in_batches(journal, events, 1000)
        start = time.perf_counter()
        for index in range(STRATEGIES):
            journal.events(f"strategy-{index}")
        return time.perf_counter() - start

    return run


def main() -> None:
    print(
        f"SqlJournal on SQLite (WAL, synchronous=NORMAL): {STRATEGIES} strategies, "
        f"median of {RUNS} runs, fresh file each run"
    )
    print(f"  {'batch':>6} {'events':>8} {'events/s':>10} {'commits/s':>10} {'ms/commit':>10}")
    for batch, count in EVENTS_PER_RUN.items():
        events = make_events(count)
        rate = median_rate(events, first_write(events, batch))
        commits = rate / batch
        print(f"  {batch:>6} {count:>8,} {rate:>10,.0f} {commits:>10,.0f} {1000 / commits:>10.3f}")
    events = make_events(EVENTS_PER_RUN[1000])
    skipped = median_rate(events, replay_rate(events, 1000))
    print(f"  replay of already-stored events, batch 1000: {skipped:,.0f} events/s skipped")
    print(f"  read back with events(): {median_rate(events, read_rate(events)):,.0f} events/s")


if __name__ == "__main__":
    main()
