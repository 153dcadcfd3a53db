"""One bot's statistics over its life (or since a time), from what its journal recorded.

Return, drawdown, Sharpe and Sortino follow the equity history
(``tradekit.insights.equity``); win rate, profit factor and the averages follow
the closed trades; exposure follows when positions were open; buy-and-hold holds
the bot's symbols in equal amounts over the same period. A figure that is
undefined (a ratio without trades, or without a losing period) is ``None``,
never NaN or infinity, so the model always serializes to valid JSON.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from tradekit.events import PositionClosed, PositionIncreased, PositionOpened
from tradekit.insights.equity import EquityHistory, EquityPoint, equity_history
from tradekit.insights.trades import closed_trades, holding_periods
from tradekit.services.journal.store import SqlJournal
from tradekit.services.positions.state import Trade
from tradekit.stats import (
    buy_and_hold_return_pct,
    max_drawdown_pct,
    periods_per_year,
    profit_factor,
    sharpe_of_returns,
    simple_returns,
    sortino_of_returns,
    time_in_market_pct,
)

TRADE_EVENTS = (PositionOpened, PositionIncreased, PositionClosed)
"""What ``closed_trades`` and ``holding_periods`` read."""


class BotStats(BaseModel):
    """Statistics of one bot over ``[start, end]``; percentages are in percent (5.0 is 5 %)."""

    model_config = ConfigDict(frozen=True)

    strategy_id: str
    start: datetime | None
    """The beginning of the period: ``since``, else the bot's first event or equity point."""
    end: datetime | None
    """The end of the period: the bot's last equity point or event."""
    capital: float | None
    """The capital of its registered config; ``None`` when the registry has none."""
    start_equity: float | None
    """Equity at the start: the capital, or with ``since`` the equity at that time."""
    final_equity: float | None
    total_return_pct: float | None
    max_drawdown_pct: float | None
    sharpe: float | None
    """Annualized from the returns between equity points (risk-free rate 0)."""
    sortino: float | None
    """Like ``sharpe``, over the downside deviation; ``None`` without a losing period."""
    win_rate_pct: float | None
    profit_factor: float | None
    """Gross profit over gross loss; ``None`` without a losing trade."""
    exposure_time_pct: float | None
    """Share of the period with at least one position open."""
    trade_count: int
    average_trade_pnl: float | None
    average_trade_return_pct: float | None
    average_trade_duration_seconds: float | None
    buy_and_hold_return_pct: float | None
    """Holding equal amounts of each of the bot's symbols over the same period."""
    equity_points: int
    """How many equity points the figures rest on."""


def _window(history: EquityHistory | None, since: datetime | None) -> list[EquityPoint]:
    """The equity line of the period, starting with the equity at ``since`` (or the capital)."""
    if history is None:
        return []
    points = history.points
    if since is None:
        return points
    first = bisect.bisect_left(points, since, key=lambda point: point[0])
    # The last point before ``since`` is the equity standing at ``since``.
    return points[max(first - 1, 0) :]


def _buy_and_hold(history: EquityHistory, start: datetime, end: datetime) -> float | None:
    pairs = []
    for marks in history.prices.values():
        inside = [price for ts, price in marks if start <= ts <= end]
        before = [price for ts, price in marks if ts < start]
        first = before[-1] if before else (inside[0] if inside else None)
        if first is not None and inside:
            pairs.append((first, inside[-1]))
    return buy_and_hold_return_pct(pairs)


def line_ratios(
    line: Sequence[float] | npt.NDArray[np.float64], per_year: float | None
) -> tuple[float | None, float | None]:
    """Sharpe and Sortino of an equity line with ``per_year`` periods a year; ``None`` both
    when it has no meaningful returns."""
    if per_year is None or bool(np.any(np.asarray(line[:-1]) <= 0)):
        return None, None
    returns = simple_returns(line)
    return sharpe_of_returns(returns, per_year), sortino_of_returns(returns, per_year)


class TradeFigures(NamedTuple):
    """The figures ``BotStats`` takes from the closed trades of its period."""

    win_rate_pct: float | None
    profit_factor: float | None
    trade_count: int
    average_trade_pnl: float | None
    average_trade_return_pct: float | None
    average_trade_duration_seconds: float | None

    @classmethod
    def of(cls, trades: Sequence[Trade]) -> TradeFigures:
        pnls = [trade.realized_pnl for trade in trades]
        count = len(trades)
        if not count:
            return cls(None, profit_factor(pnls), 0, None, None, None)
        return cls(
            win_rate_pct=sum(1 for pnl in pnls if pnl > 0) / count * 100,
            profit_factor=profit_factor(pnls),
            trade_count=count,
            average_trade_pnl=math.fsum(pnls) / count,
            average_trade_return_pct=math.fsum(trade.return_pct for trade in trades) / count,
            average_trade_duration_seconds=(
                math.fsum((t.exit_ts - t.entry_ts).total_seconds() for t in trades) / count
            ),
        )


def bot_stats(journal: SqlJournal, strategy_id: str, *, since: datetime | None = None) -> BotStats:
    """The statistics of ``strategy_id`` from its journal, over its life or since ``since``.

    Trades count when they closed within the period. Without an equity history (a
    bot the registry has no config of) the equity figures are ``None``.
    """
    # Trades and holding periods need only these events: the others are never decoded.
    events = journal.events(strategy_id, types=TRADE_EVENTS)
    span = journal.event_span(strategy_id, since=since)
    event_times = [] if span is None else list(span)
    history = equity_history(journal, strategy_id)
    window = _window(history, since)
    times = [ts for ts, _ in window]
    start = since or min([*times[:1], *event_times[:1]], default=None)
    end = max([*times[-1:], *event_times[-1:]], default=None)
    capital = None if history is None else history.capital
    start_equity: float | None = capital if since is None else (window[0][1] if window else None)
    line = [value for _, value in window]
    if since is None and capital is not None:
        line = [capital, *line]
    final_equity = line[-1] if line else None
    total_return = None
    if start_equity is not None and final_equity is not None and start_equity > 0:
        total_return = (final_equity / start_equity - 1) * 100
    sharpe, sortino = line_ratios(line, periods_per_year(times))
    trades = [trade for trade in closed_trades(events) if since is None or trade.exit_ts >= since]
    exposure = bh = None
    if start is not None and end is not None:
        exposure = time_in_market_pct(holding_periods(events, end), start, end)
        bh = None if history is None else _buy_and_hold(history, start, end)
    return BotStats(
        strategy_id=strategy_id,
        start=start,
        end=end,
        capital=capital,
        start_equity=start_equity,
        final_equity=final_equity,
        total_return_pct=total_return,
        max_drawdown_pct=max_drawdown_pct(line) if line and min(line) > 0 else None,
        sharpe=sharpe,
        sortino=sortino,
        exposure_time_pct=exposure,
        buy_and_hold_return_pct=bh,
        equity_points=len(window),
        **TradeFigures.of(trades)._asdict(),
    )


__all__ = ["BotStats", "TradeFigures", "bot_stats", "line_ratios"]
