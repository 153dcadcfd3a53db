"""The runtime layer: the engine, the journal writer, replays, backtests and live runs, built
above the containers; the per-strategy orchestrators stay below in ``tradekit.orchestrators``."""
