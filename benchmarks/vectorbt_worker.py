"""vectorbt's side of ``bench_many_strategies``: run by any interpreter that has vectorbt.

Imports neither tradekit nor the other benchmarks, so it runs from vectorbt's own
venv: ``python vectorbt_worker.py INPUT.npz OUTPUT.json``. The input holds the
closes, one RSI column per strategy and each strategy's low and high levels; the
output, the wall and CPU time of the crosses plus ``Portfolio.from_signals``
(after a small run that compiles vectorbt's numba code), the peak RSS,
and each strategy's trades as ``[entry bar, entry price, exit bar, exit price]``
(exit ``None`` while open).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
import vectorbt as vbt

BUY = 0  # vectorbt's order side


def simulate(
    close: np.ndarray, rsi: np.ndarray, lows: np.ndarray, highs: np.ndarray, quote: float
) -> np.ndarray:
    """The orders of every strategy: crosses of its levels, then ``from_signals``."""
    index = pd.date_range("2000-01-01", periods=close.size, freq="h")
    previous = np.vstack([np.full((1, rsi.shape[1]), np.nan), rsi[:-1]])
    entries = (previous >= lows) & (rsi < lows)
    exits = (previous <= highs) & (rsi > highs)
    portfolio = vbt.Portfolio.from_signals(
        pd.Series(close, index=index),
        pd.DataFrame(entries, index=index),
        pd.DataFrame(exits, index=index),
        size=quote,
        size_type="value",
        init_cash=1e15,
        fees=0.0,
        freq="1h",
    )
    records: np.ndarray = portfolio.orders.records_arr
    return records


def peak_rss_kib() -> int:
    """``VmHWM`` of this process in KiB (0 without /proc)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    source, target = sys.argv[1:3]
    data = np.load(source)
    close, rsi, lows, highs = data["close"], data["rsi"], data["lows"], data["highs"]
    quote = float(data["quote"])
    # Compiles vectorbt's numba functions first: the timed run is the simulation alone.
    simulate(close[:100], rsi[:100, :2], lows[:2], highs[:2], quote)
    started, cpu = time.perf_counter(), time.process_time()
    records = simulate(close, rsi, lows, highs, quote)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    # Orders, not trade records: a trade's entry price is an average, which can be 1 ulp
    # off the price filled at. Each strategy holds one position at a time: buy, then sell.
    trades: list[list[list[object]]] = [[] for _ in range(rsi.shape[1])]
    for order in np.sort(records, order=["col", "idx"]):
        bought = int(order["side"]) == BUY
        column = trades[int(order["col"])]
        if bought:
            column.append([int(order["idx"]), float(order["price"]), None, None])
        else:
            column[-1][2:] = [int(order["idx"]), float(order["price"])]
    with open(target, "w", encoding="utf-8") as out:
        outcome = {"seconds": seconds, "cpu_seconds": cpu_seconds, "trades": trades}
        json.dump({**outcome, "peak_rss_kib": peak_rss_kib()}, out)


if __name__ == "__main__":
    main()
