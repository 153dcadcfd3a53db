"""A strategy's equity over its whole life, valued from the journal: its fills and price marks.

Running strategies keep only their latest equity points in memory, and snapshots
hold state, not history. The journal does hold every fill and, per series, the
close of one candle in each ``PRICE_MARK_SECONDS`` window
(``tradekit.runtime.journaling``). Cash after each fill plus the quantity held
times the price gives the equity at every mark, as the running strategy computes
it (``cash + quantity x last close``); the latest snapshot adds a last point when
it is newer than the last mark.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from tradekit.domain import Fill, OrderSide
from tradekit.insights.holdings import SnapshotMarks, capital_of, config_document
from tradekit.services.journal.store import SqlJournal, StrategyInfo

DEFAULT_MAX_POINTS = 500
"""Points ``bot_equity`` returns at most by default: a chart's width, a small response."""

EquityPoint = tuple[datetime, float]


@dataclass(frozen=True)
class EquityHistory:
    """What the journal says about one strategy's equity over time; built per read."""

    capital: float
    points: list[EquityPoint]
    """Equity at each price mark (the candle's open time), then at the latest snapshot."""
    prices: dict[str, list[tuple[datetime, float]]]
    """Per symbol of the strategy: its marks, then its snapshot price when that is newer."""


@dataclass(frozen=True)
class EquityBasis:
    """What a registered config says that valuing a strategy's equity needs."""

    capital: float
    symbols: tuple[str, ...]
    """Its symbols, each once, in the config's order."""
    timeframe: str

    @classmethod
    def of(cls, info: StrategyInfo | None) -> EquityBasis | None:
        """The basis of a registry entry; ``None`` without a capital or a timeframe."""
        config = config_document(info)
        capital = capital_of(config)
        symbols = tuple(dict.fromkeys(str(symbol) for symbol in config.get("symbols") or ()))
        timeframe = config.get("timeframe")
        if capital is None or not isinstance(timeframe, str):
            return None
        return cls(capital, symbols, timeframe)


def equity_history(journal: SqlJournal, strategy_id: str) -> EquityHistory | None:
    """The equity history of ``strategy_id``; ``None`` when the registry has no config for it.

    Capital, symbols and timeframe come from the registry's config.
    """
    basis = EquityBasis.of(journal.strategy_info(strategy_id))
    if basis is None:
        return None
    capital = basis.capital
    prices = {symbol: journal.price_marks(symbol, basis.timeframe) for symbol in basis.symbols}
    fills = sorted(journal.fills(strategy_id), key=lambda fill: fill.ts)
    times = sorted({ts for marks in prices.values() for ts, _ in marks})
    points = _valued(capital, fills, prices, times)
    snapshot = journal.latest_snapshot(strategy_id)
    if snapshot is not None:
        stamp, last_prices = snapshot_marks(snapshot.state)
        if stamp is not None and (not points or stamp > points[-1][0]) and last_prices:
            for symbol, price in last_prices.items():
                if symbol in prices:
                    prices[symbol] = [*prices[symbol], (stamp, price)]
            points.extend(_valued(capital, fills, prices, [stamp]))
    return EquityHistory(capital, points, prices)


def snapshot_marks(state: dict[str, Any]) -> tuple[datetime | None, dict[str, float]]:
    """The newest candle time a snapshot names, and the last price of each of its symbols."""
    return _snapshot_time(state.get("last_ts")), SnapshotMarks.of(state).last_prices


def _snapshot_time(value: object) -> datetime | None:
    """The newest candle time a snapshot's ``last_ts`` (symbol -> ISO time) names."""
    if not isinstance(value, dict):
        return None
    stamps = []
    for text in value.values():
        try:
            stamps.append(datetime.fromisoformat(str(text)))
        except ValueError:
            continue
    return max(stamps, default=None)


def mark_at(marks: Sequence[tuple[datetime, float]], ts: datetime) -> float | None:
    """The price of the last of ``marks`` (oldest first) at or before ``ts``; ``None`` if none."""
    index = bisect.bisect_right(marks, ts, key=_mark_time) - 1
    return marks[index][1] if index >= 0 else None


def _mark_time(mark: tuple[datetime, float]) -> datetime:
    return mark[0]


class Ledger:
    """Cash and holdings of one strategy after its fills up to a time, moved forward in time.

    One per valuation; ``copy`` values a later time without moving this one.
    """

    def __init__(self, capital: float) -> None:
        self.cash = capital
        self.held: dict[str, float] = {}
        self.fill_price: dict[str, float] = {}
        self.applied = 0
        """How many of the fills (oldest first) are in the cash and holdings."""

    def copy(self) -> Ledger:
        twin = Ledger(self.cash)
        twin.held, twin.fill_price = dict(self.held), dict(self.fill_price)
        twin.applied = self.applied
        return twin

    def apply_until(self, fills: Sequence[Fill], ts: datetime) -> None:
        """Apply the next ``fills`` (ordered by time) up to ``ts``."""
        while self.applied < len(fills) and fills[self.applied].ts <= ts:
            fill = fills[self.applied]
            notional = fill.quantity * fill.price
            signed = fill.quantity if fill.side is OrderSide.BUY else -fill.quantity
            self.cash += (-notional if fill.side is OrderSide.BUY else notional) - fill.fee
            self.held[fill.symbol] = self.held.get(fill.symbol, 0.0) + signed
            self.fill_price[fill.symbol] = fill.price
            self.applied += 1

    def equity(self, prices: Mapping[str, Sequence[tuple[datetime, float]]], ts: datetime) -> float:
        """Cash plus holdings at ``ts``: each at its symbol's last mark in ``prices`` at or
        before ``ts``, else at its last fill's price (the running strategy values at the entry
        price until it has a close)."""
        equity = self.cash
        for symbol, quantity in self.held.items():
            if quantity == 0.0:
                continue
            price = mark_at(prices.get(symbol, ()), ts)
            equity += quantity * (self.fill_price[symbol] if price is None else price)
        return equity


def _valued(
    capital: float,
    fills: Sequence[Fill],
    prices: dict[str, list[tuple[datetime, float]]],
    times: Sequence[datetime],
) -> list[EquityPoint]:
    """Equity at each of ``times``: capital, plus every fill up to it, plus holdings at price.

    A symbol's price at ``ts`` is its last mark at or before ``ts``, else the price
    of its last fill.
    """
    ledger = Ledger(capital)
    points: list[EquityPoint] = []
    for ts in times:
        ledger.apply_until(fills, ts)
        points.append((ts, ledger.equity(prices, ts)))
    return points


def equity_curve(journal: SqlJournal, strategy_id: str) -> list[EquityPoint]:
    """Every equity point the journal gives ``strategy_id``, oldest first (``[]`` when none)."""
    history = equity_history(journal, strategy_id)
    return [] if history is None else history.points


def thin(points: Sequence[EquityPoint], max_points: int) -> list[EquityPoint]:
    """At most ``max_points`` of ``points``, evenly spread, always the first and the last."""
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    if len(points) <= max_points:
        return list(points)
    kept = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(np.int64))
    return [points[int(index)] for index in kept]


def bot_equity(
    journal: SqlJournal,
    strategy_id: str,
    *,
    since: datetime | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
) -> list[EquityPoint]:
    """``strategy_id``'s equity over time as ``(ts, equity)``, oldest first, for a chart.

    ``since`` keeps the points at or after it; at most ``max_points`` are returned,
    evenly spread over the rest (the first and the last always among them).
    ``ValueError`` when ``max_points`` is below 2.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    points = equity_curve(journal, strategy_id)
    if since is not None:
        points = points[bisect.bisect_left(points, since, key=lambda point: point[0]) :]
    return thin(points, max_points)


__all__ = [
    "DEFAULT_MAX_POINTS",
    "EquityBasis",
    "EquityHistory",
    "EquityPoint",
    "Ledger",
    "bot_equity",
    "equity_curve",
    "equity_history",
    "mark_at",
    "snapshot_marks",
    "thin",
]
