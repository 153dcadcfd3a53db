"""Carrying out a strategy's actions: one handler per action type and the queue that routes to them.

Handlers turn an action into orders (sized at the candle's close), register what
each order is for with the position lifecycle, submit it, and apply the fills
that happen at once. The queue runs queued actions in order and reports each as
``ActionExecuted`` or ``ActionFailed``; one failure never stops the rest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from tradekit.domain import (
    Action,
    ActivateTrailing,
    AddToPosition,
    Candle,
    ClosePercent,
    OpenPosition,
    Order,
    OrderSide,
    Position,
    Side,
    UpdateStopLoss,
)
from tradekit.errors import ActionError, PositionError, TradekitError
from tradekit.events import ActionExecuted, ActionFailed
from tradekit.logs import strategy_logger
from tradekit.protocols import Exchange
from tradekit.services.bus import StrategyPublisher
from tradekit.services.positions.lifecycle import PositionLifecycleService, entry_side
from tradekit.services.positions.state import AddIntent, CloseIntent, OpenIntent, OrderIntent

ActionT_contra = TypeVar("ActionT_contra", contravariant=True)


class ActionHandler(Protocol[ActionT_contra]):
    """Carries out one type of action on a closed candle; raises when it cannot."""

    def handle(self, action: ActionT_contra, candle: Candle) -> str:
        """Do ``action``; return a short detail for ``ActionExecuted``."""
        ...


def _number(value: float) -> str:
    return f"{value:.10g}"


class _LifecycleHandler:
    """What every handler shares: the strategy's lifecycle and the symbols it trades."""

    def __init__(self, lifecycle: PositionLifecycleService) -> None:
        self._lifecycle = lifecycle
        self._strategy_id = lifecycle.strategy_id
        self._symbols = frozenset(lifecycle.config.symbols)

    def _fail(self, message: str) -> ActionError:
        return ActionError(f"strategy {self._strategy_id!r}: {message}")

    def _check_symbol(self, action: Action) -> None:
        if action.symbol not in self._symbols:
            raise self._fail(
                f"{type(action).__name__} for {action.symbol}, which this strategy does not "
                f"trade; its symbols are {', '.join(sorted(self._symbols))}"
            )

    def _open_position(self, action: Action) -> Position:
        position = self._lifecycle.position(action.symbol)
        if position is None:
            raise PositionError(
                f"strategy {self._strategy_id!r}: {type(action).__name__} needs an open "
                f"position in {action.symbol}, but there is none"
            )
        return position


class _OrderHandler(_LifecycleHandler):
    """A handler that sends orders: registers the intent, submits, applies immediate fills."""

    def __init__(
        self, strategy_id: str, lifecycle: PositionLifecycleService, exchange: Exchange
    ) -> None:
        if strategy_id != lifecycle.strategy_id:
            raise ValueError(
                f"strategy_id {strategy_id!r} does not match the lifecycle's "
                f"{lifecycle.strategy_id!r}"
            )
        super().__init__(lifecycle)
        self._exchange = exchange

    def _check_candle(self, action: Action, candle: Candle) -> None:
        self._check_symbol(action)
        if candle.symbol != action.symbol:
            raise self._fail(
                f"{type(action).__name__} for {action.symbol} was run on a {candle.symbol} "
                "candle; orders are sized and filled on a candle of their own symbol"
            )

    def _send(
        self,
        order_side: OrderSide,
        quantity: float,
        intent: OrderIntent,
        action: Action,
        candle: Candle,
        *,
        trigger_price: float | None = None,
    ) -> str:
        lifecycle = self._lifecycle
        order = Order(
            order_id=lifecycle.new_order_id(),
            strategy_id=self._strategy_id,
            symbol=action.symbol,
            side=order_side,
            quantity=quantity,
            created_at=candle.close_ts,
            reduce_only=isinstance(intent, CloseIntent),
            reason=action.reason,
        )
        lifecycle.register_intent(order, intent)
        try:
            fills = (
                self._exchange.submit(order, candle)
                if trigger_price is None
                else self._exchange.submit(order, candle, trigger_price)
            )
        except Exception:
            lifecycle.cancel_intent(order.order_id)
            raise
        lifecycle.apply_fills(fills)
        head = f"{order.side} {_number(quantity)} {order.symbol} as {order.order_id}"
        if not fills:
            return f"{head}: pending"
        filled = sum(fill.quantity for fill in fills)
        price = sum(fill.quantity * fill.price for fill in fills) / filled
        return f"{head}: filled {_number(filled)} @ {_number(price)}"


class OpenPositionHandler(_OrderHandler):
    """Opens a position with a market order worth ``quote_amount`` at the candle's close."""

    def handle(self, action: OpenPosition, candle: Candle) -> str:
        self._check_candle(action, candle)
        symbol = action.symbol
        position = self._lifecycle.position(symbol)
        if position is not None:
            raise PositionError(
                f"strategy {self._strategy_id!r}: cannot open {symbol}; position "
                f"{position.position_id} is already open (use AddToPosition to add to it)"
            )
        if self._lifecycle.has_pending(symbol):
            raise self._fail(f"cannot open {symbol} while an earlier order in it is pending")
        price = candle.close
        self._check_levels(action, price)
        intent = OpenIntent(action.side, action.stop_loss, action.take_profit)
        return self._send(
            entry_side(action.side), action.quote_amount / price, intent, action, candle
        )

    def _check_levels(self, action: OpenPosition, price: float) -> None:
        """A stop or target on the wrong side of the price would fire on the next candle."""
        long = action.side is Side.LONG
        for name, level, below in (
            ("stop_loss", action.stop_loss, long),
            ("take_profit", action.take_profit, not long),
        ):
            if level is not None and (level >= price if below else level <= price):
                raise self._fail(
                    f"OpenPosition {action.side} {action.symbol}: {name} {_number(level)} must "
                    f"be {'below' if below else 'above'} the reference price {_number(price)} "
                    "(the candle's close)"
                )


class AddToPositionHandler(_OrderHandler):
    """Adds ``quote_amount`` at the candle's close to the open position (a DCA safety order)."""

    def handle(self, action: AddToPosition, candle: Candle) -> str:
        self._check_candle(action, candle)
        position = self._open_position(action)
        quantity = action.quote_amount / candle.close
        return self._send(entry_side(position.side), quantity, AddIntent(), action, candle)


class ClosePercentHandler(_OrderHandler):
    """Closes a percentage of the open position, at ``trigger_price`` when one is given.

    The percentage is of the open quantity, capped at what pending close orders
    have not already claimed; 100% closes exactly that remainder.
    """

    def handle(self, action: ClosePercent, candle: Candle) -> str:
        self._check_candle(action, candle)
        position = self._open_position(action)
        closable = self._lifecycle.closable_quantity(action.symbol)
        if closable <= 0:
            raise PositionError(
                f"strategy {self._strategy_id!r}: cannot close {action.symbol}; all of "
                f"{position.position_id} is already being closed by pending orders"
            )
        quantity = (
            closable
            if action.percent == 100
            else min(position.quantity * action.percent / 100, closable)
        )
        exit_side = OrderSide.SELL if position.side is Side.LONG else OrderSide.BUY
        intent = CloseIntent(action.percent, action.reason)
        return self._send(
            exit_side, quantity, intent, action, candle, trigger_price=action.trigger_price
        )


class UpdateStopLossHandler(_LifecycleHandler):
    """Moves the stop loss of the open position."""

    def handle(self, action: UpdateStopLoss, candle: Candle) -> str:
        self._check_symbol(action)
        old_stop = self._open_position(action).stop_loss
        self._lifecycle.set_stop(action.symbol, action.stop_price, action.reason, candle.close_ts)
        before = "none" if old_stop is None else _number(old_stop)
        return f"stop {before} -> {_number(action.stop_price)}"


class ActivateTrailingHandler(_LifecycleHandler):
    """Starts trailing the stop of the open position."""

    def handle(self, action: ActivateTrailing, candle: Candle) -> str:
        self._check_symbol(action)
        self._open_position(action)
        self._lifecycle.activate_trailing(action.symbol, action.distance_pct, candle.close_ts)
        return f"trailing {_number(action.distance_pct)}% behind the best price"


def action_handlers(
    strategy_id: str, lifecycle: PositionLifecycleService, exchange: Exchange
) -> dict[type[Any], ActionHandler[Any]]:
    """The standard routing table: every action type to its handler, for one strategy."""
    return {
        OpenPosition: OpenPositionHandler(strategy_id, lifecycle, exchange),
        AddToPosition: AddToPositionHandler(strategy_id, lifecycle, exchange),
        ClosePercent: ClosePercentHandler(strategy_id, lifecycle, exchange),
        UpdateStopLoss: UpdateStopLossHandler(lifecycle),
        ActivateTrailing: ActivateTrailingHandler(lifecycle),
    }


class FailedAction(NamedTuple):
    """An action that could not be carried out (published as ``ActionFailed``), and why."""

    action: Action
    error: str

    def describe(self) -> str:
        return f"{type(self.action).__name__} {self.action.symbol}: {self.error}"


class ActionQueue:
    """Holds one strategy's actions until its candle's turn, then runs them in order.

    One per strategy, discarded on unload (flush it first). Routing is the
    explicit ``handlers`` table keyed by action type. Every success is published
    as ``ActionExecuted``; every failure, an action without a handler included,
    as ``ActionFailed``, and the remaining actions still run. Failures are also
    kept until ``take_failures``, so the strategy can count and retry them.
    """

    __slots__ = ("_failures", "_handlers", "_last_ts", "_publisher", "_queue")

    def __init__(
        self, publisher: StrategyPublisher, handlers: Mapping[type[Any], ActionHandler[Any]]
    ) -> None:
        self._publisher = publisher
        self._handlers = dict(handlers)
        self._queue: deque[Action] = deque()
        self._last_ts: datetime | None = None
        self._failures: list[FailedAction] = []

    def enqueue(self, action: Action) -> None:
        self._queue.append(action)

    def pending(self) -> int:
        """How many actions wait for the next ``run``."""
        return len(self._queue)

    def take_failures(self) -> tuple[FailedAction, ...]:
        """The actions that failed since the last call, in order; forgets them."""
        if not self._failures:
            return ()
        failures = tuple(self._failures)
        self._failures.clear()
        return failures

    def run(self, candle: Candle) -> int:
        """Run queued actions (and any they enqueue) on ``candle``; return how many succeeded."""
        queue = self._queue
        if not queue:
            return 0
        ts = self._last_ts = candle.close_ts
        executed = 0
        while queue:
            action = queue.popleft()
            name = type(action).__name__
            handler = self._handlers.get(type(action))
            if handler is None:
                known = ", ".join(sorted(cls.__name__ for cls in self._handlers)) or "none"
                self._failed(action, ts, f"no handler for {name}; handlers exist for {known}")
                continue
            try:
                detail = handler.handle(action, candle)
            except Exception as exc:
                if not isinstance(exc, TradekitError):
                    strategy_logger(self._publisher.strategy_id).opt(exception=exc).error(
                        "{action} handler raised unexpectedly: {error!r}", action=name, error=exc
                    )
                self._failed(action, ts, f"{type(exc).__name__}: {exc}")
                continue
            self._publisher.publish(
                ActionExecuted(ts=ts, action=name, symbol=action.symbol, detail=detail)
            )
            executed += 1
        return executed

    def flush(self, candle: Candle | None = None) -> int:
        """Drain the queue on shutdown: run what is left on ``candle``, or discard it without one.

        A discarded action is reported as ``ActionFailed``, stamped with the close of
        the last candle run; returns how many succeeded.
        """
        if candle is not None:
            return self.run(candle)
        queue = self._queue
        ts = self._last_ts or datetime.now(UTC)
        while queue:
            action = queue.popleft()
            self._failed(action, ts, "discarded at shutdown: no candle to carry it out on")
        return 0

    def _failed(self, action: Action, ts: datetime, error: str) -> None:
        self._failures.append(FailedAction(action, error))
        self._publisher.publish(
            ActionFailed(ts=ts, action=type(action).__name__, symbol=action.symbol, error=error)
        )


__all__ = [
    "ActionHandler",
    "ActionQueue",
    "ActivateTrailingHandler",
    "AddToPositionHandler",
    "ClosePercentHandler",
    "FailedAction",
    "OpenPositionHandler",
    "UpdateStopLossHandler",
    "action_handlers",
]
