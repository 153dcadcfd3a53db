"""Journal database commands: ``report`` (per-strategy results) and what the registry
commands (``tradekit.cli.strategies_commands``) share: the ``--db`` option and opening a journal.

Every command takes ``--db URL``, by default the config's ``storage.database_url``.
Only ``strategies add`` creates a database; the others refuse a SQLite file that
does not exist rather than leave an empty one behind. ``report`` and ``strategies
list`` open the journal read-only, so they work on a copy on read-only storage and
never change the file. None of them takes the writer lock: they work beside a run.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tradekit.cli.app import ConfigOption, app, load_cli_settings, out, run_guarded
from tradekit.errors import StorageError
from tradekit.insights.holdings import (
    StrategyReport,
    SymbolExposure,
    strategy_reports,
    symbol_exposures,
)
from tradekit.reporting import json_safe
from tradekit.services.journal.store import SqlJournal
from tradekit.terminal import format_optional, plain_text, print_table, results_table

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Journal database URL, e.g. sqlite:///tradekit.db. "
        "Default: storage.database_url of the config.",
    ),
]
StrategyIdArgument = Annotated[str, typer.Argument(help="The registered strategy's id.")]


def database_url(database: str | None, config: Path | None) -> str:
    return database if database is not None else load_cli_settings(config).storage.database_url


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names; ``None`` for other databases and in-memory ones."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # SqlJournal reports the malformed URL in its own words.
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(database)


def open_journal(url: str, *, create: bool = False, read_only: bool = False) -> SqlJournal:
    """The journal at ``url``; unless ``create``, a missing SQLite file is a ``StorageError``."""
    path = sqlite_file(url)
    if not create and path is not None and not path.exists():
        raise StorageError(
            f"cannot open journal {url}: no database file at {path.resolve()}; pass the "
            "right one with --db, or create it with 'tradekit strategies add' or a run"
        )
    return SqlJournal(url, read_only=read_only)


REPORT_HEADERS = (
    "strategy",
    "name",
    "status",
    "events",
    "last seq",
    "closed trades",
    "wins",
    "losses",
    "realized P&L",
    "fees",
    "open positions",
)


def _report_table(url: str, reports: list[StrategyReport]) -> Table:
    rows = [
        [
            item.strategy_id,
            item.name,
            item.status,
            str(item.events),
            str(item.last_seq),
            str(item.closed),
            str(item.wins),
            str(item.losses),
            f"{item.realized_pnl:,.2f}",
            f"{item.fees:,.2f}",
            str(len(item.open_positions)),
        ]
        for item in reports
    ]
    footer = [
        "all",
        "",
        "",
        str(sum(item.events for item in reports)),
        "",
        str(sum(item.closed for item in reports)),
        str(sum(item.wins for item in reports)),
        str(sum(item.losses for item in reports)),
        f"{sum(item.realized_pnl for item in reports):,.2f}",
        f"{sum(item.fees for item in reports):,.2f}",
        str(sum(len(item.open_positions) for item in reports)),
    ]
    return results_table(
        f"Journal {url}",
        REPORT_HEADERS,
        rows,
        text_columns=3,
        footer=footer if len(reports) > 1 else None,
    )


PERFORMANCE_HEADERS = (
    "strategy",
    "capital",
    "realized P&L",
    "unrealized P&L",
    "equity",
    "return %",
    "max drawdown %",
)


def _performance_table(reports: list[StrategyReport]) -> Table:
    rows = [
        [
            item.strategy_id,
            format_optional(item.capital, ",.2f"),
            f"{item.realized_pnl:,.2f}",
            f"{item.unrealized_pnl:,.2f}",
            format_optional(item.equity, ",.2f"),
            format_optional(item.return_pct),
            format_optional(item.max_drawdown_pct),
        ]
        for item in reports
    ]
    return results_table(
        "Return and drawdown (open positions at the last price)", PERFORMANCE_HEADERS, rows
    )


EXPOSURE_HEADERS = ("symbol", "strategies", "exposure", "cap", "cap used %")


def _exposure_table(exposures: list[SymbolExposure]) -> Table:
    rows = [
        [
            item.symbol,
            ", ".join(item.strategies),
            f"{item.exposure:,.2f}",
            format_optional(item.cap, ",.2f", missing="none"),
            format_optional(item.cap_used_pct, ".1f"),
        ]
        for item in exposures
    ]
    return results_table(
        "Exposure per symbol (risk.max_exposure_per_symbol)",
        EXPOSURE_HEADERS,
        rows,
        text_columns=2,
    )


def report_document(
    url: str, reports: list[StrategyReport], exposures: list[SymbolExposure]
) -> dict[str, Any]:
    """What ``tradekit report --json`` prints: the tables' figures, unrounded."""
    return {
        "journal": url,
        "strategies": [dataclasses.asdict(item) for item in reports],
        "symbols": [
            {
                "symbol": item.symbol,
                "strategies": item.strategies,
                "exposure": item.exposure,
                "cap": item.cap,
                "cap_used_pct": item.cap_used_pct,
            }
            for item in exposures
        ],
    }


@app.command()
def report(
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON, for scripts.")
    ] = False,
) -> None:
    """Per-strategy results recorded in a journal database: open positions at the last
    price, P&L, return, drawdown and exposure per symbol.

    The last price of a symbol is the close of the last candle the strategy processed,
    as its latest snapshot holds it. Return and drawdown need the strategy's capital,
    read from its registered config. Exposure is the notional of the open positions at
    the last price, summed per symbol, against the config's risk.max_exposure_per_symbol.
    """

    def read() -> tuple[str, list[StrategyReport], float | None]:
        settings = load_cli_settings(config)
        url = database if database is not None else settings.storage.database_url
        with open_journal(url, read_only=True) as journal:
            return journal.url, strategy_reports(journal), settings.risk.max_exposure_per_symbol

    url, reports, cap = run_guarded(read)
    exposures = symbol_exposures(reports, cap)
    if as_json:
        document = json_safe(report_document(url, reports, exposures))
        sys.stdout.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
        return
    if not reports:
        out.print(
            plain_text(f"journal {url} holds no strategies yet"), markup=False, highlight=False
        )
        return
    print_table(out, _report_table(url, reports))
    for item in reports:
        for position in item.open_positions:
            out.print(
                plain_text(f"open  {item.strategy_id}  {position.describe()}"),
                markup=False,
                highlight=False,
            )
    out.print()
    print_table(out, _performance_table(reports))
    out.print()
    print_table(out, _exposure_table(exposures))
