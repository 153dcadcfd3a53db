"""Refusing live candles that cannot have closed yet: dated beyond the wall clock.

A candle stamped far in the future, once appended, makes its series refuse every
real candle after it (they look older) for the rest of the process. Such a candle
is dropped with a warning before it reaches the engine; the series never sees it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Protocol

from tradekit.domain import Candle
from tradekit.logs import log

DEFAULT_CLOCK_SKEW = timedelta(seconds=5)
"""How far ahead of our clock a venue's clock may run before its candles are refused."""


class Clock(Protocol):
    """Anything that tells the current time (aware, UTC)."""

    def now(self) -> datetime: ...


def plausible_candles(
    candles: Iterable[Candle], clock: Clock, skew: timedelta = DEFAULT_CLOCK_SKEW
) -> Iterator[Candle]:
    """``candles`` without those whose close time is beyond ``clock.now() + skew``.

    A closed candle cannot close in the future; ``skew`` allows for the venue's
    clock running slightly ahead of ours. Each refused candle is logged as a warning.
    """
    for candle in candles:
        latest = clock.now() + skew
        if candle.close_ts > latest:
            log.warning(
                "refused candle {} {} at {}: it closes at {}, after the current time {} "
                "plus {} s of clock skew; the series keeps its last real candle",
                candle.symbol,
                candle.timeframe,
                candle.ts.isoformat(),
                candle.close_ts.isoformat(),
                (latest - skew).isoformat(),
                skew.total_seconds(),
            )
            continue
        yield candle


__all__ = ["DEFAULT_CLOCK_SKEW", "Clock", "plausible_candles"]
