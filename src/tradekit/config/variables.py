"""Checks on ``TRADEKIT_*`` variables (environment and ``.env``) before settings read them.

pydantic-settings raises a bare traceback for a section variable that does not
hold JSON, and splits a name like ``TRADEKIT_EXCHANGE____FEE_BPS`` into an empty
key; here each such variable becomes a ``ConfigProblem`` naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_origin

from dotenv import dotenv_values
from pydantic import BaseModel

from tradekit.config.problems import model_in
from tradekit.config.provenance import unknown_variables
from tradekit.config.strict_json import JsonValueError, parse_json
from tradekit.errors import ConfigProblem

VariableLayer = tuple[str, Mapping[str, str | None]]
"""Where variables come from (``environment`` or a ``.env`` path) and the variables."""

_SHOWN_VALUE_LENGTH = 60


def variable_layers(dotenv_path: Path | None) -> list[VariableLayer]:
    """The ``.env`` file (when there is one), then the environment, which wins over it."""
    layers: list[VariableLayer] = [("environment", os.environ)]
    if dotenv_path is not None and dotenv_path.is_file():
        layers.insert(0, (str(dotenv_path), dotenv_values(dotenv_path)))
    return layers


def variable_problems(
    layers: list[VariableLayer], prefix: str, delimiter: str, model: type[BaseModel]
) -> list[ConfigProblem]:
    """Every variable that names no setting, has an empty name part or holds unusable JSON."""
    problems: list[ConfigProblem] = []
    for where, variables in layers:
        for name, close in unknown_variables(variables, prefix, delimiter, model.model_fields):
            hint = f"; did you mean {close}?" if close else ""
            problems.append(
                ConfigProblem(f"unknown variable {name}: it names no setting{hint}", source=where)
            )
        for name in sorted(variables):
            if not name.upper().startswith(prefix.upper()):
                continue
            parts = name[len(prefix) :].lower().split(delimiter)
            if parts[0] not in model.model_fields:
                continue  # reported above as unknown
            problem = _name_problem(name, parts, delimiter) or _value_problem(
                name, parts, variables[name], model
            )
            if problem is not None:
                problems.append(ConfigProblem(problem, source=where))
    return problems


def _name_problem(name: str, parts: list[str], delimiter: str) -> str | None:
    if all(parts):
        return None
    fixed = delimiter.join(part for part in name.split(delimiter) if part)
    return (
        f"variable {name}: its name has an empty part between '{delimiter}' separators; "
        f"expected names like {fixed}"
    )


def _shown(value: str) -> str:
    if len(value) <= _SHOWN_VALUE_LENGTH:
        return repr(value)
    return repr(value[:_SHOWN_VALUE_LENGTH]) + f" ... ({len(value)} characters)"


def _value_problem(
    name: str, parts: list[str], value: str | None, model: type[BaseModel]
) -> str | None:
    """A section variable (a model or a mapping) must hold a JSON object; check it strictly."""
    if not _holds_section(parts, model):
        return None
    expected = f"expected a JSON object such as '{{\"{_example_key(parts, model)}\": ...}}'"
    try:
        parsed = parse_json(value or "")
    except json.JSONDecodeError as exc:
        return f"variable {name}: {expected}, got {_shown(value or '')} ({exc.msg})"
    except JsonValueError as exc:
        where = f" at {exc.path}" if exc.path else ""
        return f"variable {name}: {exc.message}{where}"
    if not isinstance(parsed, dict):
        return f"variable {name}: {expected}, got a JSON {type(parsed).__name__}"
    return None


def _target(parts: list[str], model: type[BaseModel]) -> Any:
    """The annotation ``parts`` lead to in ``model``; ``None`` past a free-form mapping."""
    current: type[BaseModel] | None = model
    annotation: Any = None
    for part in parts:
        if current is None:
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        current = model_in(annotation)
    return annotation


def _holds_section(parts: list[str], model: type[BaseModel]) -> bool:
    annotation = _target(parts, model)
    return model_in(annotation) is not None or get_origin(annotation) is dict


def _example_key(parts: list[str], model: type[BaseModel]) -> str:
    section = model_in(_target(parts, model))
    return next(iter(section.model_fields), "key") if section is not None else "capital"


__all__ = ["VariableLayer", "variable_layers", "variable_problems"]
