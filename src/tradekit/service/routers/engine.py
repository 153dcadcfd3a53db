"""``/api/engine`` (the service's engine, and stopping it) and ``/api/health``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from fastapi import APIRouter, Depends, Response

from tradekit import __version__
from tradekit.errors import StrategyError
from tradekit.runtime.engine_view import EngineView
from tradekit.service.dependencies import Directory, require_token
from tradekit.service.errors import CONTROL_ERRORS, ERROR_RESPONSES
from tradekit.service.models import CandleTimesOut, EngineOut, EngineStopOut, FeedOut, Health
from tradekit.service.responses import JSON

router = APIRouter(prefix="/api/engine", tags=["engine"], dependencies=[Depends(require_token)])
health_router = APIRouter(tags=["health"])


@health_router.get("/api/health", response_model=Health)
async def health() -> Health:
    """Open to anyone (no token): the service answers."""
    return Health(version=__version__)


@router.get("", response_model=EngineOut, responses=ERROR_RESPONSES)
async def engine(bots: Directory) -> Response:
    """Mode, source, feeds with their lag and bots by state; not running when none runs."""
    # From memory only, serialized once per engine view: on the event loop, no worker thread.
    return Response(bots.view_json(engine_out), media_type=JSON)


def engine_out(view: EngineView | None) -> EngineOut:
    """What ``GET /api/engine`` answers about ``view``."""
    if view is None:
        return EngineOut(
            running=False,
            mode=None,
            source=None,
            candles=0,
            published_at=None,
            feeds=[],
            bots_by_state={},
        )
    return EngineOut(
        running=view.running,
        mode=view.mode,
        source=view.source,
        candles=view.candles,
        published_at=view.published_at,
        feeds=[
            FeedOut(
                symbol=feed.symbol,
                timeframe=feed.timeframe,
                last_candle=feed.last_candle,
                lag_seconds=feed.lag_seconds,
            )
            for feed in view.feeds
        ],
        bots_by_state=view.bots_by_state(),
        candle_seconds=candle_times(view.candle_seconds),
    )


def candle_times(seconds: Sequence[float]) -> CandleTimesOut | None:
    """The median, 99th percentile (nearest rank) and worst of ``seconds``; None when empty."""
    if not seconds:
        return None
    ranked = sorted(seconds)

    def rank(share: float) -> float:
        return ranked[max(math.ceil(share * len(ranked)) - 1, 0)]

    return CandleTimesOut(
        candles=len(ranked),
        last_seconds=seconds[-1],
        p50_seconds=rank(0.5),
        p99_seconds=rank(0.99),
        max_seconds=ranked[-1],
    )


@router.post(
    "/stop",
    response_model=EngineStopOut,
    status_code=202,
    responses={409: CONTROL_ERRORS[409], **ERROR_RESPONSES},
)
def stop_engine(bots: Directory) -> EngineStopOut:
    """Stop the engine and the service gracefully, as SIGTERM does."""
    if bots.engine is None:
        raise StrategyError("no engine runs with this API")
    bots.engine.stop()
    return EngineStopOut(message="stopping: the engine commits its journal, then the service ends")


__all__ = ["candle_times", "engine_out", "health_router", "router"]
