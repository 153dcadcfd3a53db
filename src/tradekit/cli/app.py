"""The launcher's ``typer`` app and what every command shares: option types, loading
settings, logging options, and turning errors into a readable message with exit code 2.

Commands are registered lazily: ``LAZY_COMMANDS`` names the module of each, which
is imported only when that command runs or shows its own help, so ``tradekit
--help`` never imports pandas, SQLAlchemy or the runtime. A module imported
eagerly (``import tradekit.cli.some_module``) still registers its commands.

``--log-level`` and ``--json-logs`` work before the command (``tradekit
--log-level DEBUG run``) and after it (``tradekit run --log-level DEBUG``); they
override the config's ``logging`` section. ``-h`` is ``--help`` everywhere.

Text from files and the environment is printed through ``plain_text`` or
``markup_text`` (tables through ``results_table``), so names cannot inject markup
or terminal escape codes, nor crash the output with a lone surrogate.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, TypeVar

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from tradekit import __version__
from tradekit.errors import ConfigError, ConfigProblem, TradekitError
from tradekit.log_levels import LEVELS
from tradekit.terminal import markup_text, plain_text

if TYPE_CHECKING:
    from tradekit.config import LoggingSettings, TradekitSettings

EXIT_CONFIG_ERROR = 2
DEFAULT_CONFIG = Path("config.json")
DEFAULT_STRATEGIES = Path("strategies")
HELP_OPTIONS = ["-h", "--help"]


class LazyCommand(NamedTuple):
    """Where a command lives and the one line ``tradekit --help`` shows for it."""

    module: str
    summary: str


LAZY_COMMANDS: Mapping[str, LazyCommand] = {
    "backtest": LazyCommand(
        "tradekit.cli.backtest_command",
        "Backtest the strategies; write trades.csv, report.json, events.jsonl and equity.png.",
    ),
    "config": LazyCommand("tradekit.cli.config_commands", "Inspect the merged configuration."),
    "data": LazyCommand("tradekit.cli.data_commands", "Download market data."),
    "reconcile": LazyCommand(
        "tradekit.cli.reconcile_command",
        "Compare the venue's balances and open orders with the bots' books; adopt or flatten.",
    ),
    "report": LazyCommand(
        "tradekit.cli.db_commands",
        "Per-strategy results recorded in a journal database: open positions at the last "
        "price, P&L, return, drawdown and exposure per symbol.",
    ),
    "run": LazyCommand(
        "tradekit.cli.run_command",
        "Run what the registry says, live or on paper; Ctrl-C or SIGTERM stops cleanly "
        "(exit code 0).",
    ),
    "serve": LazyCommand(
        "tradekit.cli.serve_command",
        "Run the bots and a REST API over them (docs at /docs); Ctrl-C or SIGTERM stops both.",
    ),
    "schema": LazyCommand(
        "tradekit.cli.config_commands",
        "Print the JSON Schema of a strategy file (or of the base config with --settings).",
    ),
    "strategies": LazyCommand(
        "tradekit.cli.strategies_commands",
        "Manage the strategies registry that a running 'tradekit run' follows.",
    ),
    "templates": LazyCommand(
        "tradekit.cli.templates_commands",
        "List the strategy templates (bundled and the user's) and their parameters.",
    ),
    "validate": LazyCommand(
        "tradekit.cli.config_commands",
        "Check the base config and every strategy file; print one line per strategy.",
    ),
}
"""Every command of the launcher: its module (imported on first use) and its summary."""

_LOG_LEVEL_HELP = f"Log level, overriding logging.level: one of {', '.join(LEVELS)}."
_JSON_LOGS_HELP = "Also write every log record as JSON lines to this file (logging.json_path)."


def _checked_level(value: str | None) -> str | None:
    if value is not None and value.upper() not in LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LEVELS)}")
    return value


LogLevelOption = Annotated[
    str | None, typer.Option("--log-level", callback=_checked_level, help=_LOG_LEVEL_HELP)
]
JsonLogsOption = Annotated[
    Path | None, typer.Option("--json-logs", dir_okay=False, help=_JSON_LOGS_HELP)
]


@dataclass
class LoggingOverrides:
    """``--log-level`` and ``--json-logs`` of the command being run; reset by each run."""

    level: str | None = None
    json_path: Path | None = None

    def apply(self) -> None:
        """Configure logging from the options alone (until settings, if any, are loaded)."""
        if self.level is None and self.json_path is None:
            return
        from tradekit.logs import configure_logging

        try:
            configure_logging(self.level or "INFO", self.json_path)
        except ConfigError as exc:
            raise typer.BadParameter(
                "; ".join(problem.message for problem in exc.problems), param_hint="--json-logs"
            ) from None


_overrides = LoggingOverrides()


def _logging_option_given(ctx: Any, param: Any, value: Any) -> None:
    """The callback of a logging option given after a command: keep it and apply it."""
    if value is None:
        return
    if param.name == "log_level":
        _overrides.level = _checked_level(value)
    else:
        _overrides.json_path = Path(value)
    _overrides.apply()


def _logging_options() -> list[Any]:
    """Fresh ``--log-level`` and ``--json-logs`` parameters, as typer builds them."""
    holder = typer.Typer(add_completion=False)

    @holder.command()
    def options(log_level: LogLevelOption = None, json_logs: JsonLogsOption = None) -> None:
        """Never run: typer turns this signature into the two parameters."""

    params = list(typer.main.get_command(holder).params)
    for param in params:
        # Handled by their callback, not passed to the command's function.
        param.expose_value = False
        param.callback = _logging_option_given
    return params


def _with_logging_options(command: Any) -> Any:
    """Give ``command`` (and every command under it) the logging options, once."""
    if isinstance(command, TyperGroup):
        for child in command.commands.values():
            _with_logging_options(child)
    elif not any(param.name == "log_level" for param in command.params):
        command.params.extend(_logging_options())
    return command


class LazyGroup(TyperGroup):
    """The root command group: imports a command's module only when the command is needed.

    While the root help is being written, a command not imported yet is listed
    from ``LAZY_COMMANDS`` (a stand-in with its summary), so listing imports nothing.
    """

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        lazy = LAZY_COMMANDS.get(cmd_name)
        if lazy is not None and lazy.module not in _imported_modules:
            if self._listing:
                return TyperCommand(cmd_name, help=lazy.summary)
            importlib.import_module(lazy.module)
            _imported_modules.add(lazy.module)
            # Rebuilt from the typer app, which now holds what the module registered.
            self.commands.update(typer.main.get_group(app).commands)
        command = self.commands.get(cmd_name)
        return None if command is None else _with_logging_options(command)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


_imported_modules: set[str] = set()

app = typer.Typer(
    name="tradekit",
    help="Run many isolated trading strategies side by side over shared market data.",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": HELP_OPTIONS},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tradekit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    log_level: LogLevelOption = None,
    json_logs: JsonLogsOption = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Run many isolated trading strategies side by side over shared market data."""
    # Runs before the command's own options are read, so each run starts afresh.
    _overrides.level, _overrides.json_path = log_level, json_logs
    _overrides.apply()


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
    # Imported here: pydantic-settings alone costs about as much as the whole of --help.
    from tradekit.config import load_settings
    from tradekit.config.provenance import source_of

    if config is None:
        settings = load_settings(DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    else:
        settings = load_settings(config)
    try:
        configure_logging_from_settings(settings.logging)
    except ConfigError as exc:
        source = source_of(settings.provenance, "logging.json_path")
        raise ConfigError(
            ConfigProblem(problem.message, source=source, path=problem.path)
            for problem in exc.problems
        ) from None
    return settings


def effective_logging(logging: LoggingSettings) -> tuple[str, str | None]:
    """The log level and JSON log file in force: ``--log-level``/``--json-logs`` win over the
    ``logging`` section."""
    json_path = _overrides.json_path or logging.json_path
    return _overrides.level or logging.level, None if json_path is None else str(json_path)


def configure_logging_from_settings(logging: LoggingSettings) -> None:
    """Configure logging from the ``logging`` section; ``--log-level``/``--json-logs`` win."""
    from tradekit.logs import configure_logging

    configure_logging(*effective_logging(logging))


HealthIntervalOption = Annotated[
    float | None,
    typer.Option(
        "--health-interval",
        min=0.001,
        help="Seconds between health reports (default: logging.health_interval, 60).",
    ),
]
HealthFileOption = Annotated[
    Path | None,
    typer.Option(
        "--health-file",
        dir_okay=False,
        help="Where the health report (JSON) goes (default: logging.health_path, else next "
        "to a SQLite journal as <db>.health.json).",
    ),
]


def health_arguments(
    settings: TradekitSettings, interval: float | None, path: Path | None
) -> dict[str, Any]:
    """``run_live``'s health arguments from the options, else the ``logging`` settings."""
    from tradekit.runtime.health import default_health_path

    configured = settings.logging.health_path
    if path is None:
        path = (
            Path(configured) if configured else default_health_path(settings.storage.database_url)
        )
    return {
        "health_path": path,
        "health_interval": settings.logging.health_interval if interval is None else interval,
    }


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
