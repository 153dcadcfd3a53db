"""Benchmark: the memory of a long live (paper) run must stay flat after warm-up.

Run: ``python benchmarks/bench_live_memory.py [--strategies N] [--candles N]
[--warmup N] [--every N]``. Many strategies run through the engine the way
``run_live`` runs them (no journal), on one synthetic series; the resident set
size is read from ``/proc/self/statm`` after ``--warmup`` candles, every
``--every`` candles, and at the end. docs/architecture.md's budget: memory flat over time.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Iterator

from tradekit.config import StrategyConfig, TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.data.sources import FrameSource
from tradekit.data.synthetic import synthetic_frame
from tradekit.domain import Candle
from tradekit.logs import log
from tradekit.runtime.bootstrap import LIVE_EQUITY_POINTS, LIVE_TRADES_KEPT
from tradekit.runtime.engine import Engine

SYMBOL = "BTC/USDT"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    """Resident set size of this process, from ``/proc/self/statm`` (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def make_config(index: int) -> StrategyConfig:
    """An RSI(14) reversion strategy; thresholds and exits vary with ``index``."""
    low = 25 + index % 10
    return StrategyConfig.model_validate(
        {
            "strategy_id": f"rsi-{index}",
            "symbols": [SYMBOL],
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


def stream(candles: int) -> Iterator[Candle]:
    return FrameSource({(SYMBOL, "1h"): synthetic_frame(SYMBOL, "1h", candles, seed=5)}).stream()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=1_000)
    parser.add_argument("--candles", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000, help="candles before the baseline")
    parser.add_argument("--every", type=int, default=2_000, help="candles between readings")
    parser.add_argument(
        "--unbounded", action="store_true", help="keep every equity point and trade (backtest)"
    )
    args = parser.parse_args()
    log.remove()
    bounds = (
        {}
        if args.unbounded
        else {
            "max_equity_points": LIVE_EQUITY_POINTS,
            "max_trades_kept": LIVE_TRADES_KEPT,
        }
    )
    shared = SharedContainer(settings=TradekitSettings(_env_file=None))
    engine = Engine(TradingOrchestratorFactory(shared, **bounds))
    engine.load(make_config(index) for index in range(args.strategies))
    history = (
        "unbounded history"
        if args.unbounded
        else (f"history bounded to {LIVE_EQUITY_POINTS:,} equity points, {LIVE_TRADES_KEPT} trades")
    )
    print(
        f"live engine, no journal: {args.strategies:,} strategies x {args.candles:,} candles "
        f"({history})",
        flush=True,
    )
    print(f"  loaded: RSS {rss_mib():.0f} MiB", flush=True)
    started = time.perf_counter()
    baseline = 0.0
    for count, candle in enumerate(stream(args.candles), start=1):
        engine.on_candle(candle)
        if count == args.warmup or count % args.every == 0 or count == args.candles:
            gc.collect()
            rss = rss_mib()
            if count == args.warmup:
                baseline = rss
            grown = f", {rss - baseline:+.0f} MiB since warm-up" if baseline else ""
            print(
                f"  {count:>7,} candles: RSS {rss:.0f} MiB{grown} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    trades = sum(entry["trades"] for entry in engine.report().values())
    engine.shutdown()
    if baseline:
        per_point = (rss_mib() - baseline) * 2**20 / args.strategies / (args.candles - args.warmup)
        print(f"  {trades:,} trades; growth after warm-up: {per_point:.1f} bytes/strategy/candle")


if __name__ == "__main__":
    main()
