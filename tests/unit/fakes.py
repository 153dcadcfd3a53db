"""Small fakes for unit tests of analyzers, filters and the multi-timeframe gate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from tradekit.domain import Candle, Direction, Signal
from tradekit.timeframes import timeframe_delta

START = datetime(2024, 1, 1, tzinfo=UTC)
"""A Monday, 00:00 UTC: aligned to every timeframe."""


def make_candle(
    ts: datetime = START,
    close: float = 100.0,
    *,
    open_: float | None = None,
    high: float | None = None,
    low: float | None = None,
    volume: float = 100.0,
    symbol: str = "BTC/USDT",
    timeframe: str = "1h",
) -> Candle:
    """A valid candle; high and low default to just around open and close."""
    opened = close if open_ is None else open_
    return Candle(
        symbol=symbol,
        timeframe=timeframe,
        ts=ts,
        open=opened,
        high=max(opened, close) + 1.0 if high is None else high,
        low=min(opened, close) - 1.0 if low is None else low,
        close=close,
        volume=volume,
    )


def candle_at(
    hour: int,
    minute: int = 0,
    timeframe: str = "1h",
    *,
    close: float = 100.0,
    volume: float = 100.0,
) -> Candle:
    """A candle opening at ``hour:minute`` on the first test day."""
    ts = START + timedelta(hours=hour, minutes=minute)
    return make_candle(ts, close, volume=volume, timeframe=timeframe)


def candle_stream(
    closes: Sequence[float],
    timeframe: str = "1h",
    start: datetime = START,
    symbol: str = "BTC/USDT",
) -> list[Candle]:
    """Consecutive candles of ``timeframe``, each opening at the previous close."""
    step = timeframe_delta(timeframe)
    return [
        make_candle(start + index * step, close, symbol=symbol, timeframe=timeframe)
        for index, close in enumerate(closes)
    ]


class FakeBarView:
    """A ``BarView`` over series of values: ``series[ref][bar]``, ``None`` meaning warming up.

    ``at(bar)`` moves it; ``reads`` counts ``value`` calls, so tests can check that a
    quiet candle reads only what it needs.
    """

    def __init__(
        self,
        series: Mapping[str, Sequence[float | None]] | None = None,
        *,
        candle: Candle | None = None,
        bar: int = 0,
        symbol: str = "BTC/USDT",
    ) -> None:
        self.series = dict(series or {})
        self._candle = candle or make_candle(symbol=symbol)
        self._bar = bar
        self._symbol = symbol
        self.reads = 0

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def bar(self) -> int:
        return self._bar

    @property
    def candle(self) -> Candle:
        return self._candle

    def at(self, bar: int) -> FakeBarView:
        self._bar = bar
        return self

    def value(self, ref: str, back: int = 0) -> float | None:
        self.reads += 1
        values = self.series[ref]
        index = self._bar - back
        if index < 0 or index >= len(values):
            return None
        return values[index]

    def bars(self) -> range:
        """Every bar index the longest series covers."""
        return range(max((len(values) for values in self.series.values()), default=0))


class FixedAnalyzer:
    """An analyzer that says ``direction`` at full strength on every candle, or never (``None``)."""

    def __init__(self, name: str, direction: Direction | None) -> None:
        self.name = name
        self.references: tuple[str, ...] = (name,)
        self._direction = direction

    def analyze(self, view: object) -> Signal | None:
        if self._direction is None:
            return None
        return Signal(self._direction, 1.0, "fixed", self.name)
