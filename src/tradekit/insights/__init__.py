"""Read-only figures over the journal database: per-strategy holdings and results, exposure
per symbol, equity over time and bot statistics, for ``tradekit report`` and the bot service.

Every function here only reads a journal; none needs the engine to be running.
"""

from tradekit.insights.bot_stats import BotStats, bot_stats
from tradekit.insights.equity import DEFAULT_MAX_POINTS, bot_equity, equity_curve
from tradekit.insights.holdings import (
    OpenPositionReport,
    StrategyReport,
    SymbolBot,
    SymbolExposure,
    strategy_report,
    strategy_reports,
    symbol_exposures,
)
from tradekit.insights.stats_tracker import StatsTracker

__all__ = [
    "DEFAULT_MAX_POINTS",
    "BotStats",
    "OpenPositionReport",
    "StatsTracker",
    "StrategyReport",
    "SymbolBot",
    "SymbolExposure",
    "bot_equity",
    "bot_stats",
    "equity_curve",
    "strategy_report",
    "strategy_reports",
    "symbol_exposures",
]
