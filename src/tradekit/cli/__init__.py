"""The ``tradekit`` launcher: one ``typer`` app whose commands live in the modules below.

Each command's module registers it on ``app`` when imported; ``app`` imports a
module the first time one of its commands is needed (``cli.app.LAZY_COMMANDS``).
"""

from tradekit.cli.app import EXIT_CONFIG_ERROR, app

__all__ = ["EXIT_CONFIG_ERROR", "app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
