"""Configuration commands: ``validate``, ``schema`` and ``config show``."""

from __future__ import annotations

import difflib
import json
import sys
from typing import Annotated, Any

import typer

from tradekit.cli.app import (
    DEFAULT_STRATEGIES,
    ConfigOption,
    StrategiesOption,
    app,
    config_app,
    load_cli_settings,
    out,
    run_guarded,
)
from tradekit.config import LoadedStrategy, StrategyConfig, TradekitSettings, load_strategies
from tradekit.config.provenance import DEFAULT_SOURCE, source_of
from tradekit.errors import ConfigError
from tradekit.terminal import markup_text, plain_text


@app.command()
def validate(
    strategies: StrategiesOption = DEFAULT_STRATEGIES,
    config: ConfigOption = None,
) -> None:
    """Check the base config and every strategy file; print one line per strategy."""

    def run() -> list[LoadedStrategy]:
        # Imported here: the strategies' checks need the services, ``schema`` does not.
        from tradekit.validation import check_strategies_build

        loaded = load_strategies(strategies, load_cli_settings(config))
        check_strategies_build(loaded)
        return loaded

    loaded = run_guarded(run)
    for strategy in loaded:
        cfg = strategy.config
        state = "ok" if cfg.enabled else "ok (disabled)"
        shown = markup_text(
            f"{cfg.strategy_id}  {cfg.timeframe}  {','.join(cfg.symbols)}  {cfg.name}"
        )
        out.print(
            f"[green]{state}[/]  {shown}  [dim]({markup_text(strategy.path)})[/]", highlight=False
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
        loaded = load_strategies(strategies, load_cli_settings(config))
        by_id = {strategy.config.strategy_id: strategy for strategy in loaded}
        if strategy_id not in by_id:
            close = difflib.get_close_matches(strategy_id, by_id, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"no strategy with id '{strategy_id}' in {strategies}{hint} "
                f"(known: {', '.join(sorted(by_id))})"
            )
        return by_id[strategy_id]

    strategy = run_guarded(find)
    out.print(
        plain_text(f"# {strategy_id}, merged from {strategy.path}"), markup=False, highlight=False
    )
    rows = _display_rows(strategy.config.model_dump(mode="json"))
    width = max(len(path) for path, _ in rows)
    for path, value in rows:
        source = source_of(strategy.provenance, path) or DEFAULT_SOURCE
        line = markup_text(f"{path:<{width}}  {json.dumps(value)}")
        out.print(f"{line}  [dim]# {markup_text(source)}[/]", highlight=False)
