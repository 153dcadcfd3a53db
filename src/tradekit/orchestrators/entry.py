"""``EntryOrchestrator``: turns a strategy's weighted score into new positions and DCA adds.

An entry needs, in this order: no order already pending on the symbol, a score
at ``entry.min_score``, the filters and the multi-timeframe gate letting it
through, and risk approving the size. Only then is an action queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tradekit.config.strategy import StrategyConfig
from tradekit.domain import AddToPosition, Candle, OpenPosition, Position, Side
from tradekit.protocols import BarView
from tradekit.services.signals.analyzers import Scores


class _Positions(Protocol):
    def position(self, symbol: str) -> Position | None: ...
    def has_pending(self, symbol: str) -> bool: ...
    def equity(self) -> float: ...


class _Risk(Protocol):
    def approve_entry(
        self, symbol: str, quote_amount: float, candle: Candle, adding: bool = False
    ) -> bool: ...


class _Gate(Protocol):
    def allows_entry(self, symbol: str, side: Side) -> str | None: ...


class _Filters(Protocol):
    def allows_entry(self, view: BarView, side: Side) -> str | None: ...


class _Queue(Protocol):
    def enqueue(self, action: OpenPosition | AddToPosition) -> None: ...


class EntryOrchestrator:
    """Decides entries and DCA adds for one strategy; one per strategy."""

    def __init__(
        self,
        config: StrategyConfig,
        positions: _Positions,
        risk: _Risk,
        filters: _Filters,
        mtf_gate: _Gate,
        queue: _Queue,
    ) -> None:
        self._config = config
        self._positions = positions
        self._risk = risk
        self._filters = filters
        self._gate = mtf_gate
        self._queue = queue
        self._min_score = config.entry.min_score
        self._allow_long = config.entry.side in ("long", "both")
        self._allow_short = config.entry.side in ("short", "both")
        self._dca = config.dca
        self.last_block_reason: str | None = None
        # The add that risk last refused, per symbol: (position id, entries). A price-step
        # add stays triggered candle after candle; asking again would repeat the refusal.
        self._refused_add: dict[str, tuple[str, int]] = {}

    def needs_next_bar(self, symbol: str) -> bool:
        """True when the next candle of ``symbol`` may bring an add even if no signal fires:
        with DCA, while a position is open (a price-step add follows every candle)."""
        return self._dca is not None and self._positions.position(symbol) is not None

    def snapshot(self) -> dict[str, Any]:
        """What must survive a restart: the DCA adds risk already refused."""
        return {
            "refused_adds": {symbol: list(attempt) for symbol, attempt in self._refused_add.items()}
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._refused_add = {
            symbol: (str(attempt[0]), int(attempt[1]))
            for symbol, attempt in state.get("refused_adds", {}).items()
        }

    def evaluate(self, view: BarView, scores: Scores) -> None:
        """Queue at most one entry or add for ``view.symbol`` on this candle."""
        symbol = view.symbol
        if self._positions.has_pending(symbol):
            return
        position = self._positions.position(symbol)
        if position is None:
            side = self._wanted_side(scores)
            if side is not None:
                self._try_open(view, side, scores)
        elif self._dca is not None and position.entries <= self._dca.safety_orders:
            self._try_add(view, position, scores)

    def _wanted_side(self, scores: Scores) -> Side | None:
        long_ok = self._allow_long and scores.long >= self._min_score
        short_ok = self._allow_short and scores.short >= self._min_score
        if long_ok and (not short_ok or scores.long >= scores.short):
            return Side.LONG
        return Side.SHORT if short_ok else None

    def _blocked(self, view: BarView, side: Side) -> bool:
        reason = self._filters.allows_entry(view, side) or self._gate.allows_entry(
            view.symbol, side
        )
        self.last_block_reason = reason
        return reason is not None

    def _try_open(self, view: BarView, side: Side, scores: Scores) -> None:
        if self._blocked(view, side):
            return
        amount = self.entry_amount()
        if self._nothing_to_size(amount):
            return
        if not self._risk.approve_entry(view.symbol, amount, view.candle):
            return
        score = scores.long if side is Side.LONG else scores.short
        self._queue.enqueue(
            OpenPosition(view.symbol, side, amount, reason=f"{side.value} score {score:.2f}")
        )

    def _try_add(self, view: BarView, position: Position, scores: Scores) -> None:
        dca = self._dca
        assert dca is not None
        adds_done = position.entries - 1
        if dca.trigger == "signal":
            score = scores.long if position.side is Side.LONG else scores.short
            if score < self._min_score:
                return
            reason = f"dca add {adds_done + 1} on score {score:.2f}"
        else:
            assert dca.step_pct is not None
            step_pct = dca.step_pct * dca.step_scale**adds_done
            moved_against_pct = (
                position.side.sign * (1 - view.candle.close / position.last_entry_price) * 100
            )
            trigger = position.last_entry_price * (1 - position.side.sign * step_pct / 100)
            beyond = (
                view.candle.close <= trigger
                if position.side is Side.LONG
                else view.candle.close >= trigger
            )
            if not beyond:
                return
            reason = f"dca add {adds_done + 1}: price {moved_against_pct:.2f}% against entry"
        if self._blocked(view, position.side):
            return
        attempt = (position.position_id, position.entries)
        if self._refused_add.get(view.symbol) == attempt:
            return
        amount = self.entry_amount() * dca.volume_scale ** (adds_done + 1)
        if self._nothing_to_size(amount):
            return
        if self._risk.approve_entry(view.symbol, amount, view.candle, adding=True):
            self._queue.enqueue(AddToPosition(view.symbol, amount, reason=reason))
        else:
            self._refused_add[view.symbol] = attempt

    def _nothing_to_size(self, amount: float) -> bool:
        """True, with the reason recorded, when sizing from equity that is gone gives nothing."""
        if amount > 0:
            return False
        self.last_block_reason = (
            f"sizing gives {amount:.2f}: equity {self._positions.equity():.2f} leaves "
            "nothing to enter with"
        )
        return True

    def entry_amount(self) -> float:
        """The quote amount of a new position under the configured sizing rule."""
        sizing = self._config.entry.sizing
        if sizing.mode == "fixed_quote":
            return sizing.quote_amount
        equity = self._positions.equity()
        if sizing.mode == "percent_equity":
            assert sizing.equity_pct is not None
            return equity * sizing.equity_pct / 100
        assert sizing.risk_pct is not None
        assert self._config.exit.stop_loss_pct is not None
        return equity * sizing.risk_pct / self._config.exit.stop_loss_pct
