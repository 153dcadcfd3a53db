"""Per-strategy orchestrators: the services that decide, candle by candle, what a strategy does."""
