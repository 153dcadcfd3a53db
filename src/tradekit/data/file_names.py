"""Candle file names that carry their series: ``BTC-USDT_1h.parquet`` is BTC/USDT on 1h.

The name is the symbol with ``/`` written as ``-`` and ``:`` as ``+`` (file names
cannot hold either), an underscore, the timeframe, and the file type's suffix.
``tradekit data download`` writes these names, and ``load_candles`` reads the
symbol and timeframe back from them when the file has no such columns and none
is given.
"""

from __future__ import annotations

from tradekit.data.sources import SeriesKey
from tradekit.errors import DataError
from tradekit.timeframes import TIMEFRAME_SECONDS

_ENCODED = {"/": "-", ":": "+"}
_DECODED = {written: original for original, written in _ENCODED.items()}


def series_file_stem(symbol: str, timeframe: str) -> str:
    """The file name, without suffix, holding ``symbol`` on ``timeframe``.

    ``DataError`` when the name could not be read back as the same series: a symbol
    already holding ``-`` or ``+``, or any character a file name cannot hold.
    """
    stem = "".join(_ENCODED.get(char, char) for char in symbol) + f"_{timeframe}"
    if timeframe not in TIMEFRAME_SECONDS or read_series_file_stem(stem) != (symbol, timeframe):
        raise DataError(
            f"cannot name a candle file after {symbol} {timeframe}: the name {stem!r} would not "
            "read back as the same symbol and timeframe"
        )
    if any(char in stem for char in '\\<>"|?*\0') or stem.startswith("."):
        raise DataError(f"cannot name a candle file after {symbol}: {stem!r} is no file name")
    return stem


def read_series_file_stem(stem: str) -> SeriesKey | None:
    """The (symbol, timeframe) a file name stem names; ``None`` if it follows no such pattern."""
    written, separator, timeframe = stem.rpartition("_")
    if not separator or not written or timeframe not in TIMEFRAME_SECONDS:
        return None
    if any(char in written for char in _ENCODED):
        return None
    return "".join(_DECODED.get(char, char) for char in written), timeframe


__all__ = ["read_series_file_stem", "series_file_stem"]
