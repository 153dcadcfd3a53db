"""The API's response bodies: pydantic models, so the OpenAPI schema says exactly what each
route returns, and each error (``ErrorBody``) has one shape everywhere."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tradekit.domain import Side
from tradekit.strategy_state import StrategyState

_FROZEN = ConfigDict(frozen=True)


class Problem(BaseModel):
    """One thing wrong with a request: where (``path``), what was given, what was expected."""

    model_config = _FROZEN

    path: str | None = Field(description="Where the problem is, e.g. query.limit")
    value: Any = Field(default=None, description="The value given, when there was one")
    expected: str = Field(description="What is wrong, or what was expected instead")


class ErrorBody(BaseModel):
    """Every error the API answers: a sentence, and the problems found (maybe none)."""

    model_config = _FROZEN

    detail: str
    problems: list[Problem] = Field(default_factory=list)


class Health(BaseModel):
    """``GET /api/health``: open to anyone, so it says nothing about the bots."""

    model_config = _FROZEN

    status: str = "ok"
    version: str


class PositionOut(BaseModel):
    """One open position, valued at the last price its bot saw."""

    model_config = _FROZEN

    symbol: str
    side: Side
    quantity: float
    avg_entry_price: float
    opened_at: datetime | None
    last_price: float | None
    unrealized_pnl: float
    stop_loss: float | None = None
    take_profit: float | None = None


class ChangeState(StrEnum):
    """Where a change asked of the registry stands."""

    PENDING = "pending"
    """Not applied by a running engine yet (none runs, or it did not get to it in time)."""
    APPLIED = "applied"
    REFUSED = "refused"
    """The engine did not apply it; ``outcome`` says why."""


class ChangeOut(BaseModel):
    """One change asked of the registry and what the engine made of it."""

    model_config = _FROZEN

    change_id: int
    strategy_id: str
    action: str
    close_positions: bool
    by: str
    requested_at: datetime
    applied_at: datetime | None
    state: ChangeState
    outcome: str | None


class BotOut(BaseModel):
    """One bot: the registry's entry with what its engine (or else its journal) says of it."""

    model_config = _FROZEN

    id: str
    name: str
    kind: str
    template: str | None = Field(
        description="The template it was made from (None: registered from a strategy file)"
    )
    symbols: list[str]
    timeframe: str
    state: StrategyState
    open_positions: int
    realized_pnl: float
    unrealized_pnl: float
    last_candle: datetime | None
    last_change: ChangeOut | None


class BotDetail(BotOut):
    """One bot with its open positions and the config the registry holds."""

    positions: list[PositionOut]
    config: dict[str, Any]


class ControlOut(BaseModel):
    """The answer to a start, stop, resume or delete: what was asked and where it stands."""

    model_config = _FROZEN

    message: str
    change: ChangeOut
    bot: BotOut


class TradeOut(BaseModel):
    """One closed position (a round trip) of a bot."""

    model_config = _FROZEN

    seq: int
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
    closed_at: datetime


class EventOut(BaseModel):
    """One event of a bot's journal; ``data`` holds its fields."""

    model_config = _FROZEN

    seq: int
    ts: datetime
    type: str
    data: dict[str, Any]


class EventPage(BaseModel):
    """A page of a bot's events; ask again with ``after_seq=next_after_seq`` for more."""

    model_config = _FROZEN

    events: list[EventOut]
    next_after_seq: int
    more: bool


class FeedOut(BaseModel):
    """One candle series the engine reads: its last candle and how far behind it is."""

    model_config = _FROZEN

    symbol: str
    timeframe: str
    last_candle: datetime | None
    lag_seconds: float | None


class CandleTimesOut(BaseModel):
    """How long the engine took over its latest candles, by its own timing (journal included)."""

    model_config = _FROZEN

    candles: int = Field(description="How many of the latest candles the figures cover")
    last_seconds: float
    p50_seconds: float
    p99_seconds: float
    max_seconds: float


class EngineOut(BaseModel):
    """The service's engine; ``running`` is false when none runs (or it stopped)."""

    model_config = _FROZEN

    running: bool
    mode: str | None
    source: str | None
    candles: int
    published_at: datetime | None
    feeds: list[FeedOut]
    bots_by_state: dict[str, int]
    candle_seconds: CandleTimesOut | None = Field(
        default=None, description="Per-candle latency; null before the first candle"
    )


class EngineStopOut(BaseModel):
    """The answer to ``POST /api/engine/stop``."""

    model_config = _FROZEN

    message: str


__all__ = [
    "BotDetail",
    "BotOut",
    "CandleTimesOut",
    "ChangeOut",
    "ChangeState",
    "ControlOut",
    "EngineOut",
    "EngineStopOut",
    "ErrorBody",
    "EventOut",
    "EventPage",
    "FeedOut",
    "Health",
    "PositionOut",
    "Problem",
    "TradeOut",
]
