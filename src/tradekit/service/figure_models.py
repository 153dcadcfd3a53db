"""The bodies of the figures routes: a bot's statistics and equity line, and the bots on each
symbol with the exposure they hold against the symbol's cap."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tradekit.insights import BotStats
from tradekit.service.models import PositionOut
from tradekit.strategy_state import StrategyState

_FROZEN = ConfigDict(frozen=True)


class BotStatsOut(BaseModel):
    """A bot's statistics over its life (or since ``start``); percentages in percent (5.0 is
    5 %). A figure that is undefined (no trades, no losing period, no equity) is null."""

    model_config = _FROZEN

    id: str
    start: datetime | None = Field(description="The beginning of the period")
    end: datetime | None = Field(description="Its end: the bot's last equity point or event")
    capital: float | None
    start_equity: float | None
    final_equity: float | None
    return_pct: float | None = Field(description="Total return over the period")
    max_drawdown_pct: float | None
    sharpe: float | None = Field(description="Annualized, from the equity line's returns")
    sortino: float | None = Field(description="Like sharpe, over the downside deviation")
    win_rate_pct: float | None
    profit_factor: float | None = Field(description="Gross profit over gross loss")
    exposure_pct: float | None = Field(description="Share of the period with a position open")
    trade_count: int
    average_trade_pnl: float | None
    average_trade_return_pct: float | None
    average_trade_duration_seconds: float | None
    buy_and_hold_return_pct: float | None = Field(
        description="Holding equal amounts of the bot's symbols over the same period"
    )
    equity_points: int = Field(description="How many equity points the figures rest on")

    @classmethod
    def of(cls, stats: BotStats) -> BotStatsOut:
        return cls(
            id=stats.strategy_id,
            start=stats.start,
            end=stats.end,
            capital=stats.capital,
            start_equity=stats.start_equity,
            final_equity=stats.final_equity,
            return_pct=stats.total_return_pct,
            max_drawdown_pct=stats.max_drawdown_pct,
            sharpe=stats.sharpe,
            sortino=stats.sortino,
            win_rate_pct=stats.win_rate_pct,
            profit_factor=stats.profit_factor,
            exposure_pct=stats.exposure_time_pct,
            trade_count=stats.trade_count,
            average_trade_pnl=stats.average_trade_pnl,
            average_trade_return_pct=stats.average_trade_return_pct,
            average_trade_duration_seconds=stats.average_trade_duration_seconds,
            buy_and_hold_return_pct=stats.buy_and_hold_return_pct,
            equity_points=stats.equity_points,
        )


class EquityPointOut(BaseModel):
    """The bot's equity at one time."""

    model_config = _FROZEN

    ts: datetime
    equity: float


class EquityOut(BaseModel):
    """A bot's equity over time, oldest first, thinned evenly to at most ``max_points``."""

    model_config = _FROZEN

    points: list[EquityPointOut]


class SymbolBotOut(BaseModel):
    """One bot on a symbol: its state and what it holds there."""

    model_config = _FROZEN

    id: str
    name: str
    state: StrategyState
    positions: list[PositionOut] = Field(description="Its open positions in the symbol")
    exposure: float = Field(description="Their notional at the last price")


class SymbolOut(BaseModel):
    """The bots on one symbol (configured for it, or holding it) and their total exposure
    against the symbol's cap (``risk.max_exposure_per_symbol``; null when uncapped)."""

    model_config = _FROZEN

    symbol: str
    path_symbol: str = Field(description="The symbol as a path segment, e.g. BTC-USDT")
    bots: list[SymbolBotOut]
    exposure: float
    cap: float | None
    cap_used_pct: float | None


__all__ = ["BotStatsOut", "EquityOut", "EquityPointOut", "SymbolBotOut", "SymbolOut"]
