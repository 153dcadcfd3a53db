"""Benchmark: cost of publishing one tagged event, checked against the 5 us budget.

Run with ``python benchmarks/bench_events.py``. Each figure is the median over
several runs of many publishes, loop overhead included.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from tradekit.domain import Side
from tradekit.events import Event, PositionOpened
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher, _stamped_copy

BUDGET_US = 5.0
PUBLISHES_PER_RUN = 200_000
RUNS = 7

EVENT = PositionOpened(
    ts=datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
    position_id="pos-1",
    symbol="BTC/USDT",
    side=Side.LONG,
    quantity=0.5,
    price=60_000.0,
    fee=30.0,
    stop_loss=58_000.0,
    take_profit=None,
)


def median_us_per_call(call: Callable[[Event], object], event: Event = EVENT) -> float:
    """Median over ``RUNS`` runs of the time per call, in microseconds."""
    call(event)  # warm the dispatch cache and the copy plan
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(PUBLISHES_PER_RUN):
            call(event)
        timings.append((time.perf_counter() - start) / PUBLISHES_PER_RUN * 1e6)
    return statistics.median(timings)


def ignore(event: Event) -> None:
    """A subscriber that does nothing, so only the bus is measured."""


def publish_to_one_subscriber() -> float:
    bus = InMemoryEventBus()
    bus.subscribe(ignore, PositionOpened, strategy_id="bench")
    return median_us_per_call(StrategyPublisher(bus, "bench").publish)


def publish_to_no_subscriber() -> float:
    return median_us_per_call(StrategyPublisher(InMemoryEventBus(), "bench").publish)


def bus_publish_to_no_subscriber() -> float:
    return median_us_per_call(InMemoryEventBus().publish)


def publish_past_other_strategies_subscribers(count: int = 100) -> float:
    bus = InMemoryEventBus()
    for index in range(count):
        bus.subscribe(ignore, strategy_id=f"other-{index}")
    return median_us_per_call(StrategyPublisher(bus, "bench").publish)


def stamp_with_replace(event: Event) -> Event:
    return dataclasses.replace(event, strategy_id="bench", seq=1)


def stamp_with_copy(event: Event) -> Event:
    stamped = copy.copy(event)
    object.__setattr__(stamped, "strategy_id", "bench")
    object.__setattr__(stamped, "seq", 1)
    return stamped


def stamp_with_field_copy(event: Event) -> Event:
    return _stamped_copy(event, "bench", 1)


def row(label: str, micros: float, budget: float | None = None) -> str:
    line = f"  {label:<58} {micros:7.3f} us"
    if budget is not None:
        verdict = "PASS" if micros <= budget else "OVER"
        line += f"   budget <= {budget:.1f} us  {verdict}"
    return line


def main() -> None:
    print(f"publish one PositionOpened: median of {RUNS} runs x {PUBLISHES_PER_RUN:,} publishes")
    print(row("StrategyPublisher -> 1 subscriber", publish_to_one_subscriber(), BUDGET_US))
    print(row("StrategyPublisher -> no matching subscriber", publish_to_no_subscriber()))
    print(
        row(
            "StrategyPublisher -> 100 subscribers on other strategy ids",
            publish_past_other_strategies_subscribers(),
        )
    )
    print(
        row(
            "InMemoryEventBus.publish -> no subscriber (no stamping)",
            bus_publish_to_no_subscriber(),
        )
    )
    print("stamping one event (strategy_id + seq on a copy):")
    print(row("dataclasses.replace", median_us_per_call(stamp_with_replace)))
    print(row("copy.copy + object.__setattr__", median_us_per_call(stamp_with_copy)))
    print(
        row(
            "field-by-field copy (used by StrategyPublisher)",
            median_us_per_call(stamp_with_field_copy),
        )
    )


if __name__ == "__main__":
    main()
