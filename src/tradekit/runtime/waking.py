"""``WakingSource``: a candle source that never keeps the run asleep for long.

A live feed may wait minutes for the next closed candle, and a run driven by
the registry must still apply changes within seconds. The source is read on a
thread of its own into a queue; the run's thread takes candles from the queue
in the order they came and gets ``IDLE`` whenever none came for ``timeout``
seconds, so it can look at the registry and wait again. Candles are processed
on the run's thread only, as before.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Final

from tradekit.domain import Candle


class Idle:
    """No candle came within the timeout."""

    def __repr__(self) -> str:
        return "IDLE"


IDLE: Final = Idle()

_QUEUED = 256
"""Candles read ahead at most: a replay does not run far ahead of the run."""


class _End:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class WakingSource:
    """Reads ``candles`` on a daemon thread; one per run, closed when the run ends."""

    def __init__(self, candles: Iterable[Candle], timeout: float) -> None:
        self._candles = candles
        self._timeout = timeout
        self._queue: queue.Queue[Candle | _End] = queue.Queue(maxsize=_QUEUED)
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, name="candle-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        error: BaseException | None = None
        try:
            for candle in self._candles:
                if not self._put(candle):
                    return
        except BaseException as exc:  # handed to the run's thread, which raises it
            error = exc
        self._put(_End(error))

    def _put(self, item: Candle | _End) -> bool:
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=self._timeout)
            except queue.Full:
                continue
            return True
        return False

    def __iter__(self) -> Iterator[Candle | Idle]:
        while True:
            try:
                item = self._queue.get(timeout=self._timeout)
            except queue.Empty:
                yield IDLE
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def close(self) -> None:
        """Stop reading; a reader blocked inside the source ends with the process."""
        self._closing.set()
        self._reader.join(timeout=self._timeout * 2)


__all__ = ["IDLE", "Idle", "WakingSource"]
