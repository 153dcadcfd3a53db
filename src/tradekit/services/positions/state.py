"""What the position lifecycle keeps besides ``Position``: order intents, trades, per-position
bookkeeping, and the JSON-ready snapshot of it all used for reload and crash recovery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, NamedTuple, TypeVar

from tradekit.domain import Order, OrderSide, OrderType, Position, Side
from tradekit.errors import StrategyError

SNAPSHOT_VERSION = 2
# Version 1 also carried every closed trade; it is read, counting them.
_READABLE_VERSIONS = (1, SNAPSHOT_VERSION)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class OpenIntent:
    """The order opens a position on ``side``; a ``None`` level comes from ``config.exit``."""

    side: Side
    stop_loss: float | None = None
    take_profit: float | None = None


@dataclass(frozen=True, slots=True)
class AddIntent:
    """The order adds to the open position in its symbol (a DCA safety order)."""


@dataclass(frozen=True, slots=True)
class CloseIntent:
    """The order closes ``percent`` of the open position in its symbol, for ``reason``."""

    percent: float
    reason: str = ""


OrderIntent = OpenIntent | AddIntent | CloseIntent
"""What an order is for; registered with the lifecycle before the order is submitted."""


@dataclass(frozen=True, slots=True)
class Trade:
    """One fully closed position; prices are volume-weighted over all its entry and exit fills.

    ``quantity`` is the most ever held; ``fees`` and ``realized_pnl`` (net of all
    fees) cover the position's whole life; ``return_pct`` is ``realized_pnl`` over
    the entry notional (the sum of entry quantity x price).
    """

    position_id: str
    symbol: str
    side: Side
    entry_ts: datetime
    exit_ts: datetime
    quantity: float
    avg_entry_price: float
    avg_exit_price: float
    fees: float
    realized_pnl: float
    return_pct: float
    bars_held: int
    exit_reason: str


@dataclass(slots=True)
class PositionBook:
    """Running totals of one open position that ``Position`` has no field for."""

    opening_order_id: str
    entry_fees_open: float = 0.0
    entry_quantity: float = 0.0
    entry_value: float = 0.0
    exit_quantity: float = 0.0
    exit_value: float = 0.0
    max_quantity: float = 0.0

    def add_entry(self, quantity: float, price: float, fee: float, held: float) -> None:
        self.entry_fees_open += fee
        self.entry_quantity += quantity
        self.entry_value += quantity * price
        self.max_quantity = max(self.max_quantity, held)

    def add_exit(self, quantity: float, price: float) -> None:
        self.exit_quantity += quantity
        self.exit_value += quantity * price

    def release_entry_fees(self, fraction: float) -> float:
        """Take ``fraction`` of the entry fees still carried, to charge to a closing fill."""
        share = self.entry_fees_open if fraction >= 1.0 else self.entry_fees_open * fraction
        self.entry_fees_open -= share
        return share

    def trade(self, position: Position, exit_ts: datetime, reason: str) -> Trade:
        return Trade(
            position_id=position.position_id,
            symbol=position.symbol,
            side=position.side,
            entry_ts=position.opened_at,
            exit_ts=exit_ts,
            quantity=self.max_quantity,
            avg_entry_price=self.entry_value / self.entry_quantity,
            avg_exit_price=self.exit_value / self.exit_quantity,
            fees=position.fees_paid,
            realized_pnl=position.realized_pnl,
            return_pct=position.realized_pnl / self.entry_value * 100.0,
            bars_held=position.bars_held,
            exit_reason=reason,
        )


@dataclass(slots=True)
class PendingOrder:
    """An order registered with its intent, and how much of it has filled so far."""

    order: Order
    intent: OrderIntent
    filled: float = 0.0


class LifecycleState(NamedTuple):
    """A snapshot read back: the values the lifecycle service resumes from."""

    cash: float
    realized_pnl: float
    fees_paid: float
    next_order_number: int
    next_position_number: int
    positions: list[tuple[Position, PositionBook]]
    pending: list[PendingOrder]
    last_prices: dict[str, float]
    trade_count: int


_INTENT_KINDS: dict[str, type[OpenIntent | AddIntent | CloseIntent]] = {
    "open": OpenIntent,
    "add": AddIntent,
    "close": CloseIntent,
}
_KIND_OF_INTENT = {cls: kind for kind, cls in _INTENT_KINDS.items()}


def _encode_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def encode_record(item: Any) -> dict[str, Any]:
    """A frozen dataclass (order, fill, trade, ...) as plain JSON types."""
    names = _FIELD_NAMES.get(type(item))
    if names is None:
        # Looked up once per class: a snapshot encodes records after every candle.
        names = _FIELD_NAMES[type(item)] = tuple(field.name for field in fields(item))
    return {name: _encode_value(getattr(item, name)) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _optional_datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# How to rebuild a field JSON cannot carry as is, by its annotation; others are taken verbatim.
_DECODERS: dict[str, Callable[[Any], object]] = {
    "Side": Side,
    "OrderSide": OrderSide,
    "OrderType": OrderType,
    "datetime": datetime.fromisoformat,
    "datetime | None": _optional_datetime,
}


def decode_record(cls: type[_T], data: Mapping[str, Any]) -> _T:
    """The dataclass ``encode_record`` wrote."""
    values = {}
    for field in fields(cls):  # type: ignore[arg-type]
        decode = _DECODERS.get(str(field.type))
        value = data[field.name]
        values[field.name] = value if decode is None else decode(value)
    return cls(**values)


def dump_state(
    *,
    strategy_id: str,
    cash: float,
    realized_pnl: float,
    fees_paid: float,
    next_order_number: int,
    next_position_number: int,
    positions: Sequence[tuple[Position, PositionBook]],
    pending: Sequence[PendingOrder],
    last_prices: Mapping[str, float],
    trade_count: int,
) -> dict[str, Any]:
    """The lifecycle's state as plain JSON types; ``load_state`` reads it back.

    State only, no history: its size depends on what is open, not on how long the
    strategy has run.
    """
    return {
        "version": SNAPSHOT_VERSION,
        "strategy_id": strategy_id,
        "cash": cash,
        "realized_pnl": realized_pnl,
        "fees_paid": fees_paid,
        "next_order_number": next_order_number,
        "next_position_number": next_position_number,
        "positions": [
            {"position": encode_record(position), "book": encode_record(book)}
            for position, book in positions
        ],
        "pending": [
            {
                "order": encode_record(item.order),
                "intent": {
                    "kind": _KIND_OF_INTENT[type(item.intent)],
                    **encode_record(item.intent),
                },
                "filled": item.filled,
            }
            for item in pending
        ],
        "last_prices": dict(last_prices),
        "trade_count": trade_count,
    }


def load_state(snapshot: Mapping[str, Any], strategy_id: str) -> LifecycleState:
    """Read a ``dump_state`` dict of ``strategy_id``; ``StrategyError`` if malformed or foreign."""
    owner = snapshot.get("strategy_id")
    if owner != strategy_id:
        raise StrategyError(
            f"strategy {strategy_id!r}: snapshot belongs to strategy {owner!r}; "
            "restore it into that strategy's lifecycle"
        )
    version = snapshot.get("version")
    if version not in _READABLE_VERSIONS:
        raise StrategyError(
            f"strategy {strategy_id!r}: snapshot version {version!r} is not supported; "
            f"expected one of {', '.join(map(str, _READABLE_VERSIONS))}"
        )
    try:
        return LifecycleState(
            cash=float(snapshot["cash"]),
            realized_pnl=float(snapshot["realized_pnl"]),
            fees_paid=float(snapshot["fees_paid"]),
            next_order_number=int(snapshot["next_order_number"]),
            next_position_number=int(snapshot["next_position_number"]),
            positions=[
                (
                    decode_record(Position, entry["position"]),
                    decode_record(PositionBook, entry["book"]),
                )
                for entry in snapshot["positions"]
            ],
            pending=[
                PendingOrder(
                    decode_record(Order, entry["order"]),
                    decode_record(_INTENT_KINDS[entry["intent"]["kind"]], entry["intent"]),
                    float(entry["filled"]),
                )
                for entry in snapshot["pending"]
            ],
            last_prices={str(k): float(v) for k, v in snapshot["last_prices"].items()},
            trade_count=(len(snapshot["trades"]) if version == 1 else int(snapshot["trade_count"])),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StrategyError(
            f"strategy {strategy_id!r}: snapshot is malformed ({type(exc).__name__}: {exc})"
        ) from exc


__all__ = [
    "SNAPSHOT_VERSION",
    "AddIntent",
    "CloseIntent",
    "LifecycleState",
    "OpenIntent",
    "OrderIntent",
    "PendingOrder",
    "PositionBook",
    "Trade",
    "dump_state",
    "load_state",
]
