"""The ``tradekit`` launcher: one ``typer`` app whose commands live in the modules below."""

from tradekit.cli import config_commands
from tradekit.cli.app import EXIT_CONFIG_ERROR, app

__all__ = ["EXIT_CONFIG_ERROR", "app", "config_commands", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
