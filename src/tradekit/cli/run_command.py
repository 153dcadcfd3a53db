"""``tradekit run``: the paper or live loop over a synthetic replay, candle files or a venue,
following the strategies registry.

The journal database's registry says what runs (seeded from the strategy files
on a new database; see ``tradekit.runtime.control``); ``--only`` and
``--symbols`` narrow a run without changing the registry.

``--source ccxt`` follows a ccxt venue's live closed candles (after warm-up
history); ``--mode live`` runs only on it, since synthetic candles and file
replays are never live market data. A run whose orders failed says how many
and exits with code 1.
"""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.table import Table

from tradekit.cli.app import (
    DEFAULT_STRATEGIES,
    ConfigOption,
    HealthFileOption,
    HealthIntervalOption,
    StrategiesOption,
    app,
    health_arguments,
    load_cli_settings,
    out,
    run_guarded,
)
from tradekit.cli.db_commands import open_journal, sqlite_file
from tradekit.config import StrategyConfig, load_strategy_configs
from tradekit.data import FileSource
from tradekit.errors import ConfigError, DataError
from tradekit.runtime import RunMode
from tradekit.runtime.backtest import needed_series
from tradekit.runtime.control import RunSelection, planned_configs
from tradekit.runtime.live import LiveRunSummary, replay_series, run_live
from tradekit.runtime.live_feeds import live_feeds, with_venue

EXIT_ORDERS_FAILED = 1


class RunModeChoice(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class SourceKind(StrEnum):
    SYNTHETIC = "synthetic"
    FILE = "file"
    CCXT = "ccxt"


@app.command()
def run(
    mode: Annotated[
        RunModeChoice,
        typer.Option(
            "--mode",
            help="paper (simulated fills) or live (real orders; only with --source ccxt).",
        ),
    ] = RunModeChoice.PAPER,
    source: Annotated[
        SourceKind,
        typer.Option(
            "--source",
            help="synthetic replay, file replay (--data) or a ccxt venue's live candles.",
        ),
    ] = SourceKind.SYNTHETIC,
    exchange: Annotated[
        str | None,
        typer.Option(
            "--exchange", help="With --source ccxt: the ccxt exchange id (default: config)."
        ),
    ] = None,
    sandbox: Annotated[
        bool | None,
        typer.Option(
            "--sandbox/--no-sandbox",
            help="With --source ccxt: the venue's test network or not (default: config).",
        ),
    ] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            "-d",
            help="With --source file: a candle file (CSV or Parquet) or folder; repeat for more.",
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            help="Replay speed in candles per second (0 = no wait); not with --source ccxt.",
        ),
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
    health_interval: HealthIntervalOption = None,
    health_file: HealthFileOption = None,
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
        if mode is RunModeChoice.LIVE and source is SourceKind.FILE:
            raise ConfigError(
                "--mode live cannot run on --source file: a file replay is not live market "
                "data, and live orders need it. Use --mode paper to replay the files"
            )
        if mode is RunModeChoice.LIVE and source is SourceKind.SYNTHETIC:
            raise ConfigError(
                "--mode live needs real exchange market data: add --source ccxt "
                "--exchange ID. Synthetic candles are never live; use --mode paper to replay them"
            )
        if speed and source is SourceKind.CCXT:
            raise ConfigError(
                f"--speed {speed:g}: --speed paces replays only (--source synthetic or file); "
                "a venue's live candles come when they close. Drop --speed, or set "
                "exchange.ccxt.poll_interval_seconds to poll a venue without websockets "
                "more or less often"
            )
        if data and source is not SourceKind.FILE:
            raise ConfigError(f"--data is read only with --source file, not --source {source}")
        if source is not SourceKind.CCXT and (exchange is not None or sandbox is not None):
            raise ConfigError(
                f"--exchange and --sandbox are read only with --source ccxt, not --source {source}"
            )
        settings = load_cli_settings(config)
        configs = load_strategy_configs(strategies, settings)
        if db is not None:
            settings = settings.model_copy(
                update={"storage": settings.storage.model_copy(update={"database_url": db})}
            )
        selection = RunSelection(only=_comma_list(only), symbols=_comma_list(symbols))
        planned = planned_run(settings.storage.database_url, configs, selection)
        if source is not SourceKind.CCXT:
            return run_live(
                settings,
                configs,
                _file_source(data, planned)
                if source is SourceKind.FILE
                else replay_series(planned, bars, seed),
                mode=RunMode.PAPER,
                persist=True,
                replay_clock=True,
                candles_per_second=speed,
                stop=stop,
                registry=selection,
                **health_arguments(settings, health_interval, health_file),
            )
        # The venue named on the command line takes both the candles and, live, the orders.
        settings = with_venue(settings, exchange, sandbox)
        feeds = live_feeds(settings.exchange.ccxt, planned, stop=stop)
        try:
            return run_live(
                settings,
                configs,
                feeds,
                mode=RunMode.LIVE if mode is RunModeChoice.LIVE else RunMode.PAPER,
                persist=True,
                replay_clock=False,
                stop=stop,
                registry=selection,
                **health_arguments(settings, health_interval, health_file),
            )
        finally:
            feeds.close()

    try:
        summary = run_guarded(go)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _print_summary(summary)
    if summary.failed_orders:
        raise typer.Exit(EXIT_ORDERS_FAILED)


def _file_source(data: list[Path] | None, configs: list[StrategyConfig]) -> FileSource:
    """The files' candles, checked; an error without files or when a needed series is missing."""
    if not data:
        raise ConfigError("--source file needs candles: --data FILE or --data FOLDER")
    source = FileSource(data)
    held = set(source.symbols())
    missing = [
        f"{symbol} {timeframe} (for {', '.join(ids)})"
        for (symbol, timeframe), ids in needed_series(configs).items()
        if (symbol, timeframe) not in held
    ]
    if missing:
        found = ", ".join(f"{name} {tf}" for name, tf in source.symbols()) or "nothing"
        raise DataError(
            f"the candle files lack series the strategies trade: {'; '.join(missing)}; they "
            f"hold {found}. Name files like BTC-USDT_1h.csv, or give symbol and timeframe "
            "columns (see the README's candle file format)"
        )
    return source


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
