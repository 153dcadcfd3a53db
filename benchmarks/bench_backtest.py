"""tradekit against backtrader on one RSI 30/70 strategy: wall time, memory, identical trades.

Run: ``.venv/bin/pip install -e ".[bench]"``, then
``.venv/bin/python benchmarks/bench_backtest.py [--bars 100000] [--profile]``.

The strategy, the same in both frameworks: RSI(n) of the close; buy 1,000 quote
worth when RSI crosses below 30 while flat; sell the whole position when RSI
crosses above 70; every order fills at the close of the candle it was decided
on (tradekit: fill rule ``close``; backtrader: cheat-on-close); no fees, no
slippage, no stops, one position at a time. A cross needs the previous RSI
value, so the first possible signal is bar n + 1 in both; the RSI values agree
to ~1e-14 from their first bar (printed), so no warm-up alignment is applied.

Sizing is a fixed quote amount: it is what tradekit's ``fixed_quote`` sizing
says (tradekit has no fixed-units sizing), and backtrader's ``buy(size=1000 /
close)`` computes the same float from the same float64 close. Capital is large
enough that cash and the per-trade risk limit never bind.

"10 strategies in one run" is ten strategy objects in one engine over one data
feed: ten ``StrategyConfig``s in one ``backtest()`` call, and ten ``Strategy``
instances in one ``Cerebro``. backtrader nets positions per data feed across
strategies, so each instance keeps its own position from its own order
notifications. One strategy class juggling ten RSIs would be one strategy.

Each framework and run is measured in a fresh subprocess, so its peak RSS
(VmHWM) is its own. backtrader runs without its default observers
(``stdstats=False``), which only makes it faster.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

import numpy as np
import pandas as pd

try:
    import backtrader as bt
except ModuleNotFoundError as exc:
    raise SystemExit(
        "this benchmark needs backtrader: .venv/bin/pip install -e '.[bench]'"
    ) from exc

import tradekit.runtime.backtest as tradekit_backtest
from tradekit.config import StrategyConfig, TradekitSettings
from tradekit.data import synthetic_frame
from tradekit.domain import OrderSide
from tradekit.events import ActionFailed, OrderFilled, RiskRejected, StrategyFailed
from tradekit.logs import configure_logging
from tradekit.runtime.backtest import BacktestResult, backtest
from tradekit.runtime.engine import Engine
from tradekit.services.indicators.backend import rsi as tradekit_rsi
from tradekit.services.indicators.cache import IndicatorCache

SYMBOL = "BTC/USDT"
TIMEFRAME = "1h"
BAR_SECONDS = 3600
SEED = 7
BARS = 100_000
QUOTE_AMOUNT = 1_000.0
CAPITAL = 1_000_000.0
OVERSOLD = 30.0
OVERBOUGHT = 70.0
ONE = (14,)
TEN = tuple(range(10, 20))
TRADEKIT_REPEATS = 3
BACKTRADER_REPEATS = 1
NAUTILUS_ANCHOR_S = 6.2  # nautilus_trader on this backtest, measured earlier (docs/architecture.md)
BACKTRADER_ANCHOR_S = 19.9  # backtrader on this backtest, measured earlier (docs/architecture.md)
PROFILE_TOP = 15


class TradeRecord(NamedTuple):
    """One round trip; the exit fields are None while the position is still open."""

    entry_bar: int
    entry_time: str
    entry_price: float
    quantity: float
    exit_bar: int | None
    exit_time: str | None
    exit_price: float | None


Trades = dict[int, list[TradeRecord]]
"""Round trips per RSI length, oldest first."""


class Fill(NamedTuple):
    bar: int
    is_buy: bool
    price: float
    quantity: float


def market_frame(bars: int = BARS) -> pd.DataFrame:
    """The seeded synthetic 1h series both frameworks trade."""
    return synthetic_frame(SYMBOL, TIMEFRAME, bars, seed=SEED)


def _bar_of_open_second(frame: pd.DataFrame) -> dict[int, int]:
    seconds = pd.DatetimeIndex(frame.index).as_unit("s").asi8
    return {int(second): bar for bar, second in enumerate(seconds)}


def _round_trips(fills: Sequence[Fill], frame: pd.DataFrame, who: str) -> list[TradeRecord]:
    """Pair buy and sell fills into round trips; a strategy holds one position at a time."""
    time_of = frame.index
    records: list[TradeRecord] = []
    entry: Fill | None = None
    for fill in fills:
        if fill.is_buy and entry is None:
            entry = fill
        elif not fill.is_buy and entry is not None and fill.quantity == entry.quantity:
            opened = (entry.bar, time_of[entry.bar].isoformat(), entry.price, entry.quantity)
            closed = (fill.bar, time_of[fill.bar].isoformat(), fill.price)
            records.append(TradeRecord(*opened, *closed))
            entry = None
        else:
            raise RuntimeError(f"{who}: fill {fill} does not fit one position at a time")
    if entry is not None:
        start = time_of[entry.bar].isoformat()
        records.append(TradeRecord(entry.bar, start, entry.price, entry.quantity, None, None, None))
    return records


# -- tradekit -----------------------------------------------------------------------------


def tradekit_config(length: int) -> StrategyConfig:
    cross = {"source": "rsi", "below": OVERSOLD, "above": OVERBOUGHT, "mode": "cross"}
    return StrategyConfig.model_validate(
        {
            "strategy_id": f"rsi-{length}",
            "symbols": [SYMBOL],
            "timeframe": TIMEFRAME,
            "capital": CAPITAL,
            "indicators": [{"name": "rsi", "params": {"length": length}}],
            "analyzers": [{"type": "threshold", "params": cross}],
            "entry": {
                "side": "long",
                "sizing": {"mode": "fixed_quote", "quote_amount": QUOTE_AMOUNT},
            },
            "exit": {"exit_on_opposite_signal": True},
            # Without a stop the whole position counts as at risk: allow all of equity.
            "risk": {"max_open_positions": 1, "risk_per_trade_pct": 100},
        }
    )


def run_tradekit(frame: pd.DataFrame, lengths: Sequence[int]) -> BacktestResult:
    return run_tradekit_configs(frame, [tradekit_config(length) for length in lengths])


def run_tradekit_configs(frame: pd.DataFrame, configs: Sequence[StrategyConfig]) -> BacktestResult:
    """Backtest ``configs`` over ``frame``: paper fills at the close, no fees, no slippage."""
    settings = TradekitSettings(
        _env_file=None,
        exchange={"kind": "paper", "fee_bps": 0.0, "slippage_bps": 0.0, "fill_rule": "close"},
    )
    return backtest(settings, configs, {(SYMBOL, TIMEFRAME): frame})


def tradekit_trades(result: BacktestResult, frame: pd.DataFrame) -> Trades:
    """Round trips from the exchange's fills (``OrderFilled``), checked against the ``Trade``s.

    Fills, not ``Trade`` averages: an average is (quantity x price) / quantity,
    which can be 1 ulp off the price filled at.
    """
    problems = (StrategyFailed, ActionFailed, RiskRejected)
    failed = [event for event in result.events if isinstance(event, problems)]
    if failed:
        raise RuntimeError(f"tradekit: the run was not clean; first problem: {failed[0]}")
    bar_of = _bar_of_open_second(frame)
    fills: dict[str, list[Fill]] = {strategy_id: [] for strategy_id in result.strategies}
    for event in result.events:
        if isinstance(event, OrderFilled):  # stamped at the close of the candle filled on
            bar = bar_of[int(event.ts.timestamp()) - BAR_SECONDS]
            buy = event.side is OrderSide.BUY
            fills[event.strategy_id].append(Fill(bar, buy, event.price, event.quantity))
    trades: Trades = {}
    for strategy_id, strategy in result.strategies.items():
        records = _round_trips(fills[strategy_id], frame, f"tradekit {strategy_id}")
        closed = sum(record.exit_bar is not None for record in records)
        if closed != len(strategy.trades):
            trade_count = len(strategy.trades)
            raise RuntimeError(
                f"tradekit {strategy_id}: {closed} round trips, {trade_count} trades"
            )
        trades[int(strategy_id.removeprefix("rsi-"))] = records
    return trades


@contextmanager
def tradekit_phases() -> Iterator[dict[str, float]]:
    """Stamp the start and end of the steps ``backtest()`` takes once per run.

    Only calls made once per run are wrapped, never per-candle ones, so the
    stamps cost nothing; relies on the current structure of ``backtest()``.
    """
    stamps: dict[str, float] = {}

    def stamped(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            stamps.setdefault(f"{name}_start", time.perf_counter())
            value = function(*args, **kwargs)
            stamps[f"{name}_end"] = time.perf_counter()
            return value

        return wrapper

    precompute = IndicatorCache.precompute
    results = tradekit_backtest._strategy_result
    with (
        mock.patch.object(Engine, "load", stamped("load", Engine.load)),
        mock.patch.object(IndicatorCache, "precompute", stamped("indicators", precompute)),
        mock.patch.object(tradekit_backtest, "_strategy_result", stamped("results", results)),
    ):
        yield stamps


def tradekit_breakdown(frame: pd.DataFrame, lengths: Sequence[int]) -> dict[str, float]:
    with tradekit_phases() as stamps:
        started = time.perf_counter()
        run_tradekit(frame, lengths)
        ended = time.perf_counter()
    return {
        "series load, shared container": stamps["load_start"] - started,
        "build strategy containers": stamps["load_end"] - stamps["load_start"],
        "indicator precompute": stamps["indicators_end"] - stamps["indicators_start"],
        "replay (candles through engine)": stamps["results_start"] - stamps["indicators_end"],
        "results (stats, portfolio)": ended - stamps["results_start"],
        "total": ended - started,
    }


# -- backtrader ---------------------------------------------------------------------------


class RsiReversion(bt.Strategy):  # type: ignore[misc]
    """The same RSI 30/70 strategy, keeping its own position from its own fills."""

    params = (("length", 14), ("quote_amount", QUOTE_AMOUNT))

    def __init__(self) -> None:
        self.rsi = bt.indicators.RSI(self.data.close, period=self.p.length)
        self.fills: list[tuple[bool, float, float, float]] = []
        self.held = 0.0
        self.order: Any = None

    def next(self) -> None:
        if self.order is not None:
            return
        now = self.rsi[0]
        previous = self.rsi[-1]  # NaN before the first RSI value: no cross, as in tradekit
        if self.held == 0.0:
            if now < OVERSOLD and previous >= OVERSOLD:
                self.order = self.buy(size=self.p.quote_amount / self.data.close[0])
        elif now > OVERBOUGHT and previous <= OVERBOUGHT:
            self.order = self.sell(size=self.held)

    def notify_order(self, order: Any) -> None:
        if order.status in (order.Submitted, order.Accepted):
            return
        if order.status != order.Completed:
            status = order.getstatusname()
            raise RuntimeError(f"backtrader RSI({self.p.length}): order {order.ref} {status}")
        # The execution bits hold the prices filled at; ``executed.price`` is their
        # size-weighted average, which can be 1 ulp off.
        for bit in order.executed.exbits:
            self.fills.append((order.isbuy(), bit.dt, bit.price, abs(bit.size)))
        self.held += order.executed.size
        self.order = None


def run_backtrader(frame: pd.DataFrame, lengths: Sequence[int]) -> list[RsiReversion]:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(CAPITAL)
    cerebro.broker.setcommission(commission=0.0)
    cerebro.broker.set_coc(True)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame.tz_convert(None)))
    for length in lengths:
        cerebro.addstrategy(RsiReversion, length=length)
    return list(cerebro.run())


def backtrader_trades(strategies: Sequence[RsiReversion], frame: pd.DataFrame) -> Trades:
    bar_of = _bar_of_open_second(frame)
    trades: Trades = {}
    for strategy in strategies:
        fills = []
        for buy, number, price, size in strategy.fills:
            second = round(bt.num2date(number).replace(tzinfo=UTC).timestamp())
            fills.append(Fill(bar_of[second], buy, price, size))
        length = strategy.p.length
        trades[length] = _round_trips(fills, frame, f"backtrader RSI({length})")
    return trades


class RsiAgreement(NamedTuple):
    length: int
    tradekit_first_bar: int
    backtrader_first_bar: int
    max_abs_difference: float
    threshold_side_disagreements: int


def rsi_agreement(strategies: Sequence[RsiReversion], frame: pd.DataFrame) -> list[RsiAgreement]:
    """backtrader's RSI line against what tradekit's indicator backend computes."""
    close = frame["close"].to_numpy()
    found = []
    for strategy in strategies:
        ours = tradekit_rsi(close, strategy.p.length)["value"]
        theirs = np.asarray(strategy.rsi.array, dtype=np.float64)[: close.size]
        both = ~np.isnan(ours) & ~np.isnan(theirs)
        sides = sum(
            int(np.sum((ours[both] < level) != (theirs[both] < level)))
            + int(np.sum((ours[both] > level) != (theirs[both] > level)))
            for level in (OVERSOLD, OVERBOUGHT)
        )
        first_ours = int(np.flatnonzero(~np.isnan(ours))[0])
        first_theirs = int(np.flatnonzero(~np.isnan(theirs))[0])
        largest = float(np.max(np.abs(ours[both] - theirs[both])))
        found.append(RsiAgreement(strategy.p.length, first_ours, first_theirs, largest, sides))
    return found


def first_difference(tradekit: Mapping[int, list[TradeRecord]], other: Trades) -> str | None:
    """The first way the two trade lists differ, in words; None when identical (exact floats)."""
    if sorted(tradekit) != sorted(other):
        return f"strategies differ: tradekit {sorted(tradekit)}, backtrader {sorted(other)}"
    for length in sorted(tradekit):
        ours, theirs = tradekit[length], other[length]
        for number, (left, right) in enumerate(zip(ours, theirs, strict=False)):
            for name in TradeRecord._fields:
                if getattr(left, name) != getattr(right, name):
                    return (
                        f"RSI({length}) trade {number}: {name} tradekit {getattr(left, name)!r}, "
                        f"backtrader {getattr(right, name)!r}\n"
                        f"      tradekit   {left}\n      backtrader {right}"
                    )
        if len(ours) != len(theirs):
            unmatched = ours[len(theirs)] if len(ours) > len(theirs) else theirs[len(ours)]
            return (
                f"RSI({length}): {len(ours)} trades vs {len(theirs)}; first unmatched {unmatched}"
            )
    return None


# -- workers: one framework, one run, one fresh process -----------------------------------


def _rss_kib(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (peak) of this process in KiB; ru_maxrss without /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def worker(framework: str, bars: int, lengths: Sequence[int], repeats: int) -> dict[str, Any]:
    configure_logging("WARNING")
    frame = market_frame(bars)
    run = run_tradekit if framework == "tradekit" else run_backtrader
    seconds: list[float] = []
    outcome: Any = None
    gc.collect()
    report: dict[str, Any] = {"baseline_rss_kib": _rss_kib("VmRSS"), "seconds": seconds}
    for _ in range(repeats):
        outcome = None  # the previous run's objects must not raise this run's peak
        gc.collect()
        started = time.perf_counter()
        outcome = run(frame, lengths)
        seconds.append(time.perf_counter() - started)
    report["peak_rss_kib"] = _rss_kib("VmHWM")
    if framework == "tradekit":
        trades = tradekit_trades(outcome, frame)
        outcome = None
        report["phases"] = tradekit_breakdown(frame, lengths)
    else:
        trades = backtrader_trades(outcome, frame)
        report["rsi"] = [list(row) for row in rsi_agreement(outcome, frame)]
    report["trades"] = {str(length): [list(row) for row in rows] for length, rows in trades.items()}
    return report


def run_worker(framework: str, bars: int, lengths: Sequence[int], repeats: int) -> dict[str, Any]:
    """Run ``worker`` in a fresh interpreter and read its report back."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "report.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", framework]
        command += ["--bars", str(bars), "--repeats", str(repeats), "--out", str(out)]
        command += ["--lengths", ",".join(map(str, lengths))]
        subprocess.run(command, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        report: dict[str, Any] = json.loads(out.read_text())
    report["trades"] = {
        int(length): [TradeRecord(*row) for row in rows]
        for length, rows in report["trades"].items()
    }
    return report


# -- report -------------------------------------------------------------------------------


def _print_run(name: str, report: dict[str, Any], bars: int, strategies: int) -> float:
    best = min(report["seconds"])
    every = ", ".join(f"{second:.2f}" for second in report["seconds"])
    peak, before = report["peak_rss_kib"] / 1024, report["baseline_rss_kib"] / 1024
    print(
        f"  {name:<10} {best:7.2f} s (runs: {every})  {bars * strategies / best:>9,.0f} "
        f"bar-strategies/s  peak RSS {peak:6.1f} MiB ({peak - before:+.1f} over {before:.1f})"
    )
    return best


def compare(bars: int, lengths: Sequence[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = f"RSI({lengths[0]})" if len(lengths) == 1 else f"RSI({lengths[0]}..{lengths[-1]})"
    count = f"{len(lengths)} strateg{'y' if len(lengths) == 1 else 'ies'}"
    print(f"\n{count} in one run, {names}:")
    tradekit = run_worker("tradekit", bars, lengths, TRADEKIT_REPEATS)
    other = run_worker("backtrader", bars, lengths, BACKTRADER_REPEATS)
    tradekit_best = _print_run("tradekit", tradekit, bars, len(lengths))
    other_best = _print_run("backtrader", other, bars, len(lengths))
    print(f"  backtrader / tradekit time: {other_best / tradekit_best:.1f}x")
    trades = sum(len(records) for records in tradekit["trades"].values())
    difference = first_difference(tradekit["trades"], other["trades"])
    print(
        f"  trades identical: {'yes' if difference is None else 'no'} ({trades} round trips: "
        "entry and exit bar, time and price, quantity; exact float equality)"
    )
    if difference is not None:
        print(f"    first difference: {difference}")
    print("  inside tradekit's run (one more run, timed by phase):")
    for phase, seconds in tradekit["phases"].items():
        print(f"    {phase:<34} {seconds:7.3f} s")
    return tradekit, other


def profile_tradekit(bars: int, lengths: Sequence[int]) -> None:
    frame = market_frame(bars)
    profiler = cProfile.Profile()
    profiler.runcall(run_tradekit, frame, lengths)
    stats: Any = pstats.Stats(profiler)
    print(f"\ncProfile of tradekit's {len(lengths)}-strategy run: {stats.total_tt:.1f} s profiled")
    print(
        f"  top {PROFILE_TOP} by own time\n  {'tottime':>8} {'cumtime':>8} {'calls':>10}  function"
    )
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)
    for (filename, line, function), (_, calls, own, cumulative, _) in rows[:PROFILE_TOP]:
        where = filename.rsplit("site-packages/", 1)[-1].rsplit("src/", 1)[-1]
        print(f"  {own:8.3f} {cumulative:8.3f} {calls:>10,}  {function} ({where}:{line})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=BARS)
    parser.add_argument("--profile", action="store_true", help="cProfile tradekit's 10 strategies")
    for hidden in ("--worker", "--lengths", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        lengths = [int(length) for length in args.lengths.split(",")]
        report = worker(args.worker, args.bars, lengths, args.repeats)
        Path(args.out).write_text(json.dumps(report))
        return
    configure_logging("WARNING")
    bars = args.bars
    print(
        f"RSI 30/70 reversion on {bars:,} synthetic {TIMEFRAME} bars (seed {SEED}): "
        f"{QUOTE_AMOUNT:,.0f} quote per entry, fills at the signal candle's close, no fees"
    )
    print(
        f"tradekit best of {TRADEKIT_REPEATS}, backtrader {BACKTRADER_REPEATS} run; each "
        f"framework and run in its own process; load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    tradekit_one, _ = compare(bars, ONE)
    tradekit_ten, other_ten = compare(bars, TEN)

    print("\nRSI of both (backtrader's line vs tradekit's pandas-ta backend):")
    for length, ours, theirs, largest, sides in other_ten["rsi"]:
        print(
            f"  RSI({length}): first value at bar {ours} / {theirs}; max |difference| "
            f"{largest:.1e}; bars on different sides of 30 or 70: {sides}"
        )
    same = tradekit_one["trades"][14] == tradekit_ten["trades"][14]
    print(f"tradekit RSI(14) trades the same alone and among ten: {'yes' if same else 'no'}")

    ours, theirs = min(tradekit_ten["seconds"]), min(other_ten["seconds"])
    verdict = "PASS" if ours <= theirs / 10 else "OVER"
    print(
        f"\nbudget, tradekit's 10-strategy run <= 1/10 of backtrader's: {ours:.2f} s, "
        f"allowed {theirs / 10:.2f} s (backtrader {theirs / ours:.1f}x slower)  {verdict}"
    )
    allowed = NAUTILUS_ANCHOR_S / 3
    print(
        f"docs/architecture.md budget, <= 1/3 of nautilus_trader's {NAUTILUS_ANCHOR_S} s "
        f"anchor (not re-measured) = {allowed:.2f} s: {'PASS' if ours <= allowed else 'OVER'}; "
        f"backtrader took {theirs:.1f} s here against its {BACKTRADER_ANCHOR_S} s anchor"
    )
    if args.profile:
        profile_tradekit(bars, TEN)


if __name__ == "__main__":
    main()
