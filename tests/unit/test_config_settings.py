"""Tests for ``load_settings`` and ``TradekitSettings``: layering, provenance and error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from config_files import write_json
from pydantic import ValidationError

from tradekit.config import TradekitSettings, load_settings, load_strategy
from tradekit.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_CONFIG = REPO_ROOT / "config.json"

MINIMAL_STRATEGY: dict[str, Any] = {
    "strategy_id": "layered",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
    "analyzers": [{"type": "threshold"}],
}

pytestmark = pytest.mark.usefixtures("clean_environment")


def write_dotenv(path: Path, variables: dict[str, str]) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
    return path


def config_error(path: Path | None, env_file: Path | None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env_file=env_file)
    return caught.value


class TestPrecedence:
    def test_defaults_apply_when_nothing_is_set(self) -> None:
        settings = load_settings(None, env_file=None)
        assert settings.exchange.fee_bps == 10.0
        assert settings.exchange.fill_rule == "next_open"
        assert settings.engine.max_concurrent_strategies == 1000
        assert settings.strategy_defaults == {}

    def test_file_wins_over_defaults(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fee_bps": 5}})
        settings = load_settings(config, env_file=None)
        assert settings.exchange.fee_bps == 5.0
        assert settings.exchange.fill_rule == "next_open"

    def test_dotenv_wins_over_file(self, tmp_path: Path) -> None:
        config = write_json(
            tmp_path / "config.json", {"exchange": {"fee_bps": 5, "slippage_bps": 1}}
        )
        dotenv = write_dotenv(tmp_path / "settings.env", {"TRADEKIT_EXCHANGE__FEE_BPS": "6"})
        settings = load_settings(config, env_file=dotenv)
        assert settings.exchange.fee_bps == 6.0
        assert settings.exchange.slippage_bps == 1.0

    def test_environment_wins_over_dotenv(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fee_bps": 5}})
        dotenv = write_dotenv(tmp_path / "settings.env", {"TRADEKIT_EXCHANGE__FEE_BPS": "6"})
        monkeypatch.setenv("TRADEKIT_EXCHANGE__FEE_BPS", "7")
        settings = load_settings(config, env_file=dotenv)
        assert settings.exchange.fee_bps == 7.0

    def test_environment_wins_over_file_without_dotenv(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fill_rule": "close"}})
        monkeypatch.setenv("TRADEKIT_EXCHANGE__FILL_RULE", "next_open")
        assert load_settings(config, env_file=None).exchange.fill_rule == "next_open"

    def test_each_layer_keeps_the_keys_it_alone_sets(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(
            tmp_path / "config.json",
            {
                "exchange": {"fee_bps": 5, "slippage_bps": 1},
                "engine": {"failures_before_quarantine": 4},
            },
        )
        dotenv = write_dotenv(
            tmp_path / "settings.env",
            {"TRADEKIT_EXCHANGE__FEE_BPS": "6", "TRADEKIT_LOGGING__LEVEL": "DEBUG"},
        )
        monkeypatch.setenv("TRADEKIT_ENGINE__MAX_CONCURRENT_STRATEGIES", "12")
        settings = load_settings(config, env_file=dotenv)
        assert settings.exchange.slippage_bps == 1.0
        assert settings.engine.failures_before_quarantine == 4
        assert settings.logging.level == "DEBUG"
        assert settings.engine.max_concurrent_strategies == 12

    def test_env_file_none_ignores_dotenv_in_working_directory(self, tmp_path: Path) -> None:
        write_dotenv(tmp_path / ".env", {"TRADEKIT_EXCHANGE__FEE_BPS": "6"})
        assert load_settings(None, env_file=None).exchange.fee_bps == 10.0

    def test_default_env_file_is_dotenv_in_working_directory(self, tmp_path: Path) -> None:
        write_dotenv(tmp_path / ".env", {"TRADEKIT_EXCHANGE__FEE_BPS": "6"})
        assert load_settings(None).exchange.fee_bps == 6.0

    def test_bundled_config_loads_its_values(self) -> None:
        settings = load_settings(BUNDLED_CONFIG, env_file=None)
        assert settings.engine.max_concurrent_strategies == 200
        assert settings.exchange.slippage_bps == 2.0
        assert settings.risk.max_total_exposure == 60000.0
        assert settings.strategy_defaults["exit"] == {"stop_loss_pct": 5}


class TestStrategyDefaultsFromEnvironment:
    def test_nested_env_var_merges_into_file_strategy_defaults(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(
            tmp_path / "config.json",
            {
                "strategy_defaults": {
                    "capital": 500,
                    "exit": {"stop_loss_pct": 5, "take_profit_pct": 9},
                }
            },
        )
        monkeypatch.setenv("TRADEKIT_STRATEGY_DEFAULTS__EXIT__STOP_LOSS_PCT", "3")
        defaults = load_settings(config, env_file=None).strategy_defaults
        assert float(defaults["exit"]["stop_loss_pct"]) == 3.0
        assert defaults["exit"]["take_profit_pct"] == 9
        assert defaults["capital"] == 500

    def test_env_strategy_default_reaches_loaded_strategy(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(
            tmp_path / "config.json",
            {"strategy_defaults": {"exit": {"stop_loss_pct": 5, "take_profit_pct": 9}}},
        )
        monkeypatch.setenv("TRADEKIT_STRATEGY_DEFAULTS__EXIT__STOP_LOSS_PCT", "3")
        settings = load_settings(config, env_file=None)
        strategy = load_strategy(write_json(tmp_path / "layered.json", MINIMAL_STRATEGY), settings)
        assert strategy.config.exit.stop_loss_pct == 3.0
        assert strategy.config.exit.take_profit_pct == 9.0
        assert strategy.provenance["exit.stop_loss_pct"] == (
            "env TRADEKIT_STRATEGY_DEFAULTS__EXIT__STOP_LOSS_PCT (strategy_defaults)"
        )
        assert strategy.provenance["exit.take_profit_pct"] == f"{config} (strategy_defaults)"

    def test_json_object_env_var_merges_into_file_strategy_defaults(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(
            tmp_path / "config.json", {"strategy_defaults": {"exit": {"stop_loss_pct": 5}}}
        )
        monkeypatch.setenv("TRADEKIT_STRATEGY_DEFAULTS", '{"exit": {"take_profit_pct": 7}}')
        defaults = load_settings(config, env_file=None).strategy_defaults
        assert defaults["exit"] == {"stop_loss_pct": 5, "take_profit_pct": 7}


class TestProvenance:
    def test_file_keys_name_the_file(self, tmp_path: Path) -> None:
        config = write_json(
            tmp_path / "config.json",
            {"exchange": {"fee_bps": 5}, "strategy_defaults": {"exit": {"stop_loss_pct": 4}}},
        )
        provenance = load_settings(config, env_file=None).provenance
        assert provenance["exchange.fee_bps"] == str(config)
        assert provenance["strategy_defaults.exit.stop_loss_pct"] == str(config)

    def test_defaults_have_no_provenance_entry(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fee_bps": 5}})
        provenance = load_settings(config, env_file=None).provenance
        assert "exchange.fill_rule" not in provenance
        assert "engine.max_concurrent_strategies" not in provenance

    def test_dotenv_keys_name_the_file_and_the_variable(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fee_bps": 5}})
        dotenv = write_dotenv(tmp_path / "settings.env", {"TRADEKIT_EXCHANGE__FEE_BPS": "6"})
        provenance = load_settings(config, env_file=dotenv).provenance
        assert provenance["exchange.fee_bps"] == f"{dotenv} TRADEKIT_EXCHANGE__FEE_BPS"

    def test_env_keys_name_the_variable(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fee_bps": 5}})
        monkeypatch.setenv("TRADEKIT_EXCHANGE__FEE_BPS", "7")
        monkeypatch.setenv("TRADEKIT_LIVE_ORDERS_ENABLED", "false")
        provenance = load_settings(config, env_file=None).provenance
        assert provenance["exchange.fee_bps"] == "env TRADEKIT_EXCHANGE__FEE_BPS"
        assert provenance["live_orders_enabled"] == "env TRADEKIT_LIVE_ORDERS_ENABLED"

    def test_json_object_in_one_env_var_gives_provenance_to_each_leaf(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TRADEKIT_LOGGING", '{"level": "DEBUG", "json_path": "run.jsonl"}')
        settings = load_settings(None, env_file=None)
        assert settings.logging.level == "DEBUG"
        assert settings.provenance["logging.level"] == "env TRADEKIT_LOGGING"
        assert settings.provenance["logging.json_path"] == "env TRADEKIT_LOGGING"
        assert "logging" not in settings.provenance

    def test_env_var_replaces_file_provenance_only_for_its_key(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(
            tmp_path / "config.json", {"exchange": {"fee_bps": 5, "fill_rule": "close"}}
        )
        monkeypatch.setenv("TRADEKIT_EXCHANGE__FEE_BPS", "7")
        provenance = load_settings(config, env_file=None).provenance
        assert provenance["exchange.fee_bps"] == "env TRADEKIT_EXCHANGE__FEE_BPS"
        assert provenance["exchange.fill_rule"] == str(config)

    def test_provenance_is_read_only(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fee_bps": 5}})
        provenance = load_settings(config, env_file=None).provenance
        with pytest.raises(TypeError):
            provenance["exchange.fee_bps"] = "forged"  # type: ignore[index]


class TestSafetyAndImmutability:
    def test_live_orders_disabled_by_default(self) -> None:
        assert TradekitSettings(_env_file=None).live_orders_enabled is False
        assert load_settings(None, env_file=None).live_orders_enabled is False

    def test_bundled_config_keeps_live_orders_disabled(self) -> None:
        assert load_settings(BUNDLED_CONFIG, env_file=None).live_orders_enabled is False

    def test_settings_reject_assignment(self) -> None:
        settings = load_settings(None, env_file=None)
        with pytest.raises(ValidationError, match="frozen"):
            settings.live_orders_enabled = True  # type: ignore[misc]
        assert settings.live_orders_enabled is False

    def test_settings_sections_reject_assignment(self) -> None:
        settings = load_settings(None, env_file=None)
        with pytest.raises(ValidationError, match="frozen"):
            settings.exchange.fee_bps = 0.0
        assert settings.exchange.fee_bps == 10.0


class TestSettingsErrors:
    def test_bad_literal_names_file_path_value_and_choices(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fill_rule": "open"}})
        message = str(config_error(config, None))
        assert message.startswith(f"{config}: exchange.fill_rule: ")
        assert "'open'" in message
        assert "'next_open'" in message
        assert "'close'" in message

    def test_unknown_section_suggests_closest_key(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"exchnge": {"fee_bps": 5}})
        error = config_error(config, None)
        assert str(error) == f"{config}: exchnge: unknown key 'exchnge'; did you mean 'exchange'?"

    def test_unknown_nested_key_suggests_closest_key(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fee_bs": 5}})
        (problem,) = config_error(config, None).problems
        assert problem.source == str(config)
        assert problem.path == "exchange.fee_bs"
        assert "did you mean 'fee_bps'?" in problem.message

    def test_unknown_key_without_close_match_lists_allowed_keys(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"engine": {"zzz": 1}})
        (problem,) = config_error(config, None).problems
        assert problem.path == "engine.zzz"
        assert "max_concurrent_strategies" in problem.message
        assert "failures_before_quarantine" in problem.message

    def test_out_of_range_value_names_bound_and_value(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fee_bps": -3}})
        (problem,) = config_error(config, None).problems
        assert problem.path == "exchange.fee_bps"
        assert "greater than or equal to 0" in problem.message
        assert "-3" in problem.message

    @pytest.mark.parametrize("interval", [0, -5, "nan"])
    def test_a_polling_interval_not_above_zero_names_the_field(
        self, tmp_path: Path, interval: object
    ) -> None:
        config = write_json(
            tmp_path / "config.json", {"exchange": {"ccxt": {"poll_interval_seconds": interval}}}
        )
        (problem,) = config_error(config, None).problems
        assert problem.path == "exchange.ccxt.poll_interval_seconds"
        assert "greater than 0" in problem.message or "finite" in problem.message

    def test_the_polling_interval_is_read_and_unset_by_default(self, tmp_path: Path) -> None:
        assert load_settings(None, env_file=None).exchange.ccxt.poll_interval_seconds is None
        config = write_json(
            tmp_path / "config.json", {"exchange": {"ccxt": {"poll_interval_seconds": 2.5}}}
        )
        settings = load_settings(config, env_file=None)
        assert settings.exchange.ccxt.poll_interval_seconds == 2.5

    def test_every_bad_value_in_the_file_is_reported(self, tmp_path: Path) -> None:
        config = write_json(
            tmp_path / "config.json",
            {
                "exchange": {"fill_rule": "open", "fee_bps": -3},
                "engine": {"max_concurrent_strategies": 0},
            },
        )
        error = config_error(config, None)
        assert {problem.path for problem in error.problems} == {
            "exchange.fill_rule",
            "exchange.fee_bps",
            "engine.max_concurrent_strategies",
        }
        assert str(error).startswith("3 configuration problems:")

    def test_malformed_json_names_file_and_line(self, tmp_path: Path) -> None:
        config = tmp_path / "config.json"
        config.write_text('{\n  "exchange": {"fee_bps": 5,}\n}\n')
        message = str(config_error(config, None))
        assert message.startswith(f"{config}: malformed JSON at line 2")

    def test_duplicate_json_key_is_rejected(self, tmp_path: Path) -> None:
        config = tmp_path / "config.json"
        config.write_text('{"live_orders_enabled": false, "live_orders_enabled": true}')
        message = str(config_error(config, None))
        assert "'live_orders_enabled' appears twice" in message

    def test_missing_file_names_the_path(self, tmp_path: Path) -> None:
        missing = tmp_path / "absent.json"
        assert str(config_error(missing, None)) == f"{missing}: file not found"

    def test_top_level_list_is_rejected(self, tmp_path: Path) -> None:
        config = tmp_path / "config.json"
        config.write_text("[1, 2]")
        assert "expected a JSON object at the top level, got a list" in str(
            config_error(config, None)
        )

    def test_bad_env_value_names_the_variable(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fee_bps": 5}})
        monkeypatch.setenv("TRADEKIT_EXCHANGE__FILL_RULE", "open")
        (problem,) = config_error(config, None).problems
        assert problem.path == "exchange.fill_rule"
        assert "'open'" in problem.message
        assert "env TRADEKIT_EXCHANGE__FILL_RULE" in problem.message

    def test_bad_top_level_env_value_names_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TRADEKIT_LIVE_ORDERS_ENABLED", "maybe")
        (problem,) = config_error(None, None).problems
        assert problem.path == "live_orders_enabled"
        assert "'maybe'" in problem.message
        assert "env TRADEKIT_LIVE_ORDERS_ENABLED" in problem.message

    def test_bad_dotenv_value_names_dotenv_file_and_variable(self, tmp_path: Path) -> None:
        dotenv = write_dotenv(tmp_path / "settings.env", {"TRADEKIT_LIVE_ORDERS_ENABLED": "maybe"})
        (problem,) = config_error(None, dotenv).problems
        assert f"{dotenv} TRADEKIT_LIVE_ORDERS_ENABLED" in problem.message

    def test_env_value_can_fix_a_bad_file_value(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"fill_rule": "open"}})
        monkeypatch.setenv("TRADEKIT_EXCHANGE__FILL_RULE", "close")
        assert load_settings(config, env_file=None).exchange.fill_rule == "close"

    def test_bad_env_value_in_section_absent_from_file_names_path_and_variable(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = write_json(tmp_path / "config.json", {})
        monkeypatch.setenv("TRADEKIT_EXCHANGE__FILL_RULE", "open")
        (problem,) = config_error(config, None).problems
        assert problem.path == "exchange.fill_rule"
        assert "env TRADEKIT_EXCHANGE__FILL_RULE" in problem.message

    def test_unknown_nested_env_key_names_the_key_and_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TRADEKIT_EXCHANGE__FEE_BS", "1")
        (problem,) = config_error(None, None).problems
        assert problem.path == "exchange.fee_bs"
        assert "unknown key 'fee_bs'; did you mean 'fee_bps'?" in problem.message
        assert "env TRADEKIT_EXCHANGE__FEE_BS" in problem.message

    def test_unknown_dotenv_variable_is_attributed_to_the_dotenv_file(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {})
        dotenv = write_dotenv(tmp_path / "settings.env", {"TRADEKIT_EXCHNGE": "1"})
        (problem,) = config_error(config, dotenv).problems
        assert str(dotenv) in str(problem)
        assert "TRADEKIT_EXCHNGE" in str(problem)


class TestUnknownVariables:
    def test_unknown_variable_in_environment_is_reported_with_suggestion(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TRADEKIT_LOGING__LEVEL", "DEBUG")
        (problem,) = config_error(None, None).problems
        assert problem.source == "environment"
        assert "unknown variable TRADEKIT_LOGING__LEVEL" in problem.message
        assert "did you mean TRADEKIT_LOGGING?" in problem.message

    def test_unrelated_dotenv_variables_are_ignored(self, tmp_path: Path) -> None:
        dotenv = write_dotenv(tmp_path / "shared.env", {"OTHER_APP_PORT": "8080"})
        settings = load_settings(None, env_file=dotenv)
        assert settings.exchange.kind == "paper"

    def test_every_unknown_variable_is_listed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        dotenv = write_dotenv(tmp_path / "x.env", {"TRADEKIT_ENGNE__MAX": "1"})
        monkeypatch.setenv("TRADEKIT_STORAG__DATABASE_URL", "sqlite://")
        problems = config_error(None, dotenv).problems
        assert [problem.source for problem in problems] == [str(dotenv), "environment"]
