"""``tradekit run``: the paper loop over a synthetic replay, following the strategies registry.

The journal database's registry says what runs (seeded from the strategy files
on a new database; see ``tradekit.runtime.control``); ``--only`` and
``--symbols`` narrow a run without changing the registry.

``--mode live`` is refused: live orders need real exchange market data, which
the launcher cannot provide yet. A run whose orders failed says how many and
exits with code 1.
"""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from types import FrameType
from typing import Annotated

import typer
from rich.table import Table

from tradekit.cli.app import (
    DEFAULT_STRATEGIES,
    ConfigOption,
    StrategiesOption,
    app,
    load_cli_settings,
    out,
    run_guarded,
)
from tradekit.cli.db_commands import open_journal, sqlite_file
from tradekit.config import StrategyConfig, load_strategy_configs
from tradekit.errors import ConfigError, ExchangeError
from tradekit.runtime import RunMode
from tradekit.runtime.control import RunSelection, planned_configs
from tradekit.runtime.live import LiveRunSummary, replay_source, run_live

EXIT_ORDERS_FAILED = 1


class RunModeChoice(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class SourceKind(StrEnum):
    SYNTHETIC = "synthetic"
    CCXT = "ccxt"


@app.command()
def run(
    mode: Annotated[
        RunModeChoice,
        typer.Option("--mode", help="paper (simulated fills); live is not available yet."),
    ] = RunModeChoice.PAPER,
    source: Annotated[
        SourceKind, typer.Option("--source", help="synthetic replay or ccxt polling.")
    ] = SourceKind.SYNTHETIC,
    speed: Annotated[
        float, typer.Option("--speed", help="Replay speed in candles per second (0 = no wait).")
    ] = 0.0,
    bars: Annotated[
        int, typer.Option("--bars", min=1, help="Synthetic candles per series.")
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic replay.")] = 7,
    db: Annotated[
        str | None, typer.Option("--db", help="Journal database URL (default: storage setting).")
    ] = None,
    strategies: StrategiesOption = DEFAULT_STRATEGIES,
    config: ConfigOption = None,
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", help="Run only these symbols, e.g. BTC/USDT,ETH/USDT."),
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Run only these strategy ids, comma-separated.")
    ] = None,
) -> None:
    """Run what the registry says, live or on paper; Ctrl-C or SIGTERM stops cleanly (exit code 0).

    On a new database the registry is seeded from the strategy files; afterwards
    it wins, and 'tradekit strategies ...' changes it while the run goes.
    """
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def go() -> LiveRunSummary:
        if mode is RunModeChoice.LIVE:
            raise ConfigError(
                "--mode live needs real exchange market data, which tradekit run cannot "
                "provide yet: its only source is a synthetic replay, and synthetic candles are "
                "never live. Use --mode paper, or call tradekit.run_live(..., "
                "mode=RunMode.LIVE) from Python with a CcxtPollingSource"
            )
        settings = load_cli_settings(config)
        configs = load_strategy_configs(strategies, settings)
        if source is SourceKind.CCXT:
            raise ExchangeError(
                "--source ccxt polls an exchange over the network; build a CcxtPollingSource "
                "with a ccxt client and call tradekit.run_live(..., mode=RunMode.PAPER or LIVE) "
                "from Python"
            )
        if db is not None:
            settings = settings.model_copy(
                update={"storage": settings.storage.model_copy(update={"database_url": db})}
            )
        selection = RunSelection(only=_comma_list(only), symbols=_comma_list(symbols))
        planned = planned_run(settings.storage.database_url, configs, selection)
        return run_live(
            settings,
            configs,
            replay_source(planned, bars, seed),
            mode=RunMode.PAPER,
            persist=True,
            replay_clock=True,
            candles_per_second=speed,
            stop=stop,
            registry=selection,
        )

    try:
        summary = run_guarded(go)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _print_summary(summary)
    if summary.failed_orders:
        raise typer.Exit(EXIT_ORDERS_FAILED)


def _comma_list(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    items = frozenset(item.strip() for item in value.split(",") if item.strip())
    if not items:
        raise ConfigError(f"expected a comma-separated list, got {value!r}")
    return items


def planned_run(
    url: str, configs: list[StrategyConfig], selection: RunSelection
) -> list[StrategyConfig]:
    """The strategies the run starts with (the registry's, or the files' on a new database)."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        # No registry yet; whatever is in the way is reported when the run opens the journal.
        return planned_configs(None, configs, selection)
    with open_journal(url, read_only=True) as journal:
        return planned_configs(journal, configs, selection)


def _print_summary(summary: LiveRunSummary) -> None:
    state = "stopped on request" if summary.stopped else "source exhausted"
    out.print(f"{summary.candles} candles processed ({state})", highlight=False)
    if summary.failed_orders:
        out.print(
            f"[bold red]{summary.failed_orders} failed orders[/] (ActionFailed events in the "
            "journal say why each failed)",
            highlight=False,
        )
    if summary.entries_halted:
        out.print(f"[red]entries were halted:[/] {summary.entries_halted}", highlight=False)
    table = Table(title="strategies")
    columns = ("strategy", "state", "candles", "open", "realized P&L", "equity")
    for column in (*columns, "strategy errors", "failed orders"):
        table.add_column(column, justify="left" if column in ("strategy", "state") else "right")
    for strategy_id, entry in summary.report.items():
        table.add_row(
            strategy_id,
            str(entry["state"]),
            str(entry["candles_processed"]),
            str(entry["open_positions"]),
            f"{entry['realized_pnl']:.2f}",
            f"{entry.get('equity', 0.0):.2f}",
            str(entry["errors"]),
            str(entry.get("failed_orders", 0)),
        )
    out.print(table)
