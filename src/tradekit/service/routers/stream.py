"""``GET /api/stream``: every tagged event as server-sent events, filtered by bot and type,
resumable with ``Last-Event-ID`` (``tradekit.service.event_stream`` says how).

Each message is ``id: <stream id>``, ``event: <event type>`` and ``data:`` the
JSON of ``{"strategy_id", "seq", "type", "ts", "data"}``. A comment line keeps an
idle connection alive every ``app.state.stream_heartbeat`` seconds; the stream
ends when the service stops. Like every route but health it needs the bearer
token, so a browser reads it with ``fetch`` (``EventSource`` cannot send one)
and the token never appears in a URL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from tradekit.service.dependencies import require_token
from tradekit.service.errors import ERROR_RESPONSES
from tradekit.service.event_stream import EventStream, event_filter, event_message

router = APIRouter(prefix="/api/stream", tags=["stream"], dependencies=[Depends(require_token)])

DEFAULT_HEARTBEAT_SECONDS = 15.0
RESET_EVENT = "reset"
"""Sent first when the client's ``Last-Event-ID`` cannot be resumed: reload, then follow."""


def _frame(stream_id: str, kind: str, data: object) -> str:
    return f"id: {stream_id}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _frames(
    stream: EventStream,
    cursor: int,
    reset: bool,
    bots: list[str],
    types: list[str],
    heartbeat: float,
) -> AsyncIterator[str]:
    wanted = event_filter(bots, types)
    waiter = stream.watch()
    try:
        # The retry hint, and a first line so the client knows the stream is open.
        yield "retry: 2000\n: connected\n\n"
        if reset:
            yield _frame(
                stream.stream_id(cursor),
                RESET_EVENT,
                {"reason": "events since Last-Event-ID are no longer held; reload"},
            )
        while True:
            waiter.woken.clear()
            found = stream.read(cursor, wanted)
            if found.reset:
                # It fell behind what the stream holds, or events were lost on the way.
                yield _frame(
                    stream.stream_id(cursor),
                    RESET_EVENT,
                    {"reason": "events were missed while following; reload"},
                )
            for item in found.events:
                message = event_message(item.event)
                yield _frame(stream.stream_id(item.number), message["type"], message)
            cursor = found.cursor
            if found.closed:
                return
            if not found.events:
                try:
                    await asyncio.wait_for(waiter.woken.wait(), heartbeat)
                except TimeoutError:
                    yield ": keepalive\n\n"
    finally:
        stream.forget(waiter)


SSE_EVENT_SCHEMA: dict[str, object] = {
    "type": "object",
    "description": (
        "One server-sent event: `id` to resume from (Last-Event-ID), `event` the event's "
        "type (or `reset`), `data` its JSON"
    ),
    "properties": {
        "id": {"type": "string"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer", "minimum": 0},
    },
    "required": ["data"],
}
"""The OpenAPI schema of each message of the stream, as a server-sent event's fields."""


@router.get(
    "",
    response_class=StreamingResponse,
    responses={
        **ERROR_RESPONSES,
        200: {
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
            "description": "Server-sent events: one per tagged event, as it is journaled",
        },
    },
)
async def stream_events(
    request: Request,
    bot: Annotated[
        list[str] | None, Query(description="Only these bots' events (repeatable)")
    ] = None,
    event_type: Annotated[
        list[str] | None,
        Query(alias="type", description="Only events of these types, e.g. PositionOpened"),
    ] = None,
    last_event_id: Annotated[
        str | None, Header(description="The id of the last event received, to resume after it")
    ] = None,
) -> StreamingResponse:
    """Every tagged event (strategy_id, seq, type, ts, data) from now on, or after
    ``Last-Event-ID`` when this process still holds what followed it."""
    stream: EventStream = request.app.state.event_stream
    heartbeat: float = request.app.state.stream_heartbeat
    cursor, reset = stream.start_cursor(last_event_id)
    return StreamingResponse(
        _frames(stream, cursor, reset, bot or [], event_type or [], heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


__all__ = ["DEFAULT_HEARTBEAT_SECONDS", "RESET_EVENT", "router"]
