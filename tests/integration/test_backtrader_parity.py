"""tradekit and backtrader trade the same RSI 30/70 strategy identically, fill for fill.

The strategy and the comparison are those of ``benchmarks/bench_backtest.py``,
which checks 100,000 bars; here 5,000 bars keep the check fast enough for every
test run. Needs backtrader (``pip install -e ".[bench]"``): without it every
test here is skipped, and the skip reason says the parity check did not run.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip(
    "backtrader",
    reason="PARITY NOT CHECKED: backtrader is not installed, so tradekit's trades were not "
    "compared with backtrader's; install it with: pip install -e '.[bench]'",
)

BARS = 5_000
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_backtest.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark script, imported by path (``benchmarks/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("tradekit_bench_backtest", BENCHMARK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # backtrader's metaclasses look their strategy's module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def frame(bench: ModuleType) -> Any:
    return bench.market_frame(BARS)


@pytest.fixture(scope="module")
def backtrader_ten(bench: ModuleType, frame: Any) -> list[Any]:
    """backtrader's ten strategy instances, RSI(10..19), run together in one Cerebro."""
    return bench.run_backtrader(frame, bench.TEN)


class TestBacktraderParity:
    def test_rsi_starts_on_the_same_bar_and_agrees_to_1e9(
        self, bench: ModuleType, frame: Any, backtrader_ten: list[Any]
    ) -> None:
        for row in bench.rsi_agreement(backtrader_ten, frame):
            assert row.tradekit_first_bar == row.backtrader_first_bar == row.length
            assert row.max_abs_difference < 1e-9
            assert row.threshold_side_disagreements == 0

    def test_one_strategy_trades_identically(self, bench: ModuleType, frame: Any) -> None:
        ours = bench.tradekit_trades(bench.run_tradekit(frame, bench.ONE), frame)
        theirs = bench.backtrader_trades(bench.run_backtrader(frame, bench.ONE), frame)
        assert len(ours[14]) >= 5, "too few trades for the comparison to mean anything"
        assert bench.first_difference(ours, theirs) is None

    def test_ten_strategies_in_one_run_trade_identically(
        self, bench: ModuleType, frame: Any, backtrader_ten: list[Any]
    ) -> None:
        ours = bench.tradekit_trades(bench.run_tradekit(frame, bench.TEN), frame)
        theirs = bench.backtrader_trades(backtrader_ten, frame)
        assert all(records for records in ours.values()), "a strategy that never trades"
        assert sum(len(records) for records in ours.values()) >= 100
        assert bench.first_difference(ours, theirs) is None

    def test_a_price_one_ulp_off_is_reported_as_a_difference(
        self, bench: ModuleType, frame: Any, backtrader_ten: list[Any]
    ) -> None:
        theirs = bench.backtrader_trades(backtrader_ten, frame)
        changed = {length: list(records) for length, records in theirs.items()}
        trade = changed[12][3]
        changed[12][3] = trade._replace(exit_price=math.nextafter(trade.exit_price, math.inf))
        difference = bench.first_difference(changed, theirs)
        assert difference is not None
        assert difference.startswith("RSI(12) trade 3: exit_price")
