"""Validation reports exactly what building the strategy's container reports, without
building it: the same problems, with the same messages and paths, or none."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.errors import ConfigError, ConfigProblem
from tradekit.runtime import RunMode, Runtime, bootstrap
from tradekit.validation import check_strategy

RSI = {"name": "rsi", "params": {"length": 14}}
BELOW_30 = {"type": "threshold", "params": {"source": "rsi", "below": 30}}


def strategy(**sections: Any) -> StrategyConfig:
    data: dict[str, Any] = {
        "strategy_id": "checked",
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "timeframe": "1h",
        "indicators": [RSI],
        "analyzers": [BELOW_30],
    }
    return StrategyConfig.model_validate({**data, **sections})


CASES = {
    "valid": strategy(),
    "valid with filters and a gate": strategy(
        filters={"volatility": {"max_atr_pct": 5}, "trend": {"length": 50}},
        mtf={"timeframe": "4h", "ma": "ema", "length": 20, "rule": "trend_agrees"},
    ),
    "unknown indicator": strategy(indicators=[{"name": "rsii"}]),
    "unknown and bad parameters": strategy(
        indicators=[
            {"name": "rsi", "params": {"lenght": 14}},
            {"name": "macd", "params": {"fast": 30, "slow": 10}},
        ]
    ),
    "bad parameter value": strategy(indicators=[{"name": "rsi", "params": {"length": 1.5}}]),
    "reserved alias": strategy(indicators=[{**RSI, "alias": "filter_atr"}]),
    "unknown analyzer type": strategy(analyzers=[{"type": "treshold", "params": {}}]),
    "bad analyzer parameters": strategy(
        analyzers=[{"type": "threshold", "params": {"source": "rsi", "below": 40, "above": 30}}]
    ),
    "analyzer names taken twice": strategy(analyzers=[BELOW_30, BELOW_30]),
    "unknown references": strategy(
        analyzers=[
            {"type": "threshold", "params": {"source": "rsi_fast", "below": 30}},
            {"type": "crossover", "params": {"fast": "ema", "slow": "sma"}},
        ]
    ),
    "indicator and analyzer problems: the indicators' come first": strategy(
        indicators=[{"name": "rsii"}], analyzers=[{"type": "treshold", "params": {}}]
    ),
}


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    built = bootstrap(TradekitSettings(), mode=RunMode.TEST)
    yield built
    built.close()


def build_problems(runtime: Runtime, config: StrategyConfig) -> list[ConfigProblem]:
    try:
        runtime.factory.create(config)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def validation_problems(config: StrategyConfig) -> list[ConfigProblem]:
    try:
        check_strategy(config)
    except ConfigError as exc:
        return list(exc.problems)
    return []


class TestValidationMatchesTheBuild:
    @pytest.mark.parametrize("config", CASES.values(), ids=CASES.keys())
    def test_validation_reports_what_the_build_reports(
        self, runtime: Runtime, config: StrategyConfig
    ) -> None:
        expected = build_problems(runtime, config)
        assert validation_problems(config) == expected

    def test_every_bad_case_has_problems(self, runtime: Runtime) -> None:
        """The cases above exercise problems, not only agreement on none."""
        bad = [config for name, config in CASES.items() if not name.startswith("valid")]
        assert all(build_problems(runtime, config) for config in bad)
