"""Protocols for the pluggable parts of tradekit; any object with the right methods fits.

The event bus, the exchange and the per-candle view analyzers read from live here;
the candle source, clock and journal join them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar, overload, runtime_checkable

from tradekit.domain import Candle, Fill, Order
from tradekit.events import Event

EventT = TypeVar("EventT", bound=Event)

EventHandler = Callable[[Event], object]
"""A subscriber: called with each matching event; its return value is ignored."""


@runtime_checkable
class Subscription(Protocol):
    """The handle ``EventBus.subscribe`` returns; it lives until ``unsubscribe`` is called."""

    @property
    def active(self) -> bool:
        """True until the subscription is removed, by its handle or by the bus."""
        ...

    def unsubscribe(self) -> None:
        """Stop delivering events to the handler; calling it again does nothing."""
        ...


@runtime_checkable
class EventBus(Protocol):
    """Delivers published events to the subscribers whose filters match them.

    ``subscribe`` calls ``handler`` for events of ``event_types`` (and their
    subclasses) stamped with ``strategy_id``; ``None`` for either filter means all.
    """

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every matching subscriber; a failing subscriber never stops it."""
        ...

    @overload
    def subscribe(
        self,
        handler: Callable[[EventT], object],
        event_types: type[EventT] | tuple[type[EventT], ...],
        strategy_id: str | None = None,
    ) -> Subscription: ...

    @overload
    def subscribe(
        self,
        handler: EventHandler,
        event_types: None = None,
        strategy_id: str | None = None,
    ) -> Subscription: ...


@runtime_checkable
class Exchange(Protocol):
    """Executes orders for every strategy; one per process, shared by all strategies.

    Orders and fills carry their ``strategy_id``, so a shared exchange never mixes
    strategies up.
    """

    def submit(
        self, order: Order, candle: Candle, trigger_price: float | None = None
    ) -> list[Fill]:
        """Send ``order`` decided on ``candle``'s close.

        Returns the fills that happen at once (fill rule ``close``, or a stop or
        target touched inside ``candle`` at ``trigger_price``); an order that fills
        later (at the next candle's open) returns ``[]`` and is pending.
        """
        ...

    def fill_pending(self, strategy_id: str, candle: Candle) -> list[Fill]:
        """Fill ``strategy_id``'s pending orders in ``candle.symbol`` at ``candle``'s open."""
        ...

    def cancel_pending(self, strategy_id: str) -> int:
        """Drop every pending order of ``strategy_id``; returns how many were dropped."""
        ...


@runtime_checkable
class BarView(Protocol):
    """What an analyzer or filter sees of one closed candle of one symbol: read-only.

    ``value`` reads an indicator output by reference: the indicator's key (its
    alias, else its name) for single-output indicators, ``key.output`` for
    multi-output ones (``macd.signal``, ``bbands.percent_b``). ``back`` reads
    that many candles earlier. ``None`` means not ready (warming up) or out of
    the kept history.
    """

    @property
    def symbol(self) -> str: ...

    @property
    def bar(self) -> int:
        """Index of this candle in its (symbol, timeframe) series, counting from 0."""
        ...

    @property
    def candle(self) -> Candle: ...

    def value(self, ref: str, back: int = 0) -> float | None: ...


__all__ = ["BarView", "EventBus", "EventHandler", "Exchange", "Subscription"]
