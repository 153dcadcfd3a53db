"""The ``tradekit`` launcher: validate, inspect and explain configuration from the shell.

Every command reads a base ``config.json`` and a folder of strategy files. A
configuration problem prints a readable message and exits with code 2, never a
traceback.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from tradekit.config import (
    LoadedStrategy,
    StrategyConfig,
    TradekitSettings,
    load_settings,
    load_strategies,
)
from tradekit.config.provenance import DEFAULT_SOURCE, source_of
from tradekit.errors import ConfigError, TradekitError
from tradekit.logs import configure_logging_from
from tradekit.validation import check_strategies_build

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


def _settings(config: Path | None) -> TradekitSettings:
    if config is None:
        settings = load_settings(DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    else:
        settings = load_settings(config)
    configure_logging_from(settings.logging)
    return settings


def _guard(action: Callable[[], T]) -> T:
    """Run ``action``; turn a tradekit error into a readable message and exit code 2."""
    try:
        return action()
    except ConfigError as exc:
        err.print("[bold red]configuration error[/]", highlight=False)
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(EXIT_CONFIG_ERROR) from None
    except TradekitError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_CONFIG_ERROR) from None


@app.command()
def validate(
    strategies: StrategiesOption = DEFAULT_STRATEGIES,
    config: ConfigOption = None,
) -> None:
    """Check the base config and every strategy file; print one line per strategy."""

    def run() -> list[LoadedStrategy]:
        settings = _settings(config)
        loaded = load_strategies(strategies, settings)
        check_strategies_build(loaded, settings)
        return loaded

    loaded = _guard(run)
    for strategy in loaded:
        cfg = strategy.config
        state = "ok" if cfg.enabled else "ok (disabled)"
        out.print(
            f"[green]{state}[/]  {cfg.strategy_id}  {cfg.timeframe}  {','.join(cfg.symbols)}  "
            f"{cfg.name}  [dim]({strategy.path})[/]",
            highlight=False,
        )
    out.print(f"{len(loaded)} strategies valid", highlight=False)


@app.command()
def schema(
    settings: Annotated[
        bool, typer.Option("--settings", help="Print the base config schema instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of a strategy file (or of the base config with --settings)."""
    model = TradekitSettings if settings else StrategyConfig
    sys.stdout.write(json.dumps(model.model_json_schema(), indent=2) + "\n")


def _display_rows(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Leaves of ``value`` with their paths, walking into dicts and lists alike."""
    if isinstance(value, dict) and value:
        items = [(f"{path}.{key}" if path else key, item) for key, item in value.items()]
    elif isinstance(value, list) and value:
        items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    else:
        return [(path, value)]
    return [row for child_path, child in items for row in _display_rows(child, child_path)]


@config_app.command("show")
def config_show(
    strategy_id: Annotated[str, typer.Argument(help="The strategy to show.")],
    strategies: StrategiesOption = DEFAULT_STRATEGIES,
    config: ConfigOption = None,
) -> None:
    """Print a strategy's merged configuration with the source of every key."""

    def find() -> LoadedStrategy:
        loaded = load_strategies(strategies, _settings(config))
        by_id = {strategy.config.strategy_id: strategy for strategy in loaded}
        if strategy_id not in by_id:
            close = difflib.get_close_matches(strategy_id, by_id, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"no strategy with id '{strategy_id}' in {strategies}{hint} "
                f"(known: {', '.join(sorted(by_id))})"
            )
        return by_id[strategy_id]

    strategy = _guard(find)
    out.print(f"# {strategy_id}, merged from {strategy.path}", highlight=False)
    rows = _display_rows(strategy.config.model_dump(mode="json"))
    width = max(len(path) for path, _ in rows)
    for path, value in rows:
        source = source_of(strategy.provenance, path) or DEFAULT_SOURCE
        out.print(
            f"{path:<{width}}  {json.dumps(value)}  [dim]# {source}[/]",
            highlight=False,
            markup=True,
        )


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
