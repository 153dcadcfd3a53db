"""A bot built from each bundled template's defaults backtests through the public API."""

from __future__ import annotations

import pytest

from tradekit.config import TradekitSettings
from tradekit.data import synthetic_frame
from tradekit.runtime.backtest import backtest
from tradekit.templates import StrategyTemplate, build_config, bundled_templates


@pytest.mark.parametrize("template", bundled_templates(), ids=lambda t: t.template_id)
def test_defaults_backtest_without_error(template: StrategyTemplate) -> None:
    summary = template.summary()
    timeframe = summary.timeframe or "1h"
    config = build_config(template.template_id, "from template", {}, ["BTC/USDT"], timeframe)
    frames = {
        ("BTC/USDT", frame_timeframe): synthetic_frame("BTC/USDT", frame_timeframe, 600, seed=5)
        for frame_timeframe in {timeframe, *((config.mtf.timeframe,) if config.mtf else ())}
    }
    result = backtest(TradekitSettings(_env_file=None), [config], frames)
    strategy = result.strategies[config.strategy_id]
    assert strategy.stats.final_equity > 0
    assert {event.strategy_id for event in result.events} == {config.strategy_id}
