"""Performance statistics of an equity curve and a trade list.

All figures are computed from what the strategy recorded, never estimated:
returns from the equity curve, win rate and profit factor from closed trades.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
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


def max_drawdown_pct(equity: Sequence[float] | np.ndarray) -> float:
    """Largest fall from a running peak, in percent of that peak (0 when it never falls)."""
    values = np.asarray(equity, dtype=np.float64)
    if values.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(values)
    return float(np.max((peaks - values) / peaks) * 100)


def simple_returns(equity: Sequence[float] | np.ndarray) -> npt.NDArray[np.float64]:
    """Per-period returns of an equity line: ``equity[i + 1] / equity[i] - 1``.

    ``ValueError`` when a value a return is taken from is not positive: a return on
    nothing (or on a debt) has no meaning.
    """
    values = np.asarray(equity, dtype=np.float64)
    if values.size < 2:
        return np.empty(0, dtype=np.float64)
    if np.any(values[:-1] <= 0):
        raise ValueError("returns need positive equity; the equity line reaches zero or below")
    return np.diff(values) / values[:-1]


# Below this a deviation (or a mean) is rounding noise, not variation (or a return).
_NO_DEVIATION = 1e-12


def sharpe_of_returns(returns: npt.NDArray[np.float64], periods_per_year: float) -> float | None:
    """Annualized Sharpe ratio of per-period returns (risk-free rate 0).

    0 when every return is 0 (or rounding noise); ``None`` when it is undefined: fewer
    than two returns, or equal non-zero returns (no deviation to divide by).
    """
    if returns.size < 2:
        return None
    deviation = float(np.std(returns, ddof=1))
    mean = float(np.mean(returns))
    if deviation <= _NO_DEVIATION:
        return 0.0 if abs(mean) <= _NO_DEVIATION else None
    return mean / deviation * math.sqrt(periods_per_year)


def sortino_of_returns(returns: npt.NDArray[np.float64], periods_per_year: float) -> float | None:
    """Annualized Sortino ratio of per-period returns (target 0).

    The downside deviation is the root mean square of the returns below 0, over all
    periods. 0 when every return is 0 (or rounding noise); ``None`` when it is
    undefined: fewer than two returns, or no losing period while the mean is positive
    (it would be infinite).
    With a positive mean it is never below the Sharpe ratio.
    """
    if returns.size < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    mean = float(np.mean(returns))
    if downside <= _NO_DEVIATION:
        return 0.0 if abs(mean) <= _NO_DEVIATION else None
    return mean / downside * math.sqrt(periods_per_year)


def sharpe_ratio(equity: Sequence[float] | np.ndarray, timeframe: str) -> float:
    """Annualized Sharpe ratio of per-candle returns (risk-free rate 0); 0 when flat."""
    values = np.asarray(equity, dtype=np.float64)
    if values.size < 3:
        return 0.0
    returns = np.diff(values) / values[:-1]
    periods_per_year = SECONDS_PER_YEAR / timeframe_seconds(timeframe)
    sharpe = sharpe_of_returns(returns, periods_per_year)
    return 0.0 if sharpe is None else sharpe


def periods_per_year(times: Sequence[datetime]) -> float | None:
    """How many periods of the median spacing of ``times`` fit in a year; ``None`` if unknown."""
    return periods_per_year_of([(b - a).total_seconds() for a, b in itertools.pairwise(times)])


def periods_per_year_of(spacings: Sequence[float] | npt.NDArray[np.float64]) -> float | None:
    """How many periods of the median of ``spacings`` (seconds) fit in a year; ``None`` when
    there is none, or it is not positive."""
    if len(spacings) == 0:
        return None
    spacing = float(np.median(spacings))
    return SECONDS_PER_YEAR / spacing if spacing > 0 else None


def profit_factor(pnls: Sequence[float]) -> float | None:
    """Gross profit over gross loss of closed trades.

    ``None`` when it is undefined: no trades, or no losing trade (it would be infinite).
    """
    loss = math.fsum(-pnl for pnl in pnls if pnl < 0)
    if loss == 0:
        return None
    return math.fsum(pnl for pnl in pnls if pnl > 0) / loss


def time_in_market_pct(
    held: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime
) -> float | None:
    """Share of ``[start, end]`` covered by at least one of the ``held`` intervals, in percent.

    Overlapping intervals (positions in two symbols at once) count once. ``None``
    when the period is empty.
    """
    period = (end - start).total_seconds()
    if period <= 0:
        return None
    covered = 0.0
    reach = start
    for opened, closed in sorted(held):
        opened, closed = max(opened, reach), min(closed, end)
        if closed > opened:
            covered += (closed - opened).total_seconds()
            reach = closed
    return covered / period * 100


def buy_and_hold_return_pct(prices: Sequence[tuple[float, float]]) -> float | None:
    """Return of holding equal amounts of each asset, from ``(first, last)`` prices, in percent.

    Assets whose first price is not positive are left out; ``None`` when none is left.
    """
    returns = [(last / first - 1) * 100 for first, last in prices if first > 0]
    return math.fsum(returns) / len(returns) if returns else None


def performance(
    equity_values: npt.NDArray[np.float64],
    trades: Sequence[Trade],
    capital: float,
    timeframe: str,
    fees_paid: float,
    open_bars: int = 0,
) -> PerformanceStats:
    """Statistics of one strategy from its equity curve's values (one per candle) and trades.

    ``open_bars`` counts candles held by positions still open at the end, for the
    exposure time.
    """
    values = np.asarray(equity_values, dtype=np.float64)
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
    bars = max(values.size, 1)
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
