"""The symbols view of the bot service: per symbol, the bots on it, what they hold there and
the total exposure against the symbol's cap, grouped by ``tradekit.insights.symbol_exposures``.

A running bot's positions come from the engine's newest view, any other bot's from
its journal (as ``GET /api/bots/{id}/positions`` answers). In a URL path a symbol's
``/`` is written ``-`` and its ``:`` ``+`` (``BTC-USDT``, ``BTC-USDT+USDT``), as in
candle file names; the symbol itself, URL-encoded (``BTC%2FUSDT``), is read too.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from tradekit.errors import StrategyNotFoundError
from tradekit.insights import OpenPositionReport, symbol_exposures
from tradekit.service.bots import BotDirectory, config_of
from tradekit.service.figure_models import SymbolBotOut, SymbolOut
from tradekit.service.models import PositionOut
from tradekit.services.journal.store import StrategyStatus
from tradekit.strategy_state import StrategyState


class SymbolNotFoundError(StrategyNotFoundError):
    """Raised when no bot trades or holds the symbol a request names (a 404)."""


def path_symbol(symbol: str) -> str:
    """``symbol`` as one URL path segment: ``BTC/USDT`` -> ``BTC-USDT``, ``:`` -> ``+``."""
    return symbol.replace("/", "-").replace(":", "+")


@dataclass(frozen=True)
class _BotHoldings:
    """One bot as ``symbol_exposures`` reads it (``tradekit.insights.Holdings``)."""

    strategy_id: str
    name: str
    status: str
    symbols: tuple[str, ...]
    open_positions: list[OpenPositionReport]


def _report(position: PositionOut) -> OpenPositionReport:
    price = position.avg_entry_price if position.last_price is None else position.last_price
    return OpenPositionReport(
        symbol=position.symbol,
        side=position.side.value,
        quantity=position.quantity,
        avg_entry_price=position.avg_entry_price,
        last_price=position.last_price,
        unrealized_pnl=position.unrealized_pnl,
        notional=position.quantity * price,
    )


def symbols_view(bots: BotDirectory, cap: float | None) -> list[SymbolOut]:
    """Every symbol a bot not removed trades or holds, sorted, with its bots in id order."""
    view = bots.view()
    holdings = []
    positions: dict[str, list[PositionOut]] = {}
    for info in bots.journal.strategies():
        if info.status is StrategyStatus.REMOVED:
            continue
        running = None if view is None or not view.running else view.bots.get(info.strategy_id)
        config = config_of(info)
        held = positions[info.strategy_id] = bots.held(info, view)
        holdings.append(
            _BotHoldings(
                strategy_id=info.strategy_id,
                name=info.name,
                status=(info.status if running is None else running.state).value,
                symbols=() if config is None else config.symbols,
                open_positions=[_report(position) for position in held],
            )
        )
    return [
        SymbolOut(
            symbol=exposure.symbol,
            path_symbol=path_symbol(exposure.symbol),
            bots=[
                SymbolBotOut(
                    id=bot.strategy_id,
                    name=bot.name,
                    state=StrategyState(bot.status),
                    positions=[
                        position
                        for position in positions[bot.strategy_id]
                        if position.symbol == exposure.symbol
                    ],
                    exposure=bot.exposure,
                )
                for bot in exposure.bots
            ],
            exposure=exposure.exposure,
            cap=exposure.cap,
            cap_used_pct=exposure.cap_used_pct,
        )
        for exposure in symbol_exposures(holdings, cap)
    ]


def find_symbol(found: list[SymbolOut], asked: str) -> SymbolOut:
    """The symbol ``asked`` names, as written or in its path form; ``SymbolNotFoundError``
    naming the closest known symbol otherwise."""
    for item in found:
        if asked == item.symbol:
            return item
    for item in found:
        if asked == item.path_symbol:
            return item
    known = [item.symbol for item in found]
    close = difflib.get_close_matches(asked.replace("-", "/").replace("+", ":"), known, n=1)
    hint = f"; did you mean {close[0]!r} ({path_symbol(close[0])} in a path)?" if close else ""
    listed = ", ".join(known) if known else "none"
    raise SymbolNotFoundError(f"no bot trades symbol {asked!r} (symbols: {listed}){hint}")


__all__ = ["SymbolNotFoundError", "find_symbol", "path_symbol", "symbols_view"]
