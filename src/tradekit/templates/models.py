"""The template file format and what the catalog hands out: summaries and parameter definitions.

``TemplateFile`` is what a template JSON file holds (bundled or the user's);
``ParameterDefinition``, ``TemplateSummary`` and ``TemplateDetail`` are what a
form, the CLI and the REST API read. They are plain pydantic models, so the
API's OpenAPI schema describes them exactly.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tradekit.config.strategy import Identifier, StrategyId
from tradekit.config.strict_json import checked_json_value

_MODEL = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

JsonScalar = bool | int | float | str | None
"""A parameter value as JSON carries it."""

ParameterType = Literal["integer", "number", "boolean", "string"]

BOT_KEYS = ("strategy_id", "name")
"""Strategy keys a template's strategy may not set: each bot gives its own."""


class ParameterSpec(BaseModel):
    """One parameter as a template file declares it: where it lands and how a form shows it."""

    model_config = _MODEL

    name: Identifier = Field(description="The key a bot's params use, e.g. 'rsi_length'.")
    path: str = Field(
        min_length=1,
        description="Where the value lands in the strategy: 'exit.stop_loss_pct', "
        "'indicators[0].params.length', 'analyzers[0].params.below'.",
    )
    label: str = Field(default="", description="The form's label; default: the name.")
    unit: str | None = Field(default=None, description="Shown after the field: '%', 'bars'.")
    help: str = Field(default="", description="Help text; default: the strategy field's own.")


class TemplateFile(BaseModel):
    """A template file: a strategy (without ``strategy_id``) and which of its values are parameters.

    The strategy may give ``symbols`` and ``timeframe``; they are the defaults a
    new bot's form starts with.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, title="tradekit strategy template"
    )

    template_id: StrategyId
    name: str = Field(min_length=1)
    description: str = ""
    strategy: dict[str, Any]
    parameters: tuple[ParameterSpec, ...] = Field(min_length=1)

    _strategy_is_finite = field_validator("strategy")(checked_json_value)

    @field_validator("strategy")
    @classmethod
    def _no_bot_keys(cls, strategy: dict[str, Any]) -> dict[str, Any]:
        given = [key for key in BOT_KEYS if key in strategy]
        if given:
            raise ValueError(
                f"remove {', '.join(repr(key) for key in given)}: each bot created from the "
                "template gives its own"
            )
        return strategy

    @model_validator(mode="after")
    def _parameters_unique(self) -> Self:
        for attribute in ("name", "path"):
            values = [getattr(parameter, attribute) for parameter in self.parameters]
            twice = sorted({value for value in values if values.count(value) > 1})
            if twice:
                raise ValueError(f"parameter {attribute}s must be unique; {', '.join(twice)} twice")
        return self


class ParameterDefinition(BaseModel):
    """One typed parameter of a template, as a form renders it and the server checks it.

    ``minimum``/``maximum`` are the strategy model's own bounds; ``exclusive_*``
    says whether the bound itself is refused. ``choices`` lists the allowed
    values of a choice parameter.
    """

    model_config = _MODEL

    name: str
    label: str
    type: ParameterType
    default: JsonScalar
    nullable: bool = False
    minimum: int | float | None = None
    exclusive_minimum: bool = False
    maximum: int | float | None = None
    exclusive_maximum: bool = False
    choices: tuple[JsonScalar, ...] | None = None
    description: str = ""
    unit: str | None = None
    path: str = Field(description="Where the value lands in the strategy config.")


class TemplateSummary(BaseModel):
    """One template in a listing."""

    model_config = _MODEL

    template_id: str
    name: str
    description: str
    source: str = Field(description="'bundled', or the user's template file.")
    symbols: tuple[str, ...] = Field(description="Suggested symbols for a new bot.")
    timeframe: str | None = Field(description="Suggested timeframe for a new bot.")
    parameter_names: tuple[str, ...]


class TemplateDetail(TemplateSummary):
    """One template with its parameter definitions and the JSON Schema of its params object."""

    parameters: tuple[ParameterDefinition, ...]
    params_schema: dict[str, Any]


__all__ = [
    "BOT_KEYS",
    "JsonScalar",
    "ParameterDefinition",
    "ParameterSpec",
    "ParameterType",
    "TemplateDetail",
    "TemplateFile",
    "TemplateSummary",
]
