"""Live orders and credentials come only from the environment (or ``.env``): every layer
that travels with the strategies is refused, naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tradekit.config import TradekitSettings, load_settings, load_strategy
from tradekit.errors import ConfigError

pytestmark = pytest.mark.usefixtures("clean_environment")

STRATEGY: dict[str, Any] = {
    "strategy_id": "s",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
    "analyzers": [{"type": "time_interval", "params": {"every_bars": 3}}],
}


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def settings_error(*args: Any, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(*args, **kwargs)
    return caught.value


class TestStrategyFiles:
    @pytest.mark.parametrize(
        ("extra", "path"),
        [
            ({"live_orders_enabled": True}, "live_orders_enabled"),
            ({"liveOrdersEnabled": True}, "liveOrdersEnabled"),
            ({"LIVE-ORDER-ENABLED": "yes"}, "LIVE-ORDER-ENABLED"),
            ({"exit": {"live_trading": True}}, "exit.live_trading"),
            (
                {"analyzers": [{"type": "rsi", "params": {"live_orders": True}}]},
                "analyzers[0].params.live_orders",
            ),
        ],
    )
    def test_a_strategy_file_can_never_enable_live_orders(
        self, tmp_path: Path, extra: dict[str, Any], path: str
    ) -> None:
        strategy = write_json(tmp_path / "s.json", {**STRATEGY, **extra})
        with pytest.raises(ConfigError) as caught:
            load_strategy(strategy, load_settings(None))
        refused = [problem for problem in caught.value.problems if problem.path == path]
        assert len(refused) == 1, caught.value
        assert refused[0].source == str(strategy)
        assert "a strategy can never enable live orders" in refused[0].message
        assert "TRADEKIT_LIVE_ORDERS_ENABLED" in refused[0].message

    def test_a_strategy_without_a_live_switch_loads(self, tmp_path: Path) -> None:
        strategy = write_json(tmp_path / "s.json", STRATEGY)
        assert load_strategy(strategy, load_settings(None)).config.strategy_id == "s"


class TestStrategyDefaults:
    def test_in_the_base_file_names_the_file_and_the_path(self, tmp_path: Path) -> None:
        config = write_json(
            tmp_path / "config.json", {"strategy_defaults": {"live_orders_enabled": True}}
        )
        (problem,) = settings_error(config, env_file=None).problems
        assert problem.source == str(config)
        assert problem.path == "strategy_defaults.live_orders_enabled"
        assert "TRADEKIT_LIVE_ORDERS_ENABLED" in problem.message

    def test_from_a_variable_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TRADEKIT_STRATEGY_DEFAULTS", '{"exit": {"liveOrders": true}}')
        (problem,) = settings_error(None, env_file=None).problems
        assert problem.path == "strategy_defaults.exit.liveOrders"
        assert problem.source == "env TRADEKIT_STRATEGY_DEFAULTS"


class TestBaseFile:
    def test_enabling_live_orders_in_the_base_file_is_refused(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"live_orders_enabled": True})
        (problem,) = settings_error(config, env_file=None).problems
        assert problem.source == str(config)
        assert problem.path == "live_orders_enabled"
        assert "TRADEKIT_LIVE_ORDERS_ENABLED" in problem.message

    def test_saying_live_orders_are_off_is_allowed(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"live_orders_enabled": False})
        assert load_settings(config, env_file=None).live_orders_enabled is False

    @pytest.mark.parametrize(
        ("key", "variable"),
        [
            ("api_key", "TRADEKIT_EXCHANGE__CCXT__API_KEY"),
            ("api_secret", "TRADEKIT_EXCHANGE__CCXT__API_SECRET"),
        ],
    )
    def test_credentials_in_the_base_file_are_refused(
        self, tmp_path: Path, key: str, variable: str
    ) -> None:
        config = write_json(
            tmp_path / "config.json", {"exchange": {"kind": "ccxt", "ccxt": {key: "abc123"}}}
        )
        (problem,) = settings_error(config, env_file=None).problems
        assert problem.source == str(config)
        assert problem.path == f"exchange.ccxt.{key}"
        assert variable in problem.message
        assert ".env" in problem.message
        assert "abc123" not in str(problem)


class TestEnvironment:
    def test_the_variable_enables_live_orders_and_credentials(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TRADEKIT_LIVE_ORDERS_ENABLED", "true")
        monkeypatch.setenv("TRADEKIT_EXCHANGE__CCXT__API_KEY", "abc123")
        settings = load_settings(None, env_file=None)
        assert settings.live_orders_enabled is True
        assert settings.exchange.ccxt.api_key is not None
        assert settings.exchange.ccxt.api_key.get_secret_value() == "abc123"

    def test_the_dotenv_file_enables_live_orders_and_credentials(self, tmp_path: Path) -> None:
        dotenv = tmp_path / ".env"
        dotenv.write_text(
            "TRADEKIT_LIVE_ORDERS_ENABLED=true\nTRADEKIT_EXCHANGE__CCXT__API_SECRET=s3cret\n"
        )
        settings = load_settings(None, env_file=dotenv)
        assert settings.live_orders_enabled is True
        assert settings.exchange.ccxt.api_secret is not None

    def test_a_misspelt_variable_is_reported_and_enables_nothing(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TRADEKIT_LIVE_ORDER_ENABLED", "true")
        (problem,) = settings_error(None, env_file=None).problems
        assert "unknown variable TRADEKIT_LIVE_ORDER_ENABLED" in problem.message
        assert "did you mean TRADEKIT_LIVE_ORDERS_ENABLED?" in problem.message
        assert TradekitSettings(_env_file=None).live_orders_enabled is False

    def test_a_misspelt_dotenv_variable_is_reported_and_enables_nothing(
        self, tmp_path: Path
    ) -> None:
        dotenv = tmp_path / ".env"
        dotenv.write_text("TRADEKIT_LIVEORDERS_ENABLED=true\n")
        (problem,) = settings_error(None, env_file=dotenv).problems
        assert problem.source == str(dotenv)
        assert "did you mean TRADEKIT_LIVE_ORDERS_ENABLED?" in problem.message
        assert TradekitSettings(_env_file=dotenv).live_orders_enabled is False
