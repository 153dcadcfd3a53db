"""Domain values: candles, sides, signals, positions, orders, fills and the actions strategies take.

Values that cross module boundaries are frozen dataclasses with slots: cheap to
build on the per-candle path and impossible to mutate by accident. ``Position``
is the exception: the strategy's position lifecycle owns and updates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from tradekit.errors import ActionError, DataError
from tradekit.timeframes import (
    TIMEFRAME_SECONDS,
    is_aligned,
    timeframe_delta,
    unknown_timeframe_message,
)


class Side(StrEnum):
    """The direction of a position."""

    LONG = "long"
    SHORT = "short"

    @property
    def opposite(self) -> Side:
        return Side.SHORT if self is Side.LONG else Side.LONG

    @property
    def sign(self) -> int:
        """+1 for long, -1 for short: multiply a price move by it to get the P&L direction."""
        return 1 if self is Side.LONG else -1


class OrderSide(StrEnum):
    """The direction of an order on the exchange."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """How an order is priced."""

    MARKET = "market"
    LIMIT = "limit"


class Direction(StrEnum):
    """What a signal asks for: go long, go short, or leave the current position."""

    LONG = "long"
    SHORT = "short"
    EXIT = "exit"


EARLIEST_CANDLE_TIME = datetime(1678, 1, 1, tzinfo=UTC)
LATEST_CANDLE_TIME = datetime(2262, 1, 1, tzinfo=UTC)
"""Candle open times lie in [EARLIEST_CANDLE_TIME, LATEST_CANDLE_TIME).

pandas counts time in 64-bit nanoseconds, from 1677-09-21 to 2262-04-11; whole
years inside that span leave room for every close time. A candle outside it is
bad data, refused here rather than as an overflow deep inside pandas.
"""


def candle_time_problem(ts: datetime) -> str | None:
    """Why ``ts`` (aware) cannot be a candle's open time, or ``None`` when it can."""
    if EARLIEST_CANDLE_TIME <= ts < LATEST_CANDLE_TIME:
        return None
    return (
        f"open time {ts.isoformat()} is outside the supported range "
        f"{EARLIEST_CANDLE_TIME:%Y-%m-%d} to {LATEST_CANDLE_TIME:%Y-%m-%d}; "
        "expected a real candle time"
    )


def ensure_utc(ts: datetime, what: str = "timestamp") -> datetime:
    """Return ``ts`` in UTC; a naive datetime is refused because its zone is a guess."""
    if ts.tzinfo is None:
        raise DataError(f"{what} {ts.isoformat()} has no time zone; expected an aware UTC datetime")
    return ts.astimezone(UTC)


def _require_finite_positive(value: float, what: str, context: str) -> None:
    if not math.isfinite(value) or value <= 0:
        raise DataError(f"{context}: {what} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed OHLCV candle of a symbol on a timeframe; ``ts`` is its open time in UTC."""

    symbol: str
    timeframe: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __post_init__(self) -> None:
        context = f"candle {self.symbol} {self.timeframe} at {self.ts.isoformat()}"
        if self.timeframe not in TIMEFRAME_SECONDS:
            raise DataError(f"{context}: {unknown_timeframe_message(self.timeframe)}")
        object.__setattr__(self, "ts", ensure_utc(self.ts, f"{context}: ts"))
        out_of_range = candle_time_problem(self.ts)
        if out_of_range is not None:
            raise DataError(f"{context}: {out_of_range}")
        for name in ("open", "high", "low", "close"):
            _require_finite_positive(getattr(self, name), name, context)
        if not math.isfinite(self.volume) or self.volume < 0:
            raise DataError(f"{context}: volume must be a finite number >= 0, got {self.volume!r}")
        if self.high < max(self.open, self.close):
            raise DataError(
                f"{context}: high {self.high} is below max(open, close) "
                f"= {max(self.open, self.close)}"
            )
        if self.low > min(self.open, self.close):
            raise DataError(
                f"{context}: low {self.low} is above min(open, close) "
                f"= {min(self.open, self.close)}"
            )
        if not is_aligned(self.ts, self.timeframe):
            raise DataError(
                f"{context}: timestamp is not aligned to the {self.timeframe} timeframe; "
                f"expected the open time of a {self.timeframe} candle"
            )

    @classmethod
    def trusted(
        cls,
        symbol: str,
        timeframe: str,
        ts: datetime,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> Candle:
        """A candle from values that already passed these checks, built without repeating them.

        Only for rows of a series validated on load (``CandleSeries``): ``ts`` must
        already be an aligned UTC datetime and the prices plain floats. The result
        equals what the constructor would build; replaying a series this way costs
        a fraction of re-validating every row.
        """
        candle = object.__new__(cls)
        _set = object.__setattr__
        _set(candle, "symbol", symbol)
        _set(candle, "timeframe", timeframe)
        _set(candle, "ts", ts)
        _set(candle, "open", open)
        _set(candle, "high", high)
        _set(candle, "low", low)
        _set(candle, "close", close)
        _set(candle, "volume", volume)
        return candle

    @property
    def close_ts(self) -> datetime:
        """The moment this candle closed (the open time of the next one)."""
        return self.ts + timeframe_delta(self.timeframe)


@dataclass(frozen=True, slots=True)
class Signal:
    """An analyzer's opinion on one candle: a direction, a strength in [0, 1] and why."""

    direction: Direction
    strength: float
    reason: str
    source: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"signal strength must be within [0, 1], got {self.strength!r}")


@dataclass(slots=True)
class Position:
    """One strategy's virtual position in one symbol, owned by its position lifecycle.

    Several strategies on the same symbol each hold their own ``Position``; the
    lifecycle service is the only writer.
    """

    position_id: str
    strategy_id: str
    symbol: str
    side: Side
    quantity: float
    avg_entry_price: float
    opened_at: datetime
    fees_paid: float = 0.0
    realized_pnl: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_distance_pct: float | None = None
    trailing_active: bool = False
    best_price: float = 0.0
    entries: int = 1
    bars_held: int = 0
    closed_at: datetime | None = None
    initial_quantity: float = 0.0
    last_entry_price: float = 0.0
    partial_exits_done: int = 0

    def __post_init__(self) -> None:
        if self.initial_quantity == 0.0:
            self.initial_quantity = self.quantity
        if self.last_entry_price == 0.0:
            self.last_entry_price = self.avg_entry_price
        if self.best_price == 0.0:
            self.best_price = self.avg_entry_price

    def profit_pct(self, price: float) -> float:
        """Price move since the average entry, in percent, signed so that profit is positive."""
        return self.side.sign * (price / self.avg_entry_price - 1.0) * 100.0

    @property
    def is_open(self) -> bool:
        return self.closed_at is None and self.quantity > 0

    def notional(self, price: float) -> float:
        """Current value of the position at ``price`` in quote currency."""
        return self.quantity * price

    def unrealized_pnl(self, price: float) -> float:
        """Mark-to-market P&L at ``price`` before exit fees."""
        return self.side.sign * (price - self.avg_entry_price) * self.quantity


@dataclass(frozen=True, slots=True)
class Order:
    """An order one strategy sends to the exchange; ``strategy_id`` travels with it."""

    order_id: str
    strategy_id: str
    symbol: str
    side: OrderSide
    quantity: float
    created_at: datetime
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    reduce_only: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.quantity) or self.quantity <= 0:
            raise ActionError(
                f"order {self.order_id}: quantity must be a finite number > 0, "
                f"got {self.quantity!r}"
            )
        if self.type is OrderType.LIMIT and self.limit_price is None:
            raise ActionError(f"order {self.order_id}: a limit order needs limit_price")
        if self.limit_price is not None:
            _require_positive(self.limit_price, "limit_price", f"order {self.order_id}")


@dataclass(frozen=True, slots=True)
class Fill:
    """The execution of (part of) an order at one price, with the fee paid in quote currency."""

    order_id: str
    strategy_id: str
    symbol: str
    side: OrderSide
    quantity: float
    price: float
    fee: float
    ts: datetime

    def __post_init__(self) -> None:
        what = f"fill of order {self.order_id}"
        _require_positive(self.quantity, "quantity", what)
        _require_positive(self.price, "price", what)
        if not math.isfinite(self.fee):
            raise ActionError(f"{what}: fee must be a finite number, got {self.fee!r}")


def _require_positive(value: float, what: str, action: str) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ActionError(f"{action}: {what} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """Open a new position worth ``quote_amount`` in ``symbol`` on ``side``."""

    symbol: str
    side: Side
    quote_amount: float
    stop_loss: float | None = None
    take_profit: float | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        _require_positive(self.quote_amount, "quote_amount", "OpenPosition")
        for name in ("stop_loss", "take_profit"):
            price = getattr(self, name)
            if price is not None:
                _require_positive(price, name, "OpenPosition")


@dataclass(frozen=True, slots=True)
class AddToPosition:
    """Add ``quote_amount`` to the open position in ``symbol`` (a DCA safety order)."""

    symbol: str
    quote_amount: float
    reason: str = ""

    def __post_init__(self) -> None:
        _require_positive(self.quote_amount, "quote_amount", "AddToPosition")


@dataclass(frozen=True, slots=True)
class ClosePercent:
    """Close ``percent`` (0 < percent <= 100) of the open position in ``symbol``.

    With ``trigger_price`` (a stop or target touched inside the candle) the exit
    fills at that price; without it, it is a market order under the fill rule.
    """

    symbol: str
    percent: float
    reason: str = ""
    trigger_price: float | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.percent) or not 0 < self.percent <= 100:
            raise ActionError(
                f"ClosePercent: percent must be within (0, 100], got {self.percent!r}"
            )


@dataclass(frozen=True, slots=True)
class UpdateStopLoss:
    """Move the stop loss of the open position in ``symbol`` to ``stop_price``."""

    symbol: str
    stop_price: float
    reason: str = ""

    def __post_init__(self) -> None:
        _require_positive(self.stop_price, "stop_price", "UpdateStopLoss")


@dataclass(frozen=True, slots=True)
class ActivateTrailing:
    """Start trailing the stop of the open position in ``symbol`` at ``distance_pct`` behind."""

    symbol: str
    distance_pct: float
    reason: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.distance_pct) or not 0 < self.distance_pct < 100:
            raise ActionError(
                f"ActivateTrailing: distance_pct must be within (0, 100), got {self.distance_pct!r}"
            )


Action = OpenPosition | AddToPosition | ClosePercent | UpdateStopLoss | ActivateTrailing
"""Everything a strategy can ask its action queue to do."""
