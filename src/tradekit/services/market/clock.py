"""Clocks: the wall clock for live runs, a settable clock for replays and tests."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """The wall clock in UTC; one per process."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that shows whatever time it was last set to; for backtests and tests."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment
