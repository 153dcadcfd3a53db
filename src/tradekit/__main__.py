"""``python -m tradekit`` runs the launcher."""

from tradekit.cli import main

main()
