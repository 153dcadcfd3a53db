"""``tradekit strategies``: the registry a ``tradekit run`` on the same database follows.

``add``, ``update``, ``enable``, ``disable``, ``remove`` and ``resume`` write the
registry row and a change row saying who asked for what; a running ``tradekit
run`` applies the change between candles, within a second or two, and records
the outcome on the change row (``list`` shows it). Without a run the registry
simply says what the next run starts with. Only a run trades, so closing
positions (``--close``) is done by the run; ``remove`` of a strategy holding
positions is refused without ``--close``, here and again by the run. None of
these commands takes the journal's writer lock: they work beside a run.
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
from tradekit.errors import ConfigError, StrategyError
from tradekit.insights.holdings import strategy_report
from tradekit.reporting import plain_text, print_table, results_table
from tradekit.runtime.control import ControlAction, registered_config, requester, strategy_kind
from tradekit.runtime.validation import check_strategies_build
from tradekit.services.journal.store import (
    RegistryChange,
    SqlJournal,
    StrategyInfo,
    StrategyStatus,
)

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
    check_strategies_build([loaded], settings)
    return loaded.config, settings.storage.database_url


@strategies_app.command("add")
def add_strategy(
    file: FileArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Validate a strategy file over the config's defaults, register it, and start it.

    A running ``tradekit run`` on the database starts the new strategy; it is
    active, or disabled when its file says "enabled": false. An id already
    registered is refused (use ``update``), unless it was removed.
    """

    def register() -> tuple[str, str]:
        strategy, default_url = _validated(file, config)
        strategy_id = strategy.strategy_id
        with open_journal(database or default_url, create=True) as journal:
            known = journal.strategy_info(strategy_id)
            if known is not None and known.status is not StrategyStatus.REMOVED:
                raise StrategyError(
                    f"strategy '{strategy_id}' is already registered ({known.status.value}); "
                    f"use 'tradekit strategies update {file}' to change its config"
                )
            journal.register_strategy(
                strategy_id, strategy.name, strategy_kind(strategy), strategy.model_dump_json()
            )
            status = StrategyStatus.ACTIVE if strategy.enabled else StrategyStatus.DISABLED
            journal.set_status(strategy_id, status)
            change = journal.request_change(strategy_id, ControlAction.ADD, requester())
            return journal.url, f"added {strategy_id} ({strategy.name}), {status.value}, #{change}"

    url, done = run_guarded(register)
    _say(f"{done}, from {file} in {url}")


@strategies_app.command("update")
def update_strategy(
    file: FileArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Replace a registered strategy's config; a running run hot-reloads it, keeping positions.

    Open positions keep their stop, target and trailing levels; the new exit
    settings apply to positions opened afterwards. "enabled": false in the file
    disables the strategy; otherwise its state is kept.
    """

    def register() -> tuple[str, str]:
        strategy, default_url = _validated(file, config)
        strategy_id = strategy.strategy_id
        with open_journal(database or default_url) as journal:
            known = journal.registered(strategy_id)
            if known.status is StrategyStatus.REMOVED:
                raise StrategyError(
                    f"strategy '{strategy_id}' is removed; use 'tradekit strategies add {file}'"
                )
            journal.register_strategy(
                strategy_id, strategy.name, strategy_kind(strategy), strategy.model_dump_json()
            )
            status = known.status
            if not strategy.enabled and status is StrategyStatus.ACTIVE:
                status = StrategyStatus.DISABLED
                journal.set_status(strategy_id, status)
            change = journal.request_change(strategy_id, ControlAction.UPDATE, requester())
            return (
                journal.url,
                f"updated {strategy_id} ({strategy.name}), {status.value}, #{change}",
            )

    url, done = run_guarded(register)
    _say(f"{done}, from {file} in {url}")


def _change(
    strategy_id: str,
    database: str | None,
    config: Path | None,
    action: ControlAction,
    decide: Callable[[SqlJournal, StrategyInfo], tuple[StrategyStatus | None, str]],
    *,
    close: bool = False,
) -> None:
    """Check the change against the registry, write the new status and the change row.

    ``decide`` raises ``StrategyError`` to refuse, or returns the status to write
    (``None``: leave it for the run to write) and what to tell the user.
    """

    def apply() -> str:
        with open_journal(database_url(database, config)) as journal:
            info = journal.registered(strategy_id)
            status, told = decide(journal, info)
            if status is not None:
                journal.set_status(strategy_id, status)
            change = journal.request_change(strategy_id, action, requester(), close_positions=close)
            return f"{strategy_id}: {told} (#{change}) in {journal.url}"

    _say(run_guarded(apply))


def _not_removed(info: StrategyInfo, action: ControlAction) -> None:
    if info.status is StrategyStatus.REMOVED:
        raise StrategyError(
            f"strategy '{info.strategy_id}' is removed; 'tradekit strategies add FILE' "
            f"registers it again before it can be {action.value}d"
        )


@strategies_app.command("enable")
def enable_strategy(
    strategy_id: StrategyIdArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Make a disabled strategy active; a running run starts its signals and entries again."""

    def decide(journal: SqlJournal, info: StrategyInfo) -> tuple[StrategyStatus, str]:
        _not_removed(info, ControlAction.ENABLE)
        if info.status is StrategyStatus.QUARANTINED:
            raise StrategyError(
                f"strategy '{strategy_id}' is quarantined; lift the quarantine with "
                f"'tradekit strategies resume {strategy_id}'"
            )
        return StrategyStatus.ACTIVE, "active"

    _change(strategy_id, database, config, ControlAction.ENABLE, decide)


@strategies_app.command("disable")
def disable_strategy(
    strategy_id: StrategyIdArgument,
    close: CloseOption = False,
    database: DatabaseOption = None,
    config: ConfigOption = None,
) -> None:
    """No more signals or entries; its stops keep managing what it holds (or --close it)."""

    def decide(journal: SqlJournal, info: StrategyInfo) -> tuple[StrategyStatus, str]:
        _not_removed(info, ControlAction.DISABLE)
        closing = ", its open positions closed at market by the run" if close else ""
        return StrategyStatus.DISABLED, f"disabled{closing}"

    _change(strategy_id, database, config, ControlAction.DISABLE, decide, close=close)


@strategies_app.command("resume")
def resume_strategy(
    strategy_id: StrategyIdArgument, database: DatabaseOption = None, config: ConfigOption = None
) -> None:
    """Lift a quarantine: the strategy is active again."""

    def decide(journal: SqlJournal, info: StrategyInfo) -> tuple[StrategyStatus, str]:
        if info.status is not StrategyStatus.QUARANTINED:
            raise StrategyError(
                f"strategy '{strategy_id}' is {info.status.value}, not quarantined; only a "
                "quarantined strategy can be resumed"
            )
        return StrategyStatus.ACTIVE, "quarantine lifted, active"

    _change(strategy_id, database, config, ControlAction.RESUME, decide)


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

    def decide(journal: SqlJournal, info: StrategyInfo) -> tuple[StrategyStatus | None, str]:
        if info.status is StrategyStatus.REMOVED:
            raise StrategyError(f"strategy '{strategy_id}' is already removed")
        held = journal.open_positions(strategy_id)
        if not held:
            return StrategyStatus.REMOVED, "removed"
        listed = ", ".join(f"{p.symbol} {p.side.value} {p.quantity:g}" for p in held)
        if not close:
            raise StrategyError(
                f"strategy '{strategy_id}' holds {len(held)} open position(s) ({listed}); "
                "close them first, or remove it with --close to have the run close them "
                "at market"
            )
        return None, (
            f"removal asked: the run closes {len(held)} open position(s) ({listed}) at "
            "market, then removes it"
        )

    _change(strategy_id, database, config, ControlAction.REMOVE, decide, close=close)


__all__ = ["ListedStrategy", "listed_strategies", "strategies_app"]
