"""Performance statistics of an equity curve and a trade list.

All figures are computed from what the strategy recorded, never estimated:
returns from the equity curve, win rate and profit factor from closed trades.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from tradekit.services.positions.state import Trade
from tradekit.timeframes import timeframe_seconds

SECONDS_PER_YEAR = 365 * 86400


@dataclass(frozen=True)
class PerformanceStats:
    """Summary figures of one strategy (or the portfolio) over a run."""

    total_return_pct: float
    max_drawdown_pct: float
    sharpe: float
    win_rate_pct: float | None
    profit_factor: float | None
    exposure_time_pct: float
    trade_count: int
    final_equity: float
    fees_paid: float

    def to_dict(self) -> dict[str, Any]:
        return {
            key: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for key, value in asdict(self).items()
        }


def equity_values(equity_curve: Sequence[tuple[datetime, float]]) -> npt.NDArray[np.float64]:
    """The values of an equity curve's ``(ts, value)`` points, as one array."""
    return np.fromiter(map(itemgetter(1), equity_curve), dtype=np.float64, count=len(equity_curve))


def max_drawdown_pct(equity: Sequence[float] | np.ndarray) -> float:
    """Largest fall from a running peak, in percent of that peak (0 when it never falls)."""
    values = np.asarray(equity, dtype=np.float64)
    if values.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(values)
    return float(np.max((peaks - values) / peaks) * 100)


def sharpe_ratio(equity: Sequence[float] | np.ndarray, timeframe: str) -> float:
    """Annualized Sharpe ratio of per-candle returns (risk-free rate 0); 0 when flat."""
    values = np.asarray(equity, dtype=np.float64)
    if values.size < 3:
        return 0.0
    returns = np.diff(values) / values[:-1]
    deviation = float(np.std(returns, ddof=1))
    if deviation == 0.0:
        return 0.0
    periods_per_year = SECONDS_PER_YEAR / timeframe_seconds(timeframe)
    return float(np.mean(returns) / deviation * math.sqrt(periods_per_year))


def performance(
    equity_curve: Sequence[tuple[datetime, float]],
    trades: Sequence[Trade],
    capital: float,
    timeframe: str,
    fees_paid: float,
    open_bars: int = 0,
) -> PerformanceStats:
    """Statistics of one strategy from its equity curve (one point per candle) and trades.

    ``open_bars`` counts candles held by positions still open at the end, for the
    exposure time.
    """
    values = equity_values(equity_curve)
    equity = values if values.size else np.array([capital])
    with_capital = np.concatenate(([capital], equity))
    wins = [trade.realized_pnl for trade in trades if trade.realized_pnl > 0]
    losses = [-trade.realized_pnl for trade in trades if trade.realized_pnl < 0]
    if not trades:
        profit_factor = None
    elif losses:
        profit_factor = sum(wins) / sum(losses)
    else:
        profit_factor = math.inf if wins else None
    bars = max(len(equity_curve), 1)
    held = sum(trade.bars_held for trade in trades) + open_bars
    final_equity = float(equity[-1])
    return PerformanceStats(
        total_return_pct=(final_equity / capital - 1) * 100,
        max_drawdown_pct=max_drawdown_pct(with_capital),
        sharpe=sharpe_ratio(with_capital, timeframe),
        win_rate_pct=len(wins) / len(trades) * 100 if trades else None,
        profit_factor=profit_factor,
        exposure_time_pct=min(100.0, held / bars * 100),
        trade_count=len(trades),
        final_equity=final_equity,
        fees_paid=fees_paid,
    )
