"""Candle timeframes: the supported names, their length, and alignment of timestamps."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime, timedelta

TIMEFRAME_SECONDS: dict[str, int] = {
    "1m": 60,
    "3m": 3 * 60,
    "5m": 5 * 60,
    "15m": 15 * 60,
    "30m": 30 * 60,
    "1h": 3600,
    "2h": 2 * 3600,
    "4h": 4 * 3600,
    "6h": 6 * 3600,
    "8h": 8 * 3600,
    "12h": 12 * 3600,
    "1d": 86400,
    "1w": 7 * 86400,
}

# Weekly candles open on Monday 00:00 UTC, as on most exchanges; the epoch was a Thursday.
_WEEK_OFFSET_SECONDS = 4 * 86400


def unknown_timeframe_message(name: object) -> str:
    """Explain that ``name`` is not a timeframe, with a suggestion when one is close."""
    known = ", ".join(TIMEFRAME_SECONDS)
    close = difflib.get_close_matches(str(name), TIMEFRAME_SECONDS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown timeframe {name!r}; expected one of {known}{hint}"


def timeframe_seconds(timeframe: str) -> int:
    """Length of one candle of ``timeframe`` in seconds; ``ValueError`` when unknown."""
    try:
        return TIMEFRAME_SECONDS[timeframe]
    except KeyError:
        raise ValueError(unknown_timeframe_message(timeframe)) from None


def timeframe_delta(timeframe: str) -> timedelta:
    """Length of one candle of ``timeframe`` as a ``timedelta``."""
    # Looked up, not built: every candle's close time asks for it (timedeltas are immutable).
    delta = _DELTAS.get(timeframe)
    return delta if delta is not None else timedelta(seconds=timeframe_seconds(timeframe))


_DELTAS = {
    timeframe: timedelta(seconds=seconds) for timeframe, seconds in TIMEFRAME_SECONDS.items()
}


def _offset(timeframe: str) -> int:
    return _WEEK_OFFSET_SECONDS if timeframe == "1w" else 0


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_timestamp(ts: datetime, timeframe: str) -> datetime:
    """The open time of the ``timeframe`` candle that contains ``ts`` (UTC)."""
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no time zone; expected UTC")
    step = timeframe_seconds(timeframe)
    offset = _offset(timeframe)
    # Whole-number arithmetic on timedeltas: a float timestamp loses microseconds far
    # from 1970, and int() would round towards zero before it.
    seconds = (ts - _EPOCH) // timedelta(seconds=1)
    floored = (seconds - offset) // step * step + offset
    return _EPOCH + timedelta(seconds=floored)


def is_aligned(ts: datetime, timeframe: str) -> bool:
    """True when ``ts`` is exactly the open time of a ``timeframe`` candle."""
    return ts.tzinfo is not None and ts.microsecond == 0 and floor_timestamp(ts, timeframe) == ts


def is_higher_timeframe(candidate: str, base: str) -> bool:
    """True when ``candidate`` is strictly longer than ``base`` and a whole multiple of it."""
    higher, lower = timeframe_seconds(candidate), timeframe_seconds(base)
    return higher > lower and higher % lower == 0
