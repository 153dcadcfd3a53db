"""The ``tradekit`` launcher: one ``typer`` app whose commands live in the modules below.

Importing a command module registers its commands on ``app``.
"""

from tradekit.cli import (
    backtest_command,
    config_commands,
    db_commands,
    run_command,
    strategies_commands,
)
from tradekit.cli.app import EXIT_CONFIG_ERROR, app

__all__ = [
    "EXIT_CONFIG_ERROR",
    "app",
    "backtest_command",
    "config_commands",
    "db_commands",
    "main",
    "run_command",
    "strategies_commands",
]


def main() -> None:
    """Console-script entry point."""
    app()
