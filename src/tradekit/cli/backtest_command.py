"""The ``backtest`` command: run the strategies over generated or file data and write a report.

Without ``--data`` every (symbol, timeframe) an enabled strategy trades gets its
own seeded synthetic series covering the same ``--days`` from 2024-01-01, so all
strategies trade over one period; ``--bars`` instead gives every series that many
candles (a longer timeframe then spans a longer period). With ``--data`` the files are
loaded and checked; a series a strategy needs but the files lack is resampled
from the longest lower timeframe of the same symbol that divides it, and said
so; with no such timeframe the run stops with an error naming the strategy.
With ``--data-dir`` only the files of the series the strategies trade are read,
found by name (``BTC-USDT_1h.parquet``, as ``tradekit data download`` writes
them); a missing one is an error naming the file it expected.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from tradekit.cli.app import (
    DEFAULT_CONFIG,
    DEFAULT_STRATEGIES,
    ConfigOption,
    StrategiesOption,
    app,
    err,
    load_cli_settings,
    out,
    run_guarded,
)
from tradekit.config import LoadedStrategy, TradekitSettings, load_strategies
from tradekit.data import FileSource, resample, synthetic_frame
from tradekit.data.file_names import series_file_stem
from tradekit.data.files import CSV_SUFFIXES, PARQUET_SUFFIXES
from tradekit.data.sources import SeriesKey, series_sort_key
from tradekit.errors import ConfigError, DataError, TradekitError
from tradekit.reporting import (
    WrittenReport,
    markup_text,
    print_table,
    summary_table,
    write_backtest_report,
)
from tradekit.runtime.backtest import BacktestResult, backtest, check_series, series_span
from tradekit.runtime.backtest import needed_series as needed_by_configs
from tradekit.timeframes import is_higher_timeframe, timeframe_delta, timeframe_seconds
from tradekit.validation import check_strategies_build

DEFAULT_DAYS = 120
DEFAULT_SEED = 7
DEFAULT_OUT = Path("backtest-out")
SYNTHETIC_START = datetime(2024, 1, 1, tzinfo=UTC)


def parse_when(value: str) -> datetime:
    """An ISO 8601 date or date-time; one without a time zone is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date or date-time; expected e.g. 2024-01-31, "
            "2024-01-31T12:00 or 2024-01-31T12:00:00+00:00"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass
class PreparedData:
    """The series a run replays, what they are, and what was done to them on the way."""

    frames: dict[SeriesKey, pd.DataFrame]
    description: dict[str, Any]
    sources: dict[SeriesKey, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def needed_series(strategies: Sequence[LoadedStrategy]) -> dict[SeriesKey, list[str]]:
    """Each (symbol, timeframe) the strategies trade, with the ids of those trading it."""
    return needed_by_configs(strategy.config for strategy in strategies)


def _window(
    frame: pd.DataFrame, timeframe: str, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    """The candles lying wholly inside [start, end]: open at or after start, close by end."""
    index = pd.DatetimeIndex(frame.index)
    keep = pd.Series(True, index=index)
    if start is not None:
        keep &= index >= pd.Timestamp(start)
    if end is not None:
        keep &= index + timeframe_delta(timeframe) <= pd.Timestamp(end)
    return frame[keep.to_numpy()]


def _synthetic_data(
    needed: Mapping[SeriesKey, list[str]], bars: int | None, days: int, seed: int
) -> PreparedData:
    def length(timeframe: str) -> int:
        return bars if bars is not None else max(1, days * 86_400 // timeframe_seconds(timeframe))

    frames = {
        key: synthetic_frame(key[0], key[1], length(key[1]), seed=seed, start=SYNTHETIC_START)
        for key in needed
    }
    description = {
        "kind": "synthetic",
        "bars_per_series": bars,
        "days": None if bars is not None else days,
        "seed": seed,
        "start": SYNTHETIC_START.isoformat(),
    }
    return PreparedData(frames, description, dict.fromkeys(frames, "synthetic"))


def _file_data(
    paths: Sequence[Path],
    symbol: str | None,
    timeframe: str | None,
    strategies: Sequence[LoadedStrategy],
) -> PreparedData:
    """The files' series the strategies need, resampling a missing one from a lower timeframe."""
    source = FileSource(paths, symbol=symbol, timeframe=timeframe)
    available = source.frames()
    notes = [f"repaired {repair}" for repair in source.repairs]
    notes += [f"gap in {gaps}" for gaps in source.gaps.values()]
    frames: dict[SeriesKey, pd.DataFrame] = {}
    sources: dict[SeriesKey, str] = {}
    for key in needed_series(strategies):
        symbol_needed, timeframe = key
        if key in available:
            frames[key], sources[key] = available[key], "file"
            continue
        lower = [
            held
            for name, held in available
            if name == symbol_needed and is_higher_timeframe(timeframe, held)
        ]
        if lower:
            base = max(lower, key=timeframe_seconds)
            frames[key] = resample(available[(symbol_needed, base)], base, timeframe)
            sources[key] = f"resampled from {base}"
    check_series(
        [strategy.config for strategy in strategies],
        frames,
        held=available,
        why="the data has neither them nor a lower timeframe of {symbol} to resample them from",
        advice="add the candles (a file without a symbol column takes its symbol from its name, "
        "like BTC-USDT_1h.csv, or from --symbol BTC/USDT), or leave the strategy out (--only ID, "
        'or "enabled": false in its file)',
    )
    unused = sorted(set(available) - set(frames), key=series_sort_key)
    description = {
        "kind": "files",
        "paths": [str(path) for path in source.paths],
        "symbol": symbol,
        "timeframe": timeframe,
        "repairs": list(source.repairs),
        "gaps": [str(gaps) for gaps in source.gaps.values()],
        "unused_series": [f"{name} {tf}" for name, tf in unused],
    }
    return PreparedData(frames, description, sources, notes)


def _series_files(folder: Path, strategies: Sequence[LoadedStrategy]) -> list[Path]:
    """Each traded series' file in ``folder``; ``DataError`` names every one missing."""
    if not folder.is_dir():
        raise DataError(f"--data-dir {folder}: no such folder")
    found: list[Path] = []
    missing: list[str] = []
    for (symbol, timeframe), ids in needed_series(strategies).items():
        stem = series_file_stem(symbol, timeframe)
        names = [stem + suffix for suffix in PARQUET_SUFFIXES + CSV_SUFFIXES]
        present = [folder / name for name in names if (folder / name).is_file()]
        if len(present) > 1:
            raise DataError(
                f"{folder}: {symbol} {timeframe} is in {len(present)} files "
                f"({', '.join(path.name for path in present)}); keep one"
            )
        if present:
            found.append(present[0])
        else:
            missing.append(f"{symbol} {timeframe} for {', '.join(ids)} (expected {names[0]})")
    if missing:
        raise DataError(
            f"{folder} lacks candles the strategies need: {'; '.join(missing)}. Download them "
            "with tradekit data download --exchange ID --symbols ... --timeframes ... "
            f"--from DATE --dir {folder}"
        )
    return found


def _apply_window(data: PreparedData, start: datetime | None, end: datetime | None) -> None:
    """Cut every series to [start, end]; a series left without candles is an error."""
    if start is None and end is None:
        return
    empty = []
    for (symbol, timeframe), frame in data.frames.items():
        cut = _window(frame, timeframe, start, end)
        if cut.empty:
            empty.append(f"{symbol} {timeframe} ({series_span(frame)})")
        data.frames[(symbol, timeframe)] = cut
    if empty:
        bounds = f"{start.isoformat() if start else 'the start'} and "
        bounds += end.isoformat() if end else "the end"
        raise DataError(
            f"no candles between {bounds} in: {'; '.join(empty)}; choose --from/--to "
            "inside the data"
        )


def _select(
    loaded: list[LoadedStrategy], only: Sequence[str], folder: Path
) -> list[LoadedStrategy]:
    """The enabled strategies, narrowed to ``only`` when it is given."""
    by_id = {strategy.config.strategy_id: strategy for strategy in loaded}
    unknown = [strategy_id for strategy_id in only if strategy_id not in by_id]
    if unknown:
        hints = []
        for strategy_id in unknown:
            close = difflib.get_close_matches(strategy_id, by_id, n=1)
            hints.append(f"'{strategy_id}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ConfigError(
            f"--only names no strategy in {folder}: {', '.join(hints)}; "
            f"known: {', '.join(sorted(by_id))}"
        )
    chosen = [by_id[strategy_id] for strategy_id in dict.fromkeys(only)] if only else loaded
    enabled = [strategy for strategy in chosen if strategy.config.enabled]
    if not enabled:
        raise ConfigError(f"{folder}: no enabled strategy to backtest")
    return enabled


def _replay(
    settings: TradekitSettings, strategies: list[LoadedStrategy], data: PreparedData
) -> tuple[BacktestResult, float]:
    """Run the backtest under a progress bar (shown on a terminal); returns its seconds."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("replaying candles", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        started = time.perf_counter()
        result = backtest(
            settings, [strategy.config for strategy in strategies], data.frames, advance
        )
    return result, time.perf_counter() - started


@app.command("backtest")
def backtest_command(
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            "-d",
            help="Candle file (CSV or Parquet) or folder of them; repeat for more. "
            "Default: synthetic candles.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            file_okay=False,
            help="Folder of files named like BTC-USDT_1h.parquet (tradekit data download); "
            "reads the series the strategies trade.",
        ),
    ] = None,
    strategies: StrategiesOption = DEFAULT_STRATEGIES,
    config: ConfigOption = None,
    days: Annotated[
        int,
        typer.Option("--days", min=1, help="Days of synthetic candles for every series."),
    ] = DEFAULT_DAYS,
    bars: Annotated[
        int | None,
        typer.Option("--bars", min=1, help="Synthetic candles per series instead of --days."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic data.")] = DEFAULT_SEED,
    symbol: Annotated[
        str | None,
        typer.Option(
            "--symbol",
            help="Symbol of files without a symbol column, e.g. BTC/USDT; in files with one, "
            "keep only its rows.",
        ),
    ] = None,
    timeframe: Annotated[
        str | None,
        typer.Option(
            "--timeframe",
            help="Timeframe of files without a timeframe column, e.g. 1h; in files with one, "
            "keep only its rows. Default: from the file name or the timestamps' spacing.",
        ),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(
            "--from", parser=parse_when, help="Keep candles opening at or after this (ISO 8601)."
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option("--to", parser=parse_when, help="Keep candles closing by this (ISO 8601)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Backtest only this strategy id; repeat for more."),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", file_okay=False, help="Folder for the report files.")
    ] = DEFAULT_OUT,
) -> None:
    """Backtest the strategies; write trades.csv, report.json, events.jsonl and equity.png."""
    if data and data_dir is not None:
        raise typer.BadParameter("give --data or --data-dir, not both", param_hint="'--data-dir'")
    if data_dir is not None and (symbol is not None or timeframe is not None):
        raise typer.BadParameter(
            "--data-dir files are named after their symbol and timeframe; --symbol and "
            "--timeframe are for --data files",
            param_hint="'--data-dir'",
        )
    if start is not None and end is not None and start >= end:
        raise typer.BadParameter(
            f"--to {end.isoformat()} is not after --from {start.isoformat()}", param_hint="'--to'"
        )
    began = time.perf_counter()

    def run() -> tuple[BacktestResult, WrittenReport, float]:
        settings = load_cli_settings(config)
        chosen = _select(load_strategies(strategies, settings), only or [], strategies)
        check_strategies_build(chosen)
        files = _series_files(data_dir, chosen) if data_dir is not None else data
        prepared = (
            _file_data(files, symbol, timeframe, chosen)
            if files
            else _synthetic_data(needed_series(chosen), bars, days, seed)
        )
        _apply_window(prepared, start, end)
        _print_data(prepared)
        result, seconds = _replay(settings, chosen, prepared)
        inputs = _inputs(config, strategies, chosen, prepared, start, end)
        try:
            return result, write_backtest_report(result, out_dir, inputs), seconds
        except OSError as exc:
            raise TradekitError(
                f"cannot write the report into {out_dir}: {exc.strerror or exc}"
            ) from exc

    result, written, seconds = run_guarded(run)
    print_table(out, summary_table(result))
    out.print(f"event log hash  {written.event_log_hash}", highlight=False)
    out.print(
        f"wrote {written.directory}: {written.trades.name} ({written.trade_count} trades), "
        f"{written.report.name}, {written.events.name} ({written.event_count} events), "
        f"{written.equity.name}",
        highlight=False,
    )
    out.print(
        f"replayed {result.candles_processed:,} candles through {len(result.strategies)} "
        f"strategies in {seconds:.2f} s; {time.perf_counter() - began:.2f} s in all",
        highlight=False,
    )


def _print_data(data: PreparedData) -> None:
    out.print(f"data: {markup_text(_describe(data.description))}", highlight=False)
    for (symbol, timeframe), frame in data.frames.items():
        series = markup_text(f"{symbol} {timeframe}: {series_span(frame)}")
        source = markup_text(data.sources.get((symbol, timeframe), ""))
        out.print(f"  {series} [dim]({source})[/]", highlight=False)
    for note in data.notes:
        out.print(f"  [yellow]{markup_text(note)}[/]", highlight=False)


def _describe(description: Mapping[str, Any]) -> str:
    if description["kind"] == "synthetic":
        span = (
            f"{description['days']} days from {description['start'][:10]} for every series"
            if description["days"] is not None
            else f"{description['bars_per_series']} candles per series"
        )
        return f"synthetic, {span}, seed {description['seed']}"
    return "files " + ", ".join(description["paths"])


def _inputs(
    config: Path | None,
    folder: Path,
    chosen: Sequence[LoadedStrategy],
    data: PreparedData,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    """What ``report.json`` records about how the run was set up."""
    base = config if config is not None else DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None
    return {
        "config": None if base is None else str(base),
        "strategies_folder": str(folder),
        "strategies": [
            {
                "strategy_id": strategy.config.strategy_id,
                "name": strategy.config.name,
                "file": str(strategy.path),
                "symbols": list(strategy.config.symbols),
                "timeframe": strategy.config.timeframe,
            }
            for strategy in chosen
        ],
        "data": data.description,
        "from": None if start is None else start.isoformat(),
        "to": None if end is None else end.isoformat(),
        "bars": sum(len(frame) for frame in data.frames.values()),
        "series": [
            {
                "symbol": symbol,
                "timeframe": timeframe,
                "bars": len(frame),
                "first": frame.index[0].isoformat(),
                "last": frame.index[-1].isoformat(),
                "source": data.sources.get((symbol, timeframe), ""),
            }
            for (symbol, timeframe), frame in data.frames.items()
        ],
    }
