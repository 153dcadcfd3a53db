"""``ExitOrchestrator``: stops, targets, trailing stops, time stops and signal exits.

Stops and targets are checked against the candle's high and low, with the
levels as they stood before the candle; when both are touched inside one
candle the stop is assumed to have hit first (the conservative reading). A
candle that opens beyond a level fills at the open, not at the level.
Trailing-stop moves are computed last, from the candle just closed, so they
take effect from the next candle on.

A protective close (stop, target, trailing stop, time stop, signal exit) the
exchange rejects is sent again on the next candle, at market, until it fills:
the level it was decided on may not be touched again. A rejected partial take
profit is not counted (it counts when it fills), so it is decided again
whenever its level is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tradekit.config.strategy import ExitConfig
from tradekit.domain import (
    Action,
    ActivateTrailing,
    Candle,
    ClosePercent,
    Position,
    Side,
    UpdateStopLoss,
)
from tradekit.exit_reasons import ExitReason, partial_take_profit_reason
from tradekit.protocols import BarView
from tradekit.services.signals.analyzers import Scores

ExitAction = ClosePercent | UpdateStopLoss | ActivateTrailing

# A partial share this close to 100% is the whole position: what float dust leaves of it
# is within the position lifecycle's tolerance and would close with it anyway.
_WHOLE_PCT = 100.0 * (1 - 1e-9)


class _Positions(Protocol):
    def position(self, symbol: str) -> Position | None: ...
    def has_pending(self, symbol: str) -> bool: ...


class _Queue(Protocol):
    def enqueue(self, action: ExitAction) -> None: ...


def _touched_below(candle: Candle, level: float) -> float | None:
    """Fill price of a level hit from above (a long's stop): the level, or the open if gapped."""
    return None if candle.low > level else min(level, candle.open)


def _touched_above(candle: Candle, level: float) -> float | None:
    """Fill price of a level hit from below (a long's target): the level, or the open if gapped."""
    return None if candle.high < level else max(level, candle.open)


class ExitOrchestrator:
    """Decides exits and stop management for one strategy's open positions; one per strategy."""

    def __init__(self, config: ExitConfig, positions: _Positions, queue: _Queue) -> None:
        self._config = config
        self._positions = positions
        self._queue = queue
        self._partials = config.partial_take_profits
        self._trailing = (
            (config.trailing_activation_pct, config.trailing_distance_pct)
            if config.trailing_activation_pct is not None
            and config.trailing_distance_pct is not None
            else None
        )
        # With any of these, an open position is managed on every candle, whatever its levels.
        self._watches_every_bar = bool(
            config.trailing_activation_pct is not None
            or config.trailing_distance_pct is not None
            or config.time_stop_bars is not None
            or self._partials
        )
        # Per symbol: the protective close queued on the current candle, and those the
        # exchange rejected, to send again on the next candle.
        self._queued: dict[str, ClosePercent] = {}
        self._retries: dict[str, ClosePercent] = {}

    def evaluate(self, view: BarView, scores: Scores) -> None:
        """Queue this candle's exit or stop change, if any, for ``view.symbol``.

        A partial take profit may be followed by a time stop or signal exit of the rest.
        """
        symbol = view.symbol
        position = self._positions.position(symbol)
        if position is None:
            self._retries.pop(symbol, None)
            return
        if self._positions.has_pending(symbol):
            return
        retry = self._retries.pop(symbol, None)
        if retry is not None:
            self._close(ClosePercent(symbol, retry.percent, retry.reason))
            return
        candle = view.candle
        if self._stop_or_target_hit(position, candle):
            return
        # A partial fills inside the candle; a time stop or exit signal still closes the rest
        # at its close, since a signal that fires on one candle only would otherwise be lost.
        partial = self._partial_hit(position, candle)
        if partial == 100.0:
            return
        if self._time_or_signal_exit(position, candle, scores) or partial:
            return
        if self._trailing is not None:
            self._manage_trailing(position, self._trailing)

    def _stop_or_target_hit(self, position: Position, candle: Candle) -> bool:
        long = position.side is Side.LONG
        stop, target = position.stop_loss, position.take_profit
        if stop is not None:
            price = _touched_below(candle, stop) if long else _touched_above(candle, stop)
            if price is not None:
                reason = (
                    ExitReason.TRAILING_STOP if position.trailing_active else ExitReason.STOP_LOSS
                )
                self._close(ClosePercent(position.symbol, 100.0, reason, price))
                return True
        if target is not None:
            price = _touched_above(candle, target) if long else _touched_below(candle, target)
            if price is not None:
                self._close(ClosePercent(position.symbol, 100.0, ExitReason.TAKE_PROFIT, price))
                return True
        return False

    def _partial_hit(self, position: Position, candle: Candle) -> float:
        """Queue the next partial take profit if its level was touched; the percent it closes."""
        done = position.partial_exits_done
        if done >= len(self._partials):
            return 0.0
        level = self._partials[done]
        sign = position.side.sign
        target = position.avg_entry_price * (1 + sign * level.profit_pct / 100)
        long = position.side is Side.LONG
        price = _touched_above(candle, target) if long else _touched_below(candle, target)
        if price is None:
            return 0.0
        # close_pct is a share of the position as first opened, not of what is left.
        share = level.close_pct * position.initial_quantity / position.quantity
        if share >= _WHOLE_PCT:
            share = 100.0
        self._queue.enqueue(
            ClosePercent(position.symbol, share, partial_take_profit_reason(done + 1), price)
        )
        return share

    def _time_or_signal_exit(self, position: Position, candle: Candle, scores: Scores) -> bool:
        config = self._config
        if config.time_stop_bars is not None and position.bars_held >= config.time_stop_bars:
            self._close(ClosePercent(position.symbol, 100.0, ExitReason.TIME_STOP))
            return True
        if not config.exit_on_opposite_signal:
            return False
        opposite = scores.short if position.side is Side.LONG else scores.long
        if scores.exit + opposite < config.opposite_signal_min_score:
            return False
        minimum = config.min_profit_pct_for_signal_exit
        if minimum is not None and position.profit_pct(candle.close) < minimum:
            return False
        self._close(ClosePercent(position.symbol, 100.0, ExitReason.SIGNAL_EXIT))
        return True

    def _manage_trailing(self, position: Position, trailing: tuple[float, float]) -> None:
        activation_pct, distance_pct = trailing
        best = position.best_price
        if not position.trailing_active:
            if position.profit_pct(best) < activation_pct:
                return
            self._queue.enqueue(
                ActivateTrailing(position.symbol, distance_pct, "trailing_activated")
            )
        trailed = best * (1 - position.side.sign * distance_pct / 100)
        current = position.stop_loss
        improves = current is None or (
            trailed > current if position.side is Side.LONG else trailed < current
        )
        if improves:
            self._queue.enqueue(UpdateStopLoss(position.symbol, trailed, "trailing"))

    def _close(self, action: ClosePercent) -> None:
        self._queued[action.symbol] = action
        self._queue.enqueue(action)

    def failed(self, action: Action) -> None:
        """Told that ``action`` was rejected: a protective close queued here is sent again."""
        if isinstance(action, ClosePercent) and self._queued.get(action.symbol) is action:
            self._retries[action.symbol] = action

    def has_retries(self) -> bool:
        """True while a rejected protective close waits to be sent again."""
        return bool(self._retries)

    def needs_next_bar(self, symbol: str) -> bool:
        """True when the next candle of ``symbol`` may bring an exit even if no signal fires.

        So while a rejected close waits to be sent again, and while a position is
        open in ``symbol`` with a stop loss or take profit (touched inside a
        candle), or under trailing, a time stop or partial take profits (each
        follows the position candle by candle).
        """
        if self.has_retries():
            return True
        position = self._positions.position(symbol)
        return position is not None and (
            self._watches_every_bar
            or position.stop_loss is not None
            or position.take_profit is not None
        )

    def snapshot(self) -> dict[str, Any]:
        """What must survive a restart: the rejected closes still to send again."""
        return {
            "retries": {
                symbol: {"percent": action.percent, "reason": action.reason}
                for symbol, action in self._retries.items()
            }
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._retries = {
            symbol: ClosePercent(symbol, float(retry["percent"]), str(retry["reason"]))
            for symbol, retry in state.get("retries", {}).items()
        }
