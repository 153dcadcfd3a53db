"""Reading configuration files: settings, strategy files, the deep merge, and collected errors.

Every problem in every file is collected before one ``ConfigError`` is raised,
so a bad strategy file never hides another.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from tradekit.config.live_safety import base_file_problems, strategy_file_problems
from tradekit.config.problems import problems_from_validation
from tradekit.config.provenance import (
    Provenance,
    leaf_paths,
    overlay,
    overlay_mapping,
    settings_provenance,
    source_of,
)
from tradekit.config.settings import (
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    TradekitSettings,
    _base_file_data,
)
from tradekit.config.strategy import StrategyConfig
from tradekit.config.strict_json import JsonValueError, parse_json
from tradekit.config.variables import variable_layers, variable_problems
from tradekit.errors import ConfigError, ConfigProblem

DEFAULTS_KEY = "strategy_defaults"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` onto ``base``: dicts merge key by key; lists and scalars are replaced.

    Neither argument is modified; the result shares no mutable value with them.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_json_object(path: Path) -> dict[str, Any]:
    """Parse a JSON file that must hold one object; ``ConfigError`` names file, line and column.

    The parse is strict (see ``strict_json``): no NaN or Infinity, no number too
    large for a float, no key twice in one object, no absurd nesting.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem("file not found", source=str(path))]) from None
    except IsADirectoryError:
        raise ConfigError(
            [ConfigProblem("expected a JSON file, found a folder", source=str(path))]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [ConfigProblem(f"not valid UTF-8 text ({exc.reason})", source=str(path))]
        ) from None
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem(f"cannot read file: {exc.strerror}", source=str(path))]
        ) from None
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        message = f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise ConfigError([ConfigProblem(message, source=str(path))]) from None
    except JsonValueError as exc:
        raise ConfigError(
            [ConfigProblem(exc.message, source=str(path), path=exc.path or None)]
        ) from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(
            [ConfigProblem(f"expected a JSON object at the top level, got a {kind}", str(path))]
        )
    return data


def load_settings(
    path: str | Path | None = None, *, env_file: str | Path | None = ".env"
) -> TradekitSettings:
    """Build settings from the JSON base config ``path`` (optional), ``.env`` and the environment.

    Precedence, lowest to highest: defaults, the file, ``env_file``, ``TRADEKIT_*`` variables.
    """
    file_data: dict[str, Any] = {}
    label: str | None = None
    if path is not None:
        file_path = Path(path)
        file_data = read_json_object(file_path)
        label = str(file_path)
    dotenv_path = Path(env_file) if env_file is not None else None
    provenance = settings_provenance(
        file_data,
        label,
        dotenv_path,
        prefix=ENV_PREFIX,
        delimiter=ENV_NESTED_DELIMITER,
        top_level_keys=TradekitSettings.model_fields,
    )
    problems = base_file_problems(file_data, label or "config") + variable_problems(
        variable_layers(dotenv_path), ENV_PREFIX, ENV_NESTED_DELIMITER, TradekitSettings
    )
    if problems:
        raise ConfigError(problems)
    token = _base_file_data.set(file_data)
    try:
        settings = TradekitSettings(_env_file=dotenv_path)
    except SettingsError as exc:
        # The checks above catch the variables known to break pydantic-settings; this
        # keeps anything they miss a readable error rather than a traceback.
        raise ConfigError([ConfigProblem(str(exc), source="environment")]) from None
    except ValidationError as exc:
        source = label or "settings"
        problems = problems_from_validation(
            exc, TradekitSettings, file_data, source, lambda key: source_of(provenance, key)
        )
        raise ConfigError(problems) from None
    finally:
        _base_file_data.reset(token)
    settings._provenance.update(provenance)
    # strategy_defaults may also come whole from a variable holding JSON.
    defaults = strategy_file_problems(settings.strategy_defaults, DEFAULTS_KEY)
    if defaults:
        paths = [f"{DEFAULTS_KEY}.{problem.path}" for problem in defaults]
        raise ConfigError(
            ConfigProblem(problem.message, source=source_of(provenance, path), path=path)
            for problem, path in zip(defaults, paths, strict=True)
        )
    return settings


@dataclass(frozen=True)
class LoadedStrategy:
    """A validated strategy together with the file it came from and each key's provenance."""

    config: StrategyConfig
    path: Path
    provenance: Mapping[str, str]


def _defaults_provenance(settings: TradekitSettings) -> Provenance:
    """Provenance of ``strategy_defaults`` keys, re-rooted at the strategy level."""
    prefix = f"{DEFAULTS_KEY}."
    inherited: Provenance = {}
    for key, source in settings.provenance.items():
        if key.startswith(prefix):
            inherited[key.removeprefix(prefix)] = f"{source} ({DEFAULTS_KEY})"
        elif key == DEFAULTS_KEY:
            overlay_mapping(inherited, settings.strategy_defaults, f"{source} ({DEFAULTS_KEY})")
    return inherited


def load_strategy(path: str | Path, settings: TradekitSettings | None = None) -> LoadedStrategy:
    """Read one strategy file, merge it over ``strategy_defaults``, validate it, keep provenance."""
    settings = settings if settings is not None else TradekitSettings()
    file_path = Path(path)
    own = read_json_object(file_path)
    refused = strategy_file_problems(own, str(file_path))
    merged = deep_merge(settings.strategy_defaults, own)
    provenance = _defaults_provenance(settings)
    for key_path in leaf_paths(own):
        overlay(provenance, key_path, str(file_path))
    try:
        config = StrategyConfig.model_validate(merged)
    except ValidationError as exc:
        problems = problems_from_validation(
            exc, StrategyConfig, merged, str(file_path), lambda key: source_of(provenance, key)
        )
        seen = {problem.path for problem in refused}
        raise ConfigError(refused + [p for p in problems if p.path not in seen]) from None
    if refused:
        raise ConfigError(refused)
    return LoadedStrategy(config=config, path=file_path, provenance=provenance)


def load_strategy_config(
    path: str | Path, settings: TradekitSettings | None = None
) -> StrategyConfig:
    """Read, merge and validate one strategy file; ``ConfigError`` lists every problem in it."""
    return load_strategy(path, settings).config


def strategy_files(directory: str | Path) -> list[Path]:
    """The strategy files (``*.json``) in ``directory``, sorted by name."""
    folder = Path(directory)
    if not folder.exists():
        raise ConfigError([ConfigProblem("strategies folder not found", source=str(folder))])
    if not folder.is_dir():
        raise ConfigError(
            [ConfigProblem("expected a folder of strategy files", source=str(folder))]
        )
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ConfigError(
            [ConfigProblem("no strategy files (*.json) in this folder", source=str(folder))]
        )
    return files


def load_strategies(
    directory: str | Path, settings: TradekitSettings | None = None
) -> list[LoadedStrategy]:
    """Load every strategy file in ``directory``; collect all problems, then raise once."""
    settings = settings if settings is not None else TradekitSettings()
    loaded: list[LoadedStrategy] = []
    problems: list[ConfigProblem] = []
    for file_path in strategy_files(directory):
        try:
            loaded.append(load_strategy(file_path, settings))
        except ConfigError as exc:
            problems.extend(exc.problems)
    problems.extend(_duplicate_id_problems(loaded))
    if problems:
        raise ConfigError(problems)
    return loaded


def _duplicate_id_problems(loaded: list[LoadedStrategy]) -> list[ConfigProblem]:
    files_by_id: dict[str, list[Path]] = {}
    for strategy in loaded:
        files_by_id.setdefault(strategy.config.strategy_id, []).append(strategy.path)
    return [
        ConfigProblem(
            f"strategy_id '{strategy_id}' is used by {len(paths)} files: "
            f"{', '.join(str(path) for path in paths)}; each strategy needs its own id"
        )
        for strategy_id, paths in files_by_id.items()
        if len(paths) > 1
    ]


def load_strategy_configs(
    directory: str | Path, settings: TradekitSettings | None = None
) -> list[StrategyConfig]:
    """Every strategy in ``directory``, merged and validated, in file-name order."""
    return [strategy.config for strategy in load_strategies(directory, settings)]


__all__ = [
    "LoadedStrategy",
    "deep_merge",
    "load_settings",
    "load_strategies",
    "load_strategy",
    "load_strategy_config",
    "load_strategy_configs",
    "read_json_object",
    "strategy_files",
]
