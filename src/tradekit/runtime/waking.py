"""``WakingSource``: a candle source that never keeps the run asleep for long.

A live feed may wait minutes for the next closed candle, and a run driven by
the registry must still apply changes within seconds. The source is read on a
thread of its own; the run's thread asks for one candle at a time and gets
``IDLE`` whenever none came for ``timeout`` seconds, so it can look at the
registry and wait again. Nothing is read ahead: the next candle is asked of the
source only once the run has processed the previous one, as without the
thread, so a run stopped or killed between candles has read no candle it did
not process. Candles are processed on the run's thread only.

A ``Doorbell`` wakes the run's thread at once: the reader rings it when a candle is
ready, and whoever shares it (the bot service, when a change was just asked) rings
it to have the run look at the registry now rather than at its next wake-up.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Final

from tradekit.domain import Candle


class Idle:
    """No candle came within the timeout."""

    def __repr__(self) -> str:
        return "IDLE"


IDLE: Final = Idle()


class Doorbell:
    """A wake-up any thread may ring and one thread waits for.

    A ring while nobody waits is kept (one, however many rings), so the next wait
    returns at once: a ring is never missed, only merged with others. Whoever waits
    looks at what it was woken for after the wait returns.
    """

    def __init__(self) -> None:
        self._bell = threading.Lock()
        self._bell.acquire()
        self._guard = threading.Lock()
        self._rung = False

    def ring(self) -> None:
        with self._guard:
            if not self._rung:
                self._rung = True
                self._bell.release()

    def wait(self, timeout: float) -> bool:
        """Wait until rung (True) or until ``timeout`` seconds passed (False)."""
        if not self._bell.acquire(timeout=timeout):
            return False
        with self._guard:
            self._rung = False
        return True


class _End:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class WakingSource:
    """Reads ``candles`` on a daemon thread; one per run, closed when the run ends.

    The two threads hand each candle over through one slot, a plain lock used as a
    signal (``wanted``: the run asks for a candle) and the ``doorbell`` (rung when the
    slot holds one, or by anyone sharing it): a lock's acquire and release run in C,
    where a ``queue.Queue`` and a ``Semaphore`` run a Python ``Condition`` per call,
    which the engine thread paid on every candle. Each ring of the doorbell without a
    candle in the slot gives ``IDLE`` at once.
    """

    def __init__(
        self, candles: Iterable[Candle], timeout: float, doorbell: Doorbell | None = None
    ) -> None:
        self._candles = candles
        self._timeout = timeout
        self._slot: Candle | _End | None = None
        # Held at first: the reader waits to be asked.
        self._wanted = threading.Lock()
        self._wanted.acquire()
        self._doorbell = Doorbell() if doorbell is None else doorbell
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, name="candle-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        candles = iter(self._candles)
        while self._asked():
            try:
                candle = next(candles, None)
            except BaseException as exc:  # handed to the run's thread, which raises it
                self._hand_over(_End(exc))
                return
            if candle is None:
                self._hand_over(_End(None))
                return
            self._hand_over(candle)

    def _hand_over(self, item: Candle | _End) -> None:
        self._slot = item
        self._doorbell.ring()

    def _asked(self) -> bool:
        """Wait until the run asks for the next candle; False once it is closing."""
        while not self._closing.is_set():
            if self._wanted.acquire(timeout=self._timeout):
                return not self._closing.is_set()
        return False

    def __iter__(self) -> Iterator[Candle | Idle]:
        while True:
            self._wanted.release()
            self._doorbell.wait(self._timeout)
            # Woken without a candle (a timeout, or a ring from outside): the run wakes up too.
            while self._slot is None:
                yield IDLE
                self._doorbell.wait(self._timeout)
            item, self._slot = self._slot, None
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            assert item is not None  # the reader fills the slot before it signals
            yield item

    def close(self) -> None:
        """Stop reading; a reader blocked inside the source ends with the process."""
        self._closing.set()
        # Wake a reader waiting to be asked, rather than leave it to its timeout.
        with contextlib.suppress(RuntimeError):  # not held: the reader is not waiting on it
            self._wanted.release()
        self._reader.join(timeout=self._timeout * 2)


__all__ = ["IDLE", "Doorbell", "Idle", "WakingSource"]
