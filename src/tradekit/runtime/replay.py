"""Replaying bulk-loaded series through the engine, in close-time order, for ``backtest``.

Candles go out in the order of their close time, ties broken by symbol, then
timeframe; on each candle the strategies of its route run in load order. Two
ways, with the same results:

- ``replay_every_bar`` runs every candle through every strategy.
- ``replay_skipping_quiet_bars`` runs a candle through a strategy only when it
  could matter: an analyzer could fire on it, or the strategy needs it (an order
  or action pending, a position rule checked on every candle, orders handled or
  a failure on its previous candle). Candles passed over get, in bulk and before the
  strategy's next candle, the bookkeeping a quiet candle gets (marks, equity
  points, counts). Routes are merged with a heap keyed like the first way, so
  the candles a strategy does see come in the same order, interleaved with the
  other strategies' the same way: the event log is the same.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from tradekit.logs import log
from tradekit.runtime.candle_replay import SeriesReplay
from tradekit.runtime.engine import Engine, RouteEntry
from tradekit.services.market.clock import ManualClock

Progress = Callable[[int, int], None]
"""Called with (candles replayed, candles in all)."""


class _ProgressReport:
    """Calls ``progress`` about 100 times along the replay, the last time when it is complete."""

    def __init__(self, replays: Sequence[SeriesReplay], progress: Progress | None) -> None:
        self._progress = progress
        self.total = sum(len(replay) for replay in replays)
        self._every = max(1, self.total // 100)
        self._next = self._every
        closes = [replay.close_seconds for replay in replays]
        self._closes = np.sort(np.concatenate(closes)) if closes else np.empty(0, np.int64)
        self._next_close = self._close_of(self._next)

    def _close_of(self, count: int) -> int | None:
        """Close time of the ``count``-th candle in replay order; ``None`` past the last but one."""
        if self._progress is None or count >= self.total:
            return None
        return int(self._closes[count - 1])

    def counted(self, done: int) -> None:
        """``done`` candles are replayed (every bar replay)."""
        if self._progress is not None and (done % self._every == 0 or done == self.total):
            self._progress(done, self.total)

    def reached(self, close: int) -> None:
        """The replay reached candles that close at ``close`` (epoch seconds)."""
        if self._next_close is None or close < self._next_close:
            return
        assert self._progress is not None
        done = int(np.searchsorted(self._closes, close, side="right"))
        if done >= self.total:
            return  # reported by ``finish``
        self._progress(done, self.total)
        self._next = (done // self._every + 1) * self._every
        self._next_close = self._close_of(self._next)

    def finish(self) -> None:
        if self._progress is not None and self.total:
            self._progress(self.total, self.total)


def _merged_bars(replays: Sequence[SeriesReplay]) -> Iterator[tuple[SeriesReplay, int]]:
    """Every bar of every series in close-time order; ties by symbol, then timeframe."""
    keys = [
        zip(
            replay.close_seconds.tolist(),
            itertools.repeat(replay.symbol),
            itertools.repeat(replay.timeframe),
            range(replay.first, replay.stop),
            itertools.repeat(index),
            strict=False,  # only the first is finite
        )
        for index, replay in enumerate(replays)
    ]
    for _, _, _, bar, index in heapq.merge(*keys):
        yield replays[index], bar


def replay_every_bar(
    engine: Engine,
    clock: ManualClock,
    replays: Sequence[SeriesReplay],
    progress: Progress | None = None,
) -> int:
    """Run every candle of ``replays`` through every strategy on it; returns candles replayed."""
    report = _ProgressReport(replays, progress)
    processed = 0
    for replay, bar in _merged_bars(replays):
        candle = replay.candle(bar)
        clock.set(candle.close_ts)
        engine.on_bar(candle, bar)
        processed += 1
        report.counted(processed)
    return processed


@dataclass(slots=True)
class _Follower:
    """One strategy on one route during a replay that skips quiet candles."""

    entry: RouteEntry
    signal_bars: list[int] | None
    """Bars an analyzer could fire on, ascending; ``None``: this strategy sees every candle."""
    next_bar: int
    """The next bar this strategy must see."""
    seen_through: int
    """The last bar this strategy has seen or passed over."""


@dataclass(slots=True)
class _Route:
    """One series and the strategies on it, in load order."""

    replay: SeriesReplay
    followers: list[_Follower]
    next_bar: int = 0


def _follower(entry: RouteEntry, replay: SeriesReplay) -> _Follower:
    first, stop = replay.first, replay.stop
    try:
        mask = entry.orchestrator.signal_bars(first, stop)
    except Exception as exc:  # a broken mask costs speed, never results: see every candle
        log.bind(strategy_id=entry.strategy_id).warning(
            "cannot tell on which candles its analyzers fire ({}: {}); it sees every candle",
            type(exc).__name__,
            exc,
        )
        mask = None
    if mask is None:
        return _Follower(entry, None, first, first - 1)
    bars = (np.flatnonzero(mask) + first).tolist()
    return _Follower(entry, bars, bars[0] if bars else stop, first - 1)


def _pass_over(follower: _Follower, replay: SeriesReplay, stop: int) -> None:
    """Give ``follower`` the bookkeeping of the quiet candles after its last one, up to ``stop``."""
    first = follower.seen_through + 1
    if first >= stop:
        return
    rows = replay.rows(first, stop)
    follower.entry.orchestrator.pass_quiet_bars(
        replay.open_seconds[rows], replay.closes[rows], replay.highs[rows], replay.lows[rows]
    )
    follower.seen_through = stop - 1


def _next_bar(follower: _Follower, bar: int, stop: int, settling: bool) -> int:
    """The bar ``follower`` must see after ``bar``; ``settling`` when ``bar`` filled orders,
    ran actions or failed: the candle after settles exposure, reservations and failure counts."""
    signal_bars = follower.signal_bars
    if signal_bars is None or settling or follower.entry.orchestrator.needs_next_bar():
        return bar + 1
    index = bisect.bisect_right(signal_bars, bar)
    return signal_bars[index] if index < len(signal_bars) else stop


def replay_skipping_quiet_bars(
    engine: Engine,
    clock: ManualClock,
    replays: Sequence[SeriesReplay],
    progress: Progress | None = None,
) -> int:
    """Replay ``replays`` running each strategy only on the candles it cannot pass over.

    Same results as ``replay_every_bar``; returns the candles replayed (all of them).
    """
    report = _ProgressReport(replays, progress)
    routes: list[_Route] = []
    heap: list[tuple[int, str, str, int]] = []
    for replay in replays:
        followers = [
            _follower(entry, replay) for entry in engine.route(replay.symbol, replay.timeframe)
        ]
        if not followers or not len(replay):
            continue
        route = _Route(replay, followers, min(follower.next_bar for follower in followers))
        if route.next_bar < replay.stop:
            # (close, symbol, timeframe) is unique per route, so the index is never compared.
            key = int(replay.close_seconds[route.next_bar - replay.first])
            heap.append((key, replay.symbol, replay.timeframe, len(routes)))
        routes.append(route)
    heapq.heapify(heap)
    step = engine.step
    while heap:
        close, symbol, timeframe, index = heapq.heappop(heap)
        report.reached(close)
        route = routes[index]
        replay, bar = route.replay, route.next_bar
        candle = replay.candle(bar)
        clock.set(candle.close_ts)
        stop = replay.stop
        for follower in route.followers:
            if follower.next_bar != bar:
                continue
            orchestrator = follower.entry.orchestrator
            if follower.signal_bars is None:
                step(follower.entry, candle, bar)
                follower.next_bar = bar + 1
                continue
            _pass_over(follower, replay, bar)
            handled = orchestrator.orders_handled
            ok = step(follower.entry, candle, bar)
            follower.seen_through = bar
            settling = not ok or orchestrator.orders_handled != handled
            follower.next_bar = _next_bar(follower, bar, stop, settling)
        route.next_bar = min(follower.next_bar for follower in route.followers)
        if route.next_bar < stop:
            key = int(replay.close_seconds[route.next_bar - replay.first])
            heapq.heappush(heap, (key, symbol, timeframe, index))
    for route in routes:
        for follower in route.followers:
            if follower.signal_bars is not None:
                _pass_over(follower, route.replay, route.replay.stop)
    last = max(
        (replay for replay in replays if len(replay)),
        key=lambda replay: (int(replay.close_seconds[-1]), replay.symbol, replay.timeframe),
        default=None,
    )
    if last is not None:
        clock.set(last.candle(last.stop - 1).close_ts)
    report.finish()
    return report.total
