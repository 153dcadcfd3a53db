"""``/api/symbols``: per symbol, the bots on it, their positions there and the symbol's total
exposure against its cap (``risk.max_exposure_per_symbol``).

In a path the symbol is written with ``-`` for ``/`` and ``+`` for ``:``
(``/api/symbols/BTC-USDT``), or URL-encoded (``/api/symbols/BTC%2FUSDT``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from tradekit.service.dependencies import Directory, require_token
from tradekit.service.errors import ERROR_RESPONSES
from tradekit.service.figure_models import SymbolOut
from tradekit.service.models import ErrorBody
from tradekit.service.symbols import find_symbol, symbols_view

router = APIRouter(
    prefix="/api/symbols",
    tags=["symbols"],
    dependencies=[Depends(require_token)],
    responses=ERROR_RESPONSES,
)


def _cap(request: Request) -> float | None:
    settings = request.app.state.settings
    return None if settings is None else settings.risk.max_exposure_per_symbol


@router.get("", response_model=list[SymbolOut])
def list_symbols(request: Request, bots: Directory) -> list[SymbolOut]:
    """Every symbol a bot (not removed) trades or holds, with its bots and exposure."""
    return symbols_view(bots, _cap(request))


@router.get(
    "/{symbol:path}",
    response_model=SymbolOut,
    responses={404: {"model": ErrorBody, "description": "No bot trades or holds this symbol"}},
)
def get_symbol(symbol: str, request: Request, bots: Directory) -> SymbolOut:
    """One symbol, written ``BTC-USDT`` (``-`` for ``/``, ``+`` for ``:``) or URL-encoded."""
    return find_symbol(symbols_view(bots, _cap(request)), symbol)


__all__ = ["router"]
