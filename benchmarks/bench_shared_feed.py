"""Benchmark: one feed shared by many bots on one symbol, as a paper run drives them.

Run: ``python benchmarks/bench_shared_feed.py [--strategies N] [--candles N]
[--warmup N]``. ``--strategies`` RSI bots trade one symbol's 1h candles through
``run_live`` (paper, no journal). A feed hands the loop one closed candle at a
time; the loop asks for the next one only when every bot has processed the
previous one, so the time from handing candle k over to being asked for candle
k + 1 is the latency from a closed candle's arrival to every bot having
processed it. Printed: its median, p99 and maximum, the candles per second, and
the resident set size after ``--warmup`` candles and at the end (flat memory is
the budget in docs/architecture.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator

from bench_live_memory import SYMBOL, make_config, rss_mib
from tradekit.config import TradekitSettings
from tradekit.data.sources import FrameSource
from tradekit.data.synthetic import synthetic_frame
from tradekit.domain import Candle
from tradekit.logs import log
from tradekit.runtime.live import run_live


class TimedFeed:
    """Hands candles over one by one and times how long the loop takes to ask again."""

    def __init__(self, candles: int, warmup: int) -> None:
        frame = synthetic_frame(SYMBOL, "1h", candles, seed=11)
        self._candles = list(FrameSource({(SYMBOL, "1h"): frame}).stream())
        self._warmup = warmup
        self.latencies: list[float] = []
        self.rss_after_warmup = 0.0

    def __iter__(self) -> Iterator[Candle]:
        for count, candle in enumerate(self._candles, start=1):
            handed = time.perf_counter()
            yield candle
            self.latencies.append(time.perf_counter() - handed)
            if count == self._warmup:
                self.rss_after_warmup = rss_mib()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=1_000)
    parser.add_argument("--candles", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000, help="candles before the baseline")
    args = parser.parse_args()
    log.remove()
    configs = [make_config(index) for index in range(args.strategies)]
    feed = TimedFeed(args.candles, args.warmup)
    print(
        f"one {SYMBOL} 1h feed shared by {args.strategies:,} bots, {args.candles:,} candles "
        "(paper, no journal)",
        flush=True,
    )
    started = time.perf_counter()
    summary = run_live(TradekitSettings(_env_file=None), configs, feed, health_interval=1e9)
    elapsed = time.perf_counter() - started
    rss_end = rss_mib()
    measured = feed.latencies[args.warmup :]
    quantiles = statistics.quantiles(measured, n=100)
    trades = sum(entry.get("trades", 0) for entry in summary.report.values())
    print(f"  {summary.candles:,} candles in {elapsed:.1f} s, {trades:,} trades")
    median_ms = statistics.median(measured) * 1e3
    print(
        f"  candle arrival -> every bot processed it: median {median_ms:.2f} ms, "
        f"p99 {quantiles[98] * 1e3:.2f} ms, max {max(measured) * 1e3:.2f} ms"
    )
    print(f"  {len(measured) / sum(measured):,.0f} candles/s after warm-up")
    print(
        f"  RSS after {args.warmup:,} candles {feed.rss_after_warmup:.0f} MiB, "
        f"at the end {rss_end:.0f} MiB ({rss_end - feed.rss_after_warmup:+.0f} MiB)"
    )


if __name__ == "__main__":
    main()
