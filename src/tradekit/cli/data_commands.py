"""``tradekit data download``: OHLCV history from a ccxt venue into Parquet files.

The ccxt client is built in ``build_download_venue`` alone, so tests replace
that one function with a fake venue.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tradekit.cli.app import ConfigOption, app, err, load_cli_settings, out, run_guarded
from tradekit.cli.backtest_command import parse_when
from tradekit.config.settings import CcxtSettings
from tradekit.data.download import HistoryDownloader, OhlcvHistoryClient, SeriesDownload
from tradekit.errors import ConfigError, ExchangeError
from tradekit.reporting import markup_text
from tradekit.services.exchange.ccxt_client import make_ccxt_client, venue_name
from tradekit.timeframes import TIMEFRAME_SECONDS, unknown_timeframe_message

DEFAULT_PAGE_LIMIT = 500
"""Candles per request when the venue does not say how many it returns."""

data_app = typer.Typer(help="Download market data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@dataclass(frozen=True, slots=True)
class DownloadVenue:
    """A venue to download from: its client, its name, and its most candles per request."""

    client: OhlcvHistoryClient
    name: str
    page_limit: int


def build_download_venue(settings: CcxtSettings) -> DownloadVenue:
    """The ccxt client ``settings`` describe (urls, timeouts, rate limit, sandbox and options
    from the config, as every ccxt client gets them), with its OHLCV page size."""
    try:
        import ccxt
    except ImportError as exc:
        raise ExchangeError(
            "tradekit data download needs the ccxt package: pip install 'tradekit[live]'"
        ) from exc
    exchange_id = settings.exchange_id
    if not isinstance(getattr(ccxt, exchange_id, None), type):
        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "e.g. binance"
        raise ConfigError(f"--exchange {exchange_id!r} is not a ccxt exchange id; {hint}")
    # Public candles need no credentials; the keys of exchange.ccxt are not sent.
    client = make_ccxt_client(settings.model_copy(update={"api_key": None, "api_secret": None}))
    features = client.features if isinstance(client.features, dict) else {}
    limit = (features.get("spot") or {}).get("fetchOHLCV", {}).get("limit")
    page_limit = limit if isinstance(limit, int) and limit > 0 else DEFAULT_PAGE_LIMIT
    return DownloadVenue(cast(OhlcvHistoryClient, client), venue_name(settings), page_limit)


def _split(value: str, option: str) -> list[str]:
    items = list(dict.fromkeys(item.strip() for item in value.split(",") if item.strip()))
    if not items:
        raise typer.BadParameter(
            f"expected a comma-separated list, got {value!r}", param_hint=option
        )
    return items


@data_app.command("download")
def download(
    exchange: Annotated[str, typer.Option("--exchange", help="ccxt exchange id, e.g. binance.")],
    symbols: Annotated[
        str, typer.Option("--symbols", help="Comma-separated symbols, e.g. BTC/USDT,ETH/USDT.")
    ],
    timeframes: Annotated[
        str, typer.Option("--timeframes", help="Comma-separated timeframes, e.g. 1h,4h.")
    ],
    start: Annotated[
        datetime,
        typer.Option("--from", parser=parse_when, help="First candle's open time (ISO 8601, UTC)."),
    ],
    directory: Annotated[
        Path, typer.Option("--dir", file_okay=False, help="Folder of the Parquet files.")
    ],
    end: Annotated[
        datetime | None,
        typer.Option(
            "--to", parser=parse_when, help="Last candles close by this (ISO 8601). Default: now."
        ),
    ] = None,
    sandbox: Annotated[
        bool, typer.Option("--sandbox", help="Use the venue's sandbox (test) servers.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Download closed OHLCV candles into DIR/<BASE>-<QUOTE>_<timeframe>.parquet, incrementally."""
    wanted_symbols = _split(symbols, "'--symbols'")
    wanted_timeframes = _split(timeframes, "'--timeframes'")
    unknown = [tf for tf in wanted_timeframes if tf not in TIMEFRAME_SECONDS]
    if unknown:
        raise typer.BadParameter(unknown_timeframe_message(unknown[0]), param_hint="'--timeframes'")
    if end is not None and end <= start:
        raise typer.BadParameter(
            f"--to {end.isoformat()} is not after --from {start.isoformat()}", param_hint="'--to'"
        )

    def go() -> list[SeriesDownload]:
        settings = load_cli_settings(config).exchange.ccxt
        venue = build_download_venue(
            settings.model_copy(update={"exchange_id": exchange, "sandbox": sandbox})
        )
        downloader = HistoryDownloader(
            venue.client, venue.name, page_limit=venue.page_limit, sleep=time.sleep
        )
        done: list[SeriesDownload] = []
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
        ) as progress:
            for symbol in wanted_symbols:
                for timeframe in wanted_timeframes:
                    task = progress.add_task(markup_text(f"{symbol} {timeframe}"), total=None)

                    def advance(fetched: int, expected: int, task: Any = task) -> None:
                        progress.update(task, completed=fetched, total=max(expected, fetched))

                    result = downloader.download(symbol, timeframe, start, end, directory, advance)
                    progress.update(task, completed=result.added, total=result.added or 1)
                    done.append(result)
        return done

    for result in run_guarded(go):
        out.print(
            f"{markup_text(result.path)}: {result.added} new candle(s), {result.total} in all",
            highlight=False,
        )
