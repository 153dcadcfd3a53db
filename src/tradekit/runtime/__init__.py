"""The runtime layer, above the containers: ``bootstrap`` assembles the objects of one run
for a given mode, and the engine, journal writer, replays, backtests and live runs use them.

Backtests, live and paper runs and the testing kit all build their runtime here (validation
runs a build's checks without one, ``tradekit.validation``); the mode, not a setting,
decides whether real orders are in reach. The
per-strategy orchestrators stay below, in ``tradekit.orchestrators``.
"""

from tradekit.runtime.bootstrap import RunMode, Runtime, bootstrap
from tradekit.runtime.live_guard import LiveMarketData, is_live_market_data

__all__ = ["LiveMarketData", "RunMode", "Runtime", "bootstrap", "is_live_market_data"]
