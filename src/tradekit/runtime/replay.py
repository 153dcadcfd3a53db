"""Replaying bulk-loaded series through the engine, in close-time order, for ``backtest``.

Candles go out in the order of their close time, ties broken by symbol, then
timeframe; on each candle the strategies of its route run in load order. Two
ways, with the same results:

- ``replay_every_bar`` runs every candle through every strategy.
- ``replay_skipping_quiet_bars`` runs a candle through a strategy's pipeline only
  when it could matter: the strategy needs it (an order or action pending, a
  position rule checked on every candle, orders handled or a failure on its
  previous candle), or an analyzer could fire on it with a signal that could act
  on the strategy's state (open a position while flat, close the one it holds).
  On a candle where signals could fire but not act, the analyzers are only asked
  and their signals published, as the pipeline would. Candles passed over get,
  in bulk and before the strategy's next candle, the bookkeeping a quiet candle
  gets (marks, equity points, counts). Routes are merged with a heap keyed like
  the first way, and the strategies of a route due on a candle run in load order,
  so the candles a strategy does see come in the same order, interleaved with
  the other strategies' the same way: the event log is the same.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from tradekit.domain import Candle
from tradekit.logs import log
from tradekit.runtime.candle_replay import SeriesReplay
from tradekit.runtime.engine import Engine, RouteEntry
from tradekit.services.market.clock import ManualClock
from tradekit.services.signals.fire_masks import SignalMasks

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
    position: int
    """Its place in the route's load order."""
    masks: SignalMasks | None
    """Bars an analyzer could fire on and what their signals could do; ``None``: this
    strategy sees every candle."""
    next_bar: int
    """The next bar this strategy must see."""
    seen_through: int
    """The last bar this strategy has seen or passed over."""
    must_step: bool = True
    """Whether ``next_bar`` needs the whole pipeline, whatever its signals could do."""
    signal_index: int = 0
    """When ``next_bar`` is a signal bar (and ``must_step`` False): its index in ``masks``."""


@dataclass(slots=True)
class _Route:
    """One series, the strategies on it in load order, and which of them are due when."""

    replay: SeriesReplay
    followers: list[_Follower]
    due: list[tuple[int, int]] = field(default_factory=list)
    """Heap of (next bar, place in load order): a candle's strategies pop in load order."""


def _follower(entry: RouteEntry, replay: SeriesReplay, position: int) -> _Follower:
    first, stop = replay.first, replay.stop
    try:
        masks = entry.orchestrator.signal_masks(first, stop)
    except Exception as exc:  # a broken mask costs speed, never results: see every candle
        log.bind(strategy_id=entry.strategy_id).warning(
            "cannot tell on which candles its analyzers fire ({}: {}); it sees every candle",
            type(exc).__name__,
            exc,
        )
        masks = None
    follower = _Follower(entry, position, masks, first, first - 1)
    if masks is not None:
        _advance(follower, first - 1, stop, must_step=False)
    return follower


def _pass_over(follower: _Follower, replay: SeriesReplay, stop: int) -> None:
    """Give ``follower`` the bookkeeping of the quiet candles after its last one, up to ``stop``."""
    first = follower.seen_through + 1
    if first >= stop:
        return
    rows = replay.rows(first, stop)
    follower.entry.orchestrator.pass_quiet_bars(replay.open_seconds[rows], *replay.stretch(rows))
    follower.seen_through = stop - 1


def _advance(follower: _Follower, bar: int, stop: int, must_step: bool) -> None:
    """Set the bar ``follower`` must see after ``bar``: the next one when ``must_step``
    (orders filled, actions run, a failure, or a rule that follows every candle), else the
    next bar an analyzer could fire on."""
    masks = follower.masks
    if masks is None or must_step:
        follower.next_bar = bar + 1
        follower.must_step = True
        return
    bars = masks.bars
    index = bisect.bisect_right(bars, bar)
    follower.signal_index = index
    follower.next_bar = bars[index] if index < len(bars) else stop
    follower.must_step = False


def _visit(
    engine: Engine, follower: _Follower, replay: SeriesReplay, candle: Candle, bar: int
) -> None:
    """Run ``candle`` (at ``bar``) through ``follower``, as much as it needs."""
    entry, stop = follower.entry, replay.stop
    orchestrator = entry.orchestrator
    masks = follower.masks
    if masks is None:
        engine.step(entry, candle, bar)
        follower.next_bar = bar + 1
        return
    if not follower.must_step and not orchestrator.signals_may_act(masks, follower.signal_index):
        catch_up = functools.partial(_pass_over, follower, replay, bar)
        ok = engine.step_signals(entry, candle, bar, catch_up)
        if not ok:  # the failure marked this candle, as the pipeline would have
            follower.seen_through = bar
        _advance(follower, bar, stop, must_step=not ok)
        return
    _pass_over(follower, replay, bar)
    handled = orchestrator.orders_handled
    ok = engine.step(entry, candle, bar)
    follower.seen_through = bar
    # Orders handled or a failure: the candle after settles exposure, reservations and counts.
    settling = not ok or orchestrator.orders_handled != handled
    _advance(follower, bar, stop, settling or orchestrator.needs_next_bar())


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
        entries = engine.route(replay.symbol, replay.timeframe)
        if not entries or not len(replay):
            continue
        followers = [_follower(entry, replay, place) for place, entry in enumerate(entries)]
        route = _Route(replay, followers)
        route.due = [(follower.next_bar, follower.position) for follower in followers]
        route.due = [due for due in route.due if due[0] < replay.stop]
        heapq.heapify(route.due)
        if route.due:
            # (close, symbol, timeframe) is unique per route, so the index is never compared.
            key = int(replay.close_seconds[route.due[0][0] - replay.first])
            heap.append((key, replay.symbol, replay.timeframe, len(routes)))
        routes.append(route)
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        close, symbol, timeframe, index = pop(heap)
        report.reached(close)
        route = routes[index]
        replay, due, followers = route.replay, route.due, route.followers
        bar = due[0][0]
        candle = replay.candle(bar)
        clock.set(candle.close_ts)
        stop = replay.stop
        while due and due[0][0] == bar:
            follower = followers[pop(due)[1]]
            _visit(engine, follower, replay, candle, bar)
            if follower.next_bar < stop:
                push(due, (follower.next_bar, follower.position))
        if due:
            key = int(replay.close_seconds[due[0][0] - replay.first])
            push(heap, (key, symbol, timeframe, index))
    for route in routes:
        for follower in route.followers:
            if follower.masks is not None:
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
