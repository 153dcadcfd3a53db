"""The public path of ``backtest``; the implementation lives in ``tradekit.runtime.backtest``."""

from tradekit.runtime.backtest import BacktestResult, FrameProvider, StrategyResult, backtest

__all__ = ["BacktestResult", "FrameProvider", "StrategyResult", "backtest"]
