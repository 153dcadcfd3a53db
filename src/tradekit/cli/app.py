"""The launcher's ``typer`` app and what every command shares: option types, loading
settings, and turning errors into a readable message with exit code 2.

Text from files and the environment is printed through ``plain_text`` or
``markup_text`` (tables through ``results_table``), so names cannot inject markup
or terminal escape codes, nor crash the output with a lone surrogate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from tradekit.config import TradekitSettings, load_settings
from tradekit.config.provenance import source_of
from tradekit.errors import ConfigError, ConfigProblem, TradekitError
from tradekit.logs import configure_logging_from
from tradekit.reporting import markup_text, plain_text

EXIT_CONFIG_ERROR = 2
DEFAULT_CONFIG = Path("config.json")
DEFAULT_STRATEGIES = Path("strategies")

app = typer.Typer(
    name="tradekit",
    help="Run many isolated trading strategies side by side over shared market data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the merged configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Base config file (JSON). Default: ./config.json when it exists.",
        dir_okay=False,
    ),
]
StrategiesOption = Annotated[
    Path,
    typer.Option("--strategies", "-s", help="Folder of strategy files (*.json).", file_okay=False),
]

T = TypeVar("T")


def load_cli_settings(config: Path | None) -> TradekitSettings:
    if config is None:
        settings = load_settings(DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    else:
        settings = load_settings(config)
    try:
        configure_logging_from(settings.logging)
    except ConfigError as exc:
        source = source_of(settings.provenance, "logging.json_path")
        raise ConfigError(
            ConfigProblem(problem.message, source=source, path=problem.path)
            for problem in exc.problems
        ) from None
    return settings


def run_guarded(action: Callable[[], T]) -> T:
    """Run ``action``; turn a tradekit error into a readable message and exit code 2."""
    try:
        return action()
    except ConfigError as exc:
        err.print("[bold red]configuration error[/]", highlight=False)
        err.print(plain_text(exc, keep_newlines=True), markup=False, highlight=False)
        raise typer.Exit(EXIT_CONFIG_ERROR) from None
    except TradekitError as exc:
        err.print(f"[bold red]error:[/] {markup_text(exc, keep_newlines=True)}", highlight=False)
        raise typer.Exit(EXIT_CONFIG_ERROR) from None
