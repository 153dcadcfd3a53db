"""Journal database commands: ``report`` (per-strategy results), and what ``strategies`` shares.

Every command takes ``--db URL``, by default the config's ``storage.database_url``.
Only ``strategies add`` creates a database; the others refuse a SQLite file that
does not exist rather than leave an empty one behind. ``report`` and ``strategies
list`` open the journal read-only, so they work on a copy on read-only storage and
never change the file. None of them takes the writer lock: they work beside a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tradekit.cli.app import ConfigOption, app, load_cli_settings, out, run_guarded
from tradekit.errors import StorageError
from tradekit.events import PositionClosed, PositionIncreased, PositionOpened, PositionReduced
from tradekit.reporting import plain_text, print_table, results_table
from tradekit.services.journal.store import SqlJournal, StrategyInfo

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


@dataclass(frozen=True)
class StrategyReport:
    """What the journal holds about one strategy, summed up."""

    strategy_id: str
    name: str
    status: str
    events: int
    last_seq: int
    closed: int
    wins: int
    losses: int
    realized_pnl: float
    fees: float
    open_positions: list[str]


def strategy_report(
    journal: SqlJournal, strategy_id: str, info: StrategyInfo | None
) -> StrategyReport:
    """Sum up one strategy's journal: closed trades come from its ``PositionClosed`` events.

    Realized P&L and fees count what positions still open have already realized and paid
    (partial take-profits, entry and add fees) too, as the running strategy counts them.
    """
    events = journal.events(strategy_id)
    closed = [event for event in events if isinstance(event, PositionClosed)]
    closed_ids = {event.position_id for event in closed}
    still_open = [
        event
        for event in events
        if isinstance(event, PositionOpened | PositionIncreased | PositionReduced)
        and event.position_id not in closed_ids
    ]
    realized_while_open = sum(
        event.realized_pnl for event in still_open if isinstance(event, PositionReduced)
    )
    positions = journal.open_positions(strategy_id)
    return StrategyReport(
        strategy_id=strategy_id,
        name=info.name if info else "",
        status=info.status.value if info else "not registered",
        events=len(events),
        last_seq=journal.last_seq(strategy_id),
        closed=len(closed),
        wins=sum(1 for event in closed if event.realized_pnl > 0),
        losses=sum(1 for event in closed if event.realized_pnl < 0),
        realized_pnl=sum(event.realized_pnl for event in closed) + realized_while_open,
        fees=sum(event.fees for event in closed) + sum(event.fee for event in still_open),
        open_positions=[f"{p.symbol} {p.side.value} {p.quantity:g}" for p in positions],
    )


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


@app.command()
def report(database: DatabaseOption = None, config: ConfigOption = None) -> None:
    """Per-strategy results recorded in a journal database: events, trades, P&L, positions."""

    def read() -> tuple[str, list[StrategyReport]]:
        with open_journal(database_url(database, config), read_only=True) as journal:
            registry = {info.strategy_id: info for info in journal.strategies()}
            reports = [
                strategy_report(journal, strategy_id, registry.get(strategy_id))
                for strategy_id in journal.strategy_ids()
            ]
            return journal.url, reports

    url, reports = run_guarded(read)
    if not reports:
        out.print(
            plain_text(f"journal {url} holds no strategies yet"), markup=False, highlight=False
        )
        return
    print_table(out, _report_table(url, reports))
    for item in reports:
        for position in item.open_positions:
            out.print(
                plain_text(f"open  {item.strategy_id}  {position}"), markup=False, highlight=False
            )
