"""Market data: the shared candle history and the clocks."""
