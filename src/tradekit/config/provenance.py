"""Provenance: for each dotted key of a merged configuration, which file or variable set it.

Keys are dotted paths (``exit.stop_loss_pct``); dicts are walked into, lists and
scalars are leaves, because a list from a higher layer replaces the whole list.
A key that cannot be written plainly after a dot (empty, or holding ``.``, ``[``,
``]``, ``"`` or an unprintable character) is written quoted: ``exit[""]``.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

Provenance = dict[str, str]
"""Dotted key -> a human-readable source such as ``config.json`` or ``env TRADEKIT_X``."""

DEFAULT_SOURCE = "default"

# The last segment of a path: ".key", "[index]" or '["quoted key"]' (or the whole path
# when it has a single plain key).
_LAST_SEGMENT = re.compile(r'(?:^|\.)[^.\[\]"]+$|\[\d+\]$|\["(?:[^"\\]|\\.)*"\]$')
_SPECIAL_CHARACTERS = frozenset('.[]"')


def is_plain_key(key: str) -> bool:
    """True when ``key`` can follow a dot in a path without being misread."""
    return bool(key) and key.isprintable() and not _SPECIAL_CHARACTERS.intersection(key)


def join_path(prefix: str, key: str) -> str:
    """``prefix`` extended by ``key``: ``a.b``, or ``a["odd key"]`` for a key that is not plain."""
    if not is_plain_key(key):
        return f"{prefix}[{json.dumps(key)}]"
    return f"{prefix}.{key}" if prefix else key


def leaf_paths(data: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    """Every dotted path to a non-dict value (or an empty dict) inside ``data``."""
    for key, value in data.items():
        path = join_path(prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from leaf_paths(value, path)
        else:
            yield path


def overlay(provenance: Provenance, path: str, source: str) -> None:
    """Record that ``source`` set ``path``, replacing whatever lower layers said beneath it."""
    below = f"{path}."
    for existing in [key for key in provenance if key.startswith(below)]:
        del provenance[existing]
    provenance[path] = source


def overlay_mapping(provenance: Provenance, data: Mapping[str, Any], source: str) -> None:
    """Record ``source`` for every leaf of ``data``."""
    for path in leaf_paths(data):
        overlay(provenance, path, source)


def source_of(provenance: Mapping[str, str], path: str) -> str | None:
    """The source of ``path``: its own entry, else the nearest enclosing key's, else ``None``."""
    candidate = path
    while candidate:
        if candidate in provenance:
            return provenance[candidate]
        parent = _LAST_SEGMENT.sub("", candidate)
        if parent == candidate:
            # Not a path this module writes (a stray "." or "["): nothing encloses it.
            return None
        candidate = parent
    return None


def _env_layer(
    variables: Mapping[str, str | None],
    prefix: str,
    delimiter: str,
    top_level_keys: Iterable[str],
    label: str,
) -> list[tuple[str, str]]:
    """Map prefixed variables onto dotted paths: ``[(path, source), ...]``."""
    known = set(top_level_keys)
    found: list[tuple[str, str]] = []
    for name in sorted(variables):
        if not name.upper().startswith(prefix.upper()):
            continue
        parts = name[len(prefix) :].lower().split(delimiter)
        if not parts or parts[0] not in known:
            continue
        path = functools.reduce(join_path, parts, "")
        source = f"{label} {name}"
        value = variables[name]
        try:
            parsed = json.loads(value) if value else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed:
            found.extend((leaf, source) for leaf in leaf_paths(parsed, path))
        else:
            found.append((path, source))
    return found


def unknown_variables(
    variables: Mapping[str, str | None], prefix: str, delimiter: str, top_level_keys: Iterable[str]
) -> list[tuple[str, str | None]]:
    """Prefixed variables naming no known setting: ``[(name, closest known name), ...]``."""
    known = list(top_level_keys)
    unknown: list[tuple[str, str | None]] = []
    for name in sorted(variables):
        if not name.upper().startswith(prefix.upper()):
            continue
        head = name[len(prefix) :].lower().split(delimiter)[0]
        if head not in known:
            close = difflib.get_close_matches(head, known, n=1)
            unknown.append((name, f"{prefix}{close[0].upper()}" if close else None))
    return unknown


def settings_provenance(
    file_data: Mapping[str, Any] | None,
    file_label: str | None,
    env_file: Path | None,
    *,
    prefix: str,
    delimiter: str,
    top_level_keys: Iterable[str],
) -> Provenance:
    """Provenance of settings built from a JSON file, then ``.env``, then the environment."""
    keys = list(top_level_keys)
    provenance: Provenance = {}
    if file_data and file_label:
        overlay_mapping(provenance, file_data, file_label)
    if env_file is not None and env_file.is_file():
        layer = _env_layer(dotenv_values(env_file), prefix, delimiter, keys, str(env_file))
        for path, source in layer:
            overlay(provenance, path, source)
    for path, source in _env_layer(dict(os.environ), prefix, delimiter, keys, "env"):
        overlay(provenance, path, source)
    return provenance
