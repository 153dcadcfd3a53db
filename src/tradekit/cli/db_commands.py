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
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tradekit.cli.app import ConfigOption, app, load_cli_settings, out, run_guarded
from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Position, Side
from tradekit.errors import StorageError
from tradekit.events import (
    Event,
    PositionClosed,
    PositionIncreased,
    PositionOpened,
    PositionReduced,
)
from tradekit.reporting import json_safe
from tradekit.services.journal.store import SqlJournal, StrategyInfo
from tradekit.terminal import format_optional, plain_text, print_table, results_table

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Journal database URL, e.g. sqlite:///tradekit.db. "
        "Default: storage.database_url of the config.",
    ),
]
DEFAULT_CAPITAL = StrategyConfig.model_fields["capital"].default

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
class OpenPositionReport:
    """One open position valued at the last price its strategy saw."""

    symbol: str
    side: str
    quantity: float
    avg_entry_price: float
    last_price: float | None
    unrealized_pnl: float
    notional: float

    def describe(self) -> str:
        last = "unknown" if self.last_price is None else f"{self.last_price:g}"
        return (
            f"{self.symbol} {self.side} {self.quantity:g} @ {self.avg_entry_price:g} "
            f"last {last} unrealized {self.unrealized_pnl:,.2f}"
        )


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
    open_positions: list[OpenPositionReport]
    symbols: tuple[str, ...] = ()
    capital: float | None = None
    unrealized_pnl: float = 0.0
    equity: float | None = None
    return_pct: float | None = None
    max_drawdown_pct: float | None = None


def _registered_config(info: StrategyInfo | None) -> dict[str, Any]:
    """The registry's stored config of a strategy (``{}`` when unknown or unreadable)."""
    if info is None:
        return {}
    try:
        config = json.loads(info.config_json)
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def _capital(config: dict[str, Any]) -> float | None:
    capital = config.get("capital", DEFAULT_CAPITAL if config else None)
    if isinstance(capital, int | float) and not isinstance(capital, bool) and capital > 0:
        return float(capital)
    return None


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass(frozen=True)
class _Marks:
    """What a strategy's latest snapshot says about valuing its open positions."""

    last_prices: dict[str, float]
    entry_fees_open: dict[str, float]  # position id -> entry fees it still carries

    @classmethod
    def of(cls, state: dict[str, Any] | None) -> _Marks:
        section = (state or {}).get("positions")
        section = section if isinstance(section, dict) else {}
        prices = section.get("last_prices")
        last_prices = {
            str(symbol): number
            for symbol, price in (prices.items() if isinstance(prices, dict) else ())
            if (number := _number(price)) is not None
        }
        fees: dict[str, float] = {}
        for item in section.get("positions") or ():
            if not isinstance(item, dict):
                continue
            position, book = item.get("position"), item.get("book")
            if isinstance(position, dict) and isinstance(book, dict):
                fee = _number(book.get("entry_fees_open"))
                if fee is not None:
                    fees[str(position.get("position_id"))] = fee
        return cls(last_prices, fees)


def _valued(position: Position, marks: _Marks) -> OpenPositionReport:
    last_price = marks.last_prices.get(position.symbol)
    price = position.avg_entry_price if last_price is None else last_price
    direction = 1.0 if position.side is Side.LONG else -1.0
    price_pnl = direction * (price - position.avg_entry_price) * position.quantity
    return OpenPositionReport(
        symbol=position.symbol,
        side=position.side.value,
        quantity=position.quantity,
        avg_entry_price=position.avg_entry_price,
        last_price=last_price,
        unrealized_pnl=price_pnl - marks.entry_fees_open.get(position.position_id, 0.0),
        notional=position.quantity * price,
    )


def max_drawdown_pct(values: list[float]) -> float:
    """The largest fall from a running peak, in percent of that peak (0 for a rising line)."""
    peak, deepest = -math.inf, 0.0
    for value in values:
        peak = max(peak, value)
        if peak > 0:
            deepest = max(deepest, (peak - value) / peak * 100)
    return deepest


def strategy_report(
    journal: SqlJournal, strategy_id: str, info: StrategyInfo | None
) -> StrategyReport:
    """Sum up one strategy's journal: closed trades come from its ``PositionClosed`` events.

    Realized P&L and fees count what positions still open have already realized and paid
    (partial take-profits, entry and add fees) too, as the running strategy counts them.

    Open positions come from the positions table, valued at the last price of their
    symbol in the strategy's latest snapshot (``positions.last_prices``: the close of
    the last candle it processed), or at their entry price when the snapshot has none,
    less the entry fees they still carry (as the running strategy counts them). With
    the capital from the registry's config, equity is capital + realized + unrealized.
    Drawdown follows the realized equity line (capital plus each realization, in seq
    order, a partial exit counted when it happens and its position's close adding
    the rest) and ends at today's equity, so an open loss counts too.
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
    realized = float(sum(event.realized_pnl for event in closed) + realized_while_open)
    snapshot = journal.latest_snapshot(strategy_id)
    marks = _Marks.of(None if snapshot is None else snapshot.state)
    positions = [_valued(position, marks) for position in journal.open_positions(strategy_id)]
    unrealized = float(sum(position.unrealized_pnl for position in positions))
    config = _registered_config(info)
    capital = _capital(config)
    equity = return_pct = drawdown = None
    if capital is not None:
        equity = capital + realized + unrealized
        return_pct = (equity - capital) / capital * 100
        drawdown = max_drawdown_pct([*_realized_line(capital, events), equity])
    traded = {
        event.symbol
        for event in events
        if isinstance(event, PositionOpened | PositionIncreased | PositionReduced | PositionClosed)
    }
    symbols = config.get("symbols") or sorted(traded)
    return StrategyReport(
        strategy_id=strategy_id,
        name=info.name if info else "",
        status=info.status.value if info else "not registered",
        events=len(events),
        last_seq=journal.last_seq(strategy_id),
        closed=len(closed),
        wins=sum(1 for event in closed if event.realized_pnl > 0),
        losses=sum(1 for event in closed if event.realized_pnl < 0),
        realized_pnl=realized,
        fees=float(sum(event.fees for event in closed) + sum(event.fee for event in still_open)),
        open_positions=positions,
        symbols=tuple(str(symbol) for symbol in symbols),
        capital=capital,
        unrealized_pnl=unrealized,
        equity=equity,
        return_pct=return_pct,
        max_drawdown_pct=drawdown,
    )


def _realized_line(capital: float, events: list[Event]) -> list[float]:
    """Capital plus everything realized so far, after each realization in seq order."""
    line = [capital]
    realized = 0.0
    partial: dict[str, float] = {}  # position id -> realized by its partial exits so far
    for event in events:
        if isinstance(event, PositionReduced):
            partial[event.position_id] = partial.get(event.position_id, 0.0) + event.realized_pnl
            realized += event.realized_pnl
        elif isinstance(event, PositionClosed):
            realized += event.realized_pnl - partial.pop(event.position_id, 0.0)
        else:
            continue
        line.append(capital + realized)
    return line


@dataclass(frozen=True)
class SymbolExposure:
    """The strategies trading one symbol and the notional they hold in it, against its cap."""

    symbol: str
    strategies: list[str]
    exposure: float
    cap: float | None

    @property
    def cap_used_pct(self) -> float | None:
        return None if self.cap is None else self.exposure / self.cap * 100


def symbol_exposures(reports: list[StrategyReport], cap: float | None) -> list[SymbolExposure]:
    """Per symbol (sorted): who trades it or holds it, and the notional held at the last price."""
    strategies: dict[str, list[str]] = {}
    exposure: dict[str, float] = {}
    for item in reports:
        held = {position.symbol for position in item.open_positions}
        for symbol in dict.fromkeys([*item.symbols, *sorted(held)]):
            strategies.setdefault(symbol, []).append(item.strategy_id)
        for position in item.open_positions:
            exposure[position.symbol] = exposure.get(position.symbol, 0.0) + position.notional
    return [
        SymbolExposure(symbol, strategies[symbol], exposure.get(symbol, 0.0), cap)
        for symbol in sorted(strategies)
    ]


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
            {**dataclasses.asdict(item), "cap_used_pct": item.cap_used_pct} for item in exposures
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
            registry = {info.strategy_id: info for info in journal.strategies()}
            reports = [
                strategy_report(journal, strategy_id, registry.get(strategy_id))
                for strategy_id in journal.strategy_ids()
            ]
            return journal.url, reports, settings.risk.max_exposure_per_symbol

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
