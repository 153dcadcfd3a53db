"""``CandlePacer``: releases candles at a fixed rate, scheduled against a monotonic deadline."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class CandlePacer:
    """Lets a replay deliver exactly ``per_second`` candles per second, however long each takes.

    Candle ``k`` (counted from 0) is released ``k / per_second`` seconds after the
    first one, on the monotonic clock: the time spent processing a candle is part
    of its interval instead of being added to it, and a candle that ran late
    shortens the next wait rather than shifting every later candle. One per run.
    """

    def __init__(
        self,
        per_second: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not (math.isfinite(per_second) and per_second > 0):
            raise ValueError(f"per_second must be a finite number > 0, got {per_second!r}")
        self._interval = 1.0 / per_second
        self._monotonic = monotonic
        self._sleep = sleep
        self._start: float | None = None
        self._released = 0

    def wait(self) -> None:
        """Block until the next candle is due; the first one is due at once."""
        now = self._monotonic()
        if self._start is None:
            self._start = now
        # Multiplying from the start, not adding intervals up, keeps rounding from drifting.
        delay = self._start + self._released * self._interval - now
        self._released += 1
        if delay > 0:
            self._sleep(delay)


__all__ = ["CandlePacer"]
