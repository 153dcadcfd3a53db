"""Reading template files: the bundled ones shipped in the package and the user's templates folder.

Every problem names the file, the key inside it, the bad value and what was
expected; all files are read before one ``ConfigError`` lists every problem.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tradekit.config.loading import read_json_object
from tradekit.config.problems import problems_from_validation
from tradekit.config.strategy import StrategyConfig
from tradekit.errors import ConfigError, ConfigProblem
from tradekit.templates.models import TemplateFile
from tradekit.templates.targets import TargetError, parse_path, resolve
from tradekit.templates.template import (
    StrategyTemplate,
    TemplateParameter,
    deep_problems,
    parameter_definition,
)

BUNDLED_SOURCE = "bundled"
TEMPLATES_FOLDER_NAME = "templates"

# What a template's strategy is checked with when it leaves the bot's own keys out.
_STAND_INS: Mapping[str, Any] = {
    "strategy_id": "template",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
}


def templates_folder_beside(strategies_folder: Path) -> Path:
    """The default user templates folder: ``templates/`` next to the strategies folder."""
    return strategies_folder.parent / TEMPLATES_FOLDER_NAME


def _in_strategy(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return [
        ConfigProblem(
            problem.message, problem.source, f"strategy.{problem.path}" if problem.path else None
        )
        for problem in problems
    ]


def template_from_data(data: Mapping[str, Any], source: str) -> StrategyTemplate:
    """A template from a parsed template file; ``source`` names the file in every problem."""
    try:
        file = TemplateFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, TemplateFile, data, source)) from None
    strategy = {**_STAND_INS, **file.strategy}
    try:
        base = StrategyConfig.model_validate(strategy)
    except ValidationError as exc:
        found = problems_from_validation(exc, StrategyConfig, strategy, source)
        raise ConfigError(_in_strategy(found)) from None
    deep = deep_problems(base, source)
    if deep:
        raise ConfigError(_in_strategy(deep))
    parameters: list[TemplateParameter] = []
    problems: list[ConfigProblem] = []
    for index, spec in enumerate(file.parameters):
        try:
            target = resolve(base, parse_path(spec.path))
        except TargetError as exc:
            message = f"{exc}; got {spec.path!r}"
            problems.append(ConfigProblem(message, source, f"parameters[{index}].path"))
            continue
        parameters.append(TemplateParameter(spec, target, parameter_definition(spec, target)))
    if problems:
        raise ConfigError(problems)
    return StrategyTemplate(
        file.template_id, file.name, file.description, file.strategy, parameters, source
    )


def load_template_file(path: str | Path) -> StrategyTemplate:
    """Read and check one template file."""
    file_path = Path(path)
    return template_from_data(read_json_object(file_path), str(file_path))


@functools.cache
def bundled_templates() -> tuple[StrategyTemplate, ...]:
    """The templates shipped with tradekit (RSI, MACD DCA, Bollinger %B, DCA, EMA crossover)."""
    folder = resources.files("tradekit.templates") / "bundled"
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".json")),
        key=lambda entry: entry.name,
    )
    templates = []
    for entry in files:
        template = template_from_data(read_json_object(Path(str(entry))), BUNDLED_SOURCE)
        templates.append(template)
    return tuple(templates)


def user_templates(
    folder: str | Path, taken: Mapping[str, str] | None = None
) -> list[StrategyTemplate]:
    """Every template file (``*.json``) in ``folder``; one ``ConfigError`` lists all problems.

    ``taken`` maps template ids already in use to where they come from; reusing one
    is refused, naming both.
    """
    directory = Path(folder)
    if not directory.is_dir():
        what = "expected a folder of template files" if directory.exists() else "folder not found"
        raise ConfigError([ConfigProblem(what, source=str(directory))])
    used = dict(taken or {})
    loaded: list[StrategyTemplate] = []
    problems: list[ConfigProblem] = []
    for path in sorted(directory.glob("*.json")):
        try:
            template = load_template_file(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        earlier = used.setdefault(template.template_id, str(path))
        if earlier != str(path):
            message = (
                f"template_id {template.template_id!r} is already used by {earlier}; "
                "pick another id"
            )
            problems.append(ConfigProblem(message, str(path), "template_id"))
            continue
        loaded.append(template)
    if problems:
        raise ConfigError(problems)
    return loaded


__all__ = [
    "BUNDLED_SOURCE",
    "TEMPLATES_FOLDER_NAME",
    "bundled_templates",
    "load_template_file",
    "template_from_data",
    "templates_folder_beside",
    "user_templates",
]
