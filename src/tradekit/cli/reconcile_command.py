"""``tradekit reconcile``: the venue account against the bots' books, and what to do about it.

Without options it shows what differs (nothing is changed). ``--adopt ASSET
--into BOT --price P`` writes the venue's holding into that bot's book, journaled
with who asked; ``--flatten ASSET`` sends the market order that brings the venue
to the books (live orders enabled, confirmation unless ``--yes``). Both need the
journal's writer lock, so they are refused while a run holds it: stop the run,
reconcile, start it again.
"""

from __future__ import annotations

import getpass
import socket
from typing import Annotated

import typer

from tradekit.cli.app import ConfigOption, app, load_cli_settings, out, run_guarded
from tradekit.cli.db_commands import DatabaseOption, open_journal
from tradekit.config.settings import TradekitSettings
from tradekit.errors import ConfigError, StrategyError
from tradekit.ids import StrategyIdResolver
from tradekit.reporting import plain_text
from tradekit.runtime.reconcile import AssetDifference, Reconciliation, compare, registry_view
from tradekit.runtime.reconcile_actions import adopt_holding, flatten_holding, symbol_for
from tradekit.services.exchange.ccxt_exchange import CcxtExchange
from tradekit.services.journal.store import SqlJournal

EXIT_MISMATCH = 1


def venue_exchange(settings: TradekitSettings) -> CcxtExchange:
    """The venue of the settings; ``ConfigError`` unless the exchange kind is ccxt."""
    if settings.exchange.kind != "ccxt":
        raise ConfigError(
            f"tradekit reconcile reads a venue account, but exchange.kind is "
            f"{settings.exchange.kind!r}; set it to 'ccxt' and exchange.ccxt.exchange_id"
        )
    return CcxtExchange(settings.exchange, settings.live_orders_enabled)


def _operator() -> str:
    try:
        user = getpass.getuser()
    except OSError:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@app.command()
def reconcile(
    adopt: Annotated[
        str | None,
        typer.Option(
            "--adopt", metavar="ASSET", help="Write the venue's ASSET into --into's book."
        ),
    ] = None,
    into: Annotated[
        str | None, typer.Option("--into", metavar="BOT", help="The bot adopting the holding.")
    ] = None,
    price: Annotated[
        float | None,
        typer.Option("--price", help="Price the adopted quantity is booked at (quote currency)."),
    ] = None,
    flatten: Annotated[
        str | None,
        typer.Option("--flatten", metavar="ASSET", help="Trade the venue's ASSET to the books."),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="The market to use when several trade the asset."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Flatten without asking.")] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="Who asks (journaled). Default: user@host.")
    ] = None,
    db: DatabaseOption = None,
    config: ConfigOption = None,
) -> None:
    """Compare the venue's balances and open orders with the bots' books; adopt or flatten."""
    if adopt is not None and flatten is not None:
        raise typer.BadParameter("give --adopt or --flatten, not both")
    if adopt is not None and (into is None or price is None):
        raise typer.BadParameter("--adopt ASSET needs --into BOT and --price P")

    def go() -> Reconciliation:
        settings = load_cli_settings(config)
        url = db if db is not None else settings.storage.database_url
        exchange = venue_exchange(settings)
        writing = adopt is not None or flatten is not None
        journal = open_journal(url, read_only=not writing)
        try:
            if writing:
                journal.acquire_writer()
            result = _compare(exchange, journal)
            _show(result)
            if adopt is not None and into is not None and price is not None:
                difference = _difference(result, adopt)
                event = adopt_holding(
                    settings,
                    journal,
                    difference,
                    into,
                    price=price,
                    by=by or _operator(),
                    symbol=symbol,
                )
                out.print(
                    plain_text(
                        f"adopted: bot {into} {event.symbol} changed by "
                        f"{event.quantity_change:.10g} at {event.price:.10g} (by {event.by})"
                    ),
                    highlight=False,
                )
                result = _compare(exchange, journal)
                _show(result)
            elif flatten is not None:
                difference = _difference(result, flatten)
                traded, _, _ = registry_view(journal)
                symbols = sorted({s for bot in difference.bots for s in traded.get(bot, [])})
                market = symbol_for(flatten, symbols, symbol, f"the bots trading {flatten}")
                answer = flatten_holding(
                    exchange,
                    difference,
                    market,
                    confirm=lambda plan: yes or typer.confirm(f"{plan}?", default=False),
                )
                if answer is None:
                    out.print("not flattened", highlight=False)
                    return result
                out.print(
                    plain_text(f"flattened: venue order {answer.get('id')} sent"),
                    highlight=False,
                )
                result = _compare(exchange, journal)
                _show(result)
            return result
        finally:
            journal.close()

    result = run_guarded(go)
    if not result.agrees:
        raise typer.Exit(EXIT_MISMATCH)


def _compare(exchange: CcxtExchange, journal: SqlJournal) -> Reconciliation:
    traded, books, known = registry_view(journal)
    return compare(
        exchange.venue,
        exchange.balances(),
        exchange.open_orders(),
        books,
        traded,
        StrategyIdResolver(known),
    )


def _difference(result: Reconciliation, asset: str) -> AssetDifference:
    found = next((item for item in result.differences if item.asset == asset), None)
    if found is None:
        mismatched = ", ".join(item.asset for item in result.differences) or "none"
        raise StrategyError(
            f"venue and books agree on {asset} (or no bot trades it); mismatched assets: "
            f"{mismatched}"
        )
    return found


def _show(result: Reconciliation) -> None:
    for line in result.lines():
        out.print(plain_text(line), highlight=False)


__all__ = ["reconcile", "venue_exchange"]
