"""Market data sources: generated series, candle files, in-memory frames and live ccxt polling."""

from tradekit.data.ccxt_source import CcxtPollingSource, default_poll_seconds
from tradekit.data.files import FileSource, LoadedCandles, load_candles
from tradekit.data.resample import resample
from tradekit.data.sources import FrameSource, Gap, SeriesGaps, SyntheticSource
from tradekit.data.synthetic import SyntheticSpec, synthetic_candles, synthetic_frame

__all__ = [
    "CcxtPollingSource",
    "FileSource",
    "FrameSource",
    "Gap",
    "LoadedCandles",
    "SeriesGaps",
    "SyntheticSource",
    "SyntheticSpec",
    "default_poll_seconds",
    "load_candles",
    "resample",
    "synthetic_candles",
    "synthetic_frame",
]
