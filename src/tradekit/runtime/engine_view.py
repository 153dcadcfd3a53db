"""What other threads may know of a running engine: an immutable view, swapped whole.

The engine's objects belong to its thread. ``EngineViewPublisher`` is handed to
``run_live`` as its observer and runs on that thread: after each candle it
rebuilds the views of the bots on that candle's series, after registry changes
it rebuilds the bots they changed, and each time it publishes a new ``EngineView`` by
replacing one reference. Readers (the bot service's API) take ``latest()`` and
never touch the engine. ``ask_poll`` has the engine look at the registry
before its next candle, and ``wait_for_poll`` lets a reader wait until it has
looked again, so a change it asked for can be read back
settled without polling on a clock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from tradekit.domain import Candle, Position, Side
from tradekit.runtime.engine import Engine
from tradekit.runtime.waking import Doorbell
from tradekit.strategy_state import StrategyState

FeedKey = tuple[str, str]

CANDLE_TIMES_KEPT = 1000
"""Per-candle durations a view carries: the latest ones, enough for a p99."""


@dataclass(frozen=True, slots=True)
class PositionView:
    """One open position of a bot, valued at the last price its bot saw."""

    symbol: str
    side: Side
    quantity: float
    avg_entry_price: float
    opened_at: datetime
    last_price: float | None
    unrealized_pnl: float
    stop_loss: float | None
    take_profit: float | None


@dataclass(frozen=True, slots=True)
class BotView:
    """One bot as its engine holds it at the moment the view was published."""

    strategy_id: str
    name: str
    symbols: tuple[str, ...]
    timeframe: str
    state: StrategyState
    open_positions: tuple[PositionView, ...]
    realized_pnl: float
    unrealized_pnl: float
    last_candle: datetime | None
    errors: int


@dataclass(frozen=True, slots=True)
class FeedView:
    """One candle series the engine reads: its last candle and how far behind it is."""

    symbol: str
    timeframe: str
    last_candle: datetime | None
    lag_seconds: float | None


@dataclass(frozen=True, slots=True)
class EngineView:
    """The engine of one ``tradekit serve`` at one moment; never changed once published."""

    mode: str
    source: str
    running: bool
    published_at: datetime | None
    candles: int
    feeds: tuple[FeedView, ...]
    bots: Mapping[str, BotView] = field(default_factory=lambda: MappingProxyType({}))
    candle_seconds: tuple[float, ...] = ()
    """How long the engine took over each of its latest candles (at most
    ``CANDLE_TIMES_KEPT``), oldest first: its own per-candle latency."""

    def bots_by_state(self) -> dict[str, int]:
        """How many bots are in each state (every state listed, zero included)."""
        counts = {state.value: 0 for state in StrategyState}
        for bot in self.bots.values():
            counts[bot.state.value] += 1
        return counts


class RunObserver(Protocol):
    """What ``run_live`` tells its observer, always on the engine's thread."""

    def started(self, engine: Engine, now: Callable[[], datetime], doorbell: Doorbell) -> None:
        """The run loaded its bots; ringing ``doorbell`` (from any thread) wakes it at once."""

    def candle(self, candle: Candle, seconds: float) -> None:
        """``candle`` was processed; the engine took ``seconds`` over it (journal included)."""

    def polled(self, changed: Sequence[str]) -> None:
        """The run looked at the registry; ``changed``: the strategies it applied (or
        refused) a change of."""

    def wants_poll(self) -> bool:
        """True when the run should look at the registry now, not when it is next due (a
        change was just asked in this process); answered once per asking."""

    def stopped(self) -> None: ...


def _position_view(position: Position, last_price: float | None) -> PositionView:
    price = position.avg_entry_price if last_price is None else last_price
    return PositionView(
        symbol=position.symbol,
        side=position.side,
        quantity=position.quantity,
        avg_entry_price=position.avg_entry_price,
        opened_at=position.opened_at,
        last_price=last_price,
        unrealized_pnl=position.unrealized_pnl(price),
        stop_loss=position.stop_loss,
        take_profit=position.take_profit,
    )


class EngineViewPublisher:
    """Builds and publishes the views of one engine; one per ``tradekit serve``.

    ``started``, ``candle``, ``polled``, ``wants_poll`` and ``stopped`` run on the
    engine's thread; ``latest``, ``ask_poll`` and ``wait_for_poll`` on any.
    """

    def __init__(self, mode: str, source: str) -> None:
        self._mode = mode
        self._source = source
        self._engine: Engine | None = None
        self._now: Callable[[], datetime] | None = None
        self._last: dict[FeedKey, Candle] = {}
        self._candles = 0
        self._candle_seconds: deque[float] = deque(maxlen=CANDLE_TIMES_KEPT)
        self._bots: dict[str, BotView] = {}
        self._view: EngineView | None = None
        self._polls = 0
        self._poll_asked = False
        self._doorbell: Doorbell | None = None
        self._polled = threading.Condition()
        self._published = threading.Event()

    # -- readers (any thread) ---------------------------------------------------------------

    def latest(self) -> EngineView | None:
        """The newest view; ``None`` before the engine started."""
        return self._view

    def wait_for_first_view(self) -> EngineView:
        """Wait until a view is published: the engine loaded its bots, or it stopped."""
        self._published.wait()
        view = self._view
        assert view is not None  # set before the event
        return view

    @property
    def polls(self) -> int:
        """How many times the engine has looked at the registry so far."""
        return self._polls

    def ask_poll(self) -> None:
        """Have the engine look at the registry now, or right after the candle it is on (a
        change was just written to it), instead of when its next look is due."""
        self._poll_asked = True
        self.wake_run()

    def wake_run(self) -> None:
        """Wake the run if it waits (for a candle, or for a paced replay's next turn); as
        it wakes it asks ``wants_poll`` and looks whether it was stopped."""
        doorbell = self._doorbell
        if doorbell is not None:
            doorbell.ring()

    def wait_for_poll(self, after: int, timeout: float) -> bool:
        """Wait until the engine has looked at the registry more than ``after`` times, or
        has stopped; False when ``timeout`` seconds passed first."""
        with self._polled:
            return self._polled.wait_for(
                lambda: self._polls > after or (self._view is not None and not self._view.running),
                timeout,
            )

    # -- the engine's thread ----------------------------------------------------------------

    def started(self, engine: Engine, now: Callable[[], datetime], doorbell: Doorbell) -> None:
        self._engine, self._now = engine, now
        self._doorbell = doorbell
        self._rebuild_all()
        self._publish(running=True)

    def candle(self, candle: Candle, seconds: float) -> None:
        engine = self._engine
        if engine is None:
            return
        self._candles += 1
        self._candle_seconds.append(seconds)
        self._last[(candle.symbol, candle.timeframe)] = candle
        for entry in engine.route(candle.symbol, candle.timeframe):
            bot = self._bot(entry.strategy_id)
            if bot is not None:
                self._bots[entry.strategy_id] = bot
        self._publish(running=True)

    def wants_poll(self) -> bool:
        # Cleared before the look it causes: a change asked meanwhile is seen by that look,
        # or asks for the next one.
        asked, self._poll_asked = self._poll_asked, False
        return asked

    def polled(self, changed: Sequence[str]) -> None:
        if changed:
            # Only the bots changed: rebuilding all of them cost more than the change itself.
            for strategy_id in changed:
                bot = self._bot(strategy_id)
                if bot is None:
                    self._bots.pop(strategy_id, None)
                else:
                    self._bots[strategy_id] = bot
            self._publish(running=True)
        with self._polled:
            self._polls += 1
            self._polled.notify_all()

    def stopped(self) -> None:
        self._publish(running=False)
        with self._polled:
            self._polled.notify_all()

    def _rebuild_all(self) -> None:
        engine = self._engine
        if engine is None:
            return
        bots = {}
        for strategy_id in engine.health():
            bot = self._bot(strategy_id)
            if bot is not None:
                bots[strategy_id] = bot
        self._bots = bots

    def _bot(self, strategy_id: str) -> BotView | None:
        engine = self._engine
        if engine is None or not engine.tracks(strategy_id):
            return None
        config = engine.tracked_config(strategy_id)
        if config is None:
            return None
        handle = engine.factory.find_handle(strategy_id)
        seen = [self._last[key].ts for key in self._keys(config.symbols, config.timeframe)]
        positions: tuple[PositionView, ...] = ()
        realized = unrealized = 0.0
        if handle is not None:
            book = handle.position_lifecycle
            positions = tuple(
                _position_view(position, book.last_price(position.symbol))
                for position in book.open_positions()
            )
            realized, unrealized = book.realized_pnl, book.unrealized_pnl()
        return BotView(
            strategy_id=strategy_id,
            name=config.name,
            symbols=config.symbols,
            timeframe=config.timeframe,
            state=engine.state(strategy_id),
            open_positions=positions,
            realized_pnl=realized,
            unrealized_pnl=unrealized,
            last_candle=max(seen, default=None),
            errors=engine.errors(strategy_id),
        )

    def _keys(self, symbols: tuple[str, ...], timeframe: str) -> list[FeedKey]:
        return [(symbol, timeframe) for symbol in symbols if (symbol, timeframe) in self._last]

    def _feeds(self, now: datetime | None) -> tuple[FeedView, ...]:
        wanted = {
            (symbol, bot.timeframe) for bot in self._bots.values() for symbol in bot.symbols
        } | set(self._last)
        feeds = []
        for symbol, timeframe in sorted(wanted):
            last = self._last.get((symbol, timeframe))
            if last is None:
                feeds.append(FeedView(symbol, timeframe, None, None))
                continue
            lag = None if now is None else (now - last.close_ts).total_seconds()
            feeds.append(FeedView(symbol, timeframe, last.ts, lag))
        return tuple(feeds)

    def _publish(self, *, running: bool) -> None:
        now = None if self._now is None else self._now()
        self._view = EngineView(
            mode=self._mode,
            source=self._source,
            running=running,
            published_at=now,
            candles=self._candles,
            feeds=self._feeds(now),
            bots=MappingProxyType(dict(self._bots)),
            candle_seconds=tuple(self._candle_seconds),
        )
        self._published.set()


__all__ = [
    "CANDLE_TIMES_KEPT",
    "BotView",
    "EngineView",
    "EngineViewPublisher",
    "FeedView",
    "PositionView",
    "RunObserver",
]
