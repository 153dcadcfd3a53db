"""Frozen events, named as past-tense facts, and their JSON-ready form for the journal.

Every event a strategy emits carries its ``strategy_id`` and a per-strategy
monotonic ``seq``, both stamped by that strategy's publisher.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any

from tradekit.domain import Direction, OrderSide, Side
from tradekit.errors import EventError


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened; ``strategy_id`` and ``seq`` are stamped by the publisher."""

    ts: datetime
    strategy_id: str = ""
    seq: int = 0

    @property
    def event_type(self) -> str:
        """The name of the event's class, as written to the journal."""
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: enums as values, datetimes as ISO strings, plus ``event_type``."""
        cls = type(self)
        data: dict[str, Any] = {"event_type": cls.__name__}
        for name in _field_names(cls):
            value = getattr(self, name)
            # Most values are JSON types already: skip the call for them (a hot path).
            data[name] = value if type(value) in _PLAIN or value is None else _encode(value)
        return data


_PLAIN = frozenset({str, int, float, bool})
"""Types ``to_dict`` passes through as they are (exact types: an enum deriving str is not)."""


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


def _field_names(cls: type[Event]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(field.name for field in fields(cls))
    return names


def _encode(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalGenerated(Event):
    """An analyzer produced a signal on a closed candle."""

    symbol: str
    direction: Direction
    strength: float
    reason: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionOpened(Event):
    """A new position was opened by a fill."""

    position_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    stop_loss: float | None
    take_profit: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionIncreased(Event):
    """An open position grew by a fill; ``quantity`` and ``avg_entry_price`` are the new totals."""

    position_id: str
    symbol: str
    side: Side
    quantity_added: float
    price: float
    fee: float
    quantity: float
    avg_entry_price: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionReduced(Event):
    """Part of an open position was closed, realizing ``realized_pnl``."""

    position_id: str
    symbol: str
    side: Side
    quantity_closed: float
    price: float
    fee: float
    quantity_remaining: float
    realized_pnl: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosed(Event):
    """A position was closed in full; ``fees`` and ``realized_pnl`` cover its whole life."""

    position_id: str
    symbol: str
    side: Side
    quantity: float
    avg_entry_price: float
    exit_price: float
    fees: float
    realized_pnl: float
    reason: str
    bars_held: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StopLossUpdated(Event):
    """The stop loss of an open position moved from ``old_stop`` to ``new_stop``."""

    position_id: str
    symbol: str
    old_stop: float | None
    new_stop: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TrailingActivated(Event):
    """A trailing stop started following an open position at ``distance_pct`` behind."""

    position_id: str
    symbol: str
    distance_pct: float
    activation_price: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionExecuted(Event):
    """An action from the strategy's action queue was carried out."""

    action: str
    symbol: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionFailed(Event):
    """An action from the strategy's action queue could not be carried out."""

    action: str
    symbol: str
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(Event):
    """The exchange filled (part of) an order at one price."""

    order_id: str
    symbol: str
    side: OrderSide
    quantity: float
    price: float
    fee: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(Event):
    """A pending order was cancelled before it filled; ``reason`` says why.

    An entry order still pending when its strategy may no longer open
    positions (disabled, quarantined, removed, entries halted) is cancelled.
    """

    order_id: str
    symbol: str
    side: OrderSide
    quantity: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskRejected(Event):
    """A risk rule refused or cut down an order: ``requested`` asked, ``allowed`` permitted."""

    symbol: str
    rule: str
    requested: float
    allowed: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyLoaded(Event):
    """A strategy was built and started receiving candles."""

    name: str
    symbols: tuple[str, ...]
    timeframe: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyUnloaded(Event):
    """A strategy stopped receiving candles and its services were shut down."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyReloaded(Event):
    """A strategy was rebuilt from a new configuration under the same id."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyFailed(Event):
    """A strategy raised while handling a candle; the engine caught and counted it."""

    error_type: str
    error: str
    consecutive_failures: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyQuarantined(Event):
    """A strategy failed too often and now takes no new entries; its positions stay protected."""

    failures: int
    last_error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyResumed(Event):
    """An operator lifted a strategy's quarantine: it takes signals and entries again."""

    by: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueHoldingAdopted(Event):
    """An operator wrote the venue's holding of ``asset`` into this strategy's book: its
    position in ``symbol`` changed by ``quantity_change`` at ``price`` (``tradekit reconcile``)."""

    by: str
    asset: str
    symbol: str
    venue_amount: float
    books_amount: float
    quantity_change: float
    price: float


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueFillRecovered(Event):
    """A fill of this strategy's order ``order_id`` that the venue made while no run saw it
    was read back at the start of a live run (venue trade ``trade_id`` of venue order
    ``venue_order_id``, sent as ``client_order_id``) and applied: it follows the
    ``OrderFilled`` that applied it."""

    venue: str
    trade_id: str
    venue_order_id: str
    client_order_id: str
    order_id: str
    symbol: str
    side: OrderSide
    quantity: float
    price: float
    fee: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyControlled(Event):
    """A running process applied a change asked of the registry to this strategy.

    ``action`` is what was asked (add, update, enable, disable, remove, resume),
    ``by`` who asked (``user@host``, or ``api``), ``change_id`` the registry
    change, and ``outcome`` what came of it (``applied``, or why it was refused).
    """

    action: str
    by: str
    change_id: int
    outcome: str


_EVENT_CLASSES: tuple[type[Event], ...] = (
    SignalGenerated,
    PositionOpened,
    PositionIncreased,
    PositionReduced,
    PositionClosed,
    StopLossUpdated,
    TrailingActivated,
    ActionExecuted,
    ActionFailed,
    OrderFilled,
    OrderCancelled,
    RiskRejected,
    StrategyLoaded,
    StrategyUnloaded,
    StrategyReloaded,
    StrategyFailed,
    StrategyQuarantined,
    StrategyResumed,
    VenueHoldingAdopted,
    VenueFillRecovered,
    StrategyControlled,
)

EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(
    {cls.__name__: cls for cls in _EVENT_CLASSES}
)
"""Every concrete event class by its ``event_type`` name; ``event_from_dict`` reads only these."""


def _decode_str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _decode_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError
    return float(value)


def _decode_optional_float(value: object) -> float | None:
    return None if value is None else _decode_float(value)


def _decode_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError
    return value


def _decode_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError
    return datetime.fromisoformat(value)


def _decode_str_tuple(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError
    return tuple(_decode_str(item) for item in value)


# Field type -> (what the JSON value should look like, how to rebuild the field from it).
_DECODERS: dict[object, tuple[str, Callable[[Any], object]]] = {
    str: ("a string", _decode_str),
    float: ("a number", _decode_float),
    float | None: ("a number or null", _decode_optional_float),
    int: ("an integer", _decode_int),
    datetime: ("an ISO 8601 datetime string", _decode_datetime),
    tuple[str, ...]: ("a list of strings", _decode_str_tuple),
    Side: (f"one of {[member.value for member in Side]}", Side),
    OrderSide: (f"one of {[member.value for member in OrderSide]}", OrderSide),
    Direction: (f"one of {[member.value for member in Direction]}", Direction),
}


@dataclass(frozen=True, slots=True)
class _Schema:
    """How to rebuild one event class from its dict: a decoder per field and the required ones."""

    cls: type[Event]
    decoders: Mapping[str, tuple[str, Callable[[Any], object]]]
    required: frozenset[str]

    @classmethod
    def of(cls, event_cls: type[Event]) -> _Schema:
        hints = typing.get_type_hints(event_cls)
        decoders = {}
        for field in fields(event_cls):
            hint = hints[field.name]
            if hint not in _DECODERS:
                raise TypeError(f"{event_cls.__name__}.{field.name}: no decoder for {hint!r}")
            decoders[field.name] = _DECODERS[hint]
        required = frozenset(
            field.name
            for field in fields(event_cls)
            if field.default is MISSING and field.default_factory is MISSING
        )
        return cls(event_cls, decoders, required)


_SCHEMAS: dict[str, _Schema] = {name: _Schema.of(cls) for name, cls in EVENT_TYPES.items()}


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from the dict ``Event.to_dict`` produced; ``EventError`` when malformed."""
    event_type = data.get("event_type")
    schema = _SCHEMAS.get(event_type) if isinstance(event_type, str) else None
    if schema is None:
        close = difflib.get_close_matches(str(event_type), EVENT_TYPES, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise EventError(f"unknown event_type {event_type!r}{hint}")
    missing = sorted(schema.required - data.keys())
    if missing:
        raise EventError(f"{event_type}: missing field(s) {', '.join(missing)}")
    unexpected = sorted(data.keys() - schema.decoders.keys() - {"event_type"})
    if unexpected:
        raise EventError(f"{event_type}: unexpected field(s) {', '.join(unexpected)}")
    values: dict[str, Any] = {}
    for name, (expected, decode) in schema.decoders.items():
        if name not in data:
            continue
        value = data[name]
        try:
            values[name] = decode(value)
        except (TypeError, ValueError):
            raise EventError(f"{event_type}.{name}: got {value!r}; expected {expected}") from None
    return schema.cls(**values)


__all__ = [
    "EVENT_TYPES",
    "ActionExecuted",
    "ActionFailed",
    "Event",
    "OrderCancelled",
    "OrderFilled",
    "PositionClosed",
    "PositionIncreased",
    "PositionOpened",
    "PositionReduced",
    "RiskRejected",
    "SignalGenerated",
    "StopLossUpdated",
    "StrategyControlled",
    "StrategyFailed",
    "StrategyLoaded",
    "StrategyQuarantined",
    "StrategyReloaded",
    "StrategyResumed",
    "StrategyUnloaded",
    "TrailingActivated",
    "VenueFillRecovered",
    "VenueHoldingAdopted",
    "event_from_dict",
]
