"""Tests for the action handlers and the action queue, over a fake exchange."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tradekit.config import StrategyConfig
from tradekit.domain import (
    Action,
    ActivateTrailing,
    AddToPosition,
    Candle,
    ClosePercent,
    Fill,
    OpenPosition,
    Order,
    OrderSide,
    Side,
    UpdateStopLoss,
)
from tradekit.errors import ActionError, ExchangeError, PositionError
from tradekit.events import (
    ActionExecuted,
    ActionFailed,
    Event,
    PositionClosed,
    StopLossUpdated,
    TrailingActivated,
)
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher
from tradekit.services.execution.actions import (
    ActionHandler,
    ActionQueue,
    ActivateTrailingHandler,
    AddToPositionHandler,
    ClosePercentHandler,
    OpenPositionHandler,
    UpdateStopLossHandler,
    action_handlers,
)
from tradekit.services.positions.lifecycle import PositionLifecycleService

BTC = "BTC/USDT"
ETH = "ETH/USDT"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def candle(close: float, hour: int = 0, symbol: str = BTC, open_: float | None = None) -> Candle:
    open_price = close if open_ is None else open_
    return Candle(
        symbol=symbol,
        timeframe="1h",
        ts=T0 + timedelta(hours=hour),
        open=open_price,
        high=max(open_price, close) * 1.2,
        low=min(open_price, close) * 0.8,
        close=close,
        volume=1.0,
    )


class FakeExchange:
    """Fills at once at the trigger price, else the candle close, with a fixed fee; or holds.

    With ``hold`` set, orders wait until ``fill_pending`` fills them at the candle's open.
    """

    def __init__(self, fee: float = 0.0, *, hold: bool = False) -> None:
        self.fee = fee
        self.hold = hold
        self.submitted: list[tuple[Order, float | None]] = []
        self.pending: list[Order] = []
        self.refuse = False

    def submit(
        self, order: Order, candle: Candle, trigger_price: float | None = None
    ) -> list[Fill]:
        if self.refuse:
            raise ExchangeError("venue is closed")
        self.submitted.append((order, trigger_price))
        if self.hold:
            self.pending.append(order)
            return []
        price = candle.close if trigger_price is None else trigger_price
        return [self._fill(order, price, candle.close_ts)]

    def fill_pending(self, strategy_id: str, candle: Candle) -> list[Fill]:
        due = [o for o in self.pending if (o.strategy_id, o.symbol) == (strategy_id, candle.symbol)]
        self.pending = [o for o in self.pending if o not in due]
        return [self._fill(order, candle.open, candle.ts) for order in due]

    def cancel_pending(self, strategy_id: str) -> int:
        dropped = [o for o in self.pending if o.strategy_id == strategy_id]
        self.pending = [o for o in self.pending if o.strategy_id != strategy_id]
        return len(dropped)

    def _fill(self, order: Order, price: float, ts: datetime) -> Fill:
        return Fill(
            order.order_id,
            order.strategy_id,
            order.symbol,
            order.side,
            order.quantity,
            price,
            self.fee,
            ts,
        )


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, event_type: type[Event]) -> list[Any]:
        return [event for event in self.events if isinstance(event, event_type)]


class Strategy:
    """One strategy's lifecycle, handlers and queue over a shared bus and exchange."""

    def __init__(
        self,
        exchange: FakeExchange,
        strategy_id: str = "rsi-btc",
        bus: InMemoryEventBus | None = None,
        **config: Any,
    ) -> None:
        self.config = StrategyConfig.model_validate(
            {
                "strategy_id": strategy_id,
                "symbols": [BTC, ETH],
                "timeframe": "1h",
                "capital": 10_000,
                "analyzers": [{"type": "threshold"}],
                **config,
            }
        )
        self.bus = bus or InMemoryEventBus()
        self.recorder = Recorder()
        self.bus.subscribe(self.recorder, strategy_id=strategy_id)
        self.publisher = StrategyPublisher(self.bus, strategy_id)
        self.lifecycle = PositionLifecycleService(strategy_id, self.config, self.publisher)
        self.exchange = exchange
        self.handlers = action_handlers(strategy_id, self.lifecycle, exchange)
        self.queue = ActionQueue(self.publisher, self.handlers)

    def run(self, *actions: Action, on: Candle) -> int:
        for action in actions:
            self.queue.enqueue(action)
        return self.queue.run(on)

    def handle(self, action: Action, on: Candle) -> str:
        handler: ActionHandler[Any] = self.handlers[type(action)]
        return handler.handle(action, on)

    def failures(self) -> list[str]:
        return [event.error for event in self.recorder.of(ActionFailed)]


@pytest.fixture
def strategy() -> Strategy:
    return Strategy(FakeExchange(fee=0.1))


class TestOpenPosition:
    def test_quote_amount_becomes_quantity_at_the_close(self, strategy: Strategy) -> None:
        detail = strategy.handle(OpenPosition(BTC, Side.LONG, 1_000.0), candle(250.0))
        order, trigger = strategy.exchange.submitted[0]
        assert (order.side, order.quantity, order.reduce_only, trigger) == (
            OrderSide.BUY,
            4.0,
            False,
            None,
        )
        assert order.order_id == "rsi-btc-1"
        assert order.created_at == candle(250.0).close_ts
        assert detail == "buy 4 BTC/USDT as rsi-btc-1: filled 4 @ 250"
        position = strategy.lifecycle.position(BTC)
        assert position is not None
        assert position.quantity == 4.0

    def test_short_open_sells(self, strategy: Strategy) -> None:
        strategy.handle(OpenPosition(BTC, Side.SHORT, 100.0), candle(50.0))
        assert strategy.exchange.submitted[0][0].side is OrderSide.SELL
        position = strategy.lifecycle.position(BTC)
        assert position is not None
        assert position.side is Side.SHORT

    def test_pending_open_fills_at_the_next_open(self) -> None:
        strategy = Strategy(FakeExchange(hold=True))
        detail = strategy.handle(OpenPosition(BTC, Side.LONG, 100.0), candle(100.0, 0))
        assert detail.endswith(": pending")
        assert strategy.lifecycle.position(BTC) is None
        assert strategy.lifecycle.has_pending(BTC)
        for fill in strategy.exchange.fill_pending("rsi-btc", candle(110.0, 1, open_=104.0)):
            strategy.lifecycle.apply_fills([fill])
        position = strategy.lifecycle.position(BTC)
        assert position is not None
        assert (position.quantity, position.avg_entry_price) == (1.0, 104.0)
        assert not strategy.lifecycle.has_pending(BTC)

    def test_absolute_levels_reach_the_position(self, strategy: Strategy) -> None:
        action = OpenPosition(BTC, Side.LONG, 100.0, stop_loss=90.0, take_profit=130.0)
        strategy.handle(action, candle(100.0))
        position = strategy.lifecycle.position(BTC)
        assert position is not None
        assert (position.stop_loss, position.take_profit) == (90.0, 130.0)

    @pytest.mark.parametrize(
        ("side", "stop_loss", "take_profit", "message"),
        [
            (Side.LONG, 100.0, None, "stop_loss 100 must be below"),
            (Side.LONG, None, 99.0, "take_profit 99 must be above"),
            (Side.SHORT, 95.0, None, "stop_loss 95 must be above"),
            (Side.SHORT, None, 101.0, "take_profit 101 must be below"),
        ],
    )
    def test_levels_on_the_wrong_side_are_refused(
        self,
        strategy: Strategy,
        side: Side,
        stop_loss: float | None,
        take_profit: float | None,
        message: str,
    ) -> None:
        action = OpenPosition(BTC, side, 100.0, stop_loss=stop_loss, take_profit=take_profit)
        with pytest.raises(ActionError, match=message):
            strategy.handle(action, candle(100.0))
        assert strategy.exchange.submitted == []

    def test_open_when_already_open_is_refused(self, strategy: Strategy) -> None:
        strategy.handle(OpenPosition(BTC, Side.LONG, 100.0), candle(100.0))
        with pytest.raises(PositionError, match="rsi-btc-pos-1 is already open"):
            strategy.handle(OpenPosition(BTC, Side.LONG, 100.0), candle(100.0))

    def test_open_while_an_order_is_pending_is_refused(self) -> None:
        strategy = Strategy(FakeExchange(hold=True))
        strategy.handle(OpenPosition(BTC, Side.LONG, 100.0), candle(100.0))
        with pytest.raises(ActionError, match="earlier order in it is pending"):
            strategy.handle(OpenPosition(BTC, Side.LONG, 100.0), candle(100.0))

    def test_symbol_not_traded_is_refused(self, strategy: Strategy) -> None:
        with pytest.raises(ActionError, match="SOL/USDT, which this strategy does not trade"):
            strategy.handle(OpenPosition("SOL/USDT", Side.LONG, 100.0), candle(1.0, 0, "SOL/USDT"))

    def test_candle_of_another_symbol_is_refused(self, strategy: Strategy) -> None:
        with pytest.raises(ActionError, match="was run on a ETH/USDT candle"):
            strategy.handle(OpenPosition(BTC, Side.LONG, 100.0), candle(1.0, 0, ETH))

    def test_non_positive_amounts_are_refused_by_the_action(self) -> None:
        with pytest.raises(ActionError, match="quote_amount must be a finite number > 0"):
            OpenPosition(BTC, Side.LONG, 0.0)
        with pytest.raises(ActionError, match="quote_amount must be a finite number > 0"):
            AddToPosition(BTC, -5.0)

    def test_refused_submit_leaves_no_pending_intent(self, strategy: Strategy) -> None:
        strategy.exchange.refuse = True
        with pytest.raises(ExchangeError):
            strategy.handle(OpenPosition(BTC, Side.LONG, 100.0), candle(100.0))
        assert not strategy.lifecycle.has_pending(BTC)


class TestAddAndClose:
    def test_hand_computed_round_trip(self, strategy: Strategy) -> None:
        """Open 1 at 100, add 1 at 90 (fee 0.1 each), close half at 110 then the rest."""
        lifecycle = strategy.lifecycle
        strategy.handle(OpenPosition(BTC, Side.LONG, 100.0), candle(100.0, 0))
        lifecycle.mark(candle(90.0, 1))
        strategy.handle(AddToPosition(BTC, 90.0), candle(90.0, 1))
        position = lifecycle.position(BTC)
        assert position is not None
        assert (position.quantity, position.avg_entry_price) == pytest.approx((2.0, 95.0))
        assert lifecycle.equity() == pytest.approx(10_000 - 10 - 0.2)

        detail = strategy.handle(ClosePercent(BTC, 50.0, "partial", 110.0), candle(100.0, 2))
        order, trigger = strategy.exchange.submitted[-1]
        assert (order.side, order.quantity, order.reduce_only, trigger) == (
            OrderSide.SELL,
            1.0,
            True,
            110.0,
        )
        assert detail == "sell 1 BTC/USDT as rsi-btc-3: filled 1 @ 110"
        assert lifecycle.realized_pnl == pytest.approx(15 - 0.1 - 0.1)

        strategy.handle(ClosePercent(BTC, 100.0, "target"), candle(120.0, 3))
        assert lifecycle.position(BTC) is None
        assert lifecycle.realized_pnl == pytest.approx(14.8 + 25 - 0.1 - 0.1)
        assert lifecycle.equity() == pytest.approx(10_039.6)

    def test_full_close_leaves_no_float_dust(self, strategy: Strategy) -> None:
        strategy.handle(OpenPosition(BTC, Side.LONG, 100.0), candle(3.0))
        strategy.handle(AddToPosition(BTC, 10.0), candle(7.0))
        strategy.handle(ClosePercent(BTC, 30.0), candle(7.0))
        position = strategy.lifecycle.position(BTC)
        assert position is not None
        remaining = position.quantity
        strategy.handle(ClosePercent(BTC, 100.0), candle(7.0))
        assert strategy.exchange.submitted[-1][0].quantity == remaining
        assert strategy.lifecycle.position(BTC) is None
        assert strategy.recorder.of(PositionClosed)[0].quantity == pytest.approx(100 / 3 + 10 / 7)

    def test_close_while_a_close_is_pending_takes_only_what_is_left(self) -> None:
        strategy = Strategy(FakeExchange(hold=True))
        lifecycle = strategy.lifecycle
        strategy.exchange.hold = False
        strategy.handle(OpenPosition(BTC, Side.LONG, 200.0), candle(100.0))
        strategy.exchange.hold = True
        strategy.handle(ClosePercent(BTC, 75.0), candle(100.0))
        strategy.handle(ClosePercent(BTC, 100.0), candle(100.0))
        assert [order.quantity for order, _ in strategy.exchange.submitted[1:]] == [1.5, 0.5]
        with pytest.raises(PositionError, match="already being closed by pending orders"):
            strategy.handle(ClosePercent(BTC, 10.0), candle(100.0))
        for fill in strategy.exchange.fill_pending("rsi-btc", candle(100.0, 1)):
            lifecycle.apply_fills([fill])
        assert lifecycle.position(BTC) is None

    def test_short_add_sells_and_close_buys(self, strategy: Strategy) -> None:
        strategy.handle(OpenPosition(BTC, Side.SHORT, 100.0), candle(100.0))
        strategy.handle(AddToPosition(BTC, 110.0), candle(110.0))
        strategy.handle(ClosePercent(BTC, 100.0), candle(90.0))
        sides = [order.side for order, _ in strategy.exchange.submitted]
        assert sides == [OrderSide.SELL, OrderSide.SELL, OrderSide.BUY]
        # Short 2 at an average of 105, bought back at 90; three fills of 0.1 fee.
        assert strategy.lifecycle.realized_pnl == pytest.approx(30 - 0.3)

    def test_add_and_close_without_a_position_are_refused(self, strategy: Strategy) -> None:
        with pytest.raises(PositionError, match="AddToPosition needs an open position"):
            strategy.handle(AddToPosition(BTC, 100.0), candle(100.0))
        with pytest.raises(PositionError, match="ClosePercent needs an open position"):
            strategy.handle(ClosePercent(BTC, 50.0), candle(100.0))
        assert strategy.exchange.submitted == []

    def test_close_percent_out_of_range_is_refused_by_the_action(self) -> None:
        with pytest.raises(ActionError, match=r"percent must be within \(0, 100\]"):
            ClosePercent(BTC, 150.0)


class TestStopHandlers:
    def test_update_stop_and_activate_trailing(self, strategy: Strategy) -> None:
        strategy.handle(OpenPosition(BTC, Side.LONG, 100.0), candle(100.0))
        on = candle(120.0, 1)
        strategy.lifecycle.mark(on)
        assert strategy.handle(UpdateStopLoss(BTC, 110.0, "lock"), on) == "stop none -> 110"
        assert (
            strategy.handle(ActivateTrailing(BTC, 3.0), on) == "trailing 3% behind the best price"
        )
        stop = strategy.recorder.of(StopLossUpdated)[0]
        assert (stop.new_stop, stop.ts) == (110.0, on.close_ts)
        assert strategy.recorder.of(TrailingActivated)[0].activation_price == 120.0

    def test_stop_handlers_need_an_open_position(self, strategy: Strategy) -> None:
        lifecycle = strategy.lifecycle
        with pytest.raises(PositionError, match="UpdateStopLoss needs an open position"):
            UpdateStopLossHandler(lifecycle).handle(UpdateStopLoss(BTC, 1.0), candle(1.0))
        with pytest.raises(PositionError, match="ActivateTrailing needs an open position"):
            ActivateTrailingHandler(lifecycle).handle(ActivateTrailing(BTC, 1.0), candle(1.0))


class TestActionQueue:
    def test_runs_in_order_and_reports_each_success(self, strategy: Strategy) -> None:
        executed = strategy.run(
            OpenPosition(BTC, Side.LONG, 100.0),
            UpdateStopLoss(BTC, 95.0, "initial"),
            on=candle(100.0),
        )
        assert executed == 2
        events = strategy.recorder.of(ActionExecuted)
        assert [(e.action, e.symbol) for e in events] == [
            ("OpenPosition", BTC),
            ("UpdateStopLoss", BTC),
        ]
        assert events[1].detail == "stop none -> 95"
        assert all(event.ts == candle(100.0).close_ts for event in events)

    def test_a_failing_action_is_reported_and_the_next_still_runs(self, strategy: Strategy) -> None:
        executed = strategy.run(
            AddToPosition(BTC, 100.0),
            OpenPosition(BTC, Side.LONG, 100.0),
            on=candle(100.0),
        )
        assert executed == 1
        failed = strategy.recorder.of(ActionFailed)
        assert [(e.action, e.symbol) for e in failed] == [("AddToPosition", BTC)]
        assert failed[0].error.startswith("PositionError: strategy 'rsi-btc': AddToPosition")
        assert strategy.lifecycle.position(BTC) is not None
        assert strategy.queue.pending() == 0

    def test_an_unexpected_exception_is_reported_too(self, strategy: Strategy) -> None:
        class Broken:
            def handle(self, action: OpenPosition, candle: Candle) -> str:
                raise ZeroDivisionError("oops")

        queue = ActionQueue(strategy.publisher, {OpenPosition: Broken()})
        queue.enqueue(OpenPosition(BTC, Side.LONG, 1.0))
        assert queue.run(candle(1.0)) == 0
        assert strategy.failures() == ["ZeroDivisionError: oops"]

    def test_an_action_without_handler_is_reported(self, strategy: Strategy) -> None:
        queue = ActionQueue(strategy.publisher, {OpenPosition: strategy.handlers[OpenPosition]})
        queue.enqueue(ActivateTrailing(BTC, 1.0))
        queue.enqueue(OpenPosition(BTC, Side.LONG, 100.0))
        assert queue.run(candle(100.0)) == 1
        assert strategy.failures() == [
            "no handler for ActivateTrailing; handlers exist for OpenPosition"
        ]

    def test_empty_run_does_nothing(self, strategy: Strategy) -> None:
        assert strategy.queue.run(candle(100.0)) == 0
        assert strategy.recorder.events == []

    def test_pending_counts_queued_actions(self, strategy: Strategy) -> None:
        strategy.queue.enqueue(OpenPosition(BTC, Side.LONG, 100.0))
        strategy.queue.enqueue(ClosePercent(BTC, 100.0))
        assert strategy.queue.pending() == 2
        assert strategy.queue.flush(candle(100.0)) == 2
        assert strategy.queue.pending() == 0
        assert strategy.lifecycle.position(BTC) is None
        assert len(strategy.lifecycle.trades) == 1

    def test_flush_without_candle_discards_with_a_failure_each(self, strategy: Strategy) -> None:
        strategy.run(OpenPosition(BTC, Side.LONG, 100.0), on=candle(100.0, 5))
        strategy.queue.enqueue(ClosePercent(BTC, 100.0))
        assert strategy.queue.flush() == 0
        failed = strategy.recorder.of(ActionFailed)
        assert [(e.action, e.ts) for e in failed] == [("ClosePercent", candle(1.0, 5).close_ts)]
        assert "discarded at shutdown" in failed[0].error
        assert strategy.lifecycle.position(BTC) is not None

    def test_every_event_carries_the_strategy_and_an_increasing_seq(self) -> None:
        bus = InMemoryEventBus()
        exchange = FakeExchange(fee=0.1)
        first, second = Strategy(exchange, "first", bus), Strategy(exchange, "second", bus)
        for strategy in (first, second):
            strategy.run(
                OpenPosition(BTC, Side.LONG, 100.0),
                ClosePercent(ETH, 50.0),
                ClosePercent(BTC, 50.0),
                on=candle(100.0),
            )
        for strategy in (first, second):
            events = strategy.recorder.events
            assert {event.strategy_id for event in events} == {strategy.publisher.strategy_id}
            assert [event.seq for event in events] == list(range(1, len(events) + 1))
            assert len(strategy.failures()) == 1
        first_position, second_position = (
            first.lifecycle.position(BTC),
            second.lifecycle.position(BTC),
        )
        assert first_position is not None
        assert second_position is not None
        assert first_position is not second_position
        assert first_position.quantity == second_position.quantity == 0.5


class TestHandlerConstruction:
    def test_strategy_id_must_match_the_lifecycle(self, strategy: Strategy) -> None:
        for handler_class in (OpenPositionHandler, AddToPositionHandler, ClosePercentHandler):
            with pytest.raises(ValueError, match="does not match"):
                handler_class("other", strategy.lifecycle, strategy.exchange)
