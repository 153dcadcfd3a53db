"""Benchmark: the bot service under API load (docs/architecture.md's budget: p99 < 50 ms with
200 bots and 50 clients, the engine's per-candle latency unchanged).

Run: ``python benchmarks/bench_service.py [--bots 200] [--clients 50] [--speed 50]
[--seconds 20] [--interval 1]``. A real ``tradekit serve`` subprocess runs ``--bots``
RSI bots over candle files replayed at ``--speed`` candles per second, on a fresh
SQLite journal, twice over the same candles: once without API calls (the baseline)
and once with load. After a warm-up, three windows of ``--seconds`` follow, each
starting at the same candle in both runs: in the loaded run, no calls in the first
(both runs should then agree: the benchmark's own noise), then ``--clients``
concurrent clients on loopback (one asyncio loop of aiohttp clients), each calling
once per ``--interval`` seconds (a dashboard refreshing; 0: back to back, which
measures saturation rather than latency): a fifth of them stop and start a bot of
their own in turn, the others list the bots or read one bot's statistics.
Independent dashboards refresh at random moments, so in the second window each
client first waits a random share of its interval (seeded: ``--seed``); the third
starts every client at the same instant, so they send their calls in bursts of
``--clients`` at once: the worst case. It prints the API latency (p50/p99) of each
kind of call in both load windows, and the engine's own per-candle latency (``GET
/api/engine``: the window's candles) in each window of both runs, next to their
budgets. The same candles matter: the candles on which many bots trade take longer,
and two stretches of a replay differ more than load changes them.

Latency on a shared machine says as much about the other work as about the
service, so the benchmark also prints what each kind of call costs the server in
CPU time, which other work hardly changes: the user + system time of the API's
process and of the engine's (``/proc/PID/stat``) over ``--cpu-calls`` calls of one
kind, one at a time at ``--cpu-rate`` calls per second, the engine's less what it
used alone over as long (measured just before); and the engine's own CPU time per
candle without API load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from tradekit.data.synthetic import synthetic_frame
from tradekit.runtime.engine_view import CANDLE_TIMES_KEPT

TOKEN = "bench-service-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SYMBOLS = 4
API_BUDGET_MS = 50.0
WARM_UP_SECONDS = 5.0


def write_inputs(folder: Path, bots: int, bars: int) -> tuple[Path, Path]:
    """Candle files (``SYMBOLS`` series) and ``bots`` RSI strategy files under ``folder``."""
    data, strategies = folder / "data", folder / "strategies"
    data.mkdir()
    strategies.mkdir()
    for index in range(SYMBOLS):
        frame = synthetic_frame(f"S{index}/USDT", "1h", bars, seed=index)
        frame.to_csv(data / f"S{index}-USDT_1h.csv", index_label="timestamp")
    for index in range(bots):
        low = 25 + index % 10
        bot = {
            "strategy_id": f"rsi-{index}",
            "symbols": [f"S{index % SYMBOLS}/USDT"],
            "timeframe": "1h",
            "indicators": [{"name": "rsi", "params": {"length": 14}}],
            "analyzers": [
                {"type": "threshold", "params": {"source": "rsi", "below": low, "above": 100 - low}}
            ],
            "exit": {"stop_loss_pct": 2.0 + index % 5, "take_profit_pct": 3.0 + index % 7},
        }
        (strategies / f"rsi-{index}.json").write_text(json.dumps(bot), encoding="utf-8")
    return data, strategies


def start_server(folder: Path, data: Path, strategies: Path, speed: int) -> tuple[Any, str]:
    environment = {key: value for key, value in os.environ.items() if "TRADEKIT_" not in key}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tradekit", "serve", "--port", "0", "--source", "file",
            "--data", str(data), "--speed", str(speed), "--strategies", str(strategies),
            "--db", f"sqlite:///{folder / 'journal.db'}", "--health-interval", "3600",
        ],
        cwd=folder,
        env={**environment, "TRADEKIT_API_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if "API on " in line:
            return process, line.split("API on ", 1)[1].split()[0]
    process.wait()
    raise SystemExit(f"tradekit serve ended before listening (exit {process.returncode})")


def _cpu_seconds(stat: Path) -> float:
    """User + system CPU time in a ``/proc`` ``stat`` file (of a process or of a thread)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerCpu:
    """The CPU time of the service's two processes (Linux ``/proc``): the engine's (the
    ``tradekit serve`` process: the engine, its candle reader and the relay to the API)
    and the API's (the child it starts with multiprocessing's spawn method)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.engine_stat = Path(f"/proc/{pid}/stat")

    def engine(self) -> float:
        return _cpu_seconds(self.engine_stat)

    def both(self) -> tuple[float, float]:
        """The API's and the engine's CPU seconds so far."""
        api_stat = Path(f"/proc/{api_process_of(self.pid)}/stat")
        return _cpu_seconds(api_stat), self.engine()


def api_process_of(pid: int) -> int:
    """The API's process among the children of ``pid`` (the one multiprocessing spawned)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in command:
            return int(child)
    raise SystemExit(f"no API process among the children of {pid}: {children}")


CPU_KINDS = ("list bots", "one bot's stats", "stop/start", "engine view")


def cpu_request(kind: str, index: int, bots: int) -> tuple[str, str]:
    """The ``index``-th call of ``kind`` of the CPU measurement: method and path."""
    if kind == "list bots":
        return "GET", "/api/bots"
    if kind == "one bot's stats":
        return "GET", f"/api/bots/rsi-{index * 7 % bots}/stats"
    if kind == "stop/start":
        return "POST", f"/api/bots/rsi-0/{'stop' if index % 2 == 0 else 'start'}"
    return "GET", "/api/engine"


def cpu_per_call(
    base_url: str, cpu: ServerCpu, bots: int, calls: int, rate: float
) -> dict[str, tuple[float, float]]:
    """CPU milliseconds per call of each kind, in each process beyond what it used without
    calls just before (the API's: following the engine's updates; the engine's: its candles,
    and the work a change gives it)."""
    costs: dict[str, tuple[float, float]] = {}
    seconds = calls / rate
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=30) as http:
        for kind in CPU_KINDS:
            (api_before, engine_before), wall = cpu.both(), time.monotonic()
            time.sleep(seconds)
            (api_after, engine_after), took = cpu.both(), time.monotonic() - wall
            api_rate, engine_rate = (
                (api_after - api_before) / took,
                (engine_after - engine_before) / took,
            )
            (api_before, engine_before), wall = cpu.both(), time.monotonic()
            for index in range(calls):
                method, path = cpu_request(kind, index, bots)
                answer = http.request(method, path)
                if answer.status_code >= 300:
                    raise SystemExit(f"{method} {path}: {answer.status_code} {answer.text}")
                time.sleep(max(wall + (index + 1) / rate - time.monotonic(), 0.0))
            (api_after, engine_after), took = cpu.both(), time.monotonic() - wall
            api_extra = api_after - api_before - api_rate * took
            engine_extra = engine_after - engine_before - engine_rate * took
            costs[kind] = (api_extra / calls * 1000, engine_extra / calls * 1000)
    return costs


def percentile(values: list[float], share: float) -> float:
    ranked = sorted(values)
    return ranked[max(math.ceil(share * len(ranked)) - 1, 0)]


def engine_times(base_url: str) -> dict[str, float]:
    body = httpx.get(f"{base_url}/api/engine", headers=AUTH, timeout=30).json()
    times: dict[str, float] = body["candle_seconds"]
    return times


async def load(
    base_url: str,
    clients: int,
    bots: int,
    seconds: float,
    interval: float,
    phases: random.Random | None,
) -> dict[str, list[float]]:
    """``clients`` concurrent clients for ``seconds``, each calling at most once per
    ``interval`` seconds (0: back to back); each call's latency by its kind. With
    ``phases``, each client starts after a random share of its interval drawn from it;
    without, all start at once (and so stay in step).

    The clients are aiohttp's (C-accelerated HTTP parsing), one keep-alive connection
    each: httpx's asynchronous client cost about 1.9 ms of CPU per call against aiohttp's
    0.6, and with 50 clients in one event loop it added tens of milliseconds to the tail
    of what it measured, even against a server answering in a fraction of a millisecond.
    """
    latencies: dict[str, list[float]] = {"list bots": [], "one bot's stats": [], "stop/start": []}
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    delays = [0.0 if phases is None else phases.uniform(0, interval) for _ in range(clients)]

    async def client(index: int, http: aiohttp.ClientSession) -> None:
        calls = 0
        await asyncio.sleep(delays[index])
        while time.monotonic() < deadline:
            if index % 5 == 0:
                kind, method = "stop/start", "POST"
                path = f"/api/bots/rsi-{index}/{'stop' if calls % 2 == 0 else 'start'}"
            elif index % 2 == 0:
                kind, method, path = "list bots", "GET", "/api/bots"
            else:
                kind, method = "one bot's stats", "GET"
                path = f"/api/bots/rsi-{(index * 7 + calls) % bots}/stats"
            started = time.perf_counter()
            async with http.request(method, path) as answer:
                await answer.read()
            latencies[kind].append(time.perf_counter() - started)
            if answer.status >= 300:
                errors.append(f"{method} {path}: {answer.status}")
            calls += 1
            await asyncio.sleep(max(interval - (time.perf_counter() - started), 0.0))

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        base_url, headers=AUTH, connector=connector, timeout=timeout
    ) as http:
        await asyncio.gather(*(client(index, http) for index in range(clients)))
    if errors:
        print(f"  {len(errors)} call(s) not answered 2xx, first: {errors[0]}")
    return latencies


WINDOWS = ("quiet", "random phases", "in step")
"""The engine's measuring windows, in order: what the API clients do during each in the loaded
run (nothing, then at random phases, then in step); the baseline run has no clients."""


def engine_windows(
    base_url: str, window_candles: int, load_of: dict[str, Callable[[], Any]]
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """The engine's per-candle times over each of ``WINDOWS`` (its latest ``window_candles``
    candles when the window ends), and what each window's load returned. A window starts
    when the engine has processed a set number of candles, so both runs of the benchmark
    measure the same candles; its load (``load_of``, if any) runs then, and the window ends
    once ``window_candles`` more were processed."""
    times: dict[str, dict[str, float]] = {}
    results: dict[str, Any] = {}
    start = candles_processed(base_url) + 1
    for index, window in enumerate(WINDOWS):
        begin = start + index * window_candles
        wait_for_candles(base_url, begin)
        if window in load_of:
            results[window] = load_of[window]()
        wait_for_candles(base_url, begin + window_candles)
        times[window] = engine_times(base_url)
    return times, results


def candles_processed(base_url: str) -> int:
    body = httpx.get(f"{base_url}/api/engine", headers=AUTH, timeout=30).json()
    return int(body["candles"])


def wait_for_candles(base_url: str, count: int) -> None:
    while candles_processed(base_url) < count:
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--speed", type=int, default=50, help="candles per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="of each phase")
    parser.add_argument("--seed", type=int, default=7, help="of the clients' random phases")
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between one client's calls, as a dashboard refreshing (0: back to back)",
    )
    parser.add_argument("--cpu-calls", type=int, default=200, help="calls per kind (0: skip)")
    parser.add_argument("--cpu-rate", type=float, default=20.0, help="calls per second")
    options = parser.parse_args()
    window_candles = min(round(options.seconds * options.speed), CANDLE_TIMES_KEPT)
    cpu_phases = 2 * len(CPU_KINDS) * options.cpu_calls / options.cpu_rate
    phases = WARM_UP_SECONDS + (len(WINDOWS) + 1) * options.seconds + cpu_phases + 30
    bars = math.ceil(options.speed * phases / SYMBOLS)
    arguments = (options.clients, options.bots, options.seconds, options.interval)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        data, strategies = write_inputs(folder, options.bots, bars)
        baseline, _, engine_cpu, _ = measure(
            folder / "baseline", data, strategies, options, window_candles, None
        )
        loaded, latencies, _, costs = measure(
            folder / "loaded", data, strategies, options, window_candles, arguments
        )
    report(options, baseline, loaded, latencies, engine_cpu, costs)


def measure(
    folder: Path,
    data: Path,
    strategies: Path,
    options: argparse.Namespace,
    window_candles: int,
    arguments: tuple[int, int, float, float] | None,
) -> tuple[
    dict[str, dict[str, float]],
    dict[str, dict[str, list[float]]],
    float,
    dict[str, tuple[float, float]],
]:
    """One run of the service over the candles: the engine's times per window, the API
    latencies of each loaded window (none without ``arguments``), the engine process's CPU
    seconds per second alone, and the CPU per call of each kind (loaded run only)."""
    folder.mkdir()
    process, base_url = start_server(folder, data, strategies, options.speed)
    cpu = ServerCpu(process.pid)
    try:
        time.sleep(WARM_UP_SECONDS)
        load_of: dict[str, Callable[[], Any]] = {}
        if arguments is not None:
            clients, bots, seconds, interval = arguments
            load_of = {
                "random phases": lambda: asyncio.run(
                    load(base_url, clients, bots, seconds, interval, random.Random(options.seed))
                ),
                "in step": lambda: asyncio.run(
                    load(base_url, clients, bots, seconds, interval, None)
                ),
            }
        engine_before, wall = cpu.engine(), time.monotonic()
        times, latencies = engine_windows(base_url, window_candles, load_of)
        engine_cpu = (cpu.engine() - engine_before) / (time.monotonic() - wall)
        costs: dict[str, tuple[float, float]] = {}
        if arguments is not None and options.cpu_calls:
            costs = cpu_per_call(base_url, cpu, options.bots, options.cpu_calls, options.cpu_rate)
        httpx.post(f"{base_url}/api/engine/stop", headers=AUTH, timeout=30)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return times, latencies, engine_cpu, costs


def report(
    options: argparse.Namespace,
    baseline: dict[str, dict[str, float]],
    loaded: dict[str, dict[str, float]],
    latencies: dict[str, dict[str, list[float]]],
    engine_cpu: float,
    costs: dict[str, tuple[float, float]],
) -> None:
    print(
        f"bot service: {options.bots} bots, {SYMBOLS} series replayed at {options.speed} "
        f"candles/s, {options.clients} API clients on loopback calling every "
        f"{options.interval:g} s, {options.seconds:g} s per phase"
    )
    for title, window in (
        ("clients at random phases (independent dashboards)", "random phases"),
        ("clients in step (bursts of all at once: the worst case)", "in step"),
    ):
        print(f"API latency, {title}")
        for kind, values in latencies[window].items():
            p99 = percentile(values, 0.99) * 1000
            verdict = "within" if p99 < API_BUDGET_MS else "OVER"
            print(
                f"  {kind:<16} {len(values):>6} calls  p50 {percentile(values, 0.5) * 1000:7.1f} ms"
                f"  p99 {p99:7.1f} ms  ({verdict} budget p99 < {API_BUDGET_MS:g} ms)"
            )
    if costs:
        print(
            f"server CPU time: the engine's process alone {engine_cpu * 1000:.0f} ms per second "
            f"({engine_cpu / options.speed * 1000:.2f} ms per candle); per call, one at a time "
            f"at {options.cpu_rate:g}/s, in the API's process and the engine's extra"
        )
        for kind, (api_cost, engine_cost) in costs.items():
            print(f"  {kind:<16} {api_cost:6.2f} ms API  {engine_cost:+6.2f} ms engine")
    print(
        "engine per-candle latency, its own timing over the same candles in two runs: one "
        "without API calls, one with the window's load (budget: unchanged)"
    )
    for window in WINDOWS:
        base, under = baseline[window], loaded[window]
        change = (under["p99_seconds"] / base["p99_seconds"] - 1) * 100
        print(
            f"  {window:<14} {int(under['candles']):>5} candles  p50 "
            f"{base['p50_seconds'] * 1000:5.2f} -> {under['p50_seconds'] * 1000:5.2f} ms  p99 "
            f"{base['p99_seconds'] * 1000:5.2f} -> {under['p99_seconds'] * 1000:5.2f} ms "
            f"({change:+.0f} %)  max {base['max_seconds'] * 1000:5.1f} -> "
            f"{under['max_seconds'] * 1000:5.1f} ms"
        )


if __name__ == "__main__":
    main()
