"""Benchmark: what the SQLite journal adds to a live (paper) run of many strategies.

Run: ``python benchmarks/bench_journal_overhead.py [--strategies N] [--candles N]
[--symbols N] [--profile]``. The same strategies run over the same synthetic
candles through ``run_live`` twice, without a journal and with one on a fresh
SQLite file, and the two wall times are printed with their ratio (docs/architecture.md's
budget: the journal at most doubles the run). ``--candles`` counts the candles of
each series; every strategy trades one of ``--symbols`` series, so each strategy
sees ``--candles`` candles. ``--profile`` prints the journaled run's hottest
functions instead of timing both.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from tradekit.config import StrategyConfig, TradekitSettings
from tradekit.data.sources import FrameSource
from tradekit.data.synthetic import synthetic_frame
from tradekit.logs import log
from tradekit.runtime.live import run_live
from tradekit.services.journal.store import SqlJournal


def make_config(index: int, symbols: int) -> StrategyConfig:
    """An RSI(14) reversion strategy; thresholds and exits vary with ``index``.

    One indicator for all, so the run measures the strategies and the journal, not
    the recomputation of many distinct indicators.
    """
    low = 25 + index % 10
    return StrategyConfig.model_validate(
        {
            "strategy_id": f"rsi-{index}",
            "symbols": [f"S{index % symbols}/USDT"],
            "timeframe": "1h",
            "indicators": [{"name": "rsi", "params": {"length": 14}}],
            "analyzers": [
                {"type": "threshold", "params": {"source": "rsi", "below": low, "above": 100 - low}}
            ],
            "exit": {
                "stop_loss_pct": 2.0 + index % 5,
                "take_profit_pct": 3.0 + index % 7,
                "exit_on_opposite_signal": True,
            },
        }
    )


def candle_frames(symbols: int, candles: int) -> FrameSource:
    return FrameSource(
        {
            (f"S{index}/USDT", "1h"): synthetic_frame(f"S{index}/USDT", "1h", candles, seed=index)
            for index in range(symbols)
        }
    )


class Timing(NamedTuple):
    wall: float
    cpu: float
    """CPU seconds of this process: on a shared machine, steadier than the wall time."""


def run(
    configs: list[StrategyConfig], symbols: int, candles: int, database: Path | None
) -> tuple[Timing, int]:
    """Time one ``run_live`` (journaled in ``database`` when given); also its event count."""
    settings = TradekitSettings(_env_file=None)
    source = candle_frames(symbols, candles).stream()
    # Opened as the run opens its own (``tradekit.containers.shared.open_journal``).
    journal = None if database is None else SqlJournal(f"sqlite:///{database}", prompt_writer=True)
    started, started_cpu = time.perf_counter(), time.process_time()
    try:
        summary = run_live(settings, configs, source, journal=journal)
    finally:
        if journal is not None:
            journal.close()
    elapsed = Timing(time.perf_counter() - started, time.process_time() - started_cpu)
    events = 0
    if database is not None:
        with sqlite3.connect(database) as connection:
            events = int(connection.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    trades = sum(entry.get("trades", 0) for entry in summary.report.values())
    print(f"    {summary.candles:,} candles, {trades:,} trades", flush=True)
    return elapsed, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=1_000)
    parser.add_argument("--candles", type=int, default=5_000, help="candles per series")
    parser.add_argument("--symbols", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    log.remove()
    configs = [make_config(index, args.symbols) for index in range(args.strategies)]
    print(
        f"run_live: {args.strategies:,} RSI strategies over {args.symbols} series x "
        f"{args.candles:,} candles (1h)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "journal.db"
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(run, configs, args.symbols, args.candles, database)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
            return
        print("  without a journal:", flush=True)
        plain, _ = run(configs, args.symbols, args.candles, None)
        print(f"    {plain.wall:.1f} s ({plain.cpu:.1f} s CPU)", flush=True)
        print("  with a SQLite journal:", flush=True)
        journaled, events = run(configs, args.symbols, args.candles, database)
        size = database.stat().st_size / 2**20
        print(
            f"    {journaled.wall:.1f} s ({journaled.cpu:.1f} s CPU), {events:,} events, "
            f"database {size:.1f} MiB",
            flush=True,
        )
    print(
        f"  journal overhead: {journaled.wall / plain.wall:.2f}x wall, "
        f"{journaled.cpu / plain.cpu:.2f}x CPU (budget <= 2x)"
    )


if __name__ == "__main__":
    main()
