"""Protocols for the pluggable parts of tradekit; any object with the right methods fits.

The event bus is here today; the exchange, candle source, clock and journal join it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar, overload, runtime_checkable

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


__all__ = ["EventBus", "EventHandler", "Subscription"]
