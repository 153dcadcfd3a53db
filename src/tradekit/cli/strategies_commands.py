"""``tradekit strategies``: the registry a ``tradekit run`` on the same database follows.

``add``, ``update``, ``enable``, ``disable``, ``remove`` and ``resume`` write the
registry row and a change row saying who asked for what; a running ``tradekit
run`` applies the change between candles, within a second or two, and records
the outcome on the change row (``list`` shows it). Without a run the registry
simply says what the next run starts with. Only a run trades, so closing
positions (``--close``) is done by the run; ``remove`` of a strategy holding
positions is refused without ``--close``, here and again by the run. The checks
and messages are ``tradekit.runtime.bot_requests``', shared with the bot
service's API. None of these commands takes the journal's writer lock: they
work beside a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from tradekit.cli.app import ConfigOption, app, load_cli_settings, out, run_guarded
from tradekit.cli.db_commands import (
    DatabaseOption,
    StrategyIdArgument,
    database_url,
    open_journal,
)
from tradekit.config import load_strategy
from tradekit.config.strategy import StrategyConfig
from tradekit.errors import ConfigError
from tradekit.insights.holdings import strategy_report
from tradekit.reporting import plain_text, print_table, results_table
from tradekit.runtime.bot_requests import (
    ChangeAsked,
    add_bot,
    disable_bot,
    enable_bot,
    remove_bot,
    resume_bot,
    update_bot,
)
from tradekit.runtime.control import registered_config, requester
from tradekit.services.journal.store import RegistryChange, SqlJournal, StrategyInfo
from tradekit.validation import check_strategies_build

strategies_app = typer.Typer(
    help="Manage the strategies registry that a running 'tradekit run' follows.",
    no_args_is_help=True,
)
app.add_typer(strategies_app, name="strategies")

CloseOption = Annotated[
    bool,
    typer.Option("--close", help="Close the strategy's open positions at market first."),
]
FileArgument = Annotated[Path, typer.Argument(help="The strategy file (JSON).")]


def _say(text: str) -> None:
    out.print(plain_text(text), markup=False, highlight=False)


@dataclass(frozen=True)
class ListedStrategy:
    """One row of ``strategies list``: the registry entry and what the journal says of it."""

    info: StrategyInfo
    symbols: str
    timeframe: str
    open_positions: int
    realized_pnl: float
    last_change: str


def _last_change(change: RegistryChange | None) -> str:
    if change is None:
        return ""
    outcome = change.outcome if change.applied_at is not None else "pending"
    return f"#{change.change_id} {change.action} by {change.by}: {outcome}"


def listed_strategies(journal: SqlJournal) -> list[ListedStrategy]:
    """Every registered strategy with its symbols, state, positions, P&L and last change."""
    last: dict[str, RegistryChange] = {}
    for change in journal.registry_changes():
        last[change.strategy_id] = change
    rows = []
    for info in journal.strategies():
        try:
            config: StrategyConfig | None = registered_config(info)
        except ConfigError:
            config = None  # listed all the same: the run reports the broken config
        report = strategy_report(journal, info.strategy_id, info)
        rows.append(
            ListedStrategy(
                info=info,
                symbols=",".join(config.symbols) if config else "?",
                timeframe=config.timeframe if config else "?",
                open_positions=len(report.open_positions),
                realized_pnl=report.realized_pnl,
                last_change=_last_change(last.get(info.strategy_id)),
            )
        )
    return rows


@strategies_app.command("list")
def list_strategies(database: DatabaseOption = None, config: ConfigOption = None) -> None:
    """What the runner runs: id, name, symbols, timeframe, state, positions, P&L, last change."""

    def read() -> tuple[str, list[ListedStrategy]]:
        with open_journal(database_url(database, config), read_only=True) as journal:
            return journal.url, listed_strategies(journal)

    url, listed = run_guarded(read)
    if not listed:
        _say(f"no strategies registered in {url}")
        return
    headers = (
        "strategy",
        "name",
        "symbols",
        "timeframe",
        "state",
        "open positions",
        "realized P&L",
        "last change",
    )
    rows = [
        [
            item.info.strategy_id,
            item.info.name,
            item.symbols,
            item.timeframe,
            item.info.status.value,
            str(item.open_positions),
            f"{item.realized_pnl:,.2f}",
            item.last_change,
        ]
        for item in listed
    ]
    print_table(out, results_table(f"Strategies in {url}", headers, rows, text_columns=5))


def _validated(file: Path, config: Path | None) -> tuple[StrategyConfig, str]:
    settings = load_cli_settings(config)
    loaded = load_strategy(file, settings)
    check_strategies_build([loaded])
    return loaded.config, settings.storage.database_url


def _say_change(asked: ChangeAsked, url: str, file: Path | None = None) -> None:
    if file is None:
        _say(f"{asked.strategy_id}: {asked.told} (#{asked.change_id}) in {url}")
    else:
        _say(f"{asked.told}, #{asked.change_id}, from {file} in {url}")


@strategies_app.command("add")
def add_strategy(
    file: FileArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Validate a strategy file over the config's defaults, register it, and start it.

    A running ``tradekit run`` on the database starts the new strategy; it is
    active, or disabled when its file says "enabled": false. An id already
    registered is refused (use ``update``), unless it was removed.
    """

    def register() -> tuple[ChangeAsked, str]:
        strategy, default_url = _validated(file, config)
        with open_journal(database or default_url, create=True) as journal:
            return add_bot(journal, strategy, requester(), file_hint=str(file)), journal.url

    asked, url = run_guarded(register)
    _say_change(asked, url, file)


@strategies_app.command("update")
def update_strategy(
    file: FileArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Replace a registered strategy's config; a running run hot-reloads it, keeping positions.

    Open positions keep their stop, target and trailing levels; the new exit
    settings apply to positions opened afterwards. "enabled": false in the file
    disables the strategy; otherwise its state is kept.
    """

    def register() -> tuple[ChangeAsked, str]:
        strategy, default_url = _validated(file, config)
        with open_journal(database or default_url) as journal:
            return update_bot(journal, strategy, requester(), file_hint=str(file)), journal.url

    asked, url = run_guarded(register)
    _say_change(asked, url, file)


def _change(
    database: str | None,
    config: Path | None,
    ask: Callable[[SqlJournal], ChangeAsked],
) -> None:
    """Open the journal and ask for one change; say what was asked, or why it was refused."""

    def apply() -> tuple[ChangeAsked, str]:
        with open_journal(database_url(database, config)) as journal:
            return ask(journal), journal.url

    asked, url = run_guarded(apply)
    _say_change(asked, url)


@strategies_app.command("enable")
def enable_strategy(
    strategy_id: StrategyIdArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Make a disabled strategy active; a running run starts its signals and entries again."""
    _change(database, config, lambda journal: enable_bot(journal, strategy_id, requester()))


@strategies_app.command("disable")
def disable_strategy(
    strategy_id: StrategyIdArgument,
    close: CloseOption = False,
    database: DatabaseOption = None,
    config: ConfigOption = None,
) -> None:
    """No more signals or entries; its stops keep managing what it holds (or --close it)."""
    _change(
        database,
        config,
        lambda journal: disable_bot(journal, strategy_id, requester(), close_positions=close),
    )


@strategies_app.command("resume")
def resume_strategy(
    strategy_id: StrategyIdArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Lift a quarantine: the strategy is active again."""
    _change(database, config, lambda journal: resume_bot(journal, strategy_id, requester()))


@strategies_app.command("remove")
def remove_strategy(
    strategy_id: StrategyIdArgument,
    close: CloseOption = False,
    database: DatabaseOption = None,
    config: ConfigOption = None,
) -> None:
    """Stop and remove a strategy; its journal stays. Refused while it holds positions.

    With ``--close`` the run closes its positions at market, then removes it;
    until a run has done so the strategy keeps its state.
    """
    _change(
        database,
        config,
        lambda journal: remove_bot(journal, strategy_id, requester(), close_positions=close),
    )


__all__ = ["ListedStrategy", "listed_strategies", "strategies_app"]
