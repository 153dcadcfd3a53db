"""What each strategy holds and has realized, from the journal, and who holds what in each symbol.

``tradekit report`` prints these figures and the bot service's symbols view serves
them, so the command line and the API agree on every number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, computed_field

from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Position, Side
from tradekit.events import (
    Event,
    PositionClosed,
    PositionIncreased,
    PositionOpened,
    PositionReduced,
)
from tradekit.services.journal.store import SqlJournal, StrategyInfo

DEFAULT_CAPITAL = StrategyConfig.model_fields["capital"].default

POSITION_EVENTS = (PositionOpened, PositionIncreased, PositionReduced, PositionClosed)
"""The only events a strategy's holdings and results are summed from: a report reads no other."""


@dataclass(frozen=True)
class OpenPositionReport:
    """One open position valued at the last price its strategy saw."""

    symbol: str
    side: str
    quantity: float
    avg_entry_price: float
    last_price: float | None
    unrealized_pnl: float
    notional: float

    def describe(self) -> str:
        last = "unknown" if self.last_price is None else f"{self.last_price:g}"
        return (
            f"{self.symbol} {self.side} {self.quantity:g} @ {self.avg_entry_price:g} "
            f"last {last} unrealized {self.unrealized_pnl:,.2f}"
        )


@dataclass(frozen=True)
class StrategyReport:
    """What the journal holds about one strategy, summed up."""

    strategy_id: str
    name: str
    status: str
    events: int
    last_seq: int
    closed: int
    wins: int
    losses: int
    realized_pnl: float
    fees: float
    open_positions: list[OpenPositionReport]
    symbols: tuple[str, ...] = ()
    capital: float | None = None
    unrealized_pnl: float = 0.0
    equity: float | None = None
    return_pct: float | None = None
    max_drawdown_pct: float | None = None


def config_document(info: StrategyInfo | None) -> dict[str, Any]:
    """The registry's stored config of a strategy (``{}`` when unknown or unreadable)."""
    if info is None:
        return {}
    try:
        config = json.loads(info.config_json)
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def capital_of(config: dict[str, Any]) -> float | None:
    """The capital a registered config gives its strategy; ``None`` without a usable config."""
    capital = config.get("capital", DEFAULT_CAPITAL if config else None)
    if isinstance(capital, int | float) and not isinstance(capital, bool) and capital > 0:
        return float(capital)
    return None


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass(frozen=True)
class SnapshotMarks:
    """What a strategy's latest snapshot says about valuing its open positions."""

    last_prices: dict[str, float]
    entry_fees_open: dict[str, float]  # position id -> entry fees it still carries

    @classmethod
    def of(cls, state: dict[str, Any] | None) -> SnapshotMarks:
        section = (state or {}).get("positions")
        section = section if isinstance(section, dict) else {}
        prices = section.get("last_prices")
        last_prices = {
            str(symbol): number
            for symbol, price in (prices.items() if isinstance(prices, dict) else ())
            if (number := _number(price)) is not None
        }
        fees: dict[str, float] = {}
        for item in section.get("positions") or ():
            if not isinstance(item, dict):
                continue
            position, book = item.get("position"), item.get("book")
            if isinstance(position, dict) and isinstance(book, dict):
                fee = _number(book.get("entry_fees_open"))
                if fee is not None:
                    fees[str(position.get("position_id"))] = fee
        return cls(last_prices, fees)


def _valued(position: Position, marks: SnapshotMarks) -> OpenPositionReport:
    last_price = marks.last_prices.get(position.symbol)
    price = position.avg_entry_price if last_price is None else last_price
    direction = 1.0 if position.side is Side.LONG else -1.0
    price_pnl = direction * (price - position.avg_entry_price) * position.quantity
    return OpenPositionReport(
        symbol=position.symbol,
        side=position.side.value,
        quantity=position.quantity,
        avg_entry_price=position.avg_entry_price,
        last_price=last_price,
        unrealized_pnl=price_pnl - marks.entry_fees_open.get(position.position_id, 0.0),
        notional=position.quantity * price,
    )


def max_drawdown_pct(values: list[float]) -> float:
    """The largest fall from a running peak, in percent of that peak (0 for a rising line)."""
    peak, deepest = -math.inf, 0.0
    for value in values:
        peak = max(peak, value)
        if peak > 0:
            deepest = max(deepest, (peak - value) / peak * 100)
    return deepest


def strategy_report(
    journal: SqlJournal, strategy_id: str, info: StrategyInfo | None
) -> StrategyReport:
    """Sum up one strategy's journal: closed trades come from its ``PositionClosed`` events.

    Realized P&L and fees count what positions still open have already realized and paid
    (partial take-profits, entry and add fees) too, as the running strategy counts them.

    Open positions come from the positions table, valued at the last price of their
    symbol in the strategy's latest snapshot (``positions.last_prices``: the close of
    the last candle it processed), or at their entry price when the snapshot has none,
    less the entry fees they still carry (as the running strategy counts them). With
    the capital from the registry's config, equity is capital + realized + unrealized.
    Drawdown follows the realized equity line (capital plus each realization, in seq
    order, a partial exit counted when it happens and its position's close adding
    the rest) and ends at today's equity, so an open loss counts too.
    """
    events = journal.events(strategy_id, types=POSITION_EVENTS)
    closed = [event for event in events if isinstance(event, PositionClosed)]
    closed_ids = {event.position_id for event in closed}
    still_open = [
        event
        for event in events
        if isinstance(event, PositionOpened | PositionIncreased | PositionReduced)
        and event.position_id not in closed_ids
    ]
    realized_while_open = sum(
        event.realized_pnl for event in still_open if isinstance(event, PositionReduced)
    )
    realized = float(sum(event.realized_pnl for event in closed) + realized_while_open)
    snapshot = journal.latest_snapshot(strategy_id)
    marks = SnapshotMarks.of(None if snapshot is None else snapshot.state)
    positions = [_valued(position, marks) for position in journal.open_positions(strategy_id)]
    unrealized = float(sum(position.unrealized_pnl for position in positions))
    config = config_document(info)
    capital = capital_of(config)
    equity = return_pct = drawdown = None
    if capital is not None:
        equity = capital + realized + unrealized
        return_pct = (equity - capital) / capital * 100
        drawdown = max_drawdown_pct([*_realized_line(capital, events), equity])
    traded = {
        event.symbol
        for event in events
        if isinstance(event, PositionOpened | PositionIncreased | PositionReduced | PositionClosed)
    }
    symbols = config.get("symbols") or sorted(traded)
    return StrategyReport(
        strategy_id=strategy_id,
        name=info.name if info else "",
        status=info.status.value if info else "not registered",
        events=journal.event_count(strategy_id),
        last_seq=journal.last_seq(strategy_id),
        closed=len(closed),
        wins=sum(1 for event in closed if event.realized_pnl > 0),
        losses=sum(1 for event in closed if event.realized_pnl < 0),
        realized_pnl=realized,
        fees=float(sum(event.fees for event in closed) + sum(event.fee for event in still_open)),
        open_positions=positions,
        symbols=tuple(str(symbol) for symbol in symbols),
        capital=capital,
        unrealized_pnl=unrealized,
        equity=equity,
        return_pct=return_pct,
        max_drawdown_pct=drawdown,
    )


def strategy_reports(journal: SqlJournal) -> list[StrategyReport]:
    """``strategy_report`` of every strategy the journal holds anything of, by id."""
    registry = {info.strategy_id: info for info in journal.strategies()}
    return [
        strategy_report(journal, strategy_id, registry.get(strategy_id))
        for strategy_id in journal.strategy_ids()
    ]


def _realized_line(capital: float, events: list[Event]) -> list[float]:
    """Capital plus everything realized so far, after each realization in seq order."""
    line = [capital]
    realized = 0.0
    partial: dict[str, float] = {}  # position id -> realized by its partial exits so far
    for event in events:
        if isinstance(event, PositionReduced):
            partial[event.position_id] = partial.get(event.position_id, 0.0) + event.realized_pnl
            realized += event.realized_pnl
        elif isinstance(event, PositionClosed):
            realized += event.realized_pnl - partial.pop(event.position_id, 0.0)
        else:
            continue
        line.append(capital + realized)
    return line


class SymbolBot(BaseModel):
    """One strategy on a symbol: its state and what it holds there."""

    model_config = ConfigDict(frozen=True)

    strategy_id: str
    name: str
    status: str
    positions: list[OpenPositionReport]
    """Its open positions in the symbol (at most one), valued at the last price."""
    exposure: float
    """The notional of those positions at the last price."""


class SymbolExposure(BaseModel):
    """The strategies trading one symbol and the notional they hold in it, against its cap."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    bots: list[SymbolBot]
    exposure: float
    cap: float | None
    """``risk.max_exposure_per_symbol``; ``None`` when uncapped."""

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def cap_used_pct(self) -> float | None:
        """Exposure in percent of the cap; ``None`` when uncapped."""
        return None if self.cap is None else self.exposure / self.cap * 100

    @property
    def strategies(self) -> list[str]:
        """The ids of the strategies on the symbol, in report order."""
        return [bot.strategy_id for bot in self.bots]


class Holdings(Protocol):
    """What ``symbol_exposures`` reads of one strategy: a ``StrategyReport`` has it all, and
    so may a lighter summary (the bot service's, from a running engine's view)."""

    @property
    def strategy_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def open_positions(self) -> Sequence[OpenPositionReport]: ...


def symbol_exposures(reports: Sequence[Holdings], cap: float | None) -> list[SymbolExposure]:
    """Per symbol (sorted): who trades it or holds it, and the notional held at the last price.

    A strategy is on a symbol when its config names it or it holds a position in it.
    """
    bots: dict[str, list[SymbolBot]] = {}
    for item in reports:
        held = {position.symbol for position in item.open_positions}
        for symbol in dict.fromkeys([*item.symbols, *sorted(held)]):
            positions = [p for p in item.open_positions if p.symbol == symbol]
            bots.setdefault(symbol, []).append(
                SymbolBot(
                    strategy_id=item.strategy_id,
                    name=item.name,
                    status=item.status,
                    positions=positions,
                    exposure=math.fsum(position.notional for position in positions),
                )
            )
    return [
        SymbolExposure(
            symbol=symbol,
            bots=bots[symbol],
            exposure=math.fsum(bot.exposure for bot in bots[symbol]),
            cap=cap,
        )
        for symbol in sorted(bots)
    ]


__all__ = [
    "DEFAULT_CAPITAL",
    "POSITION_EVENTS",
    "Holdings",
    "OpenPositionReport",
    "SnapshotMarks",
    "StrategyReport",
    "SymbolBot",
    "SymbolExposure",
    "capital_of",
    "config_document",
    "max_drawdown_pct",
    "strategy_report",
    "strategy_reports",
    "symbol_exposures",
]
