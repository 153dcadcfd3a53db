"""Backtest reports: trades as CSV, statistics as JSON, the event log as JSON lines, the
equity curves as a PNG drawn with matplotlib's Agg renderer, and results tables for a terminal.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from tradekit.runtime.backtest import BacktestResult
from tradekit.services.positions.state import Trade
from tradekit.terminal import (
    format_optional,
    markup_text,
    plain_text,
    print_table,
    results_table,
)

TRADES_FILE = "trades.csv"
REPORT_FILE = "report.json"
EVENTS_FILE = "events.jsonl"
EQUITY_FILE = "equity.png"

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
        if item.equity:
            # Naive datetime64 in UTC: matplotlib places them where it places aware datetimes.
            times = item.equity.times_micros().astype("datetime64[us]")
            strategies_axes.plot(times, item.equity.values(), linewidth=1.0, label=strategy_id)
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
