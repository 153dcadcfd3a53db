"""Where a template parameter lands in a strategy config, and the type the config gives it there.

A parameter's path (``exit.stop_loss_pct``, ``indicators[0].params.length``,
``analyzers[0].params.below``) is resolved against the template's validated
strategy. The annotation found there is the one that validates strategy files:
a field of a strategy section with its own constraints, a field of the analyzer
type's parameter model, or an indicator parameter as the indicator catalog
checks it. Nothing here restates a limit.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, PlainValidator, TypeAdapter, WithJsonSchema
from pydantic.fields import FieldInfo

from tradekit.config.problems import format_path
from tradekit.config.strategy import AnalyzerConfig, IndicatorConfig, StrategyConfig
from tradekit.services.indicators.catalog import (
    INDICATORS,
    MAX_INTEGER_PARAM,
    ParamSpec,
    ParamValue,
    indicator_problems,
)
from tradekit.services.signals.analyzers import ANALYZER_TYPES

PathPart = int | str

_SEGMENT = re.compile(r"([a-z_][a-z0-9_]*)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")
_SCALAR_TYPES = frozenset({"integer", "number", "boolean", "string"})


class TargetError(ValueError):
    """Raised when a parameter path does not name a single value of the template's strategy."""


def parse_path(path: str) -> tuple[PathPart, ...]:
    """``"indicators[0].params.length"`` -> ``("indicators", 0, "params", "length")``."""
    parts: list[PathPart] = []
    for segment in path.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            raise TargetError(
                f"expected a path such as 'exit.stop_loss_pct' or "
                f"'indicators[0].params.length', got {path!r}"
            )
        parts.append(match.group(1))
        parts.extend(int(index) for index in _INDEX.findall(match.group(2)))
    return tuple(parts)


def set_at(data: MutableMapping[str, Any], parts: tuple[PathPart, ...], value: Any) -> None:
    """Write ``value`` at ``parts`` inside a strategy dict, creating missing sections."""
    current: Any = data
    for position, part in enumerate(parts[:-1]):
        following = parts[position + 1]
        if isinstance(part, int):
            current = current[part]
            continue
        if not isinstance(current.get(part), dict | list):
            current[part] = [] if isinstance(following, int) else {}
        current = current[part]
    current[parts[-1]] = value


def indicator_annotation(spec: ParamSpec) -> Any:
    """The type of one indicator parameter, checked by the catalog's own ``coerce``.

    The message is the tail of the catalog's (``must be an integer >= 1, got 0``),
    and the JSON Schema states the same bounds.
    """

    def check(value: object) -> ParamValue:
        number = spec.coerce(value)
        if number is None:
            raise ValueError(f"must be {spec.expected(value)}, got {value!r}")
        return number

    schema: dict[str, Any] = {"type": "integer" if spec.kind is int else "number"}
    if spec.minimum is not None:
        schema["exclusiveMinimum" if spec.strict_minimum else "minimum"] = spec.minimum
    if spec.kind is int:
        schema["maximum"] = MAX_INTEGER_PARAM
    return Annotated[spec.kind, PlainValidator(check), WithJsonSchema(schema)]


@dataclass(frozen=True)
class Target:
    """One value of a strategy config a parameter sets: its type, help text and current value."""

    parts: tuple[PathPart, ...]
    annotation: Any
    description: str
    value: Any

    @property
    def path(self) -> str:
        return format_path(self.parts)


def _unknown(name: PathPart, known: list[str], where: str) -> TargetError:
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"
    return TargetError(f"{where} has no '{name}'{hint}")


def _indicator_target(
    indicator: IndicatorConfig, parts: tuple[PathPart, ...], rest: tuple[PathPart, ...]
) -> Target:
    spec = INDICATORS[indicator.name]
    if len(rest) != 1:
        raise TargetError(f"expected one parameter name after {format_path(parts)}")
    by_name = {param.name: param for param in spec.params}
    param = by_name.get(str(rest[0]))
    if param is None:
        raise _unknown(rest[0], list(by_name), f"indicator {spec.name!r}")
    _, normalized, _ = indicator_problems(indicator, "indicator")
    description = f"{param.name} of {spec.name} ({spec.description})"
    return Target(
        (*parts, *rest), indicator_annotation(param), description, dict(normalized)[param.name]
    )


def _analyzer_params(analyzer: AnalyzerConfig) -> BaseModel:
    kind = ANALYZER_TYPES[analyzer.type]
    if kind.params_model is None:
        raise TargetError(
            f"analyzer type {analyzer.type!r} has no parameter model, so its params cannot be "
            "template parameters"
        )
    return kind.params_model.model_validate(analyzer.params)


def resolve(config: StrategyConfig, parts: tuple[PathPart, ...]) -> Target:
    """The value at ``parts`` in ``config`` and the annotation that validates it there.

    ``config`` must have passed deep validation (known indicators and analyzer types).
    """
    current: Any = config
    for position, part in enumerate(parts):
        walked = parts[:position]
        where = format_path(walked) or "the strategy"
        if isinstance(current, IndicatorConfig) and part == "params":
            return _indicator_target(current, (*walked, part), parts[position + 1 :])
        if isinstance(part, int):
            if not isinstance(current, tuple) or part >= len(current):
                count = len(current) if isinstance(current, tuple) else 0
                raise TargetError(f"{where} has {count} entries; there is no [{part}]")
            current = current[part]
            continue
        if not isinstance(current, BaseModel):
            raise TargetError(f"{where} is a single value; it has no '{part}'")
        if isinstance(current, AnalyzerConfig) and part == "params":
            current = _analyzer_params(current)
            continue
        fields = type(current).model_fields
        field = fields.get(part)
        if field is None:
            raise _unknown(part, list(fields), where)
        value = getattr(current, part)
        if position == len(parts) - 1:
            annotation = _annotation_of(field)
            _check_scalar(annotation, format_path(parts))
            return Target(parts, annotation, field.description or "", value)
        if value is None:
            raise TargetError(
                f"{format_path((*walked, part))} is not set in the template's strategy"
            )
        current = value
    raise TargetError(f"{format_path(parts) or 'the path'} names a section, not a single value")


def _annotation_of(field: FieldInfo) -> Any:
    """The field's type with its constraints (``Field(gt=0)`` lands in ``metadata``)."""
    if not field.metadata:
        return field.annotation
    return Annotated[(field.annotation, *field.metadata)]


def _check_scalar(annotation: Any, path: str) -> None:
    schema = TypeAdapter(annotation).json_schema()
    options = schema.get("anyOf", [schema])
    kinds = {option.get("type") for option in options if option.get("type") != "null"}
    if not kinds or not kinds <= _SCALAR_TYPES:
        raise TargetError(f"{path} is a section or a list; a parameter must name a single value")


def schema_of(annotation: Any) -> Mapping[str, Any]:
    """The JSON Schema of one annotation, with ``$ref``s to enums inlined."""
    schema = TypeAdapter(annotation).json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                return inline(definitions[ref.rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: Mapping[str, Any] = inline(schema)
    return inlined


__all__ = [
    "PathPart",
    "Target",
    "TargetError",
    "indicator_annotation",
    "parse_path",
    "resolve",
    "schema_of",
    "set_at",
]
