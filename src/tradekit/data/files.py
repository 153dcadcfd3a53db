"""Candle files: CSV and Parquet OHLCV read, checked and repaired into one frame per series.

``load_candles`` accepts the column names and timestamp formats exchanges and
data vendors commonly export. It repairs only what needs no guess (unsorted
rows, exact duplicate rows) and reports each repair; anything else wrong is
collected and raised as one ``DataError`` naming the file, the row and the column.

Row numbers in messages are what a person sees in the file: in a CSV file the
header is line 1, so the first data row is line 2 (one line per row is assumed);
in a Parquet file the first data row is row 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradekit.data.file_names import read_series_file_stem
from tradekit.data.file_rows import (
    US_PER_SECOND,
    Labels,
    RowProblems,
    infer_timeframes,
    iso,
    parse_timestamps,
    parse_values,
    text,
)
from tradekit.data.resample import floor_epoch_seconds
from tradekit.data.sources import FrameSource, SeriesGaps, SeriesKey, find_gaps, series_sort_key
from tradekit.errors import DataError
from tradekit.services.market.candles import PRICE_COLUMNS
from tradekit.timeframes import TIMEFRAME_SECONDS, unknown_timeframe_message

MAX_PROBLEMS = 20
"""How many problems one ``DataError`` lists; the total found is always stated."""

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")

# Accepted header spellings per field, most specific first; headers are compared after
# lower-casing, dropping surrounding <> and treating spaces, dashes and underscores alike.
_ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("timestamp", "datetime", "open_time", "ts", "date", "time"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "adj_close"),
    "volume": ("volume", "vol", "v"),
    "symbol": ("symbol", "ticker", "pair"),
    "timeframe": ("timeframe", "interval"),
}
_REQUIRED = ("ts", "open", "high", "low", "close", "volume")


class LoadedCandles(FrameSource):
    """The checked candles of one file: a ``CandleSource`` plus what was repaired or missing.

    ``repairs`` describes every change made to the file's rows; ``gaps`` holds
    only the series that have gaps, so an empty dict means none. Lives as long
    as the caller keeps it.
    """

    def __init__(
        self,
        path: Path,
        frames: Mapping[SeriesKey, pd.DataFrame],
        repairs: Sequence[str] = (),
        gaps: Mapping[SeriesKey, SeriesGaps] | None = None,
    ) -> None:
        super().__init__(frames)
        self.path = path
        self.repairs = list(repairs)
        self.gaps = dict(gaps or {})


def load_candles(
    path: str | Path,
    symbol: str | None = None,
    timeframe: str | None = None,
    *,
    max_problems: int = MAX_PROBLEMS,
) -> LoadedCandles:
    """Read, check and repair the candles in a CSV or Parquet file (chosen by extension).

    Columns: a timestamp (timestamp/datetime/open_time/ts/date/time, or separate
    date and time columns), open/o, high/h, low/l, close/c (adj_close when there
    is no close), volume/vol/v, optionally symbol/ticker/pair and
    timeframe/interval; names match case-insensitively. Timestamps are epoch
    seconds or milliseconds (told apart by magnitude, as are microseconds and
    nanoseconds) or ISO 8601 strings; a string without a zone is taken as UTC.

    ``symbol`` and ``timeframe`` select those rows when the file has such a
    column and label every row when it does not. Without either, a file named
    like ``BTC-USDT_1h.csv`` gives both (see ``tradekit.data.file_names``); any
    other name gives the symbol as the file name's stem and a timeframe inferred
    per symbol from the median spacing of its timestamps.
    """
    file = Path(path)
    if max_problems < 1:
        raise ValueError(f"max_problems must be >= 1, got {max_problems}")
    if timeframe is not None and timeframe not in TIMEFRAME_SECONDS:
        raise DataError(f"{file}: {unknown_timeframe_message(timeframe)}")
    raw, csv = _read(file)
    columns, repairs = _find_columns(file, raw)
    raw = _select(file, raw, columns.get("symbol"), symbol, "symbol")
    raw = _select(file, raw, columns.get("timeframe"), timeframe, "timeframe")
    problems = RowProblems(file, csv, raw.index.to_numpy(dtype=np.int64), max_problems)
    ts_column = " + ".join(columns[field] for field in ("ts", "time") if field in columns)
    stamps, has_ts = parse_timestamps(raw, columns, ts_column, problems)
    values = parse_values(raw, columns, problems)
    named_symbol, named_timeframe = read_series_file_stem(_stem(file)) or (_stem(file), "")
    symbols = _labels(raw, columns.get("symbol"), symbol, named_symbol, problems)
    timeframes = _labels(raw, columns.get("timeframe"), timeframe, named_timeframe, problems)
    if timeframe is None and "timeframe" in columns:
        unknown = (timeframes != "") & ~np.isin(timeframes, list(TIMEFRAME_SECONDS))
        problems.rows(
            unknown, columns["timeframe"], lambda row: unknown_timeframe_message(timeframes[row])
        )
    infer_timeframes(symbols, timeframes, stamps, has_ts, ts_column, problems)
    frames: dict[SeriesKey, pd.DataFrame] = {}
    gaps: dict[SeriesKey, SeriesGaps] = {}
    usable = has_ts & (symbols != "") & np.isin(timeframes, list(TIMEFRAME_SECONDS))
    keys = {(str(s), str(t)) for s, t in zip(symbols[usable], timeframes[usable], strict=True)}
    for key in sorted(keys, key=series_sort_key):
        rows = np.flatnonzero(usable & (symbols == key[0]) & (timeframes == key[1]))
        frames[key], found = _series(key, rows, stamps, values, ts_column, problems, repairs)
        if found is not None:
            gaps[key] = found
    problems.raise_if_any()
    return LoadedCandles(file, frames, repairs, gaps)


def _read(file: Path) -> tuple[pd.DataFrame, bool]:
    """The file's rows as a frame indexed by 0-based data row, and whether it is CSV."""
    name = file.name.lower()
    csv = name.endswith(CSV_SUFFIXES)
    if not csv and not name.endswith(PARQUET_SUFFIXES):
        raise DataError(
            f"{file}: unsupported file type; expected a CSV ({', '.join(CSV_SUFFIXES)}) "
            f"or Parquet ({', '.join(PARQUET_SUFFIXES)}) file"
        )
    if not file.is_file():
        raise DataError(f"{file}: no such file")
    try:
        if csv:
            raw = pd.read_csv(
                file,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
                skipinitialspace=True,
            )
            # Blank lines are read as empty rows so that row positions stay line numbers.
            raw = raw[(raw != "").any(axis=1)]
        else:
            raw = pd.read_parquet(file)
            if not isinstance(raw.index, pd.RangeIndex):
                raw = raw.reset_index()
    except pd.errors.EmptyDataError:
        raise DataError(f"{file}: the file is empty; expected a header and candle rows") from None
    except ImportError as exc:
        raise DataError(f"{file}: reading Parquet needs pyarrow (pip install pyarrow)") from exc
    except Exception as exc:
        kind = "CSV" if csv else "Parquet"
        raise DataError(f"{file}: cannot read as {kind}: {type(exc).__name__}: {exc}") from exc
    if raw.empty:
        raise DataError(f"{file}: no candle rows below the header")
    raw.columns = pd.Index([str(column) for column in raw.columns])
    return raw, csv


def _stem(file: Path) -> str:
    """The file name without its candle-file suffix (``BTC.csv.gz`` gives ``BTC``)."""
    suffixes = sorted(CSV_SUFFIXES + PARQUET_SUFFIXES, key=len, reverse=True)
    found = next((suffix for suffix in suffixes if file.name.lower().endswith(suffix)), "")
    return file.name[: len(file.name) - len(found)]


def _normalized(header: str) -> str:
    return re.sub(r"[\s_\-]+", "_", header.strip().strip("<>").strip().lower())


def _find_columns(file: Path, raw: pd.DataFrame) -> tuple[dict[str, str], list[str]]:
    """Map each field to the file's column holding it; missing required ones raise."""
    by_name: dict[str, str] = {}
    for column in raw.columns:
        by_name.setdefault(_normalized(str(column)), str(column))
    columns: dict[str, str] = {}
    for field, aliases in _ALIASES.items():
        found = next((by_name[alias] for alias in aliases if alias in by_name), None)
        if found is not None:
            columns[field] = found
    missing = [field for field in _REQUIRED if field not in columns]
    if missing:
        wanted = "; ".join(f"{field} (any of {', '.join(_ALIASES[field])})" for field in missing)
        found_names = ", ".join(repr(str(column)) for column in raw.columns)
        raise DataError(
            f"{file}: missing required column(s): {wanted}. Found columns: {found_names}. "
            "Expected a timestamp, open, high, low, close and volume column; names match "
            "case-insensitively, with spaces, dashes and underscores alike"
        )
    repairs: list[str] = []
    if _normalized(columns["ts"]) == "date" and "time" in by_name:
        columns["time"] = by_name["time"]
    if _normalized(columns["close"]) == "adj_close":
        repairs.append(f"used column '{columns['close']}' as close: the file has no close column")
    return columns, repairs


def _select(
    file: Path, raw: pd.DataFrame, column: str | None, wanted: str | None, what: str
) -> pd.DataFrame:
    """Keep the rows whose ``column`` holds ``wanted``; all rows without either."""
    if column is None or wanted is None:
        return raw
    labels = text(raw[column])
    keep = labels == wanted
    if not keep.any():
        held = ", ".join(sorted(set(labels) - {""})[:10])
        raise DataError(
            f"{file}: no rows for {what} '{wanted}' in column '{column}'; it holds {held}"
        )
    return raw[keep]


def _labels(
    raw: pd.DataFrame, column: str | None, given: str | None, fallback: str, problems: RowProblems
) -> Labels:
    """Each row's symbol or timeframe: the given value, else the column's, else ``fallback``."""
    if given is not None or column is None:
        return np.full(len(raw), given if given is not None else fallback, dtype=object)
    labels = text(raw[column]).to_numpy(dtype=object)
    problems.rows(labels == "", column, lambda row: "the value is empty")
    return labels


def _series(
    key: SeriesKey,
    rows: npt.NDArray[np.intp],
    stamps: npt.NDArray[np.int64],
    values: Mapping[str, npt.NDArray[np.float64]],
    label: str,
    problems: RowProblems,
    repairs: list[str],
) -> tuple[pd.DataFrame, SeriesGaps | None]:
    """Check alignment, sort, drop exact duplicates and find gaps in one series' rows."""
    symbol, timeframe = key
    seconds, fraction = np.divmod(stamps[rows], US_PER_SECOND)
    floors = floor_epoch_seconds(seconds, timeframe)
    misaligned = (fraction != 0) | (floors != seconds)
    floor_of = dict(zip(rows.tolist(), floors.tolist(), strict=True))
    problems.rows(
        rows[misaligned],
        label,
        lambda row: (
            f"timestamp {iso(stamps[row])} is not aligned to the {timeframe} "
            f"timeframe of {symbol}; expected the open time of a {timeframe} candle such as "
            f"{iso(floor_of[row] * US_PER_SECOND)}"
        ),
    )
    if (np.diff(stamps[rows]) < 0).any():
        repairs.append(f"{symbol} {timeframe}: sorted {rows.size} rows into time order")
        rows = rows[np.argsort(stamps[rows], kind="stable")]
    ordered = stamps[rows]
    new_time = np.r_[True, ordered[1:] != ordered[:-1]]
    first = rows[np.maximum.accumulate(np.where(new_time, np.arange(rows.size), 0))]
    table = np.column_stack([values[field] for field in PRICE_COLUMNS])
    same = ((table[rows] == table[first]) | (np.isnan(table[rows]) & np.isnan(table[first]))).all(
        axis=1
    )
    keeper = dict(zip(rows.tolist(), first.tolist(), strict=True))
    problems.rows(
        rows[~new_time & ~same],
        label,
        lambda row: (
            f"timestamp {iso(stamps[row])} of {symbol} {timeframe} is also on "
            f"{problems.where(keeper[row])}, with different values: open/high/low/close/volume "
            f"{tuple(table[row].tolist())} here, {tuple(table[keeper[row]].tolist())} there; "
            "keep one of the two rows"
        ),
    )
    dropped = rows[~new_time & same]
    if dropped.size:
        where = ", ".join(problems.where(int(row)) for row in np.sort(dropped)[:5])
        more = ", ..." if dropped.size > 5 else ""
        repairs.append(
            f"{symbol} {timeframe}: dropped {dropped.size} exact duplicate row(s) ({where}{more})"
        )
    rows = rows[new_time | ~same]
    index = pd.DatetimeIndex(pd.to_datetime(stamps[rows], unit="us", utc=True), name="ts")
    frame = pd.DataFrame({field: values[field][rows] for field in PRICE_COLUMNS}, index=index)
    return frame, find_gaps(symbol, timeframe, index)


def _candle_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The files named, with each folder replaced by the candle files in it (sorted by name)."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files: list[Path] = []
    for item in map(Path, items):
        if not item.is_dir():
            files.append(item)
            continue
        suffixes = CSV_SUFFIXES + PARQUET_SUFFIXES
        found = sorted(
            p for p in item.iterdir() if p.is_file() and p.name.lower().endswith(suffixes)
        )
        if not found:
            raise DataError(
                f"{item}: no candle files in this folder; expected {', '.join(suffixes)}"
            )
        files.extend(found)
    if not files:
        raise DataError("no candle files given; pass a file, a folder or a list of files")
    return files


class FileSource(FrameSource):
    """The candles of one or more files, or of every candle file in a folder, as one source.

    Every file is loaded and checked when the source is built, and the problems
    of all files are raised together. ``repairs`` gathers every file's repairs,
    each prefixed with its file name; ``gaps`` gathers every series' gaps. A
    series found in two files is an error. Lives as long as the caller keeps it.
    """

    def __init__(
        self,
        paths: str | Path | Iterable[str | Path],
        symbol: str | None = None,
        timeframe: str | None = None,
        *,
        max_problems: int = MAX_PROBLEMS,
    ) -> None:
        loaded: list[LoadedCandles] = []
        failures: list[str] = []
        for file in _candle_files(paths):
            try:
                loaded.append(load_candles(file, symbol, timeframe, max_problems=max_problems))
            except DataError as exc:
                failures.append(str(exc))
        if failures:
            raise DataError("\n".join(failures))
        frames: dict[SeriesKey, pd.DataFrame] = {}
        origin: dict[SeriesKey, Path] = {}
        self.paths = [item.path for item in loaded]
        self.repairs: list[str] = []
        self.gaps: dict[SeriesKey, SeriesGaps] = {}
        for item in loaded:
            for key, frame in item.frames().items():
                if key in origin:
                    raise DataError(
                        f"{key[0]} {key[1]} is in both {origin[key]} and {item.path}; "
                        "keep each series in one file"
                    )
                origin[key], frames[key] = item.path, frame
            self.repairs += [f"{item.path.name}: {repair}" for repair in item.repairs]
            self.gaps.update(item.gaps)
        super().__init__(frames)


__all__ = [
    "CSV_SUFFIXES",
    "MAX_PROBLEMS",
    "PARQUET_SUFFIXES",
    "FileSource",
    "LoadedCandles",
    "load_candles",
]
