"""Backtest reports: trades as CSV, statistics as JSON, the event log as JSON lines, the
equity curves as a PNG drawn with matplotlib's Agg renderer, and results tables for a terminal.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from tradekit.runtime.backtest import BacktestResult
from tradekit.services.positions.state import Trade

TRADES_FILE = "trades.csv"
REPORT_FILE = "report.json"
EVENTS_FILE = "events.jsonl"
EQUITY_FILE = "equity.png"
UNLIMITED_WIDTH = 10_000

TRADE_COLUMNS = ("strategy_id", *(item.name for item in dataclasses.fields(Trade)))
"""The columns of ``trades.csv``, in order; written even when there is no trade."""


@dataclass(frozen=True)
class PortfolioSummary:
    """Figures across all strategies: the portfolio's equity line and every closed trade."""

    capital: float
    final_equity: float
    total_return_pct: float
    max_drawdown_pct: float
    trade_count: int
    win_rate_pct: float | None
    profit_factor: float | None
    open_positions: int


@dataclass(frozen=True)
class WrittenReport:
    """Where a backtest's files went and how many trades and events they hold."""

    directory: Path
    trades: Path
    report: Path
    events: Path
    equity: Path
    trade_count: int
    event_count: int
    event_log_hash: str


def portfolio_summary(result: BacktestResult) -> PortfolioSummary:
    """The portfolio line: equity figures from ``portfolio_stats``, trade figures pooled."""
    pnls = [trade.realized_pnl for item in result.strategies.values() for trade in item.trades]
    gains = sum(pnl for pnl in pnls if pnl > 0)
    losses = -sum(pnl for pnl in pnls if pnl < 0)
    if not pnls:
        profit_factor = None
    elif losses:
        profit_factor = gains / losses
    else:
        profit_factor = math.inf if gains else None
    stats = result.portfolio_stats
    return PortfolioSummary(
        capital=float(stats["capital"]),
        final_equity=float(stats["final_equity"]),
        total_return_pct=float(stats["total_return_pct"]),
        max_drawdown_pct=float(stats["max_drawdown_pct"]),
        trade_count=len(pnls),
        win_rate_pct=sum(1 for pnl in pnls if pnl > 0) / len(pnls) * 100 if pnls else None,
        profit_factor=profit_factor,
        open_positions=sum(item.open_positions for item in result.strategies.values()),
    )


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (an infinite profit factor, say) as ``None``.

    JSON has no infinity or NaN; writing them would make files other tools refuse.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def report_document(result: BacktestResult, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What ``report.json`` holds: per-strategy and portfolio statistics, hash and inputs."""
    strategies = {
        strategy_id: {
            "timeframe": item.timeframe,
            "capital": item.capital,
            "open_positions": item.open_positions,
            **item.stats.to_dict(),
        }
        for strategy_id, item in result.strategies.items()
    }
    document: dict[str, Any] = json_safe(
        {
            "event_log_hash": result.event_log_hash,
            "event_count": len(result.events),
            "candles_processed": result.candles_processed,
            "strategies": strategies,
            "portfolio": dataclasses.asdict(portfolio_summary(result)),
            "inputs": dict(inputs),
        }
    )
    return document


def write_trades_csv(result: BacktestResult, path: Path) -> int:
    """Every trade of every strategy, one row each, times in ISO 8601; returns the row count."""
    frame = result.trades_frame()
    if frame.empty:
        frame = pd.DataFrame(columns=list(TRADE_COLUMNS))
    for column in ("entry_ts", "exit_ts"):
        frame[column] = [stamp.isoformat() for stamp in frame[column]]
    frame["side"] = [str(getattr(side, "value", side)) for side in frame["side"]]
    frame.to_csv(path, index=False, columns=list(TRADE_COLUMNS))
    return len(frame)


def write_events_jsonl(result: BacktestResult, path: Path) -> int:
    """The event log, one ``Event.to_dict()`` per line; returns the line count.

    Lines are encoded exactly as ``event_log_hash`` encodes them, so the file's
    SHA-256 equals that hash.
    """
    with path.open("w", encoding="utf-8", newline="\n") as file:
        for event in result.events:
            file.write(json.dumps(event.to_dict(), sort_keys=True))
            file.write("\n")
    return len(result.events)


def write_report_json(
    result: BacktestResult, path: Path, inputs: Mapping[str, Any]
) -> dict[str, Any]:
    """Write ``report_document`` as indented JSON; returns the document."""
    document = report_document(result, inputs)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return document


def plot_equity(result: BacktestResult, path: Path, title: str = "Backtest equity") -> None:
    """Draw each strategy's equity (top) and the portfolio's (bottom) into a PNG at ``path``."""
    # Imported here: matplotlib takes a noticeable time to import, and only this needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 8), layout="constrained")
    # The Agg canvas, chosen explicitly: no pyplot global state, no display needed.
    FigureCanvasAgg(figure)
    strategies_axes, portfolio_axes = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    figure.suptitle(title)
    for strategy_id, item in result.strategies.items():
        if item.equity_curve:
            times, values = zip(*item.equity_curve, strict=True)
            strategies_axes.plot(times, values, linewidth=1.0, label=strategy_id)
    strategies_axes.set_title("Equity per strategy")
    strategies_axes.set_ylabel("equity (quote currency)")
    portfolio = result.portfolio_equity
    if len(portfolio):
        portfolio_axes.plot(
            pd.DatetimeIndex(portfolio.index).to_pydatetime(),
            portfolio.to_numpy(),
            color="black",
            linewidth=1.2,
            label="portfolio",
        )
    portfolio_axes.set_title("Portfolio equity (sum of the strategies)")
    portfolio_axes.set_ylabel("equity (quote currency)")
    portfolio_axes.set_xlabel("time (UTC)")
    for axes in (strategies_axes, portfolio_axes):
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="upper left", fontsize="small")
        else:
            axes.text(0.5, 0.5, "no equity recorded", ha="center", transform=axes.transAxes)
    figure.savefig(path, dpi=100)


def write_backtest_report(
    result: BacktestResult, directory: Path, inputs: Mapping[str, Any]
) -> WrittenReport:
    """Write trades.csv, report.json, events.jsonl and equity.png into ``directory``.

    The folder is created when missing; files already there are replaced.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / name for name in (TRADES_FILE, REPORT_FILE, EVENTS_FILE, EQUITY_FILE)]
    trades, report, events, equity = paths
    trade_count = write_trades_csv(result, trades)
    document = write_report_json(result, report, inputs)
    event_count = write_events_jsonl(result, events)
    plot_equity(result, equity)
    return WrittenReport(
        directory,
        trades,
        report,
        events,
        equity,
        trade_count,
        event_count,
        document["event_log_hash"],
    )


# Characters that must not reach a terminal as they are: C0 and C1 control characters
# (ESC starts a terminal escape sequence) and lone surrogates (no encoding can write one).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UNPRINTABLE_BUT_NEWLINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def plain_text(value: object, *, keep_newlines: bool = False) -> str:
    """``value`` as text a terminal shows as it is: unprintable characters written escaped.

    ``"a\x1b[31m"`` becomes ``"a\\x1b[31m"`` and a lone surrogate ``"\\ud800"``, so
    names from files cannot colour, move or clear the terminal, nor crash the output.
    """
    pattern = _UNPRINTABLE_BUT_NEWLINES if keep_newlines else _UNPRINTABLE
    return pattern.sub(lambda match: ascii(match.group())[1:-1], str(value))


def markup_text(value: object, *, keep_newlines: bool = False) -> str:
    """``plain_text(value)`` with rich markup escaped, to interpolate into a markup string."""
    return escape(plain_text(value, keep_newlines=keep_newlines))


def format_optional(value: float | None, spec: str = ".2f", missing: str = "-") -> str:
    """``value`` formatted with ``spec``; ``missing`` for ``None``, ``inf`` for infinity."""
    if value is None or math.isnan(value):
        return missing
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(value, spec)


def results_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    text_columns: int = 1,
    footer: Sequence[str] | None = None,
) -> Table:
    """A compact table: text on the left, figures right-aligned; no word or figure is cut.

    The first ``text_columns`` columns hold text (the first never wraps, the others
    wrap between words); every column is at least as wide as its longest word, so
    a narrow terminal wraps headers and names rather than truncating numbers.
    ``footer`` is a bold totals line.
    """
    table = Table(
        title=Text(plain_text(title)),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 0),
    )
    # Cells are Text, never markup: a name such as "[/]" is shown, not parsed.
    rows = [[plain_text(cell) for cell in row] for row in rows]
    footer = None if footer is None else [plain_text(cell) for cell in footer]
    headers = [plain_text(header) for header in headers]
    lines = [*rows, *([footer] if footer is not None else [])]
    for index, header in enumerate(headers):
        words = [
            word for text in (header, *(line[index] for line in lines)) for word in text.split()
        ]
        widest = max((len(word) for word in words), default=1)
        if index < text_columns:
            table.add_column(Text(header), no_wrap=index == 0, min_width=widest)
        else:
            table.add_column(Text(header), justify="right", min_width=widest)
    for row in rows:
        table.add_row(*map(Text, row))
    if footer is not None:
        table.add_section()
        table.add_row(*map(Text, footer), style="bold")
    return table


def print_table(console: Console, table: Table) -> None:
    """Print ``table``; to a file or pipe at its natural width, since no screen limits it."""
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update(width=UNLIMITED_WIDTH), table)
    Console(file=console.file, width=natural.maximum, soft_wrap=True).print(table)


SUMMARY_HEADERS = (
    "strategy",
    "trades",
    "win rate %",
    "total return %",
    "max drawdown %",
    "Sharpe",
    "profit factor",
    "final equity",
)


def summary_table(result: BacktestResult) -> Table:
    """The backtest's results for a terminal: one line per strategy, then the portfolio."""
    rows = [
        [
            strategy_id,
            str(item.stats.trade_count),
            format_optional(item.stats.win_rate_pct, ".1f"),
            format_optional(item.stats.total_return_pct),
            format_optional(item.stats.max_drawdown_pct),
            format_optional(item.stats.sharpe),
            format_optional(item.stats.profit_factor),
            format_optional(item.stats.final_equity, ",.2f"),
        ]
        for strategy_id, item in result.strategies.items()
    ]
    portfolio = portfolio_summary(result)
    # The portfolio line mixes timeframes, so it has no per-candle return series to
    # annualize: no Sharpe ratio for it.
    footer = [
        "portfolio",
        str(portfolio.trade_count),
        format_optional(portfolio.win_rate_pct, ".1f"),
        format_optional(portfolio.total_return_pct),
        format_optional(portfolio.max_drawdown_pct),
        "-",
        format_optional(portfolio.profit_factor),
        format_optional(portfolio.final_equity, ",.2f"),
    ]
    return results_table("Backtest results", SUMMARY_HEADERS, rows, footer=footer)


__all__ = [
    "EQUITY_FILE",
    "EVENTS_FILE",
    "REPORT_FILE",
    "TRADES_FILE",
    "TRADE_COLUMNS",
    "PortfolioSummary",
    "WrittenReport",
    "format_optional",
    "json_safe",
    "markup_text",
    "plain_text",
    "plot_equity",
    "portfolio_summary",
    "print_table",
    "report_document",
    "results_table",
    "summary_table",
    "write_backtest_report",
    "write_events_jsonl",
    "write_report_json",
    "write_trades_csv",
]
