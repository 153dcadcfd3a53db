"""tradekit: run many isolated trading strategies side by side over shared market data."""
