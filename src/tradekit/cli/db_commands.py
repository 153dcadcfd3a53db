"""Journal database commands: ``report`` (per-strategy results) and ``strategies`` (the registry).

Every command takes ``--db URL``, by default the config's ``storage.database_url``.
Only ``strategies add`` creates a database; the others refuse a SQLite file that
does not exist rather than leave an empty one behind. ``report`` and ``strategies
list`` open the journal read-only, so they work on a copy on read-only storage and
never change the file. None of them takes the writer lock: they work beside a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tradekit.cli.app import ConfigOption, app, load_cli_settings, out, run_guarded
from tradekit.config import load_strategy
from tradekit.errors import StorageError
from tradekit.events import PositionClosed, PositionIncreased, PositionOpened, PositionReduced
from tradekit.reporting import plain_text, print_table, results_table
from tradekit.runtime.validation import check_strategies_build
from tradekit.services.journal.store import SqlJournal, StrategyInfo, StrategyStatus

strategies_app = typer.Typer(
    help="Manage the named strategies registered in the journal database.", no_args_is_help=True
)
app.add_typer(strategies_app, name="strategies")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Journal database URL, e.g. sqlite:///tradekit.db. "
        "Default: storage.database_url of the config.",
    ),
]
StrategyIdArgument = Annotated[str, typer.Argument(help="The registered strategy's id.")]


def _database_url(database: str | None, config: Path | None) -> str:
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
        with open_journal(_database_url(database, config), read_only=True) as journal:
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


@strategies_app.command("list")
def list_strategies(database: DatabaseOption = None, config: ConfigOption = None) -> None:
    """Print every registered strategy with its status."""

    def read() -> tuple[str, list[StrategyInfo]]:
        with open_journal(_database_url(database, config), read_only=True) as journal:
            return journal.url, journal.strategies()

    url, registered = run_guarded(read)
    if not registered:
        out.print(plain_text(f"no strategies registered in {url}"), markup=False, highlight=False)
        return
    rows = [
        [
            info.strategy_id,
            info.name,
            info.kind,
            info.status.value,
            info.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
        ]
        for info in registered
    ]
    headers = ("strategy", "name", "kind", "status", "updated (UTC)")
    print_table(
        out, results_table(f"Strategies in {url}", headers, rows, text_columns=len(headers))
    )


@strategies_app.command("add")
def add_strategy(
    file: Annotated[Path, typer.Argument(help="The strategy file (JSON) to register.")],
    database: DatabaseOption = None,
    config: ConfigOption = None,
) -> None:
    """Validate a strategy file over the config's defaults and register it.

    The registry stores the merged, validated configuration as JSON. A new
    strategy is active, or disabled when its file says "enabled": false. Adding an
    id that is already registered updates its name and configuration and keeps its
    status (a removed one becomes active again).
    """

    def register() -> tuple[str, str, str]:
        settings = load_cli_settings(config)
        loaded = load_strategy(file, settings)
        check_strategies_build([loaded], settings)
        strategy = loaded.config
        kind = "+".join(dict.fromkeys(analyzer.type for analyzer in strategy.analyzers))
        url = database if database is not None else settings.storage.database_url
        with open_journal(url, create=True) as journal:
            known = {info.strategy_id for info in journal.strategies()}
            journal.register_strategy(
                strategy.strategy_id, strategy.name, kind, strategy.model_dump_json()
            )
            if strategy.strategy_id not in known and not strategy.enabled:
                journal.set_status(strategy.strategy_id, StrategyStatus.DISABLED)
            status = next(
                info.status.value
                for info in journal.strategies()
                if info.strategy_id == strategy.strategy_id
            )
            verb = "updated" if strategy.strategy_id in known else "registered"
            return journal.url, f"{verb} {strategy.strategy_id} ({strategy.name})", status

    url, done, status = run_guarded(register)
    out.print(
        plain_text(f"{done} from {file} in {url}; status {status}"), markup=False, highlight=False
    )


def _change_status(
    strategy_id: str,
    database: str | None,
    config: Path | None,
    change: Callable[[SqlJournal], None],
    done: str,
) -> None:
    def apply() -> str:
        with open_journal(_database_url(database, config)) as journal:
            change(journal)
            return journal.url

    url = run_guarded(apply)
    out.print(plain_text(f"{strategy_id}: {done} in {url}"), markup=False, highlight=False)


@strategies_app.command("enable")
def enable_strategy(
    strategy_id: StrategyIdArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Mark a registered strategy active."""
    _change_status(
        strategy_id,
        database,
        config,
        lambda journal: journal.set_status(strategy_id, StrategyStatus.ACTIVE),
        "active",
    )


@strategies_app.command("disable")
def disable_strategy(
    strategy_id: StrategyIdArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Mark a registered strategy disabled; it stays registered with its journal."""
    _change_status(
        strategy_id,
        database,
        config,
        lambda journal: journal.set_status(strategy_id, StrategyStatus.DISABLED),
        "disabled",
    )


@strategies_app.command("remove")
def remove_strategy(
    strategy_id: StrategyIdArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Mark a registered strategy removed; its events, orders and fills are kept."""
    _change_status(
        strategy_id,
        database,
        config,
        lambda journal: journal.remove_strategy(strategy_id),
        "removed",
    )
