"""Benchmark: live ``Engine.on_candle`` latency next to a plain-Python incremental loop.

Run: ``python benchmarks/bench_live_latency.py [--candles N] [--warmup N]``.
RSI(14) cross strategies (long on the cross below a level, exit on the cross
above its mirror) run through the engine the way a paper run drives them (no
journal): 10, 100 and 1,000 strategies on one symbol, and 1,000 spread over 10
symbols. Warm-up history seeds the indicators, then ``--candles`` closed
candles per symbol are timed one ``on_candle`` call at a time. In the same run a
plain-Python loop does the same work per candle and strategy (an incremental
Wilder RSI and the same cross rule, one RSI per strategy). Printed: mean and p99
per candle, the cost per candle x strategy of both, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tradekit.config import StrategyConfig, TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.data.sources import FrameSource
from tradekit.data.synthetic import synthetic_frame
from tradekit.domain import Candle
from tradekit.logs import log
from tradekit.runtime.engine import Engine

LENGTH = 14
CASES = ((10, 1), (100, 1), (1_000, 1), (1_000, 10))


def symbol_name(index: int) -> str:
    return f"SYM{index}/USDT"


def level(index: int) -> float:
    return 25.0 + index % 10


def make_config(index: int, symbol: str) -> StrategyConfig:
    """An RSI(14) cross strategy whose entry level varies with ``index``."""
    low = level(index)
    return StrategyConfig.model_validate(
        {
            "strategy_id": f"rsi-{index}",
            "symbols": [symbol],
            "timeframe": "1h",
            "indicators": [{"name": "rsi", "params": {"length": LENGTH}}],
            "analyzers": [
                {"type": "threshold", "params": {"source": "rsi", "below": low, "above": 100 - low}}
            ],
            "exit": {"exit_on_opposite_signal": True},
        }
    )


def candles_of(symbols: int, count: int) -> list[Candle]:
    """``count`` hourly candles per symbol, interleaved in time order."""
    frames = {
        (symbol_name(index), "1h"): synthetic_frame(symbol_name(index), "1h", count, seed=index + 3)
        for index in range(symbols)
    }
    return list(FrameSource(frames).stream())


class PlainRsiCross:
    """The reference: one strategy's incremental Wilder RSI and cross rule in plain Python."""

    __slots__ = ("above", "below", "count", "gain", "holding", "loss", "previous", "rsi", "trades")

    def __init__(self, below: float, above: float) -> None:
        self.below, self.above = below, above
        self.count = 0
        self.gain = self.loss = 0.0
        self.previous: float | None = None
        self.rsi: float | None = None
        self.holding = False
        self.trades = 0

    def on_close(self, close: float) -> None:
        previous, self.previous = self.previous, close
        if previous is None:
            return
        change = close - previous
        gain, loss = (change, 0.0) if change > 0 else (0.0, -change)
        self.count += 1
        if self.count <= LENGTH:
            self.gain += gain / LENGTH
            self.loss += loss / LENGTH
            if self.count < LENGTH:
                return
        else:
            self.gain += (gain - self.gain) / LENGTH
            self.loss += (loss - self.loss) / LENGTH
        total = self.gain + self.loss
        rsi = 100.0 * self.gain / total if total else 50.0
        last, self.rsi = self.rsi, rsi
        if last is None:
            return
        if not self.holding and last >= self.below > rsi:
            self.holding = True
            self.trades += 1
        elif self.holding and last <= self.above < rsi:
            self.holding = False


@dataclass(frozen=True)
class Figures:
    """One measured run: seconds per candle and candle x strategy pairs processed."""

    latencies: list[float]
    pairs: int

    @property
    def per_pair_us(self) -> float:
        return sum(self.latencies) / self.pairs * 1e6

    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1e3

    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] * 1e3


def run_engine(
    strategies: int, symbols: int, history: Sequence[Candle], live: Sequence[Candle]
) -> Figures:
    shared = SharedContainer(settings=TradekitSettings(_env_file=None))
    engine = Engine(TradingOrchestratorFactory(shared))
    engine.load(make_config(index, symbol_name(index % symbols)) for index in range(strategies))
    engine.warm_up(history)
    per_symbol = strategies // symbols
    latencies = []
    on_candle = engine.on_candle
    for candle in live:
        started = time.perf_counter()
        on_candle(candle)
        latencies.append(time.perf_counter() - started)
    engine.shutdown()
    return Figures(latencies, len(live) * per_symbol)


def run_plain(
    strategies: int, symbols: int, history: Sequence[Candle], live: Sequence[Candle]
) -> Figures:
    books: dict[str, list[PlainRsiCross]] = {symbol_name(index): [] for index in range(symbols)}
    for index in range(strategies):
        low = level(index)
        books[symbol_name(index % symbols)].append(PlainRsiCross(low, 100 - low))
    for candle in history:
        for book in books[candle.symbol]:
            book.on_close(candle.close)
    latencies = []
    for candle in live:
        started = time.perf_counter()
        close = candle.close
        for book in books[candle.symbol]:
            book.on_close(close)
        latencies.append(time.perf_counter() - started)
    return Figures(latencies, len(live) * (strategies // symbols))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=300, help="timed candles per symbol")
    parser.add_argument("--warmup", type=int, default=500, help="history candles per symbol")
    args = parser.parse_args()
    log.remove()
    print(
        f"live on_candle, RSI({LENGTH}) cross strategies, {args.warmup} history + "
        f"{args.candles} timed candles per symbol (paper, no journal)"
    )
    print(
        f"{'strategies':>10} {'symbols':>7} | {'mean ms':>8} {'p99 ms':>8} {'us/cand*strat':>13} "
        f"| {'plain us':>8} | {'ratio':>7}"
    )
    for strategies, symbols in CASES:
        candles = candles_of(symbols, args.warmup + args.candles)
        split = args.warmup * symbols
        history, live = candles[:split], candles[split:]
        engine = run_engine(strategies, symbols, history, live)
        plain = run_plain(strategies, symbols, history, live)
        print(
            f"{strategies:>10,} {symbols:>7} | {engine.mean_ms():>8.3f} {engine.p99_ms():>8.3f} "
            f"{engine.per_pair_us:>13.2f} | {plain.per_pair_us:>8.3f} | "
            f"{engine.per_pair_us / plain.per_pair_us:>6.0f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
