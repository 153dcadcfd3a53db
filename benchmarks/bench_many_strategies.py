"""Many RSI-cross strategies on one series: time, CPU, peak RSS per strategy, identical trades.

Run: ``.venv/bin/pip install -e ".[bench]"``, then
``.venv/bin/python benchmarks/bench_many_strategies.py [--strategies 100,1000] [--bars 100000]``.

Each strategy is ``bench_backtest``'s RSI reversion (buy 1,000 quote when the RSI
crosses below its low level while flat, sell all when it crosses above its high
level, fills at the signal candle's close, no fees) with its own RSI length
(10..59) and levels (30/70, 29/71, ...). Every case runs in a fresh process, so
its peak RSS (VmHWM) is its own; "per strategy" is the peak above the process's
baseline (data loaded, libraries imported) divided by the strategies.

The trades are checked against a plain-Python loop over the same RSI values
(tradekit's backend): count, entry and exit bar, time and price, exact floats.
The loop's own time (crosses and fills, given the RSI) is printed beside.
Budgets (issue 11): at most 1 MiB per strategy, at most 1.5x vectorbt's time,
and at 1,000 strategies under 30 s and 2 GiB.

vectorbt, optional (the ``bench`` extra installs it), runs in its own process:
given the same RSI values, it computes the crosses and simulates with
``Portfolio.from_signals``; its trades are checked against the loop too. Its RSI
is not used: vectorbt's smoothing differs from Wilder's, so its trades would
differ. ``--vectorbt-python`` (or ``TRADEKIT_VECTORBT_PYTHON``) names another
interpreter that has vectorbt (its own venv); without one the comparison is
skipped and the output says so. Nothing is downloaded at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench_backtest import (
    BAR_SECONDS,
    BARS,
    OVERBOUGHT,
    OVERSOLD,
    QUOTE_AMOUNT,
    SEED,
    TIMEFRAME,
    Fill,
    _bar_of_open_second,
    _round_trips,
    _rss_kib,
    market_frame,
    run_tradekit_configs,
    tradekit_config,
)
from tradekit.config import StrategyConfig
from tradekit.domain import OrderSide
from tradekit.events import ActionFailed, OrderFilled, RiskRejected, StrategyFailed
from tradekit.logs import configure_logging
from tradekit.runtime.backtest import BacktestResult
from tradekit.services.indicators.backend import rsi as tradekit_rsi

CASES = (100, 1000)
LENGTHS = tuple(range(10, 60))
MEMORY_BUDGET_MIB_PER_STRATEGY = 1.0
VECTORBT_BUDGET = 1.5
"""At most this many times vectorbt's time (wall and CPU)."""
LARGE_CASE, LARGE_CASE_SECONDS, LARGE_CASE_MIB = 1000, 30, 2048
"""From this many strategies: wall time and whole peak RSS budgets."""
VECTORBT_ENV = "TRADEKIT_VECTORBT_PYTHON"

Strategy = tuple[int, float, float]
"""RSI length, low level, high level."""


def strategies(count: int) -> list[Strategy]:
    """``count`` distinct RSI-cross strategies: every length, then the next pair of levels."""
    return [
        (LENGTHS[k % len(LENGTHS)], OVERSOLD - k // len(LENGTHS), OVERBOUGHT + k // len(LENGTHS))
        for k in range(count)
    ]


def strategy_id(strategy: Strategy) -> str:
    length, low, high = strategy
    return f"rsi-{length}-{low:g}-{high:g}"


def config(strategy: Strategy) -> StrategyConfig:
    """``bench_backtest``'s strategy with this length and these levels."""
    data = tradekit_config(strategy[0]).model_dump(mode="json")
    data["strategy_id"] = strategy_id(strategy)
    data["analyzers"][0]["params"].update(below=strategy[1], above=strategy[2])
    return StrategyConfig.model_validate(data)


def plain_fills(closes: list[float], rsi: list[float], low: float, high: float) -> list[Fill]:
    """The plain-Python loop: crosses of the given RSI values and fills, one bar at a time."""
    fills: list[Fill] = []
    quantity = 0.0
    for bar in range(1, len(closes)):
        previous, now = rsi[bar - 1], rsi[bar]
        if quantity == 0.0 and previous >= low and now < low:
            quantity = QUOTE_AMOUNT / closes[bar]
            fills.append(Fill(bar, True, closes[bar], quantity))
        elif quantity and previous <= high and now > high:
            fills.append(Fill(bar, False, closes[bar], quantity))
            quantity = 0.0
    return fills


def reference_trades(
    frame: pd.DataFrame, chosen: Sequence[Strategy]
) -> tuple[dict[str, list[Any]], float, float]:
    """The plain loop's round trips per strategy, and its wall and CPU seconds given the RSI
    values (as vectorbt is given them)."""
    closes = frame["close"].tolist()
    close = frame["close"].to_numpy()
    rsi_of = {length: tradekit_rsi(close, length)["value"].tolist() for length, _, _ in chosen}
    started, cpu = time.perf_counter(), time.process_time()
    fills = [plain_fills(closes, rsi_of[length], low, high) for length, low, high in chosen]
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    trades = {
        strategy_id(strategy): [
            list(record)
            for record in _round_trips(found, frame, f"reference {strategy_id(strategy)}")
        ]
        for strategy, found in zip(chosen, fills, strict=True)
    }
    return trades, seconds, cpu_seconds


def tradekit_trades(result: BacktestResult, frame: pd.DataFrame) -> dict[str, list[Any]]:
    """Round trips from tradekit's fills (``bench_backtest.tradekit_trades``, keyed by id)."""
    problems = (StrategyFailed, ActionFailed, RiskRejected)
    failed = next((event for event in result.events if isinstance(event, problems)), None)
    if failed is not None:
        raise RuntimeError(f"tradekit: the run was not clean; first problem: {failed}")
    bar_of = _bar_of_open_second(frame)
    fills: dict[str, list[Fill]] = {name: [] for name in result.strategies}
    for event in result.events:
        if isinstance(event, OrderFilled):  # stamped at the close of the candle filled on
            bar = bar_of[int(event.ts.timestamp()) - BAR_SECONDS]
            fills[event.strategy_id].append(
                Fill(bar, event.side is OrderSide.BUY, event.price, event.quantity)
            )
    return {
        name: [list(record) for record in _round_trips(fills[name], frame, f"tradekit {name}")]
        for name in result.strategies
    }


def worker(count: int, bars: int) -> dict[str, Any]:
    configure_logging("WARNING")
    frame = market_frame(bars)
    chosen = strategies(count)
    configs = [config(strategy) for strategy in chosen]
    report: dict[str, Any] = {"baseline_rss_kib": _rss_kib("VmRSS")}
    started, cpu = time.perf_counter(), time.process_time()
    result = run_tradekit_configs(frame, configs)
    report["seconds"] = time.perf_counter() - started
    report["cpu_seconds"] = time.process_time() - cpu
    report["peak_rss_kib"] = _rss_kib("VmHWM")
    report["trades"] = tradekit_trades(result, frame)
    return report


def run_in_process(command: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "report.json"
        subprocess.run([*command, "--out", str(out)], check=True, env={**os.environ})
        report: dict[str, Any] = json.loads(out.read_text())
    return report


def vectorbt_python(option: str | None) -> str | None:
    """The interpreter to run vectorbt with: the option, the variable, else this one if it can."""
    chosen = option or os.environ.get(VECTORBT_ENV)
    if chosen:
        return chosen
    probe = subprocess.run([sys.executable, "-c", "import vectorbt"], capture_output=True)
    return sys.executable if probe.returncode == 0 else None


def first_difference(expected: dict[str, list[Any]], found: dict[str, list[Any]]) -> str | None:
    for name, trades in expected.items():
        theirs = found.get(name, [])
        if trades != theirs:
            pairs = zip(trades, theirs, strict=False)
            at = next((number for number, (a, b) in enumerate(pairs) if a != b), None)
            where = min(len(trades), len(theirs)) if at is None else at
            mine = trades[where] if where < len(trades) else None
            other = theirs[where] if where < len(theirs) else None
            return (
                f"{name}: {len(trades)} vs {len(theirs)} trades; trade {where}: {mine} vs {other}"
            )
    return None


def case(count: int, bars: int, vbt_python: str | None) -> None:
    script = str(Path(__file__).resolve())
    print(f"\n{count} strategies x {bars:,} bars:")
    report = run_in_process([sys.executable, script, "--worker", str(count), "--bars", str(bars)])
    peak = report["peak_rss_kib"] / 1024
    above = (report["peak_rss_kib"] - report["baseline_rss_kib"]) / 1024
    per = above / count
    baseline = report["baseline_rss_kib"] / 1024
    verdict = "PASS" if per <= MEMORY_BUDGET_MIB_PER_STRATEGY else "OVER"
    print(
        f"  tradekit   {report['seconds']:7.2f} s wall, {report['cpu_seconds']:7.2f} s CPU, "
        f"{bars * count / report['seconds'] / 1e6:5.2f} M bar-strategies/s"
    )
    print(
        f"             peak RSS {peak:,.0f} MiB: {per:.3f} MiB per strategy above the "
        f"{baseline:.0f} MiB baseline ({verdict}, budget {MEMORY_BUDGET_MIB_PER_STRATEGY} MiB)"
    )
    if count >= LARGE_CASE:
        fits = report["seconds"] < LARGE_CASE_SECONDS and peak < LARGE_CASE_MIB
        print(
            f"             budget at {LARGE_CASE:,} strategies: under {LARGE_CASE_SECONDS} s and "
            f"{LARGE_CASE_MIB:,} MiB peak RSS: {'PASS' if fits else 'OVER'}"
        )
    frame = market_frame(bars)
    chosen = strategies(count)
    expected, plain_seconds, plain_cpu = reference_trades(frame, chosen)
    total = sum(len(trades) for trades in expected.values())
    print(
        f"  plain loop {plain_seconds:7.2f} s wall, {plain_cpu:7.2f} s CPU (crosses + fills in "
        f"Python, given the RSI); tradekit / plain loop: "
        f"{report['cpu_seconds'] / plain_cpu:.1f}x CPU"
    )
    difference = first_difference(expected, report["trades"])
    print(
        f"  trades identical to the plain-Python loop: {'yes' if difference is None else 'no'} "
        f"({total:,} round trips: entry and exit bar, time, price, quantity; exact floats)"
    )
    if difference is not None:
        print(f"    first difference: {difference}")
    if vbt_python is None:
        print(
            f"  vectorbt   skipped: not importable here; give --vectorbt-python or {VECTORBT_ENV}"
        )
        return
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "input.npz", Path(folder) / "output.json"
        close = frame["close"].to_numpy()
        rsi_of = {length: tradekit_rsi(close, length)["value"] for length in LENGTHS}
        np.savez(
            source,
            close=frame["close"].to_numpy(),
            rsi=np.column_stack([rsi_of[length] for length, _, _ in chosen]),
            lows=np.array([low for _, low, _ in chosen]),
            highs=np.array([high for _, _, high in chosen]),
            quote=np.float64(QUOTE_AMOUNT),
        )
        worker_script = Path(__file__).resolve().with_name("vectorbt_worker.py")
        subprocess.run([vbt_python, str(worker_script), str(source), str(target)], check=True)
        theirs = json.loads(target.read_text())
    print(
        f"  vectorbt   {theirs['seconds']:7.2f} s wall, {theirs['cpu_seconds']:7.2f} s CPU "
        "(crosses + from_signals, given the RSI)"
    )
    wall_ratio = report["seconds"] / theirs["seconds"]
    cpu_ratio = report["cpu_seconds"] / theirs["cpu_seconds"]
    verdict = "PASS" if max(wall_ratio, cpu_ratio) <= VECTORBT_BUDGET else "OVER"
    print(
        f"             peak RSS {theirs['peak_rss_kib'] / 1024:,.0f} MiB; tradekit / vectorbt: "
        f"{wall_ratio:.1f}x wall, {cpu_ratio:.1f}x CPU ({verdict}, budget {VECTORBT_BUDGET}x)"
    )
    ours = {name: [[t[0], t[2], t[4], t[6]] for t in trades] for name, trades in expected.items()}
    found = {strategy_id(s): trades for s, trades in zip(chosen, theirs["trades"], strict=True)}
    difference = first_difference(ours, found)
    print(f"  vectorbt trades identical: {'yes' if difference is None else 'no: ' + difference}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default=",".join(map(str, CASES)))
    parser.add_argument("--bars", type=int, default=BARS)
    parser.add_argument("--vectorbt-python", help=f"interpreter with vectorbt (or ${VECTORBT_ENV})")
    for hidden in ("--worker", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        Path(args.out).write_text(json.dumps(worker(int(args.worker), args.bars)))
        return
    vbt_python = vectorbt_python(args.vectorbt_python)
    print(
        f"RSI-cross strategies on {args.bars:,} synthetic {TIMEFRAME} bars (seed {SEED}); each "
        f"case in its own process; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    for count in (int(part) for part in args.strategies.split(",")):
        case(count, args.bars, vbt_python)


if __name__ == "__main__":
    main()
