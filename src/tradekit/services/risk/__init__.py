"""Risk: one strategy's limits and the exposure caps across all strategies."""
