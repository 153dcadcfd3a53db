"""Container costs: build + resolve one strategy container, memory per strategy, reload, publish.

Run: ``python benchmarks/bench_containers.py``. Prints figures next to the
budgets in docs/architecture.md (<= 2 ms build+resolve median, <= 0.5 MB per strategy,
<= 5 us per tagged publish).
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from datetime import UTC, datetime

from tradekit.config import StrategyConfig, TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.domain import Side
from tradekit.events import PositionOpened

SYMBOLS = [f"S{index}/USDT" for index in range(10)]


def make_config(index: int, stop_loss_pct: float = 5.0) -> StrategyConfig:
    return StrategyConfig.model_validate(
        {
            "strategy_id": f"rsi-{index}",
            "symbols": [SYMBOLS[index % len(SYMBOLS)]],
            "timeframe": "1h",
            "indicators": [{"name": "rsi", "params": {"length": 10 + index % 10}}],
            "analyzers": [
                {"type": "threshold", "params": {"source": "rsi", "below": 30, "above": 70}}
            ],
            "exit": {"stop_loss_pct": stop_loss_pct, "exit_on_opposite_signal": True},
        }
    )


def fresh_factory() -> TradingOrchestratorFactory:
    return TradingOrchestratorFactory(SharedContainer(settings=TradekitSettings(_env_file=None)))


def bench_build(runs: int = 300) -> float:
    factory = fresh_factory()
    configs = [make_config(index) for index in range(runs)]
    factory.create(make_config(10_000))  # warm imports and shared singletons
    timings = []
    for config in configs:
        started = time.perf_counter()
        factory.create(config)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e3


def bench_memory(strategies: int = 1_000) -> float:
    factory = fresh_factory()
    configs = [make_config(index) for index in range(strategies)]
    factory.create(make_config(10_000))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for config in configs:
        factory.create(config)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / strategies / 2**20


def bench_reload(runs: int = 200) -> float:
    factory = fresh_factory()
    factory.create(make_config(0))
    timings = []
    for run in range(runs):
        config = make_config(0, stop_loss_pct=1.0 + run % 50)
        started = time.perf_counter()
        factory.reload(config)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e3


def bench_publish(events: int = 200_000) -> float:
    factory = fresh_factory()
    container = factory.create(make_config(0))
    received: list[object] = []
    factory.shared.event_bus().subscribe(received.append, PositionOpened, "rsi-0")
    publisher = container.publisher()
    event = PositionOpened(
        ts=datetime(2024, 1, 1, tzinfo=UTC),
        position_id="p",
        symbol=SYMBOLS[0],
        side=Side.LONG,
        quantity=1.0,
        price=100.0,
        fee=0.1,
        stop_loss=None,
        take_profit=None,
    )
    runs = []
    for _ in range(5):
        received.clear()
        started = time.perf_counter()
        for _ in range(events):
            publisher.publish(event)
        runs.append((time.perf_counter() - started) / events)
    assert len(received) == events
    return statistics.median(runs) * 1e6


def verdict(value: float, budget: float) -> str:
    return "PASS" if value <= budget else "OVER"


def main() -> None:
    build_ms = bench_build()
    memory_mb = bench_memory()
    reload_ms = bench_reload()
    publish_us = bench_publish()
    rows = [
        ("build + resolve one strategy container (median)", build_ms, "ms", 2.0),
        ("memory per added strategy (1,000 strategies)", memory_mb, "MB", 0.5),
        ("reload one strategy (median)", reload_ms, "ms", None),
        ("publish one tagged event to one subscriber", publish_us, "us", 5.0),
    ]
    for label, value, unit, budget in rows:
        limit = f"budget <= {budget} {unit}  {verdict(value, budget)}" if budget else ""
        print(f"{label:<52} {value:8.3f} {unit}   {limit}")


if __name__ == "__main__":
    main()
