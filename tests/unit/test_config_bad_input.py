"""Hostile configuration input ends in a ``ConfigError`` naming where and what, never a
traceback or a hang: odd keys, odd variable names, deep nesting, huge and non-finite numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from config_files import write_json
from deadline import call_with_deadline
from pydantic import ValidationError

from tradekit.config import StrategyConfig, load_settings, load_strategy
from tradekit.config.provenance import source_of
from tradekit.config.strict_json import MAX_NESTING
from tradekit.errors import ConfigError

pytestmark = pytest.mark.usefixtures("clean_environment")

STRATEGY: dict[str, Any] = {
    "strategy_id": "hostile",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
    "indicators": [{"name": "rsi", "params": {"length": 14}}],
    "analyzers": [{"type": "threshold", "params": {"source": "rsi", "below": 30}}],
}


def load_strategy_file(path: Path, config: Path | None = None) -> None:
    load_strategy(path, load_settings(config, env_file=None))


def look_up_nothing(path: str) -> None:
    assert source_of({}, path) is None


def load_settings_only(config: Path | None) -> None:
    load_settings(config, env_file=None)


@pytest.mark.slow  # each case runs in a spawned child (see deadline.py)
class TestEmptyKeys:
    """An empty key used to send the provenance lookup into an endless loop."""

    @pytest.mark.parametrize(
        ("where", "expected_path"),
        [
            (("analyzers", 0), 'analyzers[0][""]'),
            (("exit", "partial_take_profits", 0), 'exit.partial_take_profits[0][""]'),
            (("exit",), 'exit[""]'),
        ],
    )
    def test_empty_key_in_strategy_file_is_a_config_error(
        self, tmp_path: Path, where: tuple[str | int, ...], expected_path: str
    ) -> None:
        document = json.loads(json.dumps(STRATEGY))
        document["exit"] = {"partial_take_profits": [{"profit_pct": 1, "close_pct": 5}]}
        section: Any = document
        for part in where:
            section = section[part]
        section[""] = 1
        path = write_json(tmp_path / "s.json", document)

        outcome = call_with_deadline(load_strategy_file, path)

        assert outcome.error_type == "ConfigError"
        assert f"{path}: {expected_path}: unknown key ''" in outcome.message

    def test_empty_key_in_base_config_is_a_config_error(self, tmp_path: Path) -> None:
        config = write_json(tmp_path / "config.json", {"exchange": {"": 1}})

        outcome = call_with_deadline(load_settings_only, config)

        assert outcome.error_type == "ConfigError"
        assert f'{config}: exchange[""]: unknown key' in outcome.message

    @pytest.mark.parametrize("path", ["a.", "a..b", "[", "a[", '["x', "a[0].", ".", "]"])
    def test_source_lookup_ends_for_any_path(self, path: str) -> None:
        outcome = call_with_deadline(look_up_nothing, path)

        assert outcome.error_type is None, outcome.message


@pytest.mark.slow  # each case runs in a spawned child (see deadline.py)
class TestVariableNames:
    def test_empty_part_in_a_variable_name_is_a_config_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TRADEKIT_EXCHANGE____FEE_BPS", "3")

        outcome = call_with_deadline(load_settings_only, None)

        assert outcome.error_type == "ConfigError"
        assert "TRADEKIT_EXCHANGE____FEE_BPS" in outcome.message
        assert "empty part" in outcome.message

    @pytest.mark.parametrize(
        ("name", "value", "fragment"),
        [
            ("TRADEKIT_STRATEGY_DEFAULTS", "not json", "expected a JSON object"),
            ("TRADEKIT_EXCHANGE", "{", "expected a JSON object"),
            ("TRADEKIT_EXCHANGE__CCXT", "[1]", "got a JSON list"),
            ("TRADEKIT_STRATEGY_DEFAULTS", '{"capital": NaN}', "finite number, got NaN at capital"),
        ],
    )
    def test_section_variable_must_hold_a_json_object(
        self, monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
    ) -> None:
        monkeypatch.setenv(name, value)

        outcome = call_with_deadline(load_settings_only, None)

        assert outcome.error_type == "ConfigError"
        assert f"environment: variable {name}: " in outcome.message
        assert fragment in outcome.message

    def test_bad_section_variable_in_dotenv_names_the_file(self, tmp_path: Path) -> None:
        dotenv = tmp_path / "settings.env"
        dotenv.write_text("TRADEKIT_STRATEGY_DEFAULTS=not json\n", encoding="utf-8")

        with pytest.raises(ConfigError) as caught:
            load_settings(None, env_file=dotenv)

        assert str(caught.value).startswith(f"{dotenv}: variable TRADEKIT_STRATEGY_DEFAULTS: ")


class TestHostileJson:
    @pytest.mark.slow  # runs in a spawned child (see deadline.py)
    def test_deeply_nested_lists_are_a_config_error(self, tmp_path: Path) -> None:
        path = tmp_path / "s.json"
        text = json.dumps({**STRATEGY, "description": "X"})
        path.write_text(text.replace('"X"', "[" * 600 + "]" * 600), encoding="utf-8")

        outcome = call_with_deadline(load_strategy_file, path)

        assert outcome.error_type == "ConfigError"
        assert f"{path}: description" in outcome.message
        assert f"nested more than {MAX_NESTING} levels deep" in outcome.message

    @pytest.mark.slow  # runs in a spawned child (see deadline.py)
    def test_nesting_too_deep_for_the_json_parser_is_a_config_error(self, tmp_path: Path) -> None:
        path = tmp_path / "s.json"
        path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")

        outcome = call_with_deadline(load_strategy_file, path)

        assert outcome.error_type == "ConfigError"
        assert f"nested more than {MAX_NESTING} levels deep" in outcome.message

    @pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e999"])
    def test_non_finite_number_in_a_file_names_path_and_literal(
        self, tmp_path: Path, literal: str
    ) -> None:
        path = tmp_path / "s.json"
        path.write_text(json.dumps(STRATEGY)[:-1] + f', "capital": {literal}}}', encoding="utf-8")

        with pytest.raises(ConfigError) as caught:
            load_strategy_file(path)

        assert str(caught.value) == f"{path}: capital: expected a finite number, got {literal}"


class TestNonFiniteNumbers:
    """Infinity and NaN were accepted as numbers: ``capital = inf`` gave infinite equity."""

    @pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
    def test_strategy_model_refuses_non_finite_capital(self, value: float) -> None:
        with pytest.raises(ValidationError, match="finite number"):
            StrategyConfig.model_validate({**STRATEGY, "capital": value})

    def test_non_finite_analyzer_parameter_is_refused(self) -> None:
        analyzers = [{"type": "threshold", "params": {"source": "rsi", "below": math.inf}}]
        with pytest.raises(ValidationError, match="finite number, got inf at below"):
            StrategyConfig.model_validate({**STRATEGY, "analyzers": analyzers})

    @pytest.mark.parametrize(
        ("name", "value", "expected_path"),
        [
            ("TRADEKIT_STRATEGY_DEFAULTS__CAPITAL", "inf", "capital"),
            ("TRADEKIT_STRATEGY_DEFAULTS__EXIT__STOP_LOSS_PCT", "nan", "exit.stop_loss_pct"),
        ],
    )
    def test_non_finite_strategy_default_from_a_variable_is_refused(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        name: str,
        value: str,
        expected_path: str,
    ) -> None:
        path = write_json(tmp_path / "s.json", STRATEGY)
        monkeypatch.setenv(name, value)

        with pytest.raises(ConfigError) as caught:
            load_strategy_file(path)

        (problem,) = caught.value.problems
        assert problem.path == expected_path
        assert f"expected a finite number, got '{value}'" in problem.message
        assert f"env {name}" in problem.message

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("TRADEKIT_RISK__MAX_TOTAL_EXPOSURE", "inf"),
            ("TRADEKIT_RISK__MAX_EXPOSURE_PER_SYMBOL", "Infinity"),
            ("TRADEKIT_EXCHANGE__FEE_BPS", "nan"),
        ],
    )
    def test_non_finite_setting_from_a_variable_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, name: str, value: str
    ) -> None:
        monkeypatch.setenv(name, value)

        with pytest.raises(ConfigError) as caught:
            load_settings(None, env_file=None)

        assert f"expected a finite number, got '{value}'" in str(caught.value)
        assert f"env {name}" in str(caught.value)

    def test_non_finite_setting_in_base_config_is_refused(self, tmp_path: Path) -> None:
        config = tmp_path / "config.json"
        config.write_text('{"risk": {"max_total_exposure": 1e999}}', encoding="utf-8")

        with pytest.raises(ConfigError) as caught:
            load_settings(config, env_file=None)

        assert str(caught.value) == (
            f"{config}: risk.max_total_exposure: expected a finite number, got 1e999"
        )
