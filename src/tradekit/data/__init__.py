"""Market data sources: generated series today; files and exchanges join them."""

from tradekit.data.synthetic import SyntheticSpec, synthetic_candles, synthetic_frame

__all__ = ["SyntheticSpec", "synthetic_candles", "synthetic_frame"]
