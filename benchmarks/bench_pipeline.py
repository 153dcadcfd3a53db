"""Per-strategy pipeline cost per candle, indicators excluded (they are precomputed).

Run: ``python benchmarks/bench_pipeline.py``. Prints microseconds per
strategy-candle for a strategy whose analyzers never fire (the quiet path, the
3 us budget) and for the bundled RSI strategy (actions included).
"""

from __future__ import annotations

import statistics
import time

from tradekit.config import StrategyConfig, TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.data import synthetic_frame
from tradekit.domain import Candle
from tradekit.services.market.candles import CandleSeries

BARS = 20_000
SYMBOL = "BTC/USDT"
BUDGET_US = 3.0


def rsi_config(strategy_id: str, below: float, above: float) -> StrategyConfig:
    return StrategyConfig.model_validate(
        {
            "strategy_id": strategy_id,
            "symbols": [SYMBOL],
            "timeframe": "1h",
            "indicators": [{"name": "rsi", "params": {"length": 14}}],
            "analyzers": [
                {"type": "threshold", "params": {"source": "rsi", "below": below, "above": above}}
            ],
            "exit": {"stop_loss_pct": 5, "exit_on_opposite_signal": True},
            "risk": {"risk_per_trade_pct": 50},
        }
    )


def per_candle_us(config: StrategyConfig, repeats: int = 5) -> float:
    results = []
    for _ in range(repeats):
        shared = SharedContainer(settings=TradekitSettings(_env_file=None))
        series = CandleSeries.from_frame(SYMBOL, "1h", synthetic_frame(SYMBOL, "1h", BARS))
        shared.candle_provider().add(series)
        factory = TradingOrchestratorFactory(shared)
        orchestrator = factory.create(config).trading_orchestrator()
        shared.indicator_cache().precompute()
        candles: list[Candle] = [series.candle_at(bar) for bar in range(BARS)]
        on_bar = orchestrator.on_bar
        started = time.perf_counter()
        for bar, candle in enumerate(candles):
            on_bar(candle, bar)
        results.append((time.perf_counter() - started) / BARS * 1e6)
    return statistics.median(results)


def main() -> None:
    quiet = per_candle_us(rsi_config("quiet", below=0.001, above=99.999))
    active = per_candle_us(rsi_config("rsi-30-70", below=30, above=70))
    verdict = "PASS" if quiet <= BUDGET_US else "OVER"
    print(f"{BARS:,} candles, indicators precomputed, median of 5 runs")
    print(
        f"  quiet pipeline (no signal, no action)   {quiet:6.2f} us per strategy-candle"
        f"   budget <= {BUDGET_US} us  {verdict}"
    )
    print(f"  RSI 30/70 strategy (actions included)   {active:6.2f} us per strategy-candle")


if __name__ == "__main__":
    main()
