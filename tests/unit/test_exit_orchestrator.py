"""Tests for the exit orchestrator: stops, targets, gaps, trailing, time, signal, partial exits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes import START, FakeBarView, make_candle

from tradekit.config.strategy import AnalyzerConfig, ExitConfig
from tradekit.domain import ActivateTrailing, ClosePercent, Position, Side, UpdateStopLoss
from tradekit.orchestrators.exit import ExitAction, ExitOrchestrator
from tradekit.services.signals.analyzers import NO_SCORES, AnalyzerRegistry, Scores, build_analyzers

BTC = "BTC/USDT"
STRATEGY = "exit-test"


def make_position(
    side: Side = Side.LONG,
    *,
    quantity: float = 10.0,
    initial_quantity: float = 0.0,
    avg_entry_price: float = 100.0,
    stop_loss: float | None = None,
    take_profit: float | None = None,
    best_price: float = 0.0,
    trailing_active: bool = False,
    bars_held: int = 1,
    partial_exits_done: int = 0,
) -> Position:
    return Position(
        position_id=f"{STRATEGY}-pos-1",
        strategy_id=STRATEGY,
        symbol=BTC,
        side=side,
        quantity=quantity,
        avg_entry_price=avg_entry_price,
        opened_at=START,
        stop_loss=stop_loss,
        take_profit=take_profit,
        trailing_active=trailing_active,
        trailing_distance_pct=2.0 if trailing_active else None,
        best_price=best_price,
        bars_held=bars_held,
        initial_quantity=initial_quantity,
        partial_exits_done=partial_exits_done,
    )


def bar(
    open_: float = 100.0,
    high: float | None = None,
    low: float | None = None,
    close: float | None = None,
) -> FakeBarView:
    """A view of one candle; high and low default to the open and close."""
    closed = open_ if close is None else close
    candle = make_candle(
        close=closed,
        open_=open_,
        high=max(open_, closed) if high is None else high,
        low=min(open_, closed) if low is None else low,
    )
    return FakeBarView(candle=candle)


def fields_of(action: ExitAction) -> tuple[Any, ...]:
    """An action as a plain tuple, so a computed price can be compared with ``pytest.approx``."""
    if isinstance(action, UpdateStopLoss):
        return ("UpdateStopLoss", action.symbol, action.stop_price, action.reason)
    if isinstance(action, ActivateTrailing):
        return ("ActivateTrailing", action.symbol, action.distance_pct, action.reason)
    return ("ClosePercent", action.symbol, action.percent, action.reason, action.trigger_price)


class FakePositions:
    """One optional position in BTC and a pending flag."""

    def __init__(self, position: Position | None = None) -> None:
        self.open: Position | None = position
        self.pending = False

    def position(self, symbol: str) -> Position | None:
        return self.open if self.open is not None and self.open.symbol == symbol else None

    def has_pending(self, symbol: str) -> bool:
        return self.pending


class RecordingQueue:
    def __init__(self) -> None:
        self.actions: list[ExitAction] = []

    def enqueue(self, action: ExitAction) -> None:
        self.actions.append(action)


class Harness:
    def __init__(self, position: Position | None = None, **exit_config: Any) -> None:
        self.positions = FakePositions(position)
        self.queue = RecordingQueue()
        self.exit = ExitOrchestrator(
            ExitConfig.model_validate(exit_config), self.positions, self.queue
        )

    def evaluate(self, view: FakeBarView, scores: Scores = NO_SCORES) -> list[ExitAction]:
        self.exit.evaluate(view, scores)
        return self.queue.actions


class TestNothingToDo:
    def test_no_position_queues_nothing(self) -> None:
        harness = Harness(None, time_stop_bars=1)
        assert harness.evaluate(bar(100.0, low=1.0)) == []

    def test_a_pending_order_defers_every_exit(self) -> None:
        harness = Harness(make_position(stop_loss=95.0, bars_held=9), time_stop_bars=1)
        harness.positions.pending = True
        assert harness.evaluate(bar(100.0, low=90.0)) == []


class TestStopLoss:
    def test_long_stop_not_touched_above_the_low(self) -> None:
        harness = Harness(make_position(stop_loss=95.0))
        assert harness.evaluate(bar(100.0, low=95.01)) == []

    def test_long_stop_hit_by_the_low_fills_at_the_stop(self) -> None:
        harness = Harness(make_position(stop_loss=95.0))
        assert harness.evaluate(bar(100.0, low=95.0, close=97.0)) == [
            ClosePercent(BTC, 100.0, "stop_loss", 95.0)
        ]

    def test_long_candle_opening_below_the_stop_fills_at_the_open(self) -> None:
        harness = Harness(make_position(stop_loss=95.0))
        assert harness.evaluate(bar(93.0, high=94.0, low=92.0, close=93.5)) == [
            ClosePercent(BTC, 100.0, "stop_loss", 93.0)
        ]

    def test_short_stop_hit_by_the_high_fills_at_the_stop(self) -> None:
        harness = Harness(make_position(Side.SHORT, stop_loss=105.0))
        assert harness.evaluate(bar(100.0, high=104.99)) == []
        assert harness.evaluate(bar(100.0, high=105.0)) == [
            ClosePercent(BTC, 100.0, "stop_loss", 105.0)
        ]

    def test_short_candle_opening_above_the_stop_fills_at_the_open(self) -> None:
        harness = Harness(make_position(Side.SHORT, stop_loss=105.0))
        assert harness.evaluate(bar(107.0, high=108.0, low=106.0)) == [
            ClosePercent(BTC, 100.0, "stop_loss", 107.0)
        ]

    def test_a_stop_hit_while_trailing_is_a_trailing_stop(self) -> None:
        harness = Harness(
            make_position(stop_loss=104.0, trailing_active=True, best_price=106.0),
            trailing_activation_pct=3,
            trailing_distance_pct=2,
        )
        assert harness.evaluate(bar(105.0, low=103.5)) == [
            ClosePercent(BTC, 100.0, "trailing_stop", 104.0)
        ]


class TestTakeProfit:
    def test_long_target_hit_by_the_high_fills_at_the_target(self) -> None:
        harness = Harness(make_position(take_profit=110.0))
        assert harness.evaluate(bar(100.0, high=109.99)) == []
        assert harness.evaluate(bar(100.0, high=110.0, close=108.0)) == [
            ClosePercent(BTC, 100.0, "take_profit", 110.0)
        ]

    def test_long_candle_opening_above_the_target_fills_at_the_open(self) -> None:
        harness = Harness(make_position(take_profit=110.0))
        assert harness.evaluate(bar(112.0, high=113.0, low=111.0)) == [
            ClosePercent(BTC, 100.0, "take_profit", 112.0)
        ]

    def test_short_target_hit_by_the_low_fills_at_the_target(self) -> None:
        harness = Harness(make_position(Side.SHORT, take_profit=90.0))
        assert harness.evaluate(bar(100.0, low=90.01)) == []
        assert harness.evaluate(bar(100.0, low=90.0)) == [
            ClosePercent(BTC, 100.0, "take_profit", 90.0)
        ]

    def test_stop_and_target_in_one_candle_takes_the_stop(self) -> None:
        harness = Harness(make_position(stop_loss=95.0, take_profit=110.0))
        assert harness.evaluate(bar(100.0, high=111.0, low=94.0)) == [
            ClosePercent(BTC, 100.0, "stop_loss", 95.0)
        ]

    def test_short_stop_and_target_in_one_candle_takes_the_stop(self) -> None:
        harness = Harness(make_position(Side.SHORT, stop_loss=105.0, take_profit=90.0))
        assert harness.evaluate(bar(100.0, high=106.0, low=89.0)) == [
            ClosePercent(BTC, 100.0, "stop_loss", 105.0)
        ]


class TestTrailing:
    CONFIG: dict[str, Any] = {"trailing_activation_pct": 3, "trailing_distance_pct": 2}

    def test_no_activation_below_the_activation_profit(self) -> None:
        harness = Harness(make_position(best_price=102.9), **self.CONFIG)
        assert harness.evaluate(bar(102.0)) == []

    def test_activation_at_the_activation_profit_sets_the_trailed_stop(self) -> None:
        harness = Harness(make_position(best_price=103.0), **self.CONFIG)
        actions = harness.evaluate(bar(102.0))
        assert [fields_of(action) for action in actions] == [
            ("ActivateTrailing", BTC, 2.0, "trailing_activated"),
            ("UpdateStopLoss", BTC, pytest.approx(100.94), "trailing"),
        ]

    def test_an_active_trail_raises_the_stop_behind_a_new_best(self) -> None:
        position = make_position(best_price=104.0, stop_loss=101.0, trailing_active=True)
        harness = Harness(position, **self.CONFIG)
        actions = harness.evaluate(bar(103.0, low=102.0))
        assert [fields_of(action) for action in actions] == [
            ("UpdateStopLoss", BTC, pytest.approx(101.92), "trailing")
        ]

    def test_an_active_trail_never_lowers_the_stop(self) -> None:
        position = make_position(best_price=104.0, stop_loss=102.0, trailing_active=True)
        harness = Harness(position, **self.CONFIG)
        assert harness.evaluate(bar(103.0, low=102.5)) == []

    def test_activation_at_exactly_the_activation_profit(self) -> None:
        # Entry 80, best 100: exactly +25%.
        position = make_position(avg_entry_price=80.0, best_price=100.0)
        harness = Harness(position, trailing_activation_pct=25, trailing_distance_pct=2)
        assert harness.evaluate(bar(99.0)) == [
            ActivateTrailing(BTC, 2.0, "trailing_activated"),
            UpdateStopLoss(BTC, 98.0, "trailing"),
        ]

    def test_a_trail_equal_to_the_current_stop_is_not_sent_again(self) -> None:
        position = make_position(best_price=104.0, stop_loss=101.92, trailing_active=True)
        harness = Harness(position, **self.CONFIG)
        assert harness.evaluate(bar(103.0, low=102.5)) == []

    def test_a_short_trail_equal_to_the_current_stop_is_not_sent_again(self) -> None:
        position = make_position(Side.SHORT, best_price=96.0, stop_loss=97.92, trailing_active=True)
        harness = Harness(position, **self.CONFIG)
        assert harness.evaluate(bar(97.0, high=97.5)) == []

    def test_activation_keeps_a_higher_fixed_stop(self) -> None:
        harness = Harness(make_position(best_price=103.0, stop_loss=101.5), **self.CONFIG)
        assert harness.evaluate(bar(102.0, low=101.6)) == [
            ActivateTrailing(BTC, 2.0, "trailing_activated")
        ]

    def test_short_trail_sits_above_the_lowest_price(self) -> None:
        harness = Harness(make_position(Side.SHORT, best_price=96.0), **self.CONFIG)
        actions = harness.evaluate(bar(97.0))
        assert [fields_of(action) for action in actions] == [
            ("ActivateTrailing", BTC, 2.0, "trailing_activated"),
            ("UpdateStopLoss", BTC, pytest.approx(97.92), "trailing"),
        ]

    def test_short_trail_never_raises_the_stop(self) -> None:
        position = make_position(Side.SHORT, best_price=96.0, stop_loss=97.5, trailing_active=True)
        harness = Harness(position, **self.CONFIG)
        assert harness.evaluate(bar(97.0, high=97.4)) == []

    def test_no_trailing_without_its_config(self) -> None:
        harness = Harness(make_position(best_price=150.0))
        assert harness.evaluate(bar(140.0)) == []

    def test_a_stop_hit_leaves_trailing_alone_on_that_candle(self) -> None:
        harness = Harness(make_position(best_price=110.0, stop_loss=95.0), **self.CONFIG)
        assert harness.evaluate(bar(100.0, low=94.0)) == [
            ClosePercent(BTC, 100.0, "stop_loss", 95.0)
        ]


class TestTimeStop:
    def test_no_time_stop_before_the_bar_count(self) -> None:
        harness = Harness(make_position(bars_held=2), time_stop_bars=3)
        assert harness.evaluate(bar(100.0)) == []

    def test_time_stop_closes_at_market_after_the_bar_count(self) -> None:
        harness = Harness(make_position(bars_held=3), time_stop_bars=3)
        assert harness.evaluate(bar(100.0)) == [ClosePercent(BTC, 100.0, "time_stop", None)]

    def test_a_stop_hit_comes_before_the_time_stop(self) -> None:
        harness = Harness(make_position(bars_held=3, stop_loss=95.0), time_stop_bars=3)
        assert harness.evaluate(bar(100.0, low=90.0)) == [
            ClosePercent(BTC, 100.0, "stop_loss", 95.0)
        ]


class TestSignalExit:
    def test_signals_are_ignored_unless_enabled(self) -> None:
        harness = Harness(make_position())
        assert harness.evaluate(bar(100.0), Scores(exit=1.0, short=1.0)) == []

    def test_exit_plus_opposite_score_at_the_minimum_closes(self) -> None:
        harness = Harness(
            make_position(), exit_on_opposite_signal=True, opposite_signal_min_score=0.5
        )
        assert harness.evaluate(bar(100.0), Scores(exit=0.3, short=0.2)) == [
            ClosePercent(BTC, 100.0, "signal_exit", None)
        ]

    def test_exit_plus_opposite_score_below_the_minimum_holds(self) -> None:
        harness = Harness(
            make_position(), exit_on_opposite_signal=True, opposite_signal_min_score=0.5
        )
        assert harness.evaluate(bar(100.0), Scores(exit=0.3, short=0.1)) == []

    def test_a_same_side_score_does_not_close_a_long(self) -> None:
        harness = Harness(make_position(), exit_on_opposite_signal=True)
        assert harness.evaluate(bar(100.0), Scores(long=1.0)) == []

    def test_a_long_score_closes_a_short(self) -> None:
        harness = Harness(make_position(Side.SHORT), exit_on_opposite_signal=True)
        assert harness.evaluate(bar(100.0), Scores(long=0.5)) == [
            ClosePercent(BTC, 100.0, "signal_exit", None)
        ]

    def test_min_profit_holds_a_position_below_it(self) -> None:
        harness = Harness(
            make_position(), exit_on_opposite_signal=True, min_profit_pct_for_signal_exit=1.0
        )
        assert harness.evaluate(bar(100.5), Scores(exit=1.0)) == []

    def test_min_profit_lets_a_position_at_it_close(self) -> None:
        harness = Harness(
            make_position(), exit_on_opposite_signal=True, min_profit_pct_for_signal_exit=1.0
        )
        assert harness.evaluate(bar(101.0), Scores(exit=1.0)) == [
            ClosePercent(BTC, 100.0, "signal_exit", None)
        ]

    def test_min_profit_reached_exactly_lets_the_position_close(self) -> None:
        # Entry 80, close 100: exactly +25%.
        harness = Harness(
            make_position(avg_entry_price=80.0),
            exit_on_opposite_signal=True,
            min_profit_pct_for_signal_exit=25.0,
        )
        assert harness.evaluate(bar(100.0), Scores(exit=1.0)) == [
            ClosePercent(BTC, 100.0, "signal_exit", None)
        ]

    def test_min_profit_of_a_short_counts_a_falling_price(self) -> None:
        harness = Harness(
            make_position(Side.SHORT),
            exit_on_opposite_signal=True,
            min_profit_pct_for_signal_exit=1.0,
        )
        assert harness.evaluate(bar(99.5), Scores(long=1.0)) == []
        assert harness.evaluate(bar(99.0), Scores(long=1.0)) == [
            ClosePercent(BTC, 100.0, "signal_exit", None)
        ]


class TestRsiSellsOnOverboughtOnlyInProfit:
    """An RSI 30/70 threshold analyzer: exit on the cross above 70, but only in profit."""

    @staticmethod
    def scores(rsi: list[float | None], close: float) -> Scores:
        analyzers = build_analyzers(
            [AnalyzerConfig(type="threshold", params={"source": "rsi", "below": 30, "above": 70})],
            STRATEGY,
        )
        view = FakeBarView({"rsi": rsi}, candle=make_candle(close=close), bar=len(rsi) - 1)
        return AnalyzerRegistry(analyzers).evaluate(view)

    @staticmethod
    def harness() -> Harness:
        return Harness(
            make_position(), exit_on_opposite_signal=True, min_profit_pct_for_signal_exit=0.5
        )

    def test_overbought_cross_in_profit_sells(self) -> None:
        harness = self.harness()
        assert harness.evaluate(bar(101.0), self.scores([65.0, 72.0], 101.0)) == [
            ClosePercent(BTC, 100.0, "signal_exit", None)
        ]

    def test_overbought_cross_at_a_loss_holds(self) -> None:
        harness = self.harness()
        assert harness.evaluate(bar(99.0), self.scores([65.0, 72.0], 99.0)) == []

    def test_no_cross_no_sale(self) -> None:
        harness = self.harness()
        assert harness.evaluate(bar(105.0), self.scores([60.0, 69.0], 105.0)) == []


class TestPartialTakeProfits:
    LEVELS: dict[str, Any] = {
        "partial_take_profits": [
            {"profit_pct": 2, "close_pct": 30},
            {"profit_pct": 4, "close_pct": 50},
        ]
    }

    def test_first_level_closes_its_share_at_the_level(self) -> None:
        harness = Harness(make_position(), **self.LEVELS)
        assert harness.evaluate(bar(100.0, high=102.0)) == [
            ClosePercent(BTC, 30.0, "partial_take_profit_1", 102.0)
        ]

    def test_a_level_not_filled_is_decided_again_when_touched_again(self) -> None:
        # The lifecycle counts a level when its close fills; a rejected one is not counted.
        harness = Harness(make_position(), **self.LEVELS)
        harness.evaluate(bar(100.0, high=102.5))
        harness.evaluate(bar(100.0, high=101.0))
        harness.evaluate(bar(100.0, high=102.0))
        assert harness.queue.actions == [
            ClosePercent(BTC, 30.0, "partial_take_profit_1", 102.0),
            ClosePercent(BTC, 30.0, "partial_take_profit_1", 102.0),
        ]

    def test_below_the_first_level_nothing_closes(self) -> None:
        harness = Harness(make_position(), **self.LEVELS)
        assert harness.evaluate(bar(100.0, high=101.99)) == []

    def test_second_level_closes_a_share_of_the_initial_quantity(self) -> None:
        # 3 of 10 already closed: 50% of the initial 10 is 5 of the 7 left.
        position = make_position(quantity=7.0, initial_quantity=10.0, partial_exits_done=1)
        harness = Harness(position, **self.LEVELS)
        assert harness.evaluate(bar(100.0, high=103.99)) == []
        actions = harness.evaluate(bar(100.0, high=104.0))
        assert [fields_of(action) for action in actions] == [
            ("ClosePercent", BTC, pytest.approx(500 / 7), "partial_take_profit_2", 104.0)
        ]
        assert 7.0 * fields_of(actions[0])[2] / 100 == pytest.approx(5.0)

    def test_levels_are_taken_in_order_one_per_candle(self) -> None:
        harness = Harness(make_position(), **self.LEVELS)
        assert harness.evaluate(bar(100.0, high=105.0)) == [
            ClosePercent(BTC, 30.0, "partial_take_profit_1", 102.0)
        ]
        assert harness.positions.open is not None
        harness.positions.open.partial_exits_done = 1  # as the lifecycle does when it fills
        harness.evaluate(bar(104.5, high=105.0, low=104.0))
        assert harness.queue.actions[1] == ClosePercent(BTC, 50.0, "partial_take_profit_2", 104.5)

    def test_no_partial_after_every_level_was_taken(self) -> None:
        position = make_position(quantity=2.0, initial_quantity=10.0, partial_exits_done=2)
        harness = Harness(position, **self.LEVELS)
        assert harness.evaluate(bar(100.0, high=120.0)) == []

    def test_short_level_is_below_the_entry(self) -> None:
        harness = Harness(make_position(Side.SHORT), **self.LEVELS)
        assert harness.evaluate(bar(100.0, low=98.01)) == []
        assert harness.evaluate(bar(100.0, low=98.0)) == [
            ClosePercent(BTC, 30.0, "partial_take_profit_1", 98.0)
        ]

    def test_a_stop_in_the_same_candle_comes_first(self) -> None:
        harness = Harness(make_position(stop_loss=95.0), **self.LEVELS)
        assert harness.evaluate(bar(100.0, high=103.0, low=94.0)) == [
            ClosePercent(BTC, 100.0, "stop_loss", 95.0)
        ]

    def test_a_partial_leaves_trailing_for_the_next_candle(self) -> None:
        harness = Harness(
            make_position(best_price=103.0),
            trailing_activation_pct=1,
            trailing_distance_pct=1,
            **self.LEVELS,
        )
        assert harness.evaluate(bar(100.0, high=103.0)) == [
            ClosePercent(BTC, 30.0, "partial_take_profit_1", 102.0)
        ]

    def test_an_exit_signal_on_a_partial_candle_still_closes_the_rest(self) -> None:
        harness = Harness(make_position(), exit_on_opposite_signal=True, **self.LEVELS)
        assert harness.evaluate(bar(100.0, high=102.5, close=101.0), Scores(exit=1.0)) == [
            ClosePercent(BTC, 30.0, "partial_take_profit_1", 102.0),
            ClosePercent(BTC, 100.0, "signal_exit", None),
        ]

    def test_a_time_stop_on_a_partial_candle_still_closes_the_rest(self) -> None:
        harness = Harness(make_position(bars_held=5), time_stop_bars=5, **self.LEVELS)
        assert harness.evaluate(bar(100.0, high=103.0)) == [
            ClosePercent(BTC, 30.0, "partial_take_profit_1", 102.0),
            ClosePercent(BTC, 100.0, "time_stop", None),
        ]

    def test_a_last_partial_within_float_dust_of_everything_closes_everything(self) -> None:
        # 10% then 70% of 1.0 leave 0.20000000000000007; 20% of 1.0 is then 99.99999999999997%.
        position = make_position(
            quantity=1.0 - 0.1 - 0.7, initial_quantity=1.0, partial_exits_done=2
        )
        harness = Harness(
            position,
            time_stop_bars=1,
            partial_take_profits=[
                {"profit_pct": 2, "close_pct": 10},
                {"profit_pct": 4, "close_pct": 70},
                {"profit_pct": 6, "close_pct": 20},
            ],
        )
        assert harness.evaluate(bar(100.0, high=106.0)) == [
            ClosePercent(BTC, 100.0, "partial_take_profit_3", 106.0)
        ]

    def test_a_partial_that_closes_everything_needs_no_further_exit(self) -> None:
        position = make_position(quantity=5.0, initial_quantity=10.0, partial_exits_done=1)
        harness = Harness(
            position,
            time_stop_bars=1,
            partial_take_profits=[
                {"profit_pct": 2, "close_pct": 50},
                {"profit_pct": 4, "close_pct": 50},
            ],
        )
        assert harness.evaluate(bar(100.0, high=104.0)) == [
            ClosePercent(BTC, 100.0, "partial_take_profit_2", 104.0)
        ]


class TestRejectedCloses:
    """A protective close the exchange rejects is sent again, at market, until it fills."""

    def test_a_rejected_stop_is_sent_again_on_the_next_candle_at_market(self) -> None:
        harness = Harness(make_position(stop_loss=95.0))
        [stop] = harness.evaluate(bar(100.0, low=94.0))
        harness.exit.failed(stop)
        assert harness.exit.has_retries()
        harness.evaluate(bar(97.0, low=96.5))
        assert harness.queue.actions[1:] == [ClosePercent(BTC, 100.0, "stop_loss")]
        assert not harness.exit.has_retries()

    def test_a_signal_exit_that_fired_once_is_still_sent_again(self) -> None:
        harness = Harness(make_position(), exit_on_opposite_signal=True)
        [close] = harness.evaluate(bar(100.0), Scores(0.0, 0.0, 1.0, ()))
        harness.exit.failed(close)
        harness.evaluate(bar(100.0))
        assert harness.queue.actions[1:] == [ClosePercent(BTC, 100.0, "signal_exit")]

    def test_a_rejected_partial_is_not_sent_again_as_such(self) -> None:
        harness = Harness(
            make_position(), partial_take_profits=[{"profit_pct": 2, "close_pct": 30}]
        )
        [partial] = harness.evaluate(bar(100.0, high=102.0))
        harness.exit.failed(partial)
        assert not harness.exit.has_retries()

    def test_a_retry_is_dropped_once_the_position_is_gone(self) -> None:
        harness = Harness(make_position(stop_loss=95.0))
        [stop] = harness.evaluate(bar(100.0, low=94.0))
        harness.exit.failed(stop)
        harness.positions.open = None
        harness.evaluate(bar(100.0))
        assert not harness.exit.has_retries()

    def test_a_retry_survives_a_snapshot(self) -> None:
        harness = Harness(make_position(stop_loss=95.0))
        [stop] = harness.evaluate(bar(100.0, low=94.0))
        harness.exit.failed(stop)
        restored = Harness(make_position(stop_loss=95.0))
        restored.exit.restore(json.loads(json.dumps(harness.exit.snapshot())))
        restored.evaluate(bar(99.0))
        assert restored.queue.actions == [ClosePercent(BTC, 100.0, "stop_loss")]
