"""``/api/bots/{id}/stats`` and ``/api/bots/{id}/equity``: a bot's statistics and its equity
over time, read from its journal by ``tradekit.insights`` (``bot_stats``, ``bot_equity``).

Both take ``since`` (an ISO time; one without a zone is read as UTC) to look at a
recent period only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from tradekit.insights import DEFAULT_MAX_POINTS, bot_equity
from tradekit.service.dependencies import Directory, require_token
from tradekit.service.errors import BOT_ERRORS
from tradekit.service.figure_models import BotStatsOut, EquityOut, EquityPointOut
from tradekit.service.responses import json_response

router = APIRouter(
    prefix="/api/bots", tags=["bots"], dependencies=[Depends(require_token)], responses=BOT_ERRORS
)

MAX_EQUITY_POINTS = 10_000

Since = Annotated[
    datetime | None,
    Query(description="Only the period from this time (ISO 8601; without a zone: UTC)"),
]


def _aware(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


@router.get("/{bot_id}/stats", response_model=BotStatsOut)
def stats(bot_id: str, bots: Directory, since: Since = None) -> Response:
    """Return, drawdown, Sharpe, Sortino, win rate, profit factor, exposure, trades, average
    trade and duration, and buy-and-hold of the bot's symbols over the same period."""
    return json_response(BotStatsOut.of(bots.stats(bot_id, since=_aware(since))))


@router.get("/{bot_id}/equity", response_model=EquityOut)
def equity(
    bot_id: str,
    bots: Directory,
    since: Since = None,
    max_points: Annotated[
        int,
        Query(ge=2, le=MAX_EQUITY_POINTS, description="At most this many points, evenly spread"),
    ] = DEFAULT_MAX_POINTS,
) -> EquityOut:
    """The bot's equity over time, oldest first: at each sampled price mark and its latest
    snapshot, valued from its fills."""
    bots.registered(bot_id)
    points = bot_equity(bots.journal, bot_id, since=_aware(since), max_points=max_points)
    return EquityOut(points=[EquityPointOut(ts=ts, equity=value) for ts, value in points])


__all__ = ["router"]
