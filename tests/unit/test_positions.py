"""Tests for the position lifecycle: cash and P&L accounting, fills, marks, stops and snapshots.

Fee convention under test: fees leave the cash at once; entry fees are charged
to realized P&L pro rata as the position is closed, exit fees to their own fill.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from tradekit.config import StrategyConfig
from tradekit.domain import Candle, Fill, Order, OrderSide, Side
from tradekit.errors import PositionError, StrategyError
from tradekit.events import (
    Event,
    OrderFilled,
    PositionClosed,
    PositionIncreased,
    PositionOpened,
    PositionReduced,
    StopLossUpdated,
    TrailingActivated,
)
from tradekit.exit_reasons import partial_take_profit_level, partial_take_profit_reason
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher
from tradekit.services.positions.lifecycle import PositionLifecycleService
from tradekit.services.positions.state import (
    AddIntent,
    CloseIntent,
    OpenIntent,
    OrderIntent,
    Trade,
    encode_record,
)

BTC = "BTC/USDT"
ETH = "ETH/USDT"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def make_config(strategy_id: str = "dca-btc", **overrides: Any) -> StrategyConfig:
    data: dict[str, Any] = {
        "strategy_id": strategy_id,
        "symbols": [BTC, ETH],
        "timeframe": "1h",
        "capital": 10_000,
        "analyzers": [{"type": "threshold"}],
    }
    data.update(overrides)
    return StrategyConfig.model_validate(data)


def candle(
    close: float,
    hour: int = 0,
    *,
    symbol: str = BTC,
    high: float | None = None,
    low: float | None = None,
) -> Candle:
    return Candle(
        symbol=symbol,
        timeframe="1h",
        ts=at(hour),
        open=close,
        high=close if high is None else high,
        low=close if low is None else low,
        close=close,
        volume=1.0,
    )


class Recorder:
    """Remembers every event published on the bus."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, event_type: type[Event]) -> list[Any]:
        return [event for event in self.events if isinstance(event, event_type)]


class Book:
    """A lifecycle service with its own bus and recorder, plus helpers to trade through it."""

    def __init__(self, config: StrategyConfig | None = None, bus: InMemoryEventBus | None = None):
        self.config = config or make_config()
        self.bus = bus or InMemoryEventBus()
        self.recorder = Recorder()
        self.bus.subscribe(self.recorder, strategy_id=self.config.strategy_id)
        publisher = StrategyPublisher(self.bus, self.config.strategy_id)
        self.service = PositionLifecycleService(self.config.strategy_id, self.config, publisher)

    def order(
        self, side: OrderSide, quantity: float, intent: OrderIntent, symbol: str = BTC
    ) -> Order:
        order = Order(
            order_id=self.service.new_order_id(),
            strategy_id=self.config.strategy_id,
            symbol=symbol,
            side=side,
            quantity=quantity,
            created_at=T0,
        )
        self.service.register_intent(order, intent)
        return order

    def fill(self, order: Order, price: float, fee: float, hour: int = 0, **over: Any) -> None:
        values: dict[str, Any] = {
            "order_id": order.order_id,
            "strategy_id": order.strategy_id,
            "symbol": order.symbol,
            "side": order.side,
            "quantity": order.quantity,
            "price": price,
            "fee": fee,
            "ts": at(hour),
        }
        values.update(over)
        self.service.apply_fills([Fill(**values)])

    def trade(
        self,
        side: OrderSide,
        quantity: float,
        intent: OrderIntent,
        price: float,
        fee: float,
        hour: int = 0,
        symbol: str = BTC,
    ) -> None:
        self.fill(self.order(side, quantity, intent, symbol), price, fee, hour)


BUY, SELL = OrderSide.BUY, OrderSide.SELL
LONG, SHORT = OpenIntent(Side.LONG), OpenIntent(Side.SHORT)


def assert_identity(service: PositionLifecycleService, prices: dict[str, float]) -> None:
    """Equity is always capital + realized + unrealized."""
    expected = service.config.capital + service.realized_pnl + service.unrealized_pnl(prices)
    assert service.equity(prices) == pytest.approx(expected)


class TestHandComputedLong:
    """Open 1 BTC at 100 and add 1 at 90 (fees 0.1 each), close half at 110, the rest at 120."""

    def test_every_step(self) -> None:
        book = Book()
        service = book.service
        assert service.equity() == 10_000.0

        book.trade(BUY, 1.0, LONG, 100.0, 0.1, hour=0)
        assert service.cash == pytest.approx(9_899.9)
        assert service.equity({BTC: 100.0}) == pytest.approx(9_999.9)
        assert service.unrealized_pnl({BTC: 100.0}) == pytest.approx(-0.1)
        assert_identity(service, {BTC: 100.0})

        book.trade(BUY, 1.0, AddIntent(), 90.0, 0.1, hour=1)
        position = service.position(BTC)
        assert position is not None
        assert (position.quantity, position.avg_entry_price) == pytest.approx((2.0, 95.0))
        assert (position.entries, position.last_entry_price, position.initial_quantity) == (
            2,
            90.0,
            1.0,
        )
        assert service.cash == pytest.approx(9_809.8)
        assert service.equity({BTC: 90.0}) == pytest.approx(9_989.8)
        assert_identity(service, {BTC: 90.0})

        book.trade(SELL, 1.0, CloseIntent(50, "partial"), 110.0, 0.1, hour=2)
        # (110 - 95) * 1, less the exit fee 0.1 and half of the 0.2 entry fees.
        assert service.realized_pnl == pytest.approx(14.8)
        assert service.cash == pytest.approx(9_919.7)
        assert position.quantity == 1.0
        assert position.avg_entry_price == pytest.approx(95.0)
        assert service.equity({BTC: 110.0}) == pytest.approx(10_029.7)
        assert_identity(service, {BTC: 110.0})

        book.trade(SELL, 1.0, CloseIntent(100, "target"), 120.0, 0.1, hour=3)
        assert service.position(BTC) is None
        assert service.realized_pnl == pytest.approx(14.8 + 24.8)
        assert service.cash == pytest.approx(10_039.6)
        assert service.equity() == pytest.approx(10_039.6)
        assert service.fees_paid == pytest.approx(0.4)
        assert_identity(service, {})

    def test_the_trade_record(self) -> None:
        book = Book()
        book.trade(BUY, 1.0, LONG, 100.0, 0.1, hour=0)
        book.service.mark(candle(100.0, 1))
        book.trade(BUY, 1.0, AddIntent(), 90.0, 0.1, hour=1)
        book.service.mark(candle(95.0, 2))
        book.trade(SELL, 1.0, CloseIntent(50, "partial"), 110.0, 0.1, hour=3)
        book.trade(SELL, 1.0, CloseIntent(100, "target"), 120.0, 0.1, hour=3)
        assert list(book.service.trades) == [
            Trade(
                position_id="dca-btc-pos-1",
                symbol=BTC,
                side=Side.LONG,
                entry_ts=at(0),
                exit_ts=at(3),
                quantity=2.0,
                avg_entry_price=pytest.approx(95.0),  # type: ignore[arg-type]
                avg_exit_price=pytest.approx(115.0),  # type: ignore[arg-type]
                fees=pytest.approx(0.4),  # type: ignore[arg-type]
                realized_pnl=pytest.approx(39.6),  # type: ignore[arg-type]
                return_pct=pytest.approx(39.6 / 190 * 100),  # type: ignore[arg-type]
                bars_held=2,
                exit_reason="target",
            )
        ]

    def test_events_in_order_with_the_strategy_id_and_increasing_seq(self) -> None:
        book = Book()
        book.trade(BUY, 1.0, LONG, 100.0, 0.1)
        book.trade(BUY, 1.0, AddIntent(), 90.0, 0.1)
        book.trade(SELL, 1.0, CloseIntent(50, "partial"), 110.0, 0.1)
        book.trade(SELL, 1.0, CloseIntent(100, "target"), 120.0, 0.1, hour=5)
        events = book.recorder.events
        assert [type(event) for event in events] == [
            OrderFilled,
            PositionOpened,
            OrderFilled,
            PositionIncreased,
            OrderFilled,
            PositionReduced,
            OrderFilled,
            PositionClosed,
        ]
        assert {event.strategy_id for event in events} == {"dca-btc"}
        assert [event.seq for event in events] == list(range(1, 9))
        assert events[-1].ts == at(5)
        reduced = book.recorder.of(PositionReduced)[0]
        assert reduced.realized_pnl == pytest.approx(14.8)
        assert (reduced.quantity_closed, reduced.quantity_remaining) == (1.0, 1.0)
        closed = book.recorder.of(PositionClosed)[0]
        assert closed.realized_pnl == pytest.approx(39.6)
        assert closed.fees == pytest.approx(0.4)
        assert (closed.quantity, closed.exit_price) == pytest.approx((2.0, 115.0))
        increased = book.recorder.of(PositionIncreased)[0]
        assert (increased.quantity, increased.avg_entry_price) == pytest.approx((2.0, 95.0))


class TestShort:
    def test_short_profit_when_price_falls(self) -> None:
        book = Book()
        service = book.service
        book.trade(SELL, 2.0, SHORT, 50.0, 0.05)
        assert service.cash == pytest.approx(10_099.95)
        service.mark(candle(45.0, 1, high=51.0, low=44.0))
        position = service.position(BTC)
        assert position is not None
        assert position.best_price == 44.0
        assert service.equity() == pytest.approx(10_009.95)
        assert service.unrealized_pnl() == pytest.approx(9.95)
        assert_identity(service, {BTC: 45.0})
        book.trade(BUY, 2.0, CloseIntent(100, "target"), 40.0, 0.04, hour=2)
        assert service.realized_pnl == pytest.approx(20 - 0.04 - 0.05)
        assert service.cash == pytest.approx(10_019.91)
        assert service.trades[0].side is Side.SHORT
        assert service.trades[0].return_pct == pytest.approx(19.91 / 100 * 100)

    def test_short_loss_when_price_rises(self) -> None:
        book = Book()
        book.trade(SELL, 1.0, SHORT, 100.0, 0.0)
        book.trade(BUY, 1.0, CloseIntent(100, "stop"), 110.0, 0.0)
        assert book.service.realized_pnl == pytest.approx(-10.0)
        assert book.service.equity() == pytest.approx(9_990.0)

    def test_a_buy_cannot_add_to_a_short(self) -> None:
        book = Book()
        book.trade(SELL, 1.0, SHORT, 100.0, 0.0)
        order = book.order(BUY, 1.0, AddIntent())
        with pytest.raises(PositionError, match="cannot add to a short position"):
            book.fill(order, 100.0, 0.0)


class TestOpenLevels:
    def test_levels_from_config_percentages_relative_to_the_fill_price(self) -> None:
        config = make_config(exit={"stop_loss_pct": 5, "take_profit_pct": 10})
        book = Book(config)
        book.trade(BUY, 1.0, LONG, 200.0, 0.0)
        book.trade(SELL, 1.0, SHORT, 100.0, 0.0, symbol=ETH)
        long, short = book.service.position(BTC), book.service.position(ETH)
        assert long is not None
        assert short is not None
        assert (long.stop_loss, long.take_profit) == pytest.approx((190.0, 220.0))
        assert (short.stop_loss, short.take_profit) == pytest.approx((105.0, 90.0))
        assert long.best_price == 200.0
        opened = book.recorder.of(PositionOpened)[0]
        assert opened.stop_loss == pytest.approx(190.0)

    def test_absolute_levels_of_the_intent_win_over_config(self) -> None:
        config = make_config(exit={"stop_loss_pct": 5, "take_profit_pct": 10})
        book = Book(config)
        book.trade(BUY, 1.0, OpenIntent(Side.LONG, stop_loss=150.0), 200.0, 0.0)
        position = book.service.position(BTC)
        assert position is not None
        assert (position.stop_loss, position.take_profit) == pytest.approx((150.0, 220.0))

    def test_no_levels_without_config_or_intent(self) -> None:
        book = Book()
        book.trade(BUY, 1.0, LONG, 200.0, 0.0)
        position = book.service.position(BTC)
        assert position is not None
        assert (position.stop_loss, position.take_profit) == (None, None)

    def test_a_second_fill_of_the_opening_order_grows_it_without_counting_an_add(self) -> None:
        book = Book()
        order = book.order(BUY, 2.0, LONG)
        book.fill(order, 100.0, 0.1, quantity=1.5)
        assert book.service.has_pending(BTC)
        book.fill(order, 102.0, 0.1, quantity=0.5)
        position = book.service.position(BTC)
        assert position is not None
        assert (position.quantity, position.entries, position.initial_quantity) == (2.0, 1, 2.0)
        assert position.avg_entry_price == pytest.approx(100.5)
        assert not book.service.has_pending(BTC)


class TestRefusals:
    def test_fill_of_an_unknown_order_is_refused(self) -> None:
        book = Book()
        order = Order("dca-btc-99", "dca-btc", BTC, BUY, 1.0, T0)
        with pytest.raises(PositionError, match="unknown order"):
            book.fill(order, 100.0, 0.0)

    def test_registering_a_close_of_more_than_is_open_changes_nothing(self) -> None:
        book = Book()
        book.trade(BUY, 1.0, LONG, 100.0, 0.1)
        before, events = book.service.snapshot(), len(book.recorder.events)
        order = Order("x-1", "dca-btc", BTC, SELL, 1.5, T0)
        with pytest.raises(PositionError, match=r"cannot close 1\.5 BTC/USDT; only 1\.0"):
            book.service.register_intent(order, CloseIntent(100))
        assert book.service.snapshot() == before
        assert len(book.recorder.events) == events
        assert not book.service.has_pending(BTC)

    def test_a_fill_closing_more_than_is_open_changes_nothing(self) -> None:
        book = Book()
        book.trade(BUY, 1.0, LONG, 100.0, 0.1)
        order = book.order(SELL, 1.0, CloseIntent(100))
        # A snapshot from an older book where the pending close claimed more than is open now.
        snapshot = json.loads(json.dumps(book.service.snapshot()))
        snapshot["pending"][0]["order"]["quantity"] = 3.0
        book.service.restore(snapshot)
        before, events = book.service.snapshot(), len(book.recorder.events)
        with pytest.raises(PositionError, match=r"closes 3\.0 BTC/USDT; only 1\.0 is open"):
            book.fill(order, 110.0, 0.1, quantity=3.0)
        assert book.service.snapshot() == before
        assert len(book.recorder.events) == events

    def test_a_fill_bigger_than_its_order_is_refused(self) -> None:
        book = Book()
        order = book.order(BUY, 1.0, LONG)
        with pytest.raises(PositionError, match=r"only 1\.0 is unfilled"):
            book.fill(order, 100.0, 0.0, quantity=2.0)
        assert book.service.position(BTC) is None
        assert book.service.cash == 10_000.0

    def test_a_fill_for_another_symbol_than_its_order_is_refused(self) -> None:
        book = Book()
        order = book.order(BUY, 1.0, LONG)
        with pytest.raises(PositionError, match="fill is dca-btc/ETH/USDT/buy"):
            book.fill(order, 100.0, 0.0, symbol=ETH)

    def test_add_and_close_without_a_position_are_refused(self) -> None:
        book = Book()
        with pytest.raises(PositionError, match="add needs an open position in BTC/USDT"):
            book.trade(BUY, 1.0, AddIntent(), 100.0, 0.0)
        with pytest.raises(PositionError, match=r"cannot close 1\.0 BTC/USDT; only 0\.0"):
            book.order(SELL, 1.0, CloseIntent(100))

    def test_an_open_order_on_the_wrong_side_is_refused(self) -> None:
        book = Book()
        with pytest.raises(PositionError, match="a short position opens with a sell order"):
            book.order(BUY, 1.0, SHORT)

    def test_a_second_open_position_in_a_symbol_is_refused(self) -> None:
        book = Book()
        book.trade(BUY, 1.0, LONG, 100.0, 0.0)
        with pytest.raises(PositionError, match="would open a second position"):
            book.trade(BUY, 1.0, LONG, 100.0, 0.0)
        position = book.service.position(BTC)
        assert position is not None
        assert position.quantity == 1.0

    def test_an_order_of_another_strategy_is_refused(self) -> None:
        book = Book()
        order = Order("other-1", "other", BTC, BUY, 1.0, T0)
        with pytest.raises(PositionError, match="belongs to strategy 'other'"):
            book.service.register_intent(order, LONG)

    def test_ids_of_config_and_publisher_must_match(self) -> None:
        publisher = StrategyPublisher(InMemoryEventBus(), "other")
        with pytest.raises(ValueError, match="must match"):
            PositionLifecycleService("dca-btc", make_config(), publisher)


class TestPendingOrders:
    def test_order_ids_are_deterministic_per_strategy(self) -> None:
        first, second = Book(), Book(make_config("other"))
        assert [first.service.new_order_id() for _ in range(3)] == [
            "dca-btc-1",
            "dca-btc-2",
            "dca-btc-3",
        ]
        assert second.service.new_order_id() == "other-1"

    def test_pending_until_filled(self) -> None:
        book = Book()
        assert not book.service.has_pending(BTC)
        order = book.order(BUY, 1.0, LONG)
        assert book.service.has_pending(BTC)
        assert not book.service.has_pending(ETH)
        book.fill(order, 100.0, 0.0)
        assert not book.service.has_pending(BTC)

    def test_closable_quantity_excludes_pending_closes(self) -> None:
        book = Book()
        book.trade(BUY, 2.0, LONG, 100.0, 0.0)
        book.order(SELL, 0.5, CloseIntent(25))
        assert book.service.closable_quantity(BTC) == 1.5
        assert book.service.closable_quantity(ETH) == 0.0

    def test_cancelled_intents_are_forgotten(self) -> None:
        book = Book()
        order = book.order(BUY, 1.0, LONG)
        book.order(BUY, 1.0, LONG, symbol=ETH)
        assert book.service.cancel_intents(ETH) == 1
        assert book.service.has_pending(BTC)
        assert book.service.cancel_intent(order.order_id)
        assert not book.service.cancel_intent(order.order_id)
        assert not book.service.has_pending(BTC)


class TestMark:
    def test_mark_without_position_records_price_and_cash(self) -> None:
        book = Book()
        book.service.mark(candle(100.0, 0))
        book.service.mark(candle(2_000.0, 0, symbol=ETH))
        assert book.service.last_price(BTC) == 100.0
        assert book.service.last_price(ETH) == 2_000.0
        assert book.service.last_price("SOL/USDT") is None
        assert list(book.service.equity_curve) == [(at(0), 10_000.0), (at(0), 10_000.0)]

    def test_mark_ages_and_tracks_the_best_price_of_a_long(self) -> None:
        book = Book()
        book.trade(BUY, 1.0, LONG, 100.0, 0.0)
        book.service.mark(candle(105.0, 1, high=108.0, low=99.0))
        book.service.mark(candle(101.0, 2, high=104.0, low=97.0))
        book.service.mark(candle(3_000.0, 2, symbol=ETH))
        position = book.service.position(BTC)
        assert position is not None
        assert (position.bars_held, position.best_price) == (2, 108.0)
        assert book.service.equity_curve[-2:] == [(at(2), 10_001.0), (at(2), 10_001.0)]

    def test_equity_marks_positions_at_the_last_close_or_given_prices(self) -> None:
        book = Book()
        book.trade(BUY, 1.0, LONG, 100.0, 0.0)
        book.trade(SELL, 2.0, SHORT, 50.0, 0.0, symbol=ETH)
        assert book.service.equity() == 10_000.0  # no close known yet: marked at entry
        book.service.mark(candle(110.0, 1))
        book.service.mark(candle(40.0, 1, symbol=ETH))
        assert book.service.equity() == pytest.approx(10_000 + 10 + 20)
        assert book.service.equity({ETH: 60.0}) == pytest.approx(10_000 + 10 - 20)
        assert book.service.open_count() == 2
        assert [p.symbol for p in book.service.open_positions()] == [BTC, ETH]


class TestBoundedHistory:
    def test_only_the_latest_equity_points_are_kept(self) -> None:
        book = Book()
        book.service.bound_history(max_equity_points=3, max_trades=None)
        for hour in range(5):
            book.service.mark(candle(100.0 + hour, hour))
        stamps = np.array([int(at(5).timestamp()), int(at(6).timestamp())])
        book.service.mark_quiet(BTC, stamps, [1.0, 2.0], [1.0, 2.0], [1.0, 2.0])
        assert [ts for ts, _ in book.service.equity_curve] == [at(4), at(5), at(6)]

    def test_only_the_latest_trades_are_kept_and_all_are_counted(self) -> None:
        book = Book()
        book.service.bound_history(max_equity_points=None, max_trades=1)
        for hour in range(3):
            book.trade(BUY, 1.0, LONG, 100.0, 0.0, hour=hour)
            book.trade(SELL, 1.0, CloseIntent(100, "exit"), 101.0 + hour, 0.0, hour=hour)
        assert [trade.avg_exit_price for trade in book.service.trades] == [103.0]
        assert book.service.trade_count == 3

    def test_a_bound_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="max_trades must be >= 1 or None, got 0"):
            Book().service.bound_history(max_equity_points=None, max_trades=0)


class TestStops:
    def test_set_stop_emits_the_old_and_new_stop(self) -> None:
        book = Book(make_config(exit={"stop_loss_pct": 10}))
        book.trade(BUY, 1.0, LONG, 100.0, 0.0)
        book.service.set_stop(BTC, 95.0, "breakeven", at(3))
        position = book.service.position(BTC)
        assert position is not None
        assert position.stop_loss == 95.0
        event = book.recorder.of(StopLossUpdated)[0]
        assert (event.old_stop, event.new_stop, event.reason, event.ts) == (
            pytest.approx(90.0),
            95.0,
            "breakeven",
            at(3),
        )

    def test_activate_trailing_at_the_last_close(self) -> None:
        book = Book()
        book.trade(BUY, 1.0, LONG, 100.0, 0.0)
        book.service.mark(candle(120.0, 1))
        book.service.activate_trailing(BTC, 2.5, at(1))
        position = book.service.position(BTC)
        assert position is not None
        assert (position.trailing_active, position.trailing_distance_pct) == (True, 2.5)
        event = book.recorder.of(TrailingActivated)[0]
        assert (event.distance_pct, event.activation_price) == (2.5, 120.0)

    def test_a_partial_take_profit_counts_when_it_fills_not_when_it_is_ordered(self) -> None:
        book = Book()
        book.trade(BUY, 1.0, LONG, 100.0, 0.0)
        book.trade(SELL, 0.1, CloseIntent(10, "trim"), 101.0, 0.0)
        position = book.service.position(BTC)
        assert position is not None
        refused = book.order(SELL, 0.3, CloseIntent(30, partial_take_profit_reason(1)))
        book.service.cancel_intent(refused.order_id)
        assert position.partial_exits_done == 0
        order = book.order(SELL, 0.3, CloseIntent(30, partial_take_profit_reason(1)))
        assert position.partial_exits_done == 0
        book.fill(order, 105.0, 0.0, quantity=0.1)
        book.fill(order, 105.0, 0.0, quantity=0.2)
        assert position.partial_exits_done == 1
        book.trade(SELL, 0.3, CloseIntent(50, partial_take_profit_reason(2)), 110.0, 0.0)
        assert position.partial_exits_done == 2

    def test_partial_take_profit_reasons_name_their_level(self) -> None:
        assert partial_take_profit_reason(3) == "partial_take_profit_3"
        assert partial_take_profit_level("partial_take_profit_3") == 3
        for other in ("take_profit", "partial_take_profit_", "partial_take_profit_x", "stop"):
            assert partial_take_profit_level(other) is None

    def test_stop_changes_need_an_open_position(self) -> None:
        book = Book()
        with pytest.raises(PositionError, match="set_stop needs an open position"):
            book.service.set_stop(BTC, 95.0, "x", T0)
        with pytest.raises(PositionError, match="activate_trailing needs an open position"):
            book.service.activate_trailing(BTC, 1.0, T0)


class TestIsolation:
    def test_two_strategies_on_one_symbol_keep_their_own_books(self) -> None:
        bus = InMemoryEventBus()
        first = Book(make_config("first"), bus)
        second = Book(make_config("second", capital=500), bus)
        first.trade(BUY, 1.0, LONG, 100.0, 0.1)
        second.trade(SELL, 2.0, SHORT, 100.0, 0.2)
        for book in (first, second):
            book.service.mark(candle(90.0, 1))
        assert first.service.equity() == pytest.approx(10_000 - 10 - 0.1)
        assert second.service.equity() == pytest.approx(500 + 20 - 0.2)
        first_position, second_position = first.service.position(BTC), second.service.position(BTC)
        assert first_position is not None
        assert second_position is not None
        assert (first_position.side, second_position.side) == (Side.LONG, Side.SHORT)
        assert {e.strategy_id for e in first.recorder.events} == {"first"}
        assert {e.strategy_id for e in second.recorder.events} == {"second"}

    def test_a_fill_of_one_strategy_is_refused_by_another(self) -> None:
        first, second = Book(make_config("first")), Book(make_config("second"))
        order = first.order(BUY, 1.0, LONG)
        with pytest.raises(PositionError, match="unknown order"):
            second.fill(order, 100.0, 0.0)
        assert second.service.position(BTC) is None


def run_rest(book: Book, order: Order) -> None:
    """What happens after the snapshot point: a pending fill, marks, partial and full exits."""
    service = book.service
    book.fill(order, 88.0, 0.088, hour=2)
    service.mark(candle(92.0, 2, high=95.0, low=87.0))
    service.set_stop(BTC, 85.0, "tighten", at(2))
    book.trade(SELL, 1.0, CloseIntent(50, "partial"), 110.0, 0.11, hour=3)
    service.mark(candle(111.0, 3, high=112.0, low=105.0))
    position = service.position(BTC)
    assert position is not None
    book.trade(SELL, position.quantity, CloseIntent(100, "target"), 115.0, 0.115, hour=4)
    book.trade(SELL, 0.5, SHORT, 2_000.0, 1.0, hour=4, symbol=ETH)


class TestSnapshot:
    def started(self) -> tuple[Book, Order]:
        book = Book(make_config(exit={"stop_loss_pct": 5}))
        book.trade(BUY, 1.0, LONG, 100.0, 0.1, hour=0)
        book.trade(SELL, 1.0, SHORT, 50.0, 0.05, hour=0, symbol=ETH)
        book.trade(BUY, 1.0, CloseIntent(100, "exit"), 45.0, 0.05, hour=1, symbol=ETH)
        book.service.mark(candle(95.0, 1, high=101.0, low=94.0))
        position = book.service.position(BTC)
        assert position is not None
        position.partial_exits_done = 1  # a snapshot must keep it
        pending_add = book.order(BUY, 1.0, AddIntent())
        return book, pending_add

    def test_snapshot_is_json_ready_and_round_trips(self) -> None:
        book, _ = self.started()
        snapshot = book.service.snapshot()
        assert json.loads(json.dumps(snapshot)) == snapshot
        restored = Book(book.config)
        restored.service.restore(json.loads(json.dumps(snapshot)))
        assert restored.service.snapshot() == snapshot
        assert restored.service.position(BTC) == book.service.position(BTC)
        assert restored.service.trade_count == book.service.trade_count == 1
        assert restored.service.has_pending(BTC)

    def test_snapshot_holds_state_not_the_trade_history(self) -> None:
        book, _ = self.started()
        snapshot = book.service.snapshot()
        assert "trades" not in snapshot
        assert snapshot["trade_count"] == len(book.service.trades) == 1

    def test_a_version_1_snapshot_with_its_trade_list_is_still_read(self) -> None:
        book, _ = self.started()
        snapshot = book.service.snapshot()
        del snapshot["trade_count"]
        old = snapshot | {
            "version": 1,
            "trades": [encode_record(trade) for trade in book.service.trades],
        }
        restored = Book(book.config)
        restored.service.restore(json.loads(json.dumps(old)))
        assert restored.service.trade_count == 1
        assert restored.service.snapshot() == book.service.snapshot()

    def test_restored_mid_position_ends_like_the_uninterrupted_service(self) -> None:
        uninterrupted, order = self.started()
        restored = Book(uninterrupted.config)
        restored.service.restore(json.loads(json.dumps(uninterrupted.service.snapshot())))
        run_rest(uninterrupted, order)
        run_rest(restored, order)
        assert restored.service.snapshot() == uninterrupted.service.snapshot()
        # The restored service lists the trades it closed itself: the later ones.
        assert list(restored.service.trades) == list(uninterrupted.service.trades)[1:]
        assert restored.service.trade_count == uninterrupted.service.trade_count
        assert restored.service.equity() == uninterrupted.service.equity()
        assert restored.service.new_order_id() == uninterrupted.service.new_order_id()
        closed = list(restored.recorder.of(PositionClosed))
        assert closed[0].position_id == "dca-btc-pos-1"
        assert restored.service.position(ETH) is not None
        assert restored.service.position(ETH).position_id == "dca-btc-pos-3"  # type: ignore[union-attr]

    def test_snapshot_of_another_strategy_is_refused(self) -> None:
        book, _ = self.started()
        other = Book(make_config("other"))
        with pytest.raises(StrategyError, match="snapshot belongs to strategy 'dca-btc'"):
            other.service.restore(book.service.snapshot())

    def test_malformed_snapshot_is_refused(self) -> None:
        book, _ = self.started()
        snapshot = book.service.snapshot()
        del snapshot["positions"][0]["position"]["side"]
        with pytest.raises(StrategyError, match="snapshot is malformed"):
            Book().service.restore(snapshot)

    def test_unknown_version_is_refused(self) -> None:
        snapshot = Book().service.snapshot() | {"version": 99}
        with pytest.raises(StrategyError, match="version 99 is not supported"):
            Book().service.restore(snapshot)


class TestOpenOrOpeningCount:
    def test_an_opening_order_still_pending_counts_against_position_limits(self) -> None:
        book = Book()
        book.order(OrderSide.BUY, 1.0, OpenIntent(Side.LONG), symbol=ETH)
        assert book.service.open_count() == 0
        assert book.service.open_or_opening_count() == 1
        book.service.cancel_intents(ETH)
        assert book.service.open_or_opening_count() == 0

    def test_a_filled_open_counts_once(self) -> None:
        book = Book()
        order = book.order(OrderSide.BUY, 1.0, OpenIntent(Side.LONG))
        book.fill(order, price=100.0, fee=0.1)
        assert book.service.open_or_opening_count() == 1
