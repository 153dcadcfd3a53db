"""The "ticker" test strategy shared by the integration tests: it buys every few bars
and sells a fixed number of bars later, so its trades are known without indicators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tradekit.config.strategy import StrategyConfig
from tradekit.testing import strategy_config_from_dict


def ticker_data(
    strategy_id: str,
    *,
    every: int = 3,
    exit_offset: int | None = 2,
    symbols: Sequence[str] = ("BTC/USDT",),
    **sections: Any,
) -> dict[str, Any]:
    """The strategy as a dict: buy every ``every`` bars, sell ``exit_offset`` bars later
    (never when ``None``); ``sections`` replace or add top-level keys."""
    analyzers: list[dict[str, Any]] = [
        {"type": "time_interval", "params": {"every_bars": every, "name": "buy"}}
    ]
    if exit_offset is not None:
        analyzers.append(
            {
                "type": "time_interval",
                "params": {
                    "every_bars": every,
                    "offset": exit_offset,
                    "direction": "exit",
                    "name": "sell",
                },
            }
        )
    return {
        "strategy_id": strategy_id,
        "symbols": list(symbols),
        "timeframe": "1h",
        "analyzers": analyzers,
        "exit": {"stop_loss_pct": 5, "exit_on_opposite_signal": exit_offset is not None},
        **sections,
    }


def ticker(strategy_id: str, **options: Any) -> StrategyConfig:
    """``ticker_data`` validated into a ``StrategyConfig``."""
    return strategy_config_from_dict(ticker_data(strategy_id, **options))
