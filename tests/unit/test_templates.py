"""Strategy templates: definitions match the strategy models; configs build and read back."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tradekit.config import TradekitSettings, load_strategy
from tradekit.config.strategy import StrategyConfig
from tradekit.errors import ConfigError, ConfigProblem
from tradekit.templates import (
    ParameterDefinition,
    StrategyTemplate,
    build_config,
    bundled_templates,
    load_template_file,
    load_templates,
    params_from_config,
)
from tradekit.templates.targets import parse_path, set_at
from tradekit.validation import check_strategies_build

TEMPLATES = {template.template_id: template for template in bundled_templates()}
BUNDLED_IDS = ("bollinger", "dca", "ema-cross", "macd-dca", "rsi")


def build(template_id: str, params: dict[str, Any], **options: Any) -> StrategyConfig:
    template = TEMPLATES[template_id]
    summary = template.summary()
    return build_config(
        template_id, "my bot", params, list(summary.symbols), summary.timeframe or "1h", **options
    )


def problems_of(template_id: str, params: dict[str, Any]) -> list[tuple[str | None, str]]:
    with pytest.raises(ConfigError) as caught:
        build(template_id, params)
    return [(problem.path, problem.message) for problem in caught.value.problems]


def numeric_bounds() -> list[tuple[str, ParameterDefinition, str]]:
    """Every (template, parameter, side) with a numeric bound, for the limit tests."""
    found = []
    for template in bundled_templates():
        for definition in template.definitions:
            if definition.minimum is not None:
                found.append((template.template_id, definition, "minimum"))
            if definition.maximum is not None:
                found.append((template.template_id, definition, "maximum"))
    return found


def just_outside(definition: ParameterDefinition, side: str) -> float:
    if side == "minimum":
        bound, exclusive, away = definition.minimum, definition.exclusive_minimum, -math.inf
    else:
        bound, exclusive, away = definition.maximum, definition.exclusive_maximum, math.inf
    assert bound is not None
    if exclusive:
        return bound
    if definition.type == "integer":
        return int(bound) + (-1 if side == "minimum" else 1)
    return math.nextafter(bound, away)


def file_problems(
    template_id: str, definition: ParameterDefinition, value: Any, folder: Path
) -> list[ConfigProblem]:
    """The problems of a strategy file holding the template's defaults but ``value`` at the
    parameter's path, as ``tradekit validate`` reports them (schema, then deep build)."""
    data = build(template_id, {}).model_dump(mode="json")
    set_at(data, parse_path(definition.path), value)
    path = folder / "strategy.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    settings = TradekitSettings.model_construct()
    try:
        loaded = load_strategy(path, settings)
        check_strategies_build([loaded])
    except ConfigError as exc:
        return list(exc.problems)
    return []


class TestDefinitionsFollowTheModels:
    def test_every_bundled_kind_is_a_template(self) -> None:
        assert tuple(sorted(TEMPLATES)) == BUNDLED_IDS

    @pytest.mark.parametrize(
        ("template_id", "definition", "side"),
        numeric_bounds(),
        ids=lambda item: getattr(item, "name", str(item)),
    )
    def test_a_value_just_outside_a_limit_is_refused_by_template_and_file_alike(
        self, template_id: str, definition: ParameterDefinition, side: str, tmp_path: Path
    ) -> None:
        value = just_outside(definition, side)
        template_problems = [
            message
            for path, message in problems_of(template_id, {definition.name: value})
            if path == f"params.{definition.name}"
        ]
        assert len(template_problems) == 1
        message = template_problems[0]
        from_file = [
            problem.message for problem in file_problems(template_id, definition, value, tmp_path)
        ]
        # The indicator catalog prefixes where the value sits; the expectation is the same text.
        assert any(found == message or found.endswith(f" {message}") for found in from_file), (
            message,
            from_file,
        )

    @pytest.mark.parametrize(
        ("template_id", "definition", "side"),
        numeric_bounds(),
        ids=lambda item: getattr(item, "name", str(item)),
    )
    def test_the_limit_itself_or_the_value_just_inside_is_accepted(
        self, template_id: str, definition: ParameterDefinition, side: str
    ) -> None:
        """With the test above: the form's limits are the model's, neither tighter nor looser."""
        exclusive = getattr(definition, f"exclusive_{side}")
        bound = getattr(definition, side)
        step = 1 if side == "minimum" else -1
        inside = (
            bound + step if definition.type == "integer" else math.nextafter(bound, step * math.inf)
        )
        value = inside if exclusive else bound
        model = TEMPLATES[template_id].params_model
        assert model.model_validate({definition.name: value}).model_dump()[definition.name] == value

    def test_choices_are_the_models_literal(self) -> None:
        mode = next(d for d in TEMPLATES["bollinger"].definitions if d.name == "mode")
        assert mode.type == "string"
        assert mode.choices == ("cross", "level")
        assert problems_of("bollinger", {"mode": "sideways"}) == [
            ("params.mode", "expected 'cross' or 'level', got 'sideways'")
        ]

    def test_defaults_are_the_template_strategys_values(self) -> None:
        rsi = {definition.name: definition for definition in TEMPLATES["rsi"].definitions}
        assert rsi["rsi_length"].default == 14
        assert rsi["oversold"].default == 30
        assert rsi["stop_loss_pct"].nullable is True
        assert rsi["rsi_length"].type == "integer"
        assert rsi["stop_loss_pct"].unit == "%"

    def test_params_schema_lists_every_parameter_and_forbids_others(self) -> None:
        for template in bundled_templates():
            schema = template.detail().params_schema
            assert list(schema["properties"]) == [d.name for d in template.definitions]
            assert schema["additionalProperties"] is False


class TestBuildConfig:
    @pytest.mark.parametrize("template_id", BUNDLED_IDS)
    def test_defaults_build_the_bundled_strategy(self, template_id: str) -> None:
        config = build(template_id, {})
        assert config.strategy_id == "my-bot"
        assert config.name == "my bot"
        assert params_from_config(template_id, config) == TEMPLATES[template_id].defaults

    def test_parameters_land_where_their_paths_say(self) -> None:
        config = build("macd-dca", {"macd_fast": 8, "safety_orders": 6, "stop_loss_pct": None})
        assert config.indicators[0].params["fast"] == 8
        assert config.dca is not None
        assert config.dca.safety_orders == 6
        assert config.exit.stop_loss_pct is None

    def test_the_bots_own_keys_are_used(self) -> None:
        config = build_config(
            "rsi", "RSI on ETH", {}, ["ETH/USDT", "BTC/USDT"], "4h", strategy_id="rsi-eth"
        )
        assert (config.strategy_id, config.symbols, config.timeframe) == (
            "rsi-eth",
            ("ETH/USDT", "BTC/USDT"),
            "4h",
        )

    def test_the_template_sits_over_strategy_defaults(self) -> None:
        settings = TradekitSettings.model_construct(strategy_defaults={"capital": 2500.0})
        assert build("rsi", {}, settings=settings).capital == 2500.0

    def test_unknown_parameter_suggests_the_close_one(self) -> None:
        assert problems_of("rsi", {"rsi_lenght": 3}) == [
            ("params.rsi_lenght", "unknown key 'rsi_lenght'; did you mean 'rsi_length'?")
        ]

    def test_wrong_type_names_the_parameter_and_value(self) -> None:
        assert problems_of("rsi", {"stop_loss_pct": "tight"}) == [
            (
                "params.stop_loss_pct",
                "expected a valid number, unable to parse string as a number, got 'tight'",
            )
        ]
        assert problems_of("rsi", {"rsi_length": "x"}) == [
            ("params.rsi_length", "must be an integer >= 1, got 'x'")
        ]

    def test_a_rule_over_two_values_is_shown_on_a_parameter_it_names(self) -> None:
        assert problems_of("macd-dca", {"macd_fast": 30}) == [
            ("params.macd_fast", "macd in indicators[0].params: fast (30) must be below slow (26)")
        ]
        assert problems_of("rsi", {"oversold": 80}) == [
            ("params.oversold", "'below' (80.0) must not exceed 'above' (70.0)")
        ]
        assert problems_of("bollinger", {"trailing_distance_pct": None}) == [
            (
                "params.trailing_activation_pct",
                "'trailing_activation_pct' is set but 'trailing_distance_pct' is missing; "
                "set both or neither",
            )
        ]

    def test_problems_of_the_bots_own_keys_come_with_the_parameters(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_config("rsi", "b", {"rsi_length": 0}, ["btc"], "2x")
        paths = [problem.path for problem in caught.value.problems]
        assert paths == ["params.rsi_length", "symbols[0]", "timeframe"]

    def test_a_name_without_letters_is_refused_on_the_name(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_config("rsi", "!!!", {}, ["BTC/USDT"], "1h")
        assert [problem.path for problem in caught.value.problems] == ["name"]

    def test_params_must_be_an_object(self) -> None:
        with pytest.raises(ConfigError) as caught:
            build_config("rsi", "b", [1, 2], ["BTC/USDT"], "1h")  # type: ignore[arg-type]
        assert [problem.path for problem in caught.value.problems] == ["params"]

    def test_unknown_template_suggests_the_close_one(self) -> None:
        with pytest.raises(ConfigError, match="did you mean 'rsi'") as caught:
            build_config("rsii", "b", {}, ["BTC/USDT"], "1h")
        assert caught.value.problems[0].path == "template"


def values_for(definition: ParameterDefinition) -> st.SearchStrategy[Any]:
    if definition.choices is not None:
        return st.sampled_from(definition.choices)
    if definition.type == "string":
        return st.just(definition.default)
    low = definition.minimum if definition.minimum is not None else -1000
    high = definition.maximum if definition.maximum is not None else low + 1000
    if definition.type == "integer":
        low = int(low) + int(definition.exclusive_minimum)
        return st.integers(min_value=low, max_value=min(int(high), low + 500))
    values: st.SearchStrategy[Any] = st.floats(
        min_value=low,
        max_value=min(high, low + 1000),
        exclude_min=definition.exclusive_minimum,
        exclude_max=definition.exclusive_maximum,
    )
    return values | st.none() if definition.nullable else values


@st.composite
def template_params(draw: st.DrawFn) -> tuple[StrategyTemplate, dict[str, Any]]:
    template = draw(st.sampled_from(bundled_templates()))
    chosen = draw(st.sets(st.sampled_from(template.definitions)))
    return template, {d.name: draw(values_for(d)) for d in chosen}


class TestRoundTrip:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
    @given(template_params())
    def test_params_read_back_from_a_built_config(
        self, case: tuple[StrategyTemplate, dict[str, Any]]
    ) -> None:
        template, params = case
        try:
            config = template.build_config("round trip", params, ["BTC/USDT"], "15m")
        except ConfigError:
            assume(False)  # a rule over several values (fast < slow) refused the draw
            raise
        expected = template.params_model.model_validate(params).model_dump(mode="json")
        assert template.params_from_config(config) == expected

    def test_a_config_from_another_template_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="not made from template 'macd-dca'"):
            params_from_config("macd-dca", build("rsi", {}))


def write_template(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def user_template(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "template_id": "my-rsi",
        "name": "My RSI",
        "strategy": {
            "timeframe": "1h",
            "indicators": [{"name": "rsi", "params": {"length": 10}}],
            "analyzers": [{"type": "threshold", "params": {"source": "rsi", "below": 25}}],
        },
        "parameters": [
            {"name": "length", "path": "indicators[0].params.length", "unit": "bars"},
            {"name": "below", "path": "analyzers[0].params.below", "label": "Buy below"},
        ],
    }
    data.update(changes)
    return data


def load_problems(path: Path) -> list[tuple[str | None, str | None, str]]:
    with pytest.raises(ConfigError) as caught:
        load_template_file(path)
    return [(problem.source, problem.path, problem.message) for problem in caught.value.problems]


class TestUserTemplates:
    def test_a_users_template_joins_the_catalog(self, tmp_path: Path) -> None:
        path = write_template(tmp_path, "mine.json", user_template())
        catalog = load_templates(tmp_path)
        template = catalog.get("my-rsi")
        assert template.source == str(path)
        assert [t.template_id for t in catalog.templates][-1] == "my-rsi"
        config = template.build_config("mine", {"below": 20}, ["BTC/USDT"], "1h")
        assert config.analyzers[0].params["below"] == 20
        assert template.definitions[1].label == "Buy below"

    def test_malformed_json_names_file_and_line(self, tmp_path: Path) -> None:
        path = write_template(tmp_path, "bad.json", '{"template_id": "x",\n}')
        ((source, _, message),) = load_problems(path)
        assert source == str(path)
        assert message.startswith("malformed JSON at line 2")

    def test_unknown_key_in_the_file_is_named(self, tmp_path: Path) -> None:
        data = user_template(paramters=[])
        path = write_template(tmp_path, "typo.json", data)
        assert (str(path), "paramters", "unknown key 'paramters'; did you mean 'parameters'?") in (
            load_problems(path)
        )

    def test_bad_value_in_the_templates_strategy_is_named_with_its_path(
        self, tmp_path: Path
    ) -> None:
        data = user_template()
        data["strategy"]["exit"] = {"stop_loss_pct": 150}
        path = write_template(tmp_path, "stop.json", data)
        assert load_problems(path) == [
            (str(path), "strategy.exit.stop_loss_pct", "expected less than 100, got 150")
        ]

    def test_a_path_to_no_value_suggests_the_field(self, tmp_path: Path) -> None:
        data = user_template()
        data["parameters"][0]["path"] = "exit.stop_los_pct"
        path = write_template(tmp_path, "path.json", data)
        assert load_problems(path) == [
            (
                str(path),
                "parameters[0].path",
                "exit has no 'stop_los_pct'; did you mean 'stop_loss_pct'?; "
                "got 'exit.stop_los_pct'",
            )
        ]

    def test_a_path_to_a_section_is_refused(self, tmp_path: Path) -> None:
        data = user_template()
        data["parameters"][0]["path"] = "exit.partial_take_profits"
        path = write_template(tmp_path, "section.json", data)
        ((_, where, message),) = load_problems(path)
        assert where == "parameters[0].path"
        assert "a parameter must name a single value" in message

    def test_the_bots_own_keys_are_refused_in_the_strategy(self, tmp_path: Path) -> None:
        data = user_template()
        data["strategy"]["strategy_id"] = "fixed"
        path = write_template(tmp_path, "id.json", data)
        ((_, where, message),) = load_problems(path)
        assert where == "strategy"
        assert "each bot created from the template gives its own" in message

    def test_deep_problems_of_the_strategy_are_found(self, tmp_path: Path) -> None:
        data = user_template()
        data["strategy"]["indicators"][0]["name"] = "rsx"
        path = write_template(tmp_path, "deep.json", data)
        ((source, where, message),) = load_problems(path)
        assert (source, where) == (str(path), "strategy.indicators[0].name")
        assert "unknown indicator 'rsx'" in message

    def test_a_bundled_id_is_refused_naming_both(self, tmp_path: Path) -> None:
        path = write_template(tmp_path, "rsi.json", user_template(template_id="rsi"))
        with pytest.raises(ConfigError) as caught:
            load_templates(tmp_path)
        ((problem),) = caught.value.problems
        assert (problem.source, problem.path) == (str(path), "template_id")
        assert "already used by the bundled template" in problem.message

    def test_every_bad_file_is_reported_at_once(self, tmp_path: Path) -> None:
        write_template(tmp_path, "a.json", "[]")
        write_template(tmp_path, "b.json", user_template(name=""))
        with pytest.raises(ConfigError) as caught:
            load_templates(tmp_path)
        assert [Path(p.source or "").name for p in caught.value.problems] == ["a.json", "b.json"]

    def test_a_named_folder_must_exist_but_the_default_may_not(self, tmp_path: Path) -> None:
        missing = tmp_path / "none"
        assert len(load_templates(missing).templates) == len(BUNDLED_IDS)
        with pytest.raises(ConfigError, match="folder not found"):
            load_templates(missing, required=True)
