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
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

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
from tradekit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from tradekit.config import StrategyConfig, TradekitSettings
    from tradekit.data import FileSource
    from tradekit.runtime.control import RunSelection
    from tradekit.runtime.engine_view import RunObserver
    from tradekit.runtime.live import LiveRunSummary

# The runtime, the data sources and the journal are imported in the functions that use
# them: 'tradekit run --help' and 'tradekit serve --help' load none of them.

EXIT_ORDERS_FAILED = 1


class RunModeChoice(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class SourceKind(StrEnum):
    SYNTHETIC = "synthetic"
    FILE = "file"
    CCXT = "ccxt"


ModeOption = Annotated[
    RunModeChoice,
    typer.Option(
        "--mode",
        help="paper (simulated fills) or live (real orders; only with --source ccxt).",
    ),
]
SourceOption = Annotated[
    SourceKind,
    typer.Option(
        "--source",
        help="synthetic replay, file replay (--data) or a ccxt venue's live candles.",
    ),
]
ExchangeOption = Annotated[
    str | None,
    typer.Option("--exchange", help="With --source ccxt: the ccxt exchange id (default: config)."),
]
SandboxOption = Annotated[
    bool | None,
    typer.Option(
        "--sandbox/--no-sandbox",
        help="With --source ccxt: the venue's test network or not (default: config).",
    ),
]
DataOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--data",
        "-d",
        help="With --source file: a candle file (CSV or Parquet) or folder; repeat for more.",
    ),
]
SpeedOption = Annotated[
    float,
    typer.Option(
        "--speed",
        help="Replay speed in candles per second (0 = no wait); not with --source ccxt.",
    ),
]
BarsOption = Annotated[int, typer.Option("--bars", min=1, help="Synthetic candles per series.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the synthetic replay.")]
DbOption = Annotated[
    str | None, typer.Option("--db", help="Journal database URL (default: storage setting).")
]
SymbolsOption = Annotated[
    str | None,
    typer.Option("--symbols", help="Run only these symbols, e.g. BTC/USDT,ETH/USDT."),
]
OnlyOption = Annotated[
    str | None, typer.Option("--only", help="Run only these strategy ids, comma-separated.")
]


@dataclass(frozen=True)
class RunRequest:
    """The options of ``tradekit run`` (and ``tradekit serve``) that say what runs on what."""

    mode: RunModeChoice = RunModeChoice.PAPER
    source: SourceKind = SourceKind.SYNTHETIC
    exchange: str | None = None
    sandbox: bool | None = None
    data: list[Path] | None = None
    speed: float = 0.0
    bars: int = 2000
    seed: int = 7
    db: str | None = None
    strategies: Path = DEFAULT_STRATEGIES
    config: Path | None = None
    health_interval: float | None = None
    health_file: Path | None = None
    symbols: str | None = None
    only: str | None = None


@dataclass(frozen=True)
class PlannedRun:
    """A checked ``RunRequest``: the settings, the strategy files' configs and the selection,
    ready to run on the calling thread until it ends or ``stop`` is set."""

    request: RunRequest
    settings: TradekitSettings
    configs: list[StrategyConfig]
    selection: RunSelection
    planned: list[StrategyConfig]

    @property
    def database_url(self) -> str:
        return self.settings.storage.database_url

    def run(self, stop: threading.Event, observer: RunObserver | None = None) -> LiveRunSummary:
        from tradekit.runtime import RunMode
        from tradekit.runtime.live import replay_series, run_live
        from tradekit.runtime.live_feeds import live_feeds, with_venue

        request, settings = self.request, self.settings
        health = health_arguments(settings, request.health_interval, request.health_file)
        if request.source is not SourceKind.CCXT:
            return run_live(
                settings,
                self.configs,
                _file_source(request.data, self.planned)
                if request.source is SourceKind.FILE
                else replay_series(self.planned, request.bars, request.seed),
                mode=RunMode.PAPER,
                persist=True,
                replay_clock=True,
                candles_per_second=request.speed,
                stop=stop,
                registry=self.selection,
                observer=observer,
                **health,
            )
        # The venue named on the command line takes both the candles and, live, the orders.
        settings = with_venue(settings, request.exchange, request.sandbox)
        feeds = live_feeds(settings.exchange.ccxt, self.planned, stop=stop)
        try:
            return run_live(
                settings,
                self.configs,
                feeds,
                mode=RunMode.LIVE if request.mode is RunModeChoice.LIVE else RunMode.PAPER,
                persist=True,
                replay_clock=False,
                stop=stop,
                registry=self.selection,
                observer=observer,
                **health,
            )
        finally:
            feeds.close()


def plan_run(request: RunRequest) -> PlannedRun:
    """Check the options against each other, load the settings and strategy files, and plan
    what the run starts with; ``ConfigError`` naming the options that do not go together."""
    from tradekit.config import load_strategy_configs
    from tradekit.runtime.control import RunSelection

    mode, source = request.mode, request.source
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
    if request.speed and source is SourceKind.CCXT:
        raise ConfigError(
            f"--speed {request.speed:g}: --speed paces replays only (--source synthetic or "
            "file); a venue's live candles come when they close. Drop --speed, or set "
            "exchange.ccxt.poll_interval_seconds to poll a venue without websockets "
            "more or less often"
        )
    if request.data and source is not SourceKind.FILE:
        raise ConfigError(f"--data is read only with --source file, not --source {source}")
    if source is not SourceKind.CCXT and (
        request.exchange is not None or request.sandbox is not None
    ):
        raise ConfigError(
            f"--exchange and --sandbox are read only with --source ccxt, not --source {source}"
        )
    settings = load_cli_settings(request.config)
    configs = load_strategy_configs(request.strategies, settings)
    if request.db is not None:
        settings = settings.model_copy(
            update={"storage": settings.storage.model_copy(update={"database_url": request.db})}
        )
    selection = RunSelection(only=_comma_list(request.only), symbols=_comma_list(request.symbols))
    planned = planned_run(settings.storage.database_url, configs, selection)
    return PlannedRun(request, settings, configs, selection, planned)


def stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGINT and SIGTERM; returns what puts the previous handlers back."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


@app.command()
def run(
    mode: ModeOption = RunModeChoice.PAPER,
    source: SourceOption = SourceKind.SYNTHETIC,
    exchange: ExchangeOption = None,
    sandbox: SandboxOption = None,
    data: DataOption = None,
    speed: SpeedOption = 0.0,
    bars: BarsOption = 2000,
    seed: SeedOption = 7,
    db: DbOption = None,
    strategies: StrategiesOption = DEFAULT_STRATEGIES,
    config: ConfigOption = None,
    health_interval: HealthIntervalOption = None,
    health_file: HealthFileOption = None,
    symbols: SymbolsOption = None,
    only: OnlyOption = None,
) -> None:
    """Run what the registry says, live or on paper; Ctrl-C or SIGTERM stops cleanly (exit code 0).

    On a new database the registry is seeded from the strategy files; afterwards
    it wins, and 'tradekit strategies ...' changes it while the run goes.
    """
    request = RunRequest(
        mode=mode,
        source=source,
        exchange=exchange,
        sandbox=sandbox,
        data=data,
        speed=speed,
        bars=bars,
        seed=seed,
        db=db,
        strategies=strategies,
        config=config,
        health_interval=health_interval,
        health_file=health_file,
        symbols=symbols,
        only=only,
    )
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        summary = run_guarded(lambda: plan_run(request).run(stop))
    finally:
        restore()
    print_summary(summary)
    if summary.failed_orders:
        raise typer.Exit(EXIT_ORDERS_FAILED)


def _file_source(data: list[Path] | None, configs: list[StrategyConfig]) -> FileSource:
    """The files' candles, checked; an error without files or when a needed series is missing."""
    from tradekit.data import FileSource
    from tradekit.runtime.backtest import needed_series

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
    from tradekit.cli.db_commands import open_journal, sqlite_file
    from tradekit.runtime.control import planned_configs

    path = sqlite_file(url)
    if path is not None and not path.is_file():
        # No registry yet; whatever is in the way is reported when the run opens the journal.
        return planned_configs(None, configs, selection)
    with open_journal(url, read_only=True) as journal:
        return planned_configs(journal, configs, selection)


def print_summary(summary: LiveRunSummary) -> None:
    """How the run ended, its failed orders, and one row per strategy."""
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
