"""``backtest`` refuses data that lacks a series an enabled strategy trades.

Without the check such a strategy sits idle on its capital and the portfolio
reports a loss that never happened (-66.7% on the case below).
"""

from __future__ import annotations

from typing import Any

import pytest

from tradekit.config.strategy import StrategyConfig
from tradekit.data import synthetic_frame
from tradekit.errors import DataError
from tradekit.runtime.backtest import backtest
from tradekit.testing import settings_from_dict, strategy_config_from_dict


def every_fifth_bar(
    strategy_id: str, symbol: str, timeframe: str = "1h", **more: Any
) -> StrategyConfig:
    return strategy_config_from_dict(
        {
            "strategy_id": strategy_id,
            "symbols": [symbol],
            "timeframe": timeframe,
            "analyzers": [{"type": "time_interval", "params": {"every_bars": 5}}],
            "exit": {"time_stop_bars": 2},
            **more,
        }
    )


BTC_1H = {("BTC/USDT", "1h"): synthetic_frame("BTC/USDT", "1h", 120, seed=1)}


def test_each_strategy_and_the_series_it_lacks_are_named() -> None:
    configs = [
        every_fifth_bar("btc-1h", "BTC/USDT"),
        every_fifth_bar("eth-1h", "ETH/USDT"),
        every_fifth_bar("btc-4h", "BTC/USDT", "4h"),
    ]
    with pytest.raises(DataError) as raised:
        backtest(settings_from_dict({}), configs, BTC_1H)
    lines = str(raised.value).splitlines()
    assert lines[:2] == [
        "strategy 'btc-4h' needs BTC/USDT 4h candles; the data has none",
        "strategy 'eth-1h' needs ETH/USDT 1h candles; the data has none",
    ]
    assert lines[2].startswith("the data holds: BTC/USDT 1h (120 candles, 2024-01-01T00:00:00")
    assert "btc-1h" not in str(raised.value)


def test_a_disabled_strategy_needs_no_data() -> None:
    configs = [
        every_fifth_bar("btc-1h", "BTC/USDT"),
        every_fifth_bar("eth-1h", "ETH/USDT", enabled=False),
    ]
    result = backtest(settings_from_dict({}), configs, BTC_1H)
    assert list(result.strategies) == ["btc-1h"]
    assert result.portfolio_stats["capital"] == 10_000.0
