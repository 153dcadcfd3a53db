"""``/api/bots``: list, read, create and change bots, start, stop, resume and delete them.

A bot is created (``POST``) and changed (``PUT``) from a template's parameters
(``tradekit.service.bot_configs``); a bad value is a 422 whose problems name
the field (``params.rsi_length``), the value given and what was expected, with
the messages a strategy file gets.

Control routes go through ``tradekit.runtime.bot_requests``, as ``tradekit
strategies`` does, and answer once the running engine has applied the change
(200, with its outcome), or 202 with the change still pending when it did not
in time (or no engine runs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from tradekit.errors import ConfigError
from tradekit.runtime.bot_requests import (
    ChangeAsked,
    add_bot,
    disable_bot,
    enable_bot,
    remove_bot,
    resume_bot,
    update_bot,
)
from tradekit.service.bot_configs import (
    BotCreate,
    BotUpdate,
    new_bot_config,
    problems_with_values,
    updated_bot_config,
)
from tradekit.service.dependencies import Directory, Requester, Templates, require_token
from tradekit.service.errors import BOT_ERRORS, CONTROL_ERRORS, ERROR_RESPONSES, error_response
from tradekit.service.models import BotDetail, BotOut, ControlOut, EventPage, PositionOut, TradeOut
from tradekit.service.responses import JSON, json_response
from tradekit.services.journal.store import SqlJournal

router = APIRouter(prefix="/api/bots", tags=["bots"], dependencies=[Depends(require_token)])

ClosePositions = Annotated[
    bool, Query(description="Close the bot's open positions at market first")
]
PENDING: dict[int | str, dict[str, Any]] = {
    202: {"model": ControlOut, "description": "Asked; the engine has not applied it yet"}
}
MAX_EVENTS_PAGE = 1000


def _answer(bots: Directory, bot_id: str, ask: Callable[[SqlJournal], ChangeAsked]) -> Response:
    """The change's answer: 200 once the engine applied it, 202 while it is pending."""
    answer, settled = bots.control(bot_id, ask)
    return json_response(answer, 200 if settled else 202)


@router.get("", response_model=list[BotOut], responses=BOT_ERRORS)
async def list_bots(bots: Directory) -> Response:
    """Every bot not removed: state, positions, P&L, last candle and last change."""
    # Serialized by the directory, once per registry and engine view, not per request. On the
    # event loop, not a worker thread: besides memory it reads one row (the registry's
    # version) of a WAL database, where a reader never waits for the writer.
    return Response(bots.bots_json(), media_type=JSON)


CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    409: CONTROL_ERRORS[409],
    503: CONTROL_ERRORS[503],
}


@router.post("", response_model=ControlOut, status_code=201, responses=CREATE_ERRORS)
def create_bot(
    body: BotCreate, request: Request, bots: Directory, templates: Templates, by: Requester
) -> Any:
    """Make a bot from a template; it starts at once unless ``start`` is false."""
    try:
        config = new_bot_config(body, templates, request.app.state.settings)
    except ConfigError as exc:
        return _refused_values(exc, body.model_dump(mode="json"))
    answer, _ = bots.control(
        config.strategy_id,
        lambda journal: add_bot(journal, config, by, kind=body.template),
        new=True,
    )
    return json_response(answer, 201)


@router.put("/{bot_id}", response_model=ControlOut, responses={**CONTROL_ERRORS, **PENDING})
def change_bot(
    bot_id: str,
    body: BotUpdate,
    request: Request,
    bots: Directory,
    templates: Templates,
    by: Requester,
) -> Any:
    """Change a bot made from a template; a running bot is hot-reloaded keeping its positions
    (their stops and targets stay; new settings apply to positions opened afterwards)."""
    info = bots.registered(bot_id)
    try:
        config = updated_bot_config(info, body, templates, request.app.state.settings)
    except ConfigError as exc:
        return _refused_values(exc, body.model_dump(mode="json", exclude_none=True))
    return _answer(bots, bot_id, lambda journal: update_bot(journal, config, by, kind=info.kind))


def _refused_values(error: ConfigError, body: dict[str, Any]) -> Any:
    problems = problems_with_values(error, body)
    return error_response(422, f"{len(problems)} problem(s) in the bot's settings", problems)


@router.get("/{bot_id}", response_model=BotDetail, responses=BOT_ERRORS)
def get_bot(bot_id: str, bots: Directory) -> Response:
    """One bot with its open positions and config."""
    return json_response(bots.bot(bot_id))


@router.post("/{bot_id}/start", response_model=ControlOut, responses={**CONTROL_ERRORS, **PENDING})
def start_bot(bot_id: str, bots: Directory, by: Requester) -> Response:
    """Make a disabled bot active (a quarantined one needs resume)."""
    return _answer(bots, bot_id, lambda journal: enable_bot(journal, bot_id, by))


@router.post("/{bot_id}/stop", response_model=ControlOut, responses={**CONTROL_ERRORS, **PENDING})
def stop_bot(
    bot_id: str, bots: Directory, by: Requester, close_positions: ClosePositions = False
) -> Response:
    """Disable a bot: no signals or entries; its stops keep managing what it holds."""
    return _answer(
        bots,
        bot_id,
        lambda journal: disable_bot(journal, bot_id, by, close_positions=close_positions),
    )


@router.post("/{bot_id}/resume", response_model=ControlOut, responses={**CONTROL_ERRORS, **PENDING})
def resume(bot_id: str, bots: Directory, by: Requester) -> Response:
    """Lift a bot's quarantine."""
    return _answer(bots, bot_id, lambda journal: resume_bot(journal, bot_id, by))


@router.delete("/{bot_id}", response_model=ControlOut, responses={**CONTROL_ERRORS, **PENDING})
def delete_bot(
    bot_id: str, bots: Directory, by: Requester, close_positions: ClosePositions = False
) -> Response:
    """Remove a bot (its journal stays); 409 while it holds positions unless close_positions."""
    return _answer(
        bots,
        bot_id,
        lambda journal: remove_bot(journal, bot_id, by, close_positions=close_positions),
    )


@router.get("/{bot_id}/positions", response_model=list[PositionOut], responses=BOT_ERRORS)
def positions(bot_id: str, bots: Directory) -> list[PositionOut]:
    """The bot's open positions at the last price it saw."""
    return bots.positions(bot_id)


@router.get("/{bot_id}/trades", response_model=list[TradeOut], responses=BOT_ERRORS)
def trades(bot_id: str, bots: Directory) -> list[TradeOut]:
    """The bot's closed positions, oldest first."""
    return bots.trades(bot_id)


@router.get("/{bot_id}/events", response_model=EventPage, responses=BOT_ERRORS)
def events(
    bot_id: str,
    bots: Directory,
    after_seq: Annotated[int, Query(ge=0, description="Only events after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE, description="Page size")] = 100,
) -> EventPage:
    """The bot's journaled events after ``after_seq``, in seq order, one page at a time."""
    return bots.events(bot_id, after_seq, limit)


__all__ = ["router"]
