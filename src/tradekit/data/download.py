"""Downloading OHLCV history from a venue into Parquet files, one per (symbol, timeframe).

Files are named after their series (``BTC-USDT_1h.parquet``, see
``tradekit.data.file_names``) and hold the columns ``timestamp`` (UTC open
times), ``open``, ``high``, ``low``, ``close`` and ``volume``. A download is
incremental: it fetches only the candles the file lacks before its first and
after its last one, and writes the file back in time order without duplicates.
Only closed candles are written. The client is any object with ccxt's
``fetch_ohlcv``; ccxt itself is never imported here, so tests pass a fake.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from tradekit.data.ccxt_errors import error_names, hint_for, is_transient
from tradekit.data.file_names import series_file_stem
from tradekit.data.files import load_candles
from tradekit.data.sources import normalize_frame
from tradekit.errors import DataError, ExchangeError
from tradekit.services.market.candles import PRICE_COLUMNS
from tradekit.timeframes import timeframe_seconds

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PARQUET_SUFFIX = ".parquet"

_HINTS = {
    "BadSymbol": "the venue does not list this symbol; check --symbols",
    "BadRequest": "the venue refused the request; check --timeframes and --from",
    "NotSupported": "the venue does not offer OHLCV candles through ccxt",
}


class OhlcvHistoryClient(Protocol):
    """The part of a ccxt exchange a download uses: rows of ``[ms, o, h, l, c, v]``."""

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None, limit: int | None
    ) -> list[list[Any]]: ...


@dataclass(frozen=True, slots=True)
class SeriesDownload:
    """What one download did to one series' file."""

    symbol: str
    timeframe: str
    path: Path
    added: int
    """Candles fetched and written that the file did not hold."""
    total: int
    """Candles in the file afterwards."""


Progress = Callable[[int, int], object]
"""Told ``(candles fetched so far, candles expected)`` after every page."""


class HistoryDownloader:
    """Fetches the closed candles of a venue page by page; one per download command.

    ``page_limit`` is the most candles the venue returns per request. A transient
    error (any ccxt ``NetworkError``: rate limits, timeouts) is retried up to
    ``retries`` times, waiting ``backoff_seconds`` then twice as long each time;
    anything else raises ``ExchangeError`` naming the venue, symbol and timeframe.
    ``now`` decides which candles have closed.
    """

    def __init__(
        self,
        client: OhlcvHistoryClient,
        venue: str,
        *,
        page_limit: int = 500,
        retries: int = 5,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], object],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if page_limit < 1 or retries < 0 or backoff_seconds < 0:
            raise ValueError(
                f"page_limit must be >= 1, retries and backoff_seconds >= 0; got {page_limit}, "
                f"{retries} and {backoff_seconds}"
            )
        self._client = client
        self.venue = venue
        self._page_limit = page_limit
        self._retries = retries
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._now = now

    def download(
        self,
        symbol: str,
        timeframe: str,
        start: datetime,
        end: datetime | None,
        directory: Path,
        progress: Progress | None = None,
    ) -> SeriesDownload:
        """Bring ``directory``'s file of the series up to date over ``[start, end]``.

        The candles wanted open at or after ``start`` and close by ``end`` (by now
        without it, and never after now). What the file already holds is kept and
        not fetched again.
        """
        path = directory / (series_file_stem(symbol, timeframe) + PARQUET_SUFFIX)
        step = timeframe_seconds(timeframe) * 1000
        first_ms = -(-_ms(start) // step) * step
        bound_ms = _ms(self._now()) if end is None else min(_ms(end), _ms(self._now()))
        held = self._held(path, symbol, timeframe)
        ranges: list[tuple[int, int]] = []
        if held.empty:
            ranges.append((first_ms, bound_ms))
        else:
            held_first, held_last = (_ms(moment) for moment in held.index[[0, -1]])
            ranges += [(first_ms, held_first), (held_last + step, bound_ms)]
        ranges = [(since, bound) for since, bound in ranges if since + step <= bound]
        expected = sum((bound - since) // step for since, bound in ranges)
        rows: dict[int, list[Any]] = {}
        for since, bound in ranges:
            self._fetch_range(symbol, timeframe, since, bound, rows, expected, progress)
        fetched = _frame(symbol, timeframe, rows)
        combined = pd.concat([held, fetched]).sort_index() if rows else held
        if rows:
            _write(path, normalize_frame(symbol, timeframe, combined))
        return SeriesDownload(symbol, timeframe, path, len(rows), len(combined))

    def _held(self, path: Path, symbol: str, timeframe: str) -> pd.DataFrame:
        if not path.exists():
            return pd.DataFrame(
                {name: pd.Series(dtype=float) for name in PRICE_COLUMNS},
                index=pd.DatetimeIndex([], tz=UTC, name="ts"),
            )
        frames = load_candles(path, symbol, timeframe).frames()
        return frames[(symbol, timeframe)]

    def _fetch_range(
        self,
        symbol: str,
        timeframe: str,
        since: int,
        bound: int,
        rows: dict[int, list[Any]],
        expected: int,
        progress: Progress | None,
    ) -> None:
        """Add to ``rows`` the closed candles opening in ``[since, bound - step]``, page by page."""
        step = timeframe_seconds(timeframe) * 1000
        cursor = since
        while cursor + step <= bound:
            page = self._fetch(symbol, timeframe, cursor)
            latest = cursor - step
            for item in page:
                open_ms = self._open_ms(symbol, timeframe, item)
                latest = max(latest, open_ms)
                # A venue may answer with rows before ``since`` or a still-forming last row.
                if cursor <= open_ms and open_ms + step <= bound:
                    rows.setdefault(open_ms, list(item))
            if progress is not None:
                progress(len(rows), expected)
            if latest < cursor:
                return
            cursor = latest + step

    def _fetch(self, symbol: str, timeframe: str, since: int) -> list[Any]:
        attempt = 0
        while True:
            try:
                answer = self._client.fetch_ohlcv(symbol, timeframe, since, self._page_limit)
            except Exception as exc:
                names = error_names(exc)
                if is_transient(names) and attempt < self._retries:
                    self._sleep(self._backoff * 2**attempt)
                    attempt += 1
                    continue
                message = (
                    f"{self._where(symbol, timeframe)}: fetch_ohlcv failed with "
                    f"{type(exc).__name__}: {exc}"
                )
                if attempt:
                    message += f" (after {attempt} retries)"
                hint = hint_for(names, _HINTS)
                raise ExchangeError(message + (f"; {hint}" if hint else "")) from exc
            if not isinstance(answer, list):
                raise DataError(
                    f"{self._where(symbol, timeframe)}: fetch_ohlcv returned "
                    f"{type(answer).__name__}, expected a list of [ms, open, high, low, close, "
                    "volume] rows"
                )
            return answer

    def _open_ms(self, symbol: str, timeframe: str, item: object) -> int:
        if (
            not isinstance(item, Sequence)
            or isinstance(item, str | bytes)
            or len(item) < 6
            or isinstance(item[0], bool)
            or not isinstance(item[0], int | float)
            or item[0] != int(item[0])
        ):
            raise DataError(
                f"{self._where(symbol, timeframe)}: fetch_ohlcv returned a malformed row "
                f"{item!r}; expected [ms, open, high, low, close, volume]"
            )
        return int(item[0])

    def _where(self, symbol: str, timeframe: str) -> str:
        return f"{self.venue} {symbol} {timeframe}"


def _frame(symbol: str, timeframe: str, rows: dict[int, list[Any]]) -> pd.DataFrame:
    """The fetched rows as a frame over UTC open times; a missing volume counts as 0."""
    stamps = sorted(rows)
    try:
        columns = {
            name: [
                0.0 if name == "volume" and rows[ms][5] is None else float(rows[ms][1 + position])
                for ms in stamps
            ]
            for position, name in enumerate(PRICE_COLUMNS)
        }
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{symbol} {timeframe}: the venue returned a non-numeric price: {exc}"
        ) from exc
    index = pd.DatetimeIndex(
        [_EPOCH + timedelta(milliseconds=ms) for ms in stamps], name="ts"
    ).as_unit("us")
    return pd.DataFrame(columns, index=index, dtype=float)


def _write(path: Path, frame: pd.DataFrame) -> None:
    """Replace ``path`` with ``frame`` in one step, so an interrupted write leaves the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        frame.rename_axis("timestamp").to_parquet(partial)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DataError(f"{path}: cannot write the candles: {exc.strerror or exc}") from exc


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


__all__ = ["PARQUET_SUFFIX", "HistoryDownloader", "OhlcvHistoryClient", "SeriesDownload"]
