"""Turn pydantic validation errors into ``ConfigProblem``s a person can act on.

Each problem names the file, the JSON path, the bad value and what was expected,
and for an unknown key suggests the closest allowed one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tradekit.config.provenance import join_path
from tradekit.errors import ConfigProblem

# Pattern constraints described in words, so messages do not show regular expressions.
PATTERN_MEANINGS: dict[str, str] = {
    r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$": "a lowercase slug such as 'rsi-btc-1h'",
    r"^[A-Z0-9]+/[A-Z0-9]+(?::[A-Z0-9]+)?$": "a unified symbol such as 'BTC/USDT'",
    r"^[a-z][a-z0-9_]*$": "a lowercase identifier such as 'rsi_fast'",
}

SourceLookup = Callable[[str], str | None]


def model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = model_in(argument)
        if found is not None:
            return found
    return None


def allowed_keys(model: type[BaseModel], path: Sequence[str]) -> list[str]:
    """Field names of the model found at ``path`` inside ``model`` (empty when not a model)."""
    current: type[BaseModel] | None = model
    for key in path:
        if current is None:
            return []
        field = current.model_fields.get(key)
        current = model_in(field.annotation) if field is not None else None
    return list(current.model_fields) if current is not None else []


def _resolve_loc(
    model: type[BaseModel], data: Any, loc: Sequence[int | str], kind: str
) -> tuple[list[str], list[int | str]]:
    """Walk ``loc`` through the model and the input data, dropping pydantic's union tags.

    Returns the key path (for field lookups) and the data path (keys and list
    indices, for the message). The model is walked as well as the data because a
    value may come from a layer (an environment variable) that the data lacks.
    """
    keys: list[str] = []
    data_path: list[int | str] = []
    current_model: type[BaseModel] | None = model
    current: Any = data
    for position, part in enumerate(loc):
        if isinstance(part, int):
            data_path.append(part)
            fits = isinstance(current, list | tuple) and part < len(current)
            current = current[part] if fits else None
            continue
        fields = current_model.model_fields if current_model is not None else {}
        if part in fields:
            current_model = model_in(fields[part].annotation)
        elif current_model is None and isinstance(current, Mapping) and part in current:
            pass  # a key of a free-form mapping such as an indicator's params
        elif position == len(loc) - 1 and kind in ("extra_forbidden", "missing"):
            current_model = None
        else:
            continue  # a union member tag such as 'float' or 'function-after[...]'
        keys.append(part)
        data_path.append(part)
        current = current.get(part) if isinstance(current, Mapping) else None
    return keys, data_path


def format_path(parts: Sequence[int | str]) -> str:
    """``['indicators', 0, 'name']`` -> ``indicators[0].name``; odd keys quoted: ``exit[""]``."""
    text = ""
    for part in parts:
        text = f"{text}[{part}]" if isinstance(part, int) else join_path(text, part)
    return text


def _value_text(value: Any) -> str:
    return repr(value) if not isinstance(value, BaseModel) else "(a section)"


def _describe(error: ErrorDetails, model: type[BaseModel], keys: list[str]) -> str:
    kind = error["type"]
    message = error["msg"]
    value = error.get("input")
    if kind == "extra_forbidden":
        key = keys[-1] if keys else "?"
        allowed = allowed_keys(model, keys[:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        listing = f" (allowed: {', '.join(allowed)})" if allowed and not close else ""
        return f"unknown key '{key}'{hint}{listing}"
    if kind == "missing":
        return f"required key '{keys[-1] if keys else '?'}' is missing"
    if kind in ("value_error", "assertion_error"):
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern", ""))
        expected = PATTERN_MEANINGS.get(pattern, f"a string matching {pattern!r}")
        return f"expected {expected}, got {_value_text(value)}"
    if message.startswith("Input should be "):
        return f"expected {message.removeprefix('Input should be ')}, got {_value_text(value)}"
    return f"{message}, got {_value_text(value)}"


def problems_from_validation(
    exc: ValidationError,
    model: type[BaseModel],
    data: Any,
    source: str,
    origin_of: SourceLookup | None = None,
) -> list[ConfigProblem]:
    """One ``ConfigProblem`` per bad path in ``exc``; ``origin_of`` names where a value came from.

    When a value came from somewhere other than ``source`` (a default merged in
    from the base config, an environment variable), the message says so.
    """
    by_path: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        keys, data_path = _resolve_loc(model, data, error["loc"], error["type"])
        path = format_path(data_path)
        description = _describe(error, model, keys)
        if origin_of is not None:
            origin = origin_of(path)
            if origin is not None and origin != source:
                description += f" (value set by {origin})"
        messages = by_path.setdefault(path, [])
        if description not in messages:
            messages.append(description)
    return [
        ConfigProblem(message=_merge_alternatives(messages), source=source, path=path or None)
        for path, messages in by_path.items()
        if not _is_consequence(path, messages, by_path)
    ]


def _merge_alternatives(messages: list[str]) -> str:
    """Fold "expected A, got V" and "expected B, got V" into "expected A or B, got V"."""
    if len(messages) > 1:
        suffix = messages[0][messages[0].rfind(", got ") :]
        if all(m.startswith("expected ") and m.endswith(suffix) for m in messages):
            options = [m.removeprefix("expected ").removesuffix(suffix) for m in messages]
            return f"expected {' or '.join(options)}{suffix}"
    return "; ".join(messages)


def _is_consequence(path: str, messages: list[str], by_path: Mapping[str, list[str]]) -> bool:
    """A length complaint about a list whose items are already reported is noise."""
    items_reported = any(other.startswith(f"{path}[") for other in by_path)
    return items_reported and all("should have at least" in message for message in messages)


__all__ = ["PATTERN_MEANINGS", "allowed_keys", "format_path", "problems_from_validation"]
