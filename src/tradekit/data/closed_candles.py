"""``ClosedCandles``: a venue's raw OHLCV rows in, each closed candle out once, in order.

"Closed" is read from the venue's own candle times, never the local clock: a
row is closed once the venue has shown a row with a later open time. Rows may
come twice, late, out of order or revised; the latest version of a row wins
until it is delivered, and nothing at or before the last delivered open time is
ever delivered again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tradekit.domain import Candle
from tradekit.errors import DataError
from tradekit.timeframes import timeframe_seconds

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ClosedCandles:
    """The delivery state of one (symbol, timeframe) feed; one per feed, for its whole life.

    ``offer`` returns the rows that became closed, as candles in open-time order.
    A missing open time between the last delivered candle and a closed row is a
    gap: delivery stops there and ``gap_from`` says where a REST back-fill must
    start. Rows offered with ``complete=True`` (a back-fill fetched from
    ``gap_from``) are taken as the venue's whole record, so a time still missing
    then is one the venue has no candle for, and delivery goes on past it.
    """

    def __init__(self, symbol: str, timeframe: str, venue: str) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.venue = venue
        self.step_ms = timeframe_seconds(timeframe) * 1000
        self.last_ms: int | None = None
        """Open time (epoch ms) of the last delivered candle."""
        self.newest_ms: int | None = None
        """Open time of the newest row the venue has shown (the forming candle)."""
        self._pending: dict[int, Sequence[Any]] = {}
        self._gap = False

    @property
    def gap_from(self) -> int | None:
        """Open time (ms) a back-fill must start from, when a gap holds delivery back."""
        if not self._gap or self.last_ms is None:
            return None
        return self.last_ms + self.step_ms

    def offer(self, rows: Iterable[Sequence[Any]], *, complete: bool = False) -> list[Candle]:
        """Take ``[ms, open, high, low, close, volume]`` rows; return the newly closed candles."""
        for row in rows:
            open_ms = self._open_ms(row)
            if self.last_ms is None or open_ms > self.last_ms:
                self._pending[open_ms] = row
            if self.newest_ms is None or open_ms > self.newest_ms:
                self.newest_ms = open_ms
        if complete:
            self._gap = False
        closed: list[Candle] = []
        for open_ms in sorted(self._pending):
            if self.newest_ms is None or open_ms >= self.newest_ms:
                break
            expected = None if self.last_ms is None else self.last_ms + self.step_ms
            if expected is not None and open_ms != expected and not complete:
                self._gap = True
                break
            closed.append(self._candle(open_ms, self._pending.pop(open_ms)))
            self.last_ms = open_ms
        return closed

    def _where(self) -> str:
        return f"{self.venue} {self.symbol} {self.timeframe}"

    def _open_ms(self, row: Sequence[Any]) -> int:
        try:
            if isinstance(row, str | bytes) or len(row) < 6:
                raise ValueError("expected [ms, open, high, low, close, volume]")
            value = row[0]
            if isinstance(value, bool) or float(value) != int(value):
                raise ValueError("the open time must be whole epoch milliseconds")
            return int(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise DataError(
                f"{self._where()}: the venue sent a malformed row {row!r}: {exc}"
            ) from exc

    def _candle(self, open_ms: int, row: Sequence[Any]) -> Candle:
        try:
            open_, high, low, close = (float(value) for value in row[1:5])
            volume = 0.0 if row[5] is None else float(row[5])
            ts = _EPOCH + timedelta(milliseconds=open_ms)
            return Candle(self.symbol, self.timeframe, ts, open_, high, low, close, volume)
        except (TypeError, ValueError, DataError) as exc:
            raise DataError(f"{self._where()}: the venue sent a bad candle {row!r}: {exc}") from exc


__all__ = ["ClosedCandles"]
