"""Risk in two layers: one strategy's limits, and exposure caps across all strategies.

Every entry asks its strategy's manager first (open positions, risk per trade,
daily loss limit) and the process-wide guard last, so several strategies on one
symbol cannot together go past the caps.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from tradekit.config.settings import GlobalRiskSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Candle
from tradekit.events import RiskRejected
from tradekit.services.bus import StrategyPublisher
from tradekit.timeframes import timeframe_delta

# Relative slack for comparing amounts, so float dust never refuses an entry sized
# exactly at a limit (risk sizing computes equity * risk% / stop%).
_TOLERANCE = 1e-9
_ONE_DAY = timedelta(days=1)


class RiskRule(StrEnum):
    """The rule named in a ``RiskRejected`` event."""

    MAX_OPEN_POSITIONS = "max_open_positions"
    RISK_PER_TRADE = "risk_per_trade"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    MAX_EXPOSURE_PER_SYMBOL = "max_exposure_per_symbol"
    MAX_TOTAL_EXPOSURE = "max_total_exposure"


def _exceeds(requested: float, allowed: float) -> bool:
    return requested > allowed + _TOLERANCE * max(abs(allowed), 1.0)


def _check_amount(value: float, what: str, *, zero_ok: bool) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise ValueError(f"{what} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True, slots=True)
class ExposureBreach:
    """Why the guard refused a reservation: which cap, its size, what is used and what is left."""

    rule: RiskRule
    cap: float
    used: float
    room: float


class ExposureGuard:
    """Notional exposure of every strategy in every symbol, against the global caps.

    One per process, shared by all strategies; every method takes one lock, so
    strategies and lifecycle calls on other threads may use it at once. Exposure
    counts two things: the notional a strategy holds (``set_exposure``) and the
    amounts reserved by approved entries whose orders have not filled yet
    (``reserve``). Reserving is what stops two strategies approved on the same
    candle from both filling into the same room.
    """

    def __init__(self, settings: GlobalRiskSettings) -> None:
        self._symbol_cap = settings.max_exposure_per_symbol
        self._total_cap = settings.max_total_exposure
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, float]] = {}
        self._reserved: dict[str, dict[str, float]] = {}

    def room(self, symbol: str) -> float:
        """How much more notional ``symbol`` may take under both caps; ``inf`` when uncapped."""
        with self._lock:
            return self._breach_or_room(symbol)[1]

    def reserve(self, strategy_id: str, symbol: str, amount: float) -> ExposureBreach | None:
        """Reserve ``amount`` for ``strategy_id`` in ``symbol`` if it fits; else say which cap.

        The reservation lasts until ``set_exposure`` or ``release_reservation`` for
        the same strategy and symbol, or ``release_strategy``.
        """
        _check_amount(amount, "reserved amount", zero_ok=False)
        with self._lock:
            breach, room = self._breach_or_room(symbol)
            if breach is not None and _exceeds(amount, room):
                return breach
            by_strategy = self._reserved.setdefault(symbol, {})
            by_strategy[strategy_id] = by_strategy.get(strategy_id, 0.0) + amount
            return None

    def set_exposure(self, strategy_id: str, symbol: str, notional: float) -> None:
        """Record what ``strategy_id`` holds in ``symbol`` (0 when flat); ends its reservation."""
        _check_amount(notional, "notional", zero_ok=True)
        with self._lock:
            _discard(self._reserved, symbol, strategy_id)
            if notional == 0:
                _discard(self._held, symbol, strategy_id)
            else:
                self._held.setdefault(symbol, {})[strategy_id] = notional

    def release_reservation(self, strategy_id: str, symbol: str) -> None:
        """Drop ``strategy_id``'s reservation in ``symbol`` (its order was cancelled or filled)."""
        with self._lock:
            _discard(self._reserved, symbol, strategy_id)

    def release_strategy(self, strategy_id: str) -> None:
        """Forget everything ``strategy_id`` holds and reserved, in every symbol (on unload)."""
        with self._lock:
            for book in (self._held, self._reserved):
                for symbol in [symbol for symbol, owners in book.items() if strategy_id in owners]:
                    _discard(book, symbol, strategy_id)

    def exposure(self, strategy_id: str, symbol: str) -> float:
        """The notional ``strategy_id`` holds in ``symbol``, reservations excluded."""
        with self._lock:
            return self._held.get(symbol, {}).get(strategy_id, 0.0)

    def symbol_exposure(self, symbol: str) -> float:
        """Held plus reserved notional in ``symbol`` across all strategies."""
        with self._lock:
            return self._symbol_total(symbol)

    def total_exposure(self) -> float:
        """Held plus reserved notional across all strategies and symbols."""
        with self._lock:
            return self._grand_total()

    def _symbol_total(self, symbol: str) -> float:
        held = self._held.get(symbol, {})
        reserved = self._reserved.get(symbol, {})
        return math.fsum((*held.values(), *reserved.values()))

    def _grand_total(self) -> float:
        symbols = self._held.keys() | self._reserved.keys()
        return math.fsum(self._symbol_total(symbol) for symbol in symbols)

    def _breach_or_room(self, symbol: str) -> tuple[ExposureBreach | None, float]:
        """The tighter cap as a would-be breach (``None`` when uncapped) and the room it leaves."""
        tightest: ExposureBreach | None = None
        if self._symbol_cap is not None:
            used = self._symbol_total(symbol)
            tightest = ExposureBreach(
                RiskRule.MAX_EXPOSURE_PER_SYMBOL,
                self._symbol_cap,
                used,
                max(0.0, self._symbol_cap - used),
            )
        if self._total_cap is not None:
            used = self._grand_total()
            room = max(0.0, self._total_cap - used)
            if tightest is None or room < tightest.room:
                tightest = ExposureBreach(RiskRule.MAX_TOTAL_EXPOSURE, self._total_cap, used, room)
        return tightest, math.inf if tightest is None else tightest.room


def _discard(book: dict[str, dict[str, float]], symbol: str, strategy_id: str) -> None:
    owners = book.get(symbol)
    if owners is not None and owners.pop(strategy_id, None) is not None and not owners:
        del book[symbol]


class StrategyRiskManager:
    """Approves or refuses one strategy's entries; one per strategy, discarded on unload.

    Rules, checked in this order for each entry:

    1. ``risk.max_open_positions``, for new positions only. ``open_count`` must
       count positions whose entry order is still pending too.
    2. ``risk.risk_per_trade_pct``: the loss if the stop is hit, ``quote_amount x
       exit.stop_loss_pct``, may not exceed that share of equity. Without a stop
       loss nothing bounds the loss, so the whole position counts as at risk and
       its notional is held to that share of equity. A DCA add is checked together
       with what the strategy already holds in the symbol: the position is one trade.
    3. ``risk.daily_loss_limit_pct``: once equity falls to the start-of-day equity
       less that share, no new entries until the next UTC day. A day is the UTC
       date of a candle's close; its start equity is read on its first candle.
    4. The shared ``ExposureGuard``'s caps, which reserves the amount on approval.

    A refusal publishes ``RiskRejected`` naming the rule, with ``requested`` and
    ``allowed`` (a count for the first rule, quote amounts for the others).

    ``on_candle`` must run once per candle, after that candle's fills were applied.
    It ends this strategy's reservation in the candle's symbol (its order has
    filled by then) and, given an ``exposure`` callable (the notional held in a
    symbol), records it with the guard; without one, call ``set_exposure`` after
    fills. Not thread-safe apart from the guard: used from the engine thread.
    """

    def __init__(
        self,
        strategy_id: str,
        config: StrategyConfig,
        publisher: StrategyPublisher,
        guard: ExposureGuard,
        equity: Callable[[], float],
        open_count: Callable[[], int],
        exposure: Callable[[str], float] | None = None,
    ) -> None:
        if strategy_id != config.strategy_id or strategy_id != publisher.strategy_id:
            raise ValueError(
                f"strategy_id {strategy_id!r} must match config.strategy_id "
                f"{config.strategy_id!r} and publisher.strategy_id {publisher.strategy_id!r}"
            )
        self._strategy_id = strategy_id
        self._risk = config.risk
        self._stop_loss_pct = config.exit.stop_loss_pct
        self._publisher = publisher
        self._guard = guard
        self._equity = equity
        self._open_count = open_count
        self._exposure = exposure
        self._recorded: dict[str, float] = {}
        self._reserved_symbols: set[str] = set()
        # Open times of the candles (of one timeframe) that close within the current
        # UTC day, [first, end): most candles are placed by two comparisons.
        self._window_timeframe = ""
        self._window_first: datetime | None = None
        self._window_end = datetime.min.replace(tzinfo=UTC)
        self._day_start: datetime | None = None
        self._day_start_equity: float | None = None
        self._loss_limit_hit = False

    @property
    def strategy_id(self) -> str:
        return self._strategy_id

    @property
    def day_start_equity(self) -> float | None:
        """Equity at the first candle of the current UTC day; ``None`` before any candle."""
        return self._day_start_equity

    @property
    def needs_every_bar(self) -> bool:
        """True with a daily loss limit: it follows the trading day and equity on every candle."""
        return self._risk.daily_loss_limit_pct is not None

    @property
    def daily_loss_limit_hit(self) -> bool:
        """True once the daily loss limit was reached; new entries wait for the next UTC day."""
        return self._loss_limit_hit

    def on_candle(self, candle: Candle) -> None:
        """Roll the UTC day if ``candle`` starts a new one, and settle exposure in its symbol."""
        first = self._window_first
        # The day's window is checked here first: rolling is rare, a call per candle is not.
        if (
            first is None
            or candle.timeframe != self._window_timeframe
            or not first <= candle.ts < self._window_end
        ):
            self._roll_day(candle)
        if self._risk.daily_loss_limit_pct is not None and not self._loss_limit_hit:
            self._loss_limit_hit = self._equity() <= self._loss_floor()
        symbol = candle.symbol
        if self._exposure is not None:
            notional = self._exposure(symbol)
            if symbol in self._reserved_symbols or notional != self._recorded.get(symbol, 0.0):
                self.set_exposure(symbol, notional)
        elif symbol in self._reserved_symbols:
            self._guard.release_reservation(self._strategy_id, symbol)
            self._reserved_symbols.discard(symbol)

    def snapshot(self) -> dict[str, Any]:
        """The trading-day state as a JSON-ready dict (the daily loss limit survives restarts)."""

        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "window_timeframe": self._window_timeframe,
            "window_first": iso(self._window_first),
            "window_end": self._window_end.isoformat(),
            "day_start": iso(self._day_start),
            "day_start_equity": self._day_start_equity,
            "loss_limit_hit": self._loss_limit_hit,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Put back the state ``snapshot`` returned."""

        def moment(text: str | None) -> datetime | None:
            return None if text is None else datetime.fromisoformat(text)

        self._window_timeframe = str(state["window_timeframe"])
        self._window_first = moment(state["window_first"])
        self._window_end = datetime.fromisoformat(state["window_end"])
        self._day_start = moment(state["day_start"])
        equity = state["day_start_equity"]
        self._day_start_equity = None if equity is None else float(equity)
        self._loss_limit_hit = bool(state["loss_limit_hit"])

    def set_exposure(self, symbol: str, notional: float) -> None:
        """Record with the guard what this strategy now holds in ``symbol`` (0 when flat)."""
        self._guard.set_exposure(self._strategy_id, symbol, notional)
        self._recorded[symbol] = notional
        self._reserved_symbols.discard(symbol)

    def release_reservation(self, symbol: str) -> None:
        """Give back what an approved entry in ``symbol`` reserved (its order was cancelled)."""
        self._guard.release_reservation(self._strategy_id, symbol)
        self._reserved_symbols.discard(symbol)

    def release(self) -> None:
        """Give back everything this strategy holds or reserved in the guard (on unload)."""
        self._guard.release_strategy(self._strategy_id)
        self._recorded.clear()
        self._reserved_symbols.clear()

    def approve_entry(
        self, symbol: str, quote_amount: float, candle: Candle, adding: bool = False
    ) -> bool:
        """True when a new position (or, ``adding``, an add) of ``quote_amount`` may go ahead."""
        self._roll_day(candle)
        limits = self._risk
        if not adding:
            count = self._open_count()
            if count >= limits.max_open_positions:
                return self._reject(
                    candle,
                    symbol,
                    RiskRule.MAX_OPEN_POSITIONS,
                    count + 1,
                    limits.max_open_positions,
                    f"{count} position(s) already open or pending; "
                    f"risk.max_open_positions is {limits.max_open_positions}",
                )
        equity = self._equity()
        if not self._risk_fits(symbol, quote_amount, candle, equity, adding):
            return False
        if limits.daily_loss_limit_pct is not None and not self._loss_limit_hit:
            self._loss_limit_hit = equity <= self._loss_floor()
        if self._loss_limit_hit:
            start = self._day_start_equity or 0.0
            assert self._day_start is not None
            return self._reject(
                candle,
                symbol,
                RiskRule.DAILY_LOSS_LIMIT,
                quote_amount,
                0.0,
                f"equity fell from {start:.2f} at the start of {self._day_start.date()} UTC "
                f"to the risk.daily_loss_limit_pct of {limits.daily_loss_limit_pct}% "
                f"(now {equity:.2f}); no new entries until "
                f"{(self._day_start + _ONE_DAY).isoformat()}",
            )
        breach = self._guard.reserve(self._strategy_id, symbol, quote_amount)
        if breach is not None:
            where = symbol if breach.rule is RiskRule.MAX_EXPOSURE_PER_SYMBOL else "all symbols"
            return self._reject(
                candle,
                symbol,
                breach.rule,
                quote_amount,
                breach.room,
                f"exposure in {where} across strategies is {breach.used:.2f} of the "
                f"risk.{breach.rule.value} cap {breach.cap:.2f}; {breach.room:.2f} left",
            )
        self._reserved_symbols.add(symbol)
        return True

    def _risk_fits(
        self, symbol: str, quote_amount: float, candle: Candle, equity: float, adding: bool
    ) -> bool:
        pct = self._risk.risk_per_trade_pct
        budget = max(0.0, equity * pct / 100.0)
        stop = self._stop_loss_pct
        largest_position = budget / (stop / 100.0) if stop is not None else budget
        held = self._guard.exposure(self._strategy_id, symbol) if adding else 0.0
        allowed = max(0.0, largest_position - held)
        if not _exceeds(quote_amount, allowed):
            return True
        what = f"adding {quote_amount:.2f} to {held:.2f} held" if adding else f"{quote_amount:.2f}"
        if stop is not None:
            risked = (held + quote_amount) * stop / 100.0
            reason = (
                f"{what} with a {stop}% stop risks {risked:.2f}, above "
                f"risk.risk_per_trade_pct {pct}% of equity {equity:.2f} = {budget:.2f}"
            )
        else:
            reason = (
                f"{what}: with no exit.stop_loss_pct the whole position is at risk, above "
                f"risk.risk_per_trade_pct {pct}% of equity {equity:.2f} = {budget:.2f}; "
                "set a stop loss or raise the limit"
            )
        return self._reject(candle, symbol, RiskRule.RISK_PER_TRADE, quote_amount, allowed, reason)

    def _roll_day(self, candle: Candle) -> None:
        ts = candle.ts
        first = self._window_first
        if (
            first is not None
            and candle.timeframe == self._window_timeframe
            and first <= ts < self._window_end
        ):
            return
        delta = timeframe_delta(candle.timeframe)
        day_start = datetime.combine((ts + delta).date(), time(), tzinfo=UTC)
        self._window_timeframe = candle.timeframe
        self._window_first = day_start - delta
        self._window_end = day_start + _ONE_DAY - delta
        if day_start != self._day_start:
            self._day_start = day_start
            self._day_start_equity = self._equity()
            self._loss_limit_hit = False

    def _loss_floor(self) -> float:
        limit = self._risk.daily_loss_limit_pct
        assert limit is not None
        assert self._day_start_equity is not None
        return self._day_start_equity * (1.0 - limit / 100.0)

    def _reject(
        self,
        candle: Candle,
        symbol: str,
        rule: RiskRule,
        requested: float,
        allowed: float,
        reason: str,
    ) -> bool:
        self._publisher.publish(
            RiskRejected(
                ts=candle.close_ts,
                symbol=symbol,
                rule=rule.value,
                requested=float(requested),
                allowed=float(allowed),
                reason=reason,
            )
        )
        return False


__all__ = ["ExposureBreach", "ExposureGuard", "RiskRule", "StrategyRiskManager"]
