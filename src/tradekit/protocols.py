"""Protocols for the pluggable parts of tradekit; any object with the right methods fits.

The event bus, the exchange and the per-candle view analyzers read from live here;
the candle source, clock and journal join them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload, runtime_checkable

from tradekit.domain import Candle, Fill, Order, Position
from tradekit.events import Event

if TYPE_CHECKING:
    import pandas as pd

    from tradekit.services.journal.store import StoredSnapshot, StrategyInfo, StrategyStatus

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

    def cancel_orders(self, strategy_id: str, order_ids: Collection[str]) -> list[Order]:
        """Drop the pending orders of ``strategy_id`` named in ``order_ids``; returns them.

        An id that is not pending (filled already, or never held) is skipped; the
        strategy's other pending orders are left to fill.
        """
        ...

    def export_pending(self, strategy_id: str) -> list[dict[str, Any]]:
        """``strategy_id``'s pending orders as JSON-ready dicts, for its snapshot."""
        ...

    def import_pending(self, strategy_id: str, items: list[dict[str, Any]]) -> None:
        """Put back pending orders from ``export_pending`` when a strategy resumes."""
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


@runtime_checkable
class Journal(Protocol):
    """Stores every strategy's events, snapshots, positions, orders, fills and registry entry.

    One per process, shared by all strategies. Writes are buffered and reach the
    database together at ``commit`` (once per candle batch); a failed commit raises
    ``StorageError`` and keeps the buffer for a retry. Recording the same event twice
    is harmless; a different event under a ``(strategy_id, seq)`` already used makes
    the commit raise ``JournalConflictError`` (a ``StorageError``) and store nothing.
    Reads see committed data only. Registry calls write at once.
    """

    def acquire_writer(self) -> None:
        """Become the database's only writer until ``close``; ``StorageError`` names the holder."""
        ...

    def record(self, events: Sequence[Event]) -> None:
        """Buffer stamped events for the next commit."""
        ...

    def record_fill(self, order: Order, fill: Fill) -> None:
        """Buffer ``fill`` and the ``order`` it executes."""
        ...

    def upsert_positions(self, strategy_id: str, positions: Iterable[Position]) -> None:
        """Buffer ``strategy_id``'s open positions, replacing the stored ones."""
        ...

    def save_snapshot(
        self, strategy_id: str, seq: int, ts: datetime, state: Mapping[str, Any]
    ) -> None:
        """Buffer a JSON-ready ``state`` of ``strategy_id`` taken after event ``seq``."""
        ...

    def record_price_mark(self, symbol: str, timeframe: str, ts: datetime, close: float) -> None:
        """Buffer a sampled close of a series (for equity over time); a stored one is kept."""
        ...

    def commit(self) -> None:
        """Write everything buffered in one transaction."""
        ...

    def events(self, strategy_id: str, after_seq: int = 0) -> list[Event]:
        """``strategy_id``'s committed events with ``seq > after_seq``, in seq order."""
        ...

    def last_seq(self, strategy_id: str) -> int:
        """The highest committed ``seq`` of ``strategy_id``; 0 when it has none."""
        ...

    def latest_snapshot(self, strategy_id: str) -> StoredSnapshot | None:
        """``strategy_id``'s newest committed snapshot as ``(seq, state)``, or ``None``."""
        ...

    def open_positions(self, strategy_id: str) -> list[Position]: ...

    def orders(self, strategy_id: str) -> list[Order]: ...

    def fills(self, strategy_id: str) -> list[Fill]: ...

    def strategy_ids(self) -> list[str]:
        """Every strategy with anything stored."""
        ...

    def register_strategy(self, strategy_id: str, name: str, kind: str, config_json: str) -> None:
        """Add or update a named strategy in the registry."""
        ...

    def register_if_new(self, strategy_id: str, name: str, kind: str, config_json: str) -> bool:
        """Register a strategy the registry does not know; a known one is left as it is."""
        ...

    def set_status(self, strategy_id: str, status: StrategyStatus | str) -> None:
        """Change a registered strategy's status; ``StorageError`` for an unknown id."""
        ...

    def strategies(self) -> list[StrategyInfo]: ...

    def remove_strategy(self, strategy_id: str) -> None:
        """Mark a strategy removed; its journal is kept."""
        ...

    def close(self) -> None:
        """Commit what is buffered and release the database and the writer lock."""
        ...


@runtime_checkable
class CandleSource(Protocol):
    """Market data for backtests and live runs: whole series, or closed candles one by one.

    ``frames()`` holds each series as open/high/low/close/volume columns over a
    UTC DatetimeIndex of open times. ``stream()`` yields the closed candles of
    every series merged in close-time order; candles closing together come by
    symbol, then by timeframe length (shortest first), so a replay is deterministic.
    """

    def symbols(self) -> list[tuple[str, str]]:
        """Every (symbol, timeframe) the source serves."""
        ...

    def frames(self) -> dict[tuple[str, str], pd.DataFrame]:
        """Every whole series by (symbol, timeframe), for vectorized backtests."""
        ...

    def stream(self) -> Iterator[Candle]:
        """Closed candles of all series in delivery order."""
        ...


__all__ = [
    "BarView",
    "CandleSource",
    "EventBus",
    "EventHandler",
    "Exchange",
    "Journal",
    "Subscription",
]
