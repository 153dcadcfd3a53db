"""Strict JSON for configuration files and variables.

Python's ``json`` accepts ``NaN`` and ``Infinity``, turns ``1e999`` into infinity,
keeps the last of two equal keys and decodes ``"\\ud800"`` into a lone surrogate;
configuration needs none of that. Values
are also checked for depth without recursion, so a hostile file cannot exhaust
the stack of the code that later walks it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from tradekit.config.provenance import join_path

T = TypeVar("T")

MAX_NESTING = 20
"""How deeply objects and lists may nest; real configuration files stay under 6 levels."""


# A lone surrogate is no character at all: no file, terminal or database can store it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonValueError(ValueError):
    """Raised when a JSON text cannot be used as configuration; ``path`` locates the value."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class _NotFinite(str):
    """The text of a number that has no finite value, held until its path is known."""


def _number(text: str) -> float | _NotFinite:
    value = float(text)
    return value if math.isfinite(value) else _NotFinite(text)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise JsonValueError(f"key '{key}' appears twice in the same object")
        seen[key] = value
    return seen


def check_value(value: Any, path: str = "") -> None:
    """Refuse non-finite numbers and nesting deeper than ``MAX_NESTING`` anywhere in ``value``.

    ``path`` is where ``value`` sits; messages give the full path of the culprit.
    """
    pending: list[tuple[Any, str, int]] = [(value, path, 0)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, _NotFinite):
            raise JsonValueError(f"expected a finite number, got {item}", where)
        if isinstance(item, float) and not math.isfinite(item):
            raise JsonValueError(f"expected a finite number, got {item!r}", where)
        if isinstance(item, str) and _LONE_SURROGATE.search(item):
            raise JsonValueError(f"expected valid Unicode text, got {item!a}", where)
        if isinstance(item, Mapping):
            for key in item:
                if _LONE_SURROGATE.search(str(key)):
                    raise JsonValueError(
                        f"expected a key of valid Unicode text, got {key!a}", where
                    )
            children = [(child, join_path(where, str(key))) for key, child in item.items()]
        elif isinstance(item, list | tuple):
            children = [(child, f"{where}[{index}]") for index, child in enumerate(item)]
        else:
            continue
        if depth >= MAX_NESTING and children:
            raise JsonValueError(
                f"nested more than {MAX_NESTING} levels deep; expected a flatter structure", where
            )
        pending.extend((child, child_path, depth + 1) for child, child_path in reversed(children))


def checked_json_value(value: T) -> T:
    """``value`` after ``check_value``; a pydantic validator for free-form fields."""
    try:
        check_value(value)
    except JsonValueError as exc:
        raise ValueError(f"{exc.message} at {exc.path}" if exc.path else exc.message) from None
    return value


def parse_json(text: str) -> Any:
    """Parse ``text`` strictly; ``JsonValueError`` says what is wrong and where.

    ``json.JSONDecodeError`` (a ``ValueError`` too) is raised unchanged for
    malformed text, so callers can show its line and column.
    """
    try:
        value = json.loads(
            text,
            object_pairs_hook=_reject_duplicate_keys,
            parse_float=_number,
            parse_constant=_NotFinite,
        )
    except RecursionError:
        raise JsonValueError(
            f"nested more than {MAX_NESTING} levels deep; expected a flatter structure"
        ) from None
    check_value(value)
    return value


__all__ = ["MAX_NESTING", "JsonValueError", "check_value", "checked_json_value", "parse_json"]
