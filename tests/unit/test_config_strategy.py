"""Tests for strategy files: the deep merge, defaults, validation rules and collected problems."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from config_files import write_json
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tradekit.config import (
    StrategyConfig,
    TradekitSettings,
    deep_merge,
    load_settings,
    load_strategies,
    load_strategy,
    load_strategy_config,
    load_strategy_configs,
)
from tradekit.config.provenance import leaf_paths
from tradekit.errors import ConfigError, ConfigProblem

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_CONFIG = REPO_ROOT / "config.json"
BUNDLED_STRATEGIES = REPO_ROOT / "strategies"

DEFAULTS: dict[str, Any] = {
    "capital": 5000,
    "entry": {"min_score": 0.5, "sizing": {"mode": "percent_equity", "equity_pct": 20}},
    "exit": {"stop_loss_pct": 5, "take_profit_pct": 10},
    "risk": {"daily_loss_limit_pct": 4},
    "filters": {"volatility": {"atr_length": 20}},
}

MINIMAL: dict[str, Any] = {
    "strategy_id": "rsi-test-1h",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
    "analyzers": [{"type": "threshold"}],
}

pytestmark = pytest.mark.usefixtures("clean_environment")


def strategy(**changes: Any) -> dict[str, Any]:
    """The minimal valid strategy with ``changes`` merged onto it."""
    return deep_merge(MINIMAL, changes)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_json(tmp_path / "config.json", {"strategy_defaults": DEFAULTS})


@pytest.fixture
def settings(config_path: Path) -> TradekitSettings:
    return load_settings(config_path, env_file=None)


@pytest.fixture
def bundled_settings() -> TradekitSettings:
    return load_settings(BUNDLED_CONFIG, env_file=None)


def validate(data: dict[str, Any]) -> StrategyConfig:
    return StrategyConfig.model_validate(data)


def problems_of(path: Path, settings: TradekitSettings) -> tuple[ConfigProblem, ...]:
    with pytest.raises(ConfigError) as caught:
        load_strategy_config(path, settings)
    return caught.value.problems


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=3)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from("abcd"), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.sampled_from("abcde"), json_values, max_size=5)


def assert_merged(base: dict[str, Any], override: dict[str, Any], result: dict[str, Any]) -> None:
    assert set(result) == set(base) | set(override)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            assert_merged(base[key], value, result[key])
        else:
            assert result[key] == value
    for key in set(base) - set(override):
        assert result[key] == base[key]


class TestDeepMerge:
    def test_nested_dicts_merge_key_by_key(self) -> None:
        merged = deep_merge({"exit": {"a": 1, "b": 2}}, {"exit": {"b": 3, "c": 4}})
        assert merged == {"exit": {"a": 1, "b": 3, "c": 4}}

    def test_lists_are_replaced_not_concatenated(self) -> None:
        merged = deep_merge({"symbols": ["BTC/USDT", "ETH/USDT"]}, {"symbols": ["SOL/USDT"]})
        assert merged == {"symbols": ["SOL/USDT"]}

    def test_scalar_replaces_dict(self) -> None:
        assert deep_merge({"mtf": {"timeframe": "4h"}}, {"mtf": None}) == {"mtf": None}

    def test_dict_replaces_scalar(self) -> None:
        assert deep_merge({"mtf": None}, {"mtf": {"timeframe": "4h"}}) == {
            "mtf": {"timeframe": "4h"}
        }

    def test_override_wins_for_scalars(self) -> None:
        assert deep_merge({"capital": 1, "enabled": True}, {"capital": 2}) == {
            "capital": 2,
            "enabled": True,
        }

    def test_result_shares_no_mutable_value_with_inputs(self) -> None:
        base = {"exit": {"stop_loss_pct": 5}, "symbols": ["BTC/USDT"]}
        override = {"indicators": [{"name": "rsi"}]}
        merged = deep_merge(base, override)
        merged["exit"]["stop_loss_pct"] = 99
        merged["symbols"].append("ETH/USDT")
        merged["indicators"][0]["name"] = "ema"
        assert base == {"exit": {"stop_loss_pct": 5}, "symbols": ["BTC/USDT"]}
        assert override == {"indicators": [{"name": "rsi"}]}

    @hypothesis.settings(max_examples=300, deadline=None)
    @given(base=json_objects, override=json_objects)
    def test_merge_follows_the_rules_and_leaves_inputs_unchanged(
        self, base: dict[str, Any], override: dict[str, Any]
    ) -> None:
        base_before = copy.deepcopy(base)
        override_before = copy.deepcopy(override)
        result = deep_merge(base, override)
        assert_merged(base, override, result)
        assert base == base_before
        assert override == override_before

    @hypothesis.settings(deadline=None)
    @given(data=json_objects)
    def test_merging_onto_empty_or_with_empty_is_identity(self, data: dict[str, Any]) -> None:
        assert deep_merge({}, data) == data
        assert deep_merge(data, {}) == data


class TestStrategyDefaults:
    def test_defaults_fill_keys_the_strategy_leaves_out(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        config = load_strategy_config(write_json(tmp_path / "s.json", MINIMAL), settings)
        assert config.capital == 5000.0
        assert config.entry.sizing.mode == "percent_equity"
        assert config.entry.sizing.equity_pct == 20.0
        assert config.exit.take_profit_pct == 10.0
        assert config.risk.daily_loss_limit_pct == 4.0

    def test_strategy_values_win_over_defaults(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = strategy(capital=750, exit={"stop_loss_pct": 2})
        config = load_strategy_config(write_json(tmp_path / "s.json", data), settings)
        assert config.capital == 750.0
        assert config.exit.stop_loss_pct == 2.0
        assert config.exit.take_profit_pct == 10.0

    def test_strategy_null_clears_a_default(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = strategy(exit={"take_profit_pct": None}, risk={"daily_loss_limit_pct": None})
        config = load_strategy_config(write_json(tmp_path / "s.json", data), settings)
        assert config.exit.take_profit_pct is None
        assert config.risk.daily_loss_limit_pct is None
        assert config.exit.stop_loss_pct == 5.0

    def test_settings_defaults_are_not_changed_by_loading(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = strategy(exit={"stop_loss_pct": 2}, entry={"sizing": {"mode": "fixed_quote"}})
        load_strategy_config(write_json(tmp_path / "s.json", data), settings)
        assert settings.strategy_defaults == DEFAULTS

    def test_provenance_names_strategy_file_or_defaults(
        self, tmp_path: Path, config_path: Path, settings: TradekitSettings
    ) -> None:
        path = write_json(tmp_path / "s.json", strategy(exit={"stop_loss_pct": 2}))
        provenance = load_strategy(path, settings).provenance
        from_defaults = f"{config_path} (strategy_defaults)"
        assert provenance["exit.stop_loss_pct"] == str(path)
        assert provenance["exit.take_profit_pct"] == from_defaults
        assert provenance["capital"] == from_defaults
        assert provenance["entry.sizing.equity_pct"] == from_defaults
        assert provenance["strategy_id"] == str(path)
        assert provenance["analyzers"] == str(path)

    def test_strategy_scalar_over_default_section_drops_section_provenance(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        path = write_json(tmp_path / "s.json", strategy(filters={"volatility": None}))
        loaded = load_strategy(path, settings)
        assert loaded.config.filters.volatility is None
        assert loaded.provenance["filters.volatility"] == str(path)
        assert "filters.volatility.atr_length" not in loaded.provenance

    @pytest.mark.parametrize(
        "path", sorted(BUNDLED_STRATEGIES.glob("*.json")), ids=lambda p: p.stem
    )
    def test_every_bundled_key_has_file_or_defaults_provenance(
        self, path: Path, bundled_settings: TradekitSettings
    ) -> None:
        loaded = load_strategy(path, bundled_settings)
        own = json.loads(path.read_text(encoding="utf-8"))
        merged = deep_merge(bundled_settings.strategy_defaults, own)
        from_defaults = f"{BUNDLED_CONFIG} (strategy_defaults)"
        assert set(leaf_paths(merged)) == set(loaded.provenance)
        for key, source in loaded.provenance.items():
            expected = str(path) if key in set(leaf_paths(own)) else from_defaults
            assert source == expected, key

    def test_bad_default_names_where_the_value_came_from(
        self, tmp_path: Path, config_path: Path
    ) -> None:
        bad_config = write_json(tmp_path / "bad.json", {"strategy_defaults": {"capital": -1}})
        settings = load_settings(bad_config, env_file=None)
        path = write_json(tmp_path / "s.json", MINIMAL)
        (problem,) = problems_of(path, settings)
        assert problem.source == str(path)
        assert problem.path == "capital"
        assert f"value set by {bad_config} (strategy_defaults)" in problem.message


class TestBundledStrategies:
    def test_every_bundled_strategy_validates_with_bundled_config(
        self, bundled_settings: TradekitSettings
    ) -> None:
        configs = load_strategy_configs(BUNDLED_STRATEGIES, bundled_settings)
        assert len(configs) == len(list(BUNDLED_STRATEGIES.glob("*.json")))
        assert len(configs) >= 2

    def test_bundled_strategy_ids_are_unique(self, bundled_settings: TradekitSettings) -> None:
        ids = [c.strategy_id for c in load_strategy_configs(BUNDLED_STRATEGIES, bundled_settings)]
        assert len(ids) == len(set(ids))

    def test_bundled_strategies_share_a_symbol_and_span_several(
        self, bundled_settings: TradekitSettings
    ) -> None:
        configs = load_strategy_configs(BUNDLED_STRATEGIES, bundled_settings)
        strategies_per_symbol = Counter(s for config in configs for s in set(config.symbols))
        assert max(strategies_per_symbol.values()) >= 2
        assert len(strategies_per_symbol) > 1

    def test_bundled_strategies_load_in_file_name_order(
        self, bundled_settings: TradekitSettings
    ) -> None:
        loaded = load_strategies(BUNDLED_STRATEGIES, bundled_settings)
        assert [s.path.name for s in loaded] == sorted(s.path.name for s in loaded)

    def test_bundled_risk_sized_strategy_has_a_stop(
        self, bundled_settings: TradekitSettings
    ) -> None:
        configs = load_strategy_configs(BUNDLED_STRATEGIES, bundled_settings)
        for config in configs:
            if config.entry.sizing.mode == "risk":
                assert config.exit.stop_loss_pct is not None


class TestStrategyConfigModel:
    def test_config_is_frozen(self) -> None:
        config = validate(MINIMAL)
        with pytest.raises(ValidationError, match="frozen"):
            config.capital = 1.0  # type: ignore[misc]
        with pytest.raises(ValidationError, match="frozen"):
            config.exit.stop_loss_pct = 1.0

    def test_unknown_top_level_key_is_rejected_with_suggestion(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        path = write_json(tmp_path / "s.json", strategy(exitt={"stop_loss_pct": 2}))
        (problem,) = problems_of(path, settings)
        assert problem.path == "exitt"
        assert "unknown key 'exitt'; did you mean 'exit'?" in problem.message

    def test_unknown_nested_key_is_rejected_with_suggestion(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        path = write_json(tmp_path / "s.json", strategy(exit={"stop_los_pct": 2}))
        (problem,) = problems_of(path, settings)
        assert problem.path == "exit.stop_los_pct"
        assert "did you mean 'stop_loss_pct'?" in problem.message

    def test_unknown_key_inside_list_item_names_index(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = strategy(indicators=[{"name": "rsi"}, {"name": "ema", "lenght": 9}])
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "indicators[1].lenght"

    def test_name_defaults_to_strategy_id(self) -> None:
        assert validate(MINIMAL).name == "rsi-test-1h"

    def test_explicit_name_is_kept(self) -> None:
        assert validate(strategy(name="RSI test")).name == "RSI test"

    def test_missing_required_key_is_named(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = {key: value for key, value in MINIMAL.items() if key != "timeframe"}
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "timeframe"
        assert "required key 'timeframe' is missing" in problem.message

    def test_bad_strategy_id_is_described_in_words(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = strategy(strategy_id="RSI BTC")
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "strategy_id"
        assert "lowercase slug" in problem.message
        assert "'RSI BTC'" in problem.message

    def test_duplicate_symbols_are_rejected(self) -> None:
        with pytest.raises(ValidationError, match="BTC/USDT listed twice"):
            validate(strategy(symbols=["BTC/USDT", "BTC/USDT"]))

    def test_unknown_timeframe_suggests_closest(self) -> None:
        with pytest.raises(ValidationError, match="did you mean '1h'"):
            validate(strategy(timeframe="1hr"))


class TestSizingRules:
    @pytest.mark.parametrize(
        ("mode", "field"), [("percent_equity", "equity_pct"), ("risk", "risk_pct")]
    )
    def test_sizing_mode_needs_its_field(
        self, tmp_path: Path, settings: TradekitSettings, mode: str, field: str
    ) -> None:
        data = strategy(entry={"sizing": {"mode": mode, "equity_pct": None}})
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "entry.sizing"
        assert f"sizing mode '{mode}' needs '{field}' to be set" in problem.message

    def test_fixed_quote_needs_no_extra_field(self) -> None:
        config = validate(strategy(entry={"sizing": {"mode": "fixed_quote"}}))
        assert config.entry.sizing.quote_amount == 100.0

    def test_risk_sizing_needs_stop_loss(self, tmp_path: Path, settings: TradekitSettings) -> None:
        data = strategy(
            entry={"sizing": {"mode": "risk", "risk_pct": 1}}, exit={"stop_loss_pct": None}
        )
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "exit"
        assert "set exit.stop_loss_pct" in problem.message

    def test_risk_sizing_with_stop_loss_is_valid(self) -> None:
        data = strategy(
            entry={"sizing": {"mode": "risk", "risk_pct": 1}}, exit={"stop_loss_pct": 2}
        )
        assert validate(data).entry.sizing.risk_pct == 1.0

    def test_risk_sizing_is_satisfied_by_default_stop_loss(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = strategy(entry={"sizing": {"mode": "risk", "risk_pct": 1}})
        config = load_strategy_config(write_json(tmp_path / "s.json", data), settings)
        assert config.exit.stop_loss_pct == 5.0


class TestMultiTimeframeRule:
    @pytest.mark.parametrize("mtf_timeframe", ["4h", "1d", "2h"])
    def test_higher_multiple_timeframe_is_accepted(self, mtf_timeframe: str) -> None:
        config = validate(strategy(mtf={"timeframe": mtf_timeframe}))
        assert config.mtf is not None
        assert config.mtf.timeframe == mtf_timeframe

    @pytest.mark.parametrize("mtf_timeframe", ["15m", "1h"])
    def test_lower_or_equal_timeframe_is_rejected(
        self, tmp_path: Path, settings: TradekitSettings, mtf_timeframe: str
    ) -> None:
        data = strategy(mtf={"timeframe": mtf_timeframe})
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "mtf"
        assert f"mtf.timeframe '{mtf_timeframe}' must be higher" in problem.message

    def test_higher_timeframe_that_is_not_a_multiple_is_rejected(self) -> None:
        with pytest.raises(ValidationError, match="whole multiple"):
            validate(strategy(timeframe="4h", mtf={"timeframe": "6h"}))


class TestExitRules:
    @pytest.mark.parametrize(
        ("present", "missing"),
        [
            ("trailing_activation_pct", "trailing_distance_pct"),
            ("trailing_distance_pct", "trailing_activation_pct"),
        ],
    )
    def test_trailing_needs_both_fields(
        self, tmp_path: Path, settings: TradekitSettings, present: str, missing: str
    ) -> None:
        data = strategy(exit={present: 1})
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "exit"
        assert f"'{present}' is set but '{missing}' is missing" in problem.message

    def test_trailing_with_both_fields_is_valid(self) -> None:
        config = validate(strategy(exit={"trailing_activation_pct": 2, "trailing_distance_pct": 1}))
        assert config.exit.trailing_distance_pct == 1.0

    @pytest.mark.parametrize("levels", [[2, 1], [1, 1]], ids=["decreasing", "repeated"])
    def test_partial_take_profits_must_strictly_increase(self, levels: list[float]) -> None:
        partials = [{"profit_pct": level, "close_pct": 10} for level in levels]
        with pytest.raises(ValidationError, match="strictly increasing profit_pct"):
            validate(strategy(exit={"partial_take_profits": partials}))

    def test_partial_take_profits_may_not_close_over_100_pct(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        partials = [{"profit_pct": 1, "close_pct": 60}, {"profit_pct": 2, "close_pct": 50}]
        data = strategy(exit={"partial_take_profits": partials})
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "exit"
        assert "close 110.0% in total; expected at most 100%" in problem.message

    def test_partial_take_profits_closing_exactly_100_pct_are_valid(self) -> None:
        partials = [{"profit_pct": 1, "close_pct": 40}, {"profit_pct": 3, "close_pct": 60}]
        config = validate(strategy(exit={"partial_take_profits": partials}))
        assert [p.close_pct for p in config.exit.partial_take_profits] == [40.0, 60.0]

    def test_partial_take_profit_close_pct_above_100_names_its_index(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        partials = [{"profit_pct": 1, "close_pct": 10}, {"profit_pct": 2, "close_pct": 150}]
        data = strategy(exit={"partial_take_profits": partials})
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "exit.partial_take_profits[1].close_pct"
        assert "150" in problem.message


class TestIndicatorKeys:
    def test_duplicate_indicator_without_alias_is_rejected(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = strategy(indicators=[{"name": "ema"}, {"name": "ema"}])
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "indicators"
        assert "ema used twice" in problem.message
        assert "alias" in problem.message

    def test_alias_tells_same_indicator_apart(self) -> None:
        config = validate(
            strategy(indicators=[{"name": "ema", "alias": "ema_fast"}, {"name": "ema"}])
        )
        assert config.indicator_keys == ("ema_fast", "ema")

    def test_alias_clashing_with_another_name_is_rejected(self) -> None:
        with pytest.raises(ValidationError, match="rsi used twice"):
            validate(strategy(indicators=[{"name": "ema", "alias": "rsi"}, {"name": "rsi"}]))

    def test_alias_must_be_an_identifier(self) -> None:
        with pytest.raises(ValidationError, match="alias"):
            validate(strategy(indicators=[{"name": "ema", "alias": "Fast EMA"}]))

    def test_non_scalar_indicator_param_is_one_problem_at_its_path(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = strategy(indicators=[{"name": "ema", "params": {"length": {"value": 9}}}])
        problems = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert [problem.path for problem in problems] == ["indicators[0].params.length"]

    def test_list_as_indicator_param_is_one_problem_at_its_path(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = strategy(indicators=[{"name": "ema", "params": {"length": [9]}}])
        (problem,) = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert problem.path == "indicators[0].params.length"
        assert "[9]" in problem.message


class TestCollectedProblems:
    def test_problems_in_every_file_are_collected(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        folder = tmp_path / "strategies"
        bad_capital = write_json(folder / "a.json", strategy(strategy_id="a", capital=-1))
        bad_timeframe = write_json(folder / "b.json", strategy(strategy_id="b", timeframe="7h"))
        bad_key = write_json(folder / "c.json", strategy(strategy_id="c", exitt={}))
        write_json(folder / "d.json", strategy(strategy_id="d"))
        with pytest.raises(ConfigError) as caught:
            load_strategies(folder, settings)
        problems = caught.value.problems
        assert [(p.source, p.path) for p in problems] == [
            (str(bad_capital), "capital"),
            (str(bad_timeframe), "timeframe"),
            (str(bad_key), "exitt"),
        ]
        assert str(caught.value).startswith("3 configuration problems:")

    def test_several_problems_in_one_file_are_all_reported(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        data = strategy(capital=-1, timeframe="7h", exit={"take_profit_pct": "x"})
        problems = problems_of(write_json(tmp_path / "s.json", data), settings)
        assert {p.path for p in problems} == {"capital", "timeframe", "exit.take_profit_pct"}

    def test_duplicate_strategy_id_names_both_files(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        folder = tmp_path / "strategies"
        first = write_json(folder / "first.json", strategy(strategy_id="same"))
        second = write_json(folder / "second.json", strategy(strategy_id="same"))
        write_json(folder / "other.json", strategy(strategy_id="other"))
        with pytest.raises(ConfigError) as caught:
            load_strategy_configs(folder, settings)
        (problem,) = caught.value.problems
        assert "strategy_id 'same'" in problem.message
        assert str(first) in problem.message
        assert str(second) in problem.message

    def test_duplicate_id_and_bad_file_are_reported_together(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        folder = tmp_path / "strategies"
        write_json(folder / "a.json", strategy(strategy_id="same"))
        write_json(folder / "b.json", strategy(strategy_id="same"))
        bad = write_json(folder / "c.json", strategy(strategy_id="c", capital=0))
        with pytest.raises(ConfigError) as caught:
            load_strategies(folder, settings)
        messages = [str(problem) for problem in caught.value.problems]
        assert len(messages) == 2
        assert any(message.startswith(f"{bad}: capital") for message in messages)
        assert any("strategy_id 'same'" in message for message in messages)

    def test_malformed_file_does_not_hide_invalid_file(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        folder = tmp_path / "strategies"
        folder.mkdir()
        (folder / "a.json").write_text("{not json")
        invalid = write_json(folder / "b.json", strategy(strategy_id="b", timeframe="7h"))
        with pytest.raises(ConfigError) as caught:
            load_strategies(folder, settings)
        sources = [problem.source for problem in caught.value.problems]
        assert sources == [str(folder / "a.json"), str(invalid)]

    def test_valid_folder_loads_configs_in_file_name_order(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        folder = tmp_path / "strategies"
        write_json(folder / "b.json", strategy(strategy_id="second"))
        write_json(folder / "a.json", strategy(strategy_id="first"))
        configs = load_strategy_configs(folder, settings)
        assert [config.strategy_id for config in configs] == ["first", "second"]

    def test_folder_without_strategy_files_is_an_error(
        self, tmp_path: Path, settings: TradekitSettings
    ) -> None:
        folder = tmp_path / "empty"
        folder.mkdir()
        with pytest.raises(ConfigError, match=r"no strategy files \(\*\.json\)"):
            load_strategies(folder, settings)

    def test_missing_folder_is_an_error(self, tmp_path: Path, settings: TradekitSettings) -> None:
        with pytest.raises(ConfigError, match="strategies folder not found"):
            load_strategies(tmp_path / "absent", settings)
