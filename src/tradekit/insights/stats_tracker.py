"""``StatsTracker``: one bot's statistics kept up to date from what its journal adds.

``bot_stats`` reads a bot's whole journal on every call; for a running bot asked again
and again that grows with its history. A tracker keeps what it read (the bot's fills,
closed trades, the last event seq and fill id it read, its equity valued at every price
mark) and each call reads only what came after, values the new marks, and computes the
figures over the whole equity line with numpy. It gives exactly what ``bot_stats``
gives at the same moment; whenever extending what it holds could not (a fill older than
an equity point already valued, such as one recovered at start; a price mark older
than the newest one; another capital, symbols or timeframe in the registry), it drops
it all and reads the journal from the start again.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from tradekit.domain import Fill
from tradekit.insights.bot_stats import (
    TRADE_EVENTS,
    BotStats,
    TradeFigures,
    bot_stats,
    line_ratios,
)
from tradekit.insights.equity import EquityBasis, Ledger, snapshot_marks
from tradekit.insights.trades import TradeReader
from tradekit.services.journal.store import SqlJournal, StrategyInfo, StrategyTail
from tradekit.stats import (
    buy_and_hold_return_pct,
    max_drawdown_pct,
    periods_per_year_of,
    time_in_market_pct,
)

Marks = Sequence[tuple[datetime, float]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FIRST_CAPACITY = 1024


def _microseconds(ts: datetime) -> int:
    """``ts`` as whole microseconds since the epoch: differences of these are exact."""
    return (ts - _EPOCH) // _MICROSECOND


class _Line:
    """Equity points in growing numpy arrays: values after the capital, and their times.

    ``values[0]`` is the capital, ``values[i + 1]`` the equity at ``times[i]``; one slot
    past the points is kept free, for the latest snapshot's point of each call.
    """

    def __init__(self, capital: float) -> None:
        self.count = 0
        self.values = np.empty(_FIRST_CAPACITY, dtype=np.float64)
        self.values[0] = capital
        self.times = np.empty(_FIRST_CAPACITY, dtype=np.int64)
        self.first: datetime | None = None
        self.last: datetime | None = None

    def append(self, ts: datetime, value: float) -> None:
        if self.count + 2 >= self.values.size:
            self.values = np.concatenate((self.values, np.empty_like(self.values)))
            self.times = np.concatenate((self.times, np.empty_like(self.times)))
        self.values[self.count + 1] = value
        self.times[self.count] = _microseconds(ts)
        self.count += 1
        self.first = ts if self.first is None else self.first
        self.last = ts


@dataclass
class _Held:
    """Everything the tracker read of one bot so far; built anew when it cannot be extended."""

    basis: EquityBasis
    line: _Line
    ledger: Ledger
    series: dict[str, Marks]
    """Per symbol, the price marks as last read (the journal's own tuple, never copied)."""
    fills: list[Fill] = field(default_factory=list)
    """By time, as ``equity_history`` sorts them."""
    trades: TradeReader = field(default_factory=TradeReader)
    last_seq: int = 0
    last_fill: int = 0
    first_event: datetime | None = None
    last_event: datetime | None = None

    @classmethod
    def empty(cls, basis: EquityBasis) -> _Held:
        series: dict[str, Marks] = dict.fromkeys(basis.symbols, ())
        return cls(basis, _Line(basis.capital), Ledger(basis.capital), series)


class StatsTracker:
    """The statistics of one bot, read incrementally from its journal; one per bot asked for,
    kept while it runs. Safe to call from several threads (one call at a time)."""

    def __init__(self, journal: SqlJournal, strategy_id: str) -> None:
        self.journal = journal
        self.strategy_id = strategy_id
        self._lock = threading.Lock()
        self._held: _Held | None = None
        self.rebuilds = 0
        """How many times it read the journal from the start (the first time included)."""

    def stats(self, info: StrategyInfo | None = None, since: datetime | None = None) -> BotStats:
        """What ``bot_stats(journal, strategy_id, since=since)`` answers now.

        ``info`` is the bot's registry entry when the caller has it at hand (else it is
        read). With ``since``, or for a bot whose config gives no equity basis, this is
        ``bot_stats`` itself.
        """
        if since is not None:
            return bot_stats(self.journal, self.strategy_id, since=since)
        if info is None:
            info = self.journal.strategy_info(self.strategy_id)
        basis = EquityBasis.of(info)
        if basis is None:
            return bot_stats(self.journal, self.strategy_id)
        with self._lock:
            held = self._held
            stats = None
            if held is not None and held.basis == basis:
                stats = self._extended(held)
            if stats is None:
                self.rebuilds += 1
                self._held = held = _Held.empty(basis)
                # Nothing held: nothing read can be older than it, so this always answers.
                stats = self._extended(held)
            assert stats is not None
            return stats

    def _extended(self, held: _Held) -> BotStats | None:
        """Read what is new, add it to ``held`` and answer; ``None`` when it cannot be added
        (``held`` is then half changed, and dropped).

        Marks are read before the events, fills and snapshot, so those are at least as
        new: a fill of a candle whose mark is read is read too.
        """
        timeframe = held.basis.timeframe
        new_times: set[datetime] = set()
        for symbol, marks in held.series.items():
            series = self.journal.price_mark_series(symbol, timeframe)
            known = len(marks)
            if len(series) < known or (known and series[known - 1][0] != marks[known - 1][0]):
                return None  # a mark older than the newest one was added
            new_times.update(ts for ts, _ in series[known:])
            held.series[symbol] = series
        times = sorted(new_times)
        if times and held.line.last is not None and times[0] <= held.line.last:
            return None  # a mark of one symbol older than another's valued already
        tail = self.journal.strategy_tail(
            self.strategy_id, after_seq=held.last_seq, after_fill=held.last_fill, types=TRADE_EVENTS
        )
        if not self._took_fills(held, tail):
            return None
        self._take_events(held, tail)
        for ts in times:
            held.ledger.apply_until(held.fills, ts)
            held.line.append(ts, held.ledger.equity(held.series, ts))
        return self._figures(held, tail)

    @staticmethod
    def _took_fills(held: _Held, tail: StrategyTail) -> bool:
        """Add the new fills to ``held``; False when one is older than what it holds."""
        if not tail.fills:
            return True
        fills = sorted((fill for _, fill in tail.fills), key=lambda fill: fill.ts)
        if held.fills and fills[0].ts < held.fills[-1].ts:
            return False  # it sorts before fills held
        if held.line.last is not None and fills[0].ts <= held.line.last:
            return False  # a point already valued misses it
        held.fills.extend(fills)
        held.last_fill = tail.fills[-1][0]
        return True

    @staticmethod
    def _take_events(held: _Held, tail: StrategyTail) -> None:
        if not tail.events:
            return
        if held.first_event is None:
            held.first_event = tail.events[0].ts
        held.last_event = tail.events[-1].ts
        held.last_seq = tail.events[-1].seq
        held.trades.read(stamp.event for stamp in tail.events if stamp.event is not None)

    def _figures(self, held: _Held, tail: StrategyTail) -> BotStats:
        """``bot_stats``' figures over the points held and the latest snapshot's point."""
        line = held.line
        count, last = line.count, line.last
        series: dict[str, Marks] = held.series
        if tail.snapshot is not None:
            stamp, last_prices = snapshot_marks(tail.snapshot.state)
            if stamp is not None and (last is None or stamp > last) and last_prices:
                # The snapshot's prices are newer than every mark, so they stand at its time.
                series = {
                    symbol: ((stamp, last_prices[symbol]),) if symbol in last_prices else marks
                    for symbol, marks in held.series.items()
                }
                ledger = held.ledger.copy()
                ledger.apply_until(held.fills, stamp)
                line.values[count + 1] = ledger.equity(series, stamp)
                line.times[count] = _microseconds(stamp)
                count, last = count + 1, stamp
        values = line.values[: count + 1]  # the capital, then every point
        capital = held.basis.capital
        first = line.first if line.count else last
        start = min([*_present(first), *_present(held.first_event)], default=None)
        end = max([*_present(last), *_present(held.last_event)], default=None)
        final_equity = float(values[-1])
        # The spacing of times in microseconds, in seconds, is exactly what
        # ``timedelta.total_seconds`` gives for the same two times.
        per_year = periods_per_year_of(np.diff(line.times[:count]) / 1e6)
        sharpe, sortino = line_ratios(values, per_year)
        exposure = buy_and_hold = None
        if start is not None and end is not None:
            periods = held.trades.holding_periods(end)
            exposure = time_in_market_pct(periods, start, end)
            buy_and_hold = _buy_and_hold(held, series, start, end)
        return BotStats(
            strategy_id=self.strategy_id,
            start=start,
            end=end,
            capital=capital,
            start_equity=capital,
            final_equity=final_equity,
            total_return_pct=(final_equity / capital - 1) * 100,
            max_drawdown_pct=max_drawdown_pct(values) if values.min() > 0 else None,
            sharpe=sharpe,
            sortino=sortino,
            exposure_time_pct=exposure,
            buy_and_hold_return_pct=buy_and_hold,
            equity_points=count,
            **TradeFigures.of(held.trades.trades)._asdict(),
        )


def _present(value: datetime | None) -> list[datetime]:
    return [] if value is None else [value]


def _buy_and_hold(
    held: _Held, series: dict[str, Marks], start: datetime, end: datetime
) -> float | None:
    """``bot_stats``' buy-and-hold: per symbol, its price standing at ``start`` (else its first
    within the period) to its last within the period; ``series`` may end in the snapshot's."""
    pairs = []
    for symbol, marks in held.series.items():
        prices = _period_prices(marks, start, end)
        newest = series[symbol]
        if newest is not marks:  # the snapshot's price, newer than every mark
            prices = _with_newer(prices, newest[0], start, end)
        before, first_inside, last_inside = prices
        first = before if before is not None else first_inside
        if first is not None and last_inside is not None:
            pairs.append((first, last_inside))
    return buy_and_hold_return_pct(pairs)


_PeriodPrices = tuple[float | None, float | None, float | None]


def _period_prices(marks: Marks, start: datetime, end: datetime) -> _PeriodPrices:
    """The last price before ``start``, and the first and last within ``[start, end]``."""
    low = bisect.bisect_left(marks, start, key=lambda mark: mark[0])
    high = bisect.bisect_right(marks, end, key=lambda mark: mark[0])
    before = marks[low - 1][1] if low else None
    if low >= high:
        return before, None, None
    return before, marks[low][1], marks[high - 1][1]


def _with_newer(
    prices: _PeriodPrices, mark: tuple[datetime, float], start: datetime, end: datetime
) -> _PeriodPrices:
    """``prices`` with one more mark, newer than all the others."""
    before, first_inside, last_inside = prices
    ts, price = mark
    if ts < start:
        return price, first_inside, last_inside
    if ts <= end:
        return before, price if first_inside is None else first_inside, price
    return prices


__all__ = ["StatsTracker"]
