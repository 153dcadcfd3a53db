"""``StrategyTemplate``: a strategy with some values left as typed parameters, and its two mappings.

``build_config`` puts a bot's parameter values into the template's strategy and
validates the result exactly as a strategy file is validated; each problem's
path names the parameter the user typed (``params.rsi_length``).
``params_from_config`` reads the values back out of a config, for an "Edit" form.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tradekit.config.loading import deep_merge
from tradekit.config.problems import problems_from_validation
from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.errors import ConfigError, ConfigProblem
from tradekit.runtime.bootstrap import RunMode, bootstrap
from tradekit.services.indicators.catalog import indicator_problems
from tradekit.templates.models import (
    JsonScalar,
    ParameterDefinition,
    ParameterSpec,
    TemplateDetail,
    TemplateSummary,
)
from tradekit.templates.targets import Target, TargetError, resolve, schema_of, set_at

PARAMS_KEY = "params"
_SLUG_BREAK = re.compile(r"[^a-z0-9]+")
_MAX_ID_LENGTH = 64


def strategy_id_from_name(name: str) -> str:
    """A strategy id made from a bot's name: ``"RSI on BTC #2"`` -> ``"rsi-on-btc-2"``."""
    return _SLUG_BREAK.sub("-", name.lower()).strip("-")[:_MAX_ID_LENGTH].strip("-")


@dataclass(frozen=True)
class TemplateParameter:
    """One parameter: what the template file says of it and where it lands in the strategy."""

    spec: ParameterSpec
    target: Target
    definition: ParameterDefinition


def parameter_definition(spec: ParameterSpec, target: Target) -> ParameterDefinition:
    """The form's view of a parameter, read from the JSON Schema of the strategy field's type."""
    schema = schema_of(target.annotation)
    options = list(schema.get("anyOf", [schema]))
    nullable = any(option.get("type") == "null" for option in options)
    main = next(option for option in options if option.get("type") != "null")
    choices = main.get("enum", [main["const"]] if "const" in main else None)
    return ParameterDefinition(
        name=spec.name,
        label=spec.label or spec.name.replace("_", " ").capitalize(),
        type=main.get("type", "string"),
        default=target.value,
        nullable=nullable,
        minimum=main.get("minimum", main.get("exclusiveMinimum")),
        exclusive_minimum="exclusiveMinimum" in main,
        maximum=main.get("maximum", main.get("exclusiveMaximum")),
        exclusive_maximum="exclusiveMaximum" in main,
        choices=tuple(choices) if choices is not None else None,
        description=spec.help
        or schema.get("description")
        or target.description
        or f"Sets {target.path} of the strategy.",
        unit=spec.unit,
        path=target.path,
    )


def _params_model(template_id: str, parameters: Sequence[TemplateParameter]) -> type[BaseModel]:
    """A model of the params object whose fields carry the strategy fields' own annotations."""
    fields: dict[str, Any] = {
        parameter.spec.name: (
            parameter.target.annotation,
            Field(
                default=parameter.target.value,
                title=parameter.definition.label,
                description=parameter.definition.description,
            ),
        )
        for parameter in parameters
    }
    title = f"{template_id} params"
    config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, title=title)
    model: type[BaseModel] = create_model(
        f"TemplateParams_{template_id}", __config__=config, **fields
    )
    return model


def deep_problems(config: StrategyConfig, source: str) -> list[ConfigProblem]:
    """What only the built services see (indicator names and parameters, analyzer parameters,
    references): build ``config`` once in a throwaway validation runtime."""
    # The catalog's own check first, for problems placed on the indicator they concern.
    problems = [
        ConfigProblem(message, source, f"indicators[{index}].{'params' if spec else 'name'}")
        for index, indicator in enumerate(config.indicators)
        for spec, _, messages in [indicator_problems(indicator, f"indicators[{index}]")]
        for message in messages
    ]
    if problems:
        return problems
    runtime = bootstrap(TradekitSettings.model_construct(), mode=RunMode.VALIDATE)
    try:
        runtime.factory.create(config)
    except ConfigError as exc:
        return [ConfigProblem(problem.message, source, problem.path) for problem in exc.problems]
    finally:
        runtime.close()
    return []


class StrategyTemplate:
    """One template: its strategy, its typed parameters and their params model; one per catalog.

    Built by ``tradekit.templates.loading`` from a template file whose strategy
    has already passed deep validation, so every parameter's default is valid.
    """

    def __init__(
        self,
        template_id: str,
        name: str,
        description: str,
        strategy: Mapping[str, Any],
        parameters: Sequence[TemplateParameter],
        source: str,
    ) -> None:
        self.template_id = template_id
        self.name = name
        self.description = description
        self.source = source
        self._strategy = copy.deepcopy(dict(strategy))
        self.parameters = tuple(parameters)
        self.params_model = _params_model(template_id, self.parameters)
        self._by_path = {parameter.target.path: parameter for parameter in self.parameters}

    @property
    def definitions(self) -> tuple[ParameterDefinition, ...]:
        return tuple(parameter.definition for parameter in self.parameters)

    @property
    def defaults(self) -> dict[str, JsonScalar]:
        """Every parameter's default value, as JSON carries it."""
        return dict(self.params_model().model_dump(mode="json"))

    def summary(self) -> TemplateSummary:
        return TemplateSummary(**self._summary_fields())

    def detail(self) -> TemplateDetail:
        return TemplateDetail(
            **self._summary_fields(),
            parameters=self.definitions,
            params_schema=self.params_model.model_json_schema(),
        )

    def _summary_fields(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "symbols": tuple(self._strategy.get("symbols", ())),
            "timeframe": self._strategy.get("timeframe"),
            "parameter_names": tuple(parameter.spec.name for parameter in self.parameters),
        }

    def build_config(
        self,
        name: str,
        params: Mapping[str, Any],
        symbols: Sequence[str],
        timeframe: str,
        *,
        strategy_id: str | None = None,
        settings: TradekitSettings | None = None,
    ) -> StrategyConfig:
        """The validated strategy of a bot made from this template.

        The template's strategy is merged over ``settings.strategy_defaults`` (as a
        strategy file is), then the bot's name, symbols, timeframe and parameter
        values (defaults for those not given) are set. ``strategy_id`` defaults to
        a slug of ``name``. Raises ``ConfigError`` listing every problem, with the
        messages a strategy file gets; a problem with a parameter's value is at
        ``params.<name>``, others at the bot's own keys (``symbols[0]``, ``timeframe``).
        """
        source = f"template '{self.template_id}'"
        values, problems = self._checked_params(params, source)
        identity = strategy_id if strategy_id is not None else strategy_id_from_name(name)
        data = deep_merge(settings.strategy_defaults if settings else {}, self._strategy)
        data.update(strategy_id=identity, name=name, symbols=symbols, timeframe=timeframe)
        for parameter in self.parameters:
            set_at(data, parameter.target.parts, values[parameter.spec.name])
        try:
            config = StrategyConfig.model_validate(data)
        except ValidationError as exc:
            found = problems_from_validation(exc, StrategyConfig, data, source)
            raise ConfigError(problems + self._on_params(found, identity, strategy_id)) from None
        if not problems:
            problems = self._on_params(deep_problems(config, source), identity, strategy_id)
        if problems:
            raise ConfigError(problems)
        return config

    def _checked_params(
        self, params: Mapping[str, Any], source: str
    ) -> tuple[dict[str, Any], list[ConfigProblem]]:
        """The params as JSON values, defaults filled in; defaults stand in for refused ones."""
        if not isinstance(params, Mapping):
            message = f"expected an object of parameter values, got {params!r}"
            return self.defaults, [ConfigProblem(message, source, PARAMS_KEY)]
        try:
            return self.params_model.model_validate(dict(params)).model_dump(mode="json"), []
        except ValidationError as exc:
            found = problems_from_validation(exc, self.params_model, dict(params), source)
            return self.defaults, [
                ConfigProblem(problem.message, source, f"{PARAMS_KEY}.{problem.path}")
                for problem in found
            ]

    def _on_params(
        self, problems: list[ConfigProblem], identity: str, given_id: str | None
    ) -> list[ConfigProblem]:
        """Re-attach config problems to the parameter that set the value (or the bot's name)."""
        moved: list[ConfigProblem] = []
        for problem in problems:
            path = problem.path
            if path == "strategy_id" and given_id is None:
                message = f"a bot name needs letters or digits; it gives the id {identity!r}"
                path = "name"
                problem = ConfigProblem(message, problem.source, path)
            moved.append(
                ConfigProblem(
                    problem.message, problem.source, self._param_path(path, problem.message)
                )
            )
        return moved

    def _param_path(self, path: str | None, message: str) -> str | None:
        if path is None:
            return None
        exact = self._by_path.get(path)
        if exact is not None:
            return f"{PARAMS_KEY}.{exact.spec.name}"
        # A rule over several values (trailing pair, below <= above) is reported on their
        # section: show it on the parameter it names, else the section's first parameter.
        under = [
            parameter
            for key, parameter in self._by_path.items()
            if key.startswith((f"{path}.", f"{path}["))
        ]
        if not under:
            return path
        named = [
            p for p in under if re.search(rf"\b{re.escape(str(p.target.parts[-1]))}\b", message)
        ]
        return f"{PARAMS_KEY}.{(named or under)[0].spec.name}"

    def params_from_config(self, config: StrategyConfig) -> dict[str, JsonScalar]:
        """The parameter values ``config`` holds, as JSON values (to pre-fill an "Edit" form).

        Raises ``ConfigError`` when ``config`` lacks a parameter's value or holds one
        the parameter refuses: it was not made from this template.
        """
        source = f"strategy '{config.strategy_id}'"
        values: dict[str, Any] = {}
        problems: list[ConfigProblem] = []
        for parameter in self.parameters:
            try:
                values[parameter.spec.name] = resolve(config, parameter.target.parts).value
            except TargetError as exc:
                message = f"not made from template '{self.template_id}': {exc}"
                problems.append(ConfigProblem(message, source, parameter.target.path))
        if problems:
            raise ConfigError(problems)
        try:
            return dict(self.params_model.model_validate(values).model_dump(mode="json"))
        except ValidationError as exc:
            found = problems_from_validation(exc, self.params_model, values, source)
            raise ConfigError(
                ConfigProblem(p.message, source, f"{PARAMS_KEY}.{p.path}") for p in found
            ) from None


__all__ = [
    "PARAMS_KEY",
    "StrategyTemplate",
    "TemplateParameter",
    "deep_problems",
    "parameter_definition",
    "strategy_id_from_name",
]
