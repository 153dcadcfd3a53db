"""Tests for tradekit.domain: validation of candles, signals, orders and actions, and P&L."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradekit.domain import (
    Action,
    ActivateTrailing,
    AddToPosition,
    Candle,
    ClosePercent,
    Direction,
    Fill,
    OpenPosition,
    Order,
    OrderSide,
    OrderType,
    Position,
    Side,
    Signal,
    UpdateStopLoss,
    ensure_utc,
)
from tradekit.errors import ActionError, DataError, TradekitError

NAN = math.nan
INF = math.inf
NOT_POSITIVE = [0.0, -1.0, NAN, INF, -INF]
"""Sizes and prices that must be refused wherever a finite number > 0 is required."""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def make_candle(**overrides: Any) -> Candle:
    fields: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "ts": utc(2024, 1, 1, 10),
        "open": 100.0,
        "high": 110.0,
        "low": 90.0,
        "close": 105.0,
        "volume": 12.5,
    }
    fields.update(overrides)
    return Candle(**fields)


def make_position(side: Side, **overrides: Any) -> Position:
    fields: dict[str, Any] = {
        "position_id": "p-1",
        "strategy_id": "rsi-btc-1h",
        "symbol": "BTC/USDT",
        "side": side,
        "quantity": 2.0,
        "avg_entry_price": 100.0,
        "opened_at": utc(2024, 1, 1, 10),
    }
    fields.update(overrides)
    return Position(**fields)


def make_order(**overrides: Any) -> Order:
    fields: dict[str, Any] = {
        "order_id": "o-1",
        "strategy_id": "rsi-btc-1h",
        "symbol": "BTC/USDT",
        "side": OrderSide.BUY,
        "quantity": 0.5,
        "created_at": utc(2024, 1, 1, 10),
    }
    fields.update(overrides)
    return Order(**fields)


CANDLE_CONTEXT = re.escape("candle BTC/USDT 1h at 2024-01-01T10:00:00+00:00: ")


class TestSide:
    def test_opposite_of_long_is_short(self) -> None:
        assert Side.LONG.opposite is Side.SHORT

    def test_opposite_of_short_is_long(self) -> None:
        assert Side.SHORT.opposite is Side.LONG

    @pytest.mark.parametrize("side", list(Side))
    def test_opposite_twice_is_the_same_side(self, side: Side) -> None:
        assert side.opposite.opposite is side

    def test_long_sign_is_plus_one(self) -> None:
        assert Side.LONG.sign == 1

    def test_short_sign_is_minus_one(self) -> None:
        assert Side.SHORT.sign == -1

    def test_values_are_lowercase_names_usable_as_strings(self) -> None:
        assert Side("long") is Side.LONG
        assert f"{Side.SHORT}" == "short"

    def test_enum_values(self) -> None:
        assert [member.value for member in OrderSide] == ["buy", "sell"]
        assert [member.value for member in OrderType] == ["market", "limit"]
        assert [member.value for member in Direction] == ["long", "short", "exit"]


class TestEnsureUtc:
    def test_naive_datetime_is_refused_with_the_given_name(self) -> None:
        with pytest.raises(DataError, match=r"^opened_at 2024-01-01T10:00:00 has no time zone"):
            ensure_utc(datetime(2024, 1, 1, 10), "opened_at")

    def test_aware_datetime_is_converted_to_utc(self) -> None:
        paris_winter = timezone(timedelta(hours=1))
        converted = ensure_utc(datetime(2024, 1, 1, 11, tzinfo=paris_winter))

        assert converted == utc(2024, 1, 1, 10)
        assert converted.tzinfo is UTC
        assert converted.hour == 10


class TestCandleValid:
    def test_valid_candle_keeps_its_values(self) -> None:
        candle = make_candle()

        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
            100.0,
            110.0,
            90.0,
            105.0,
            12.5,
        )
        assert candle.ts == utc(2024, 1, 1, 10)

    def test_flat_candle_with_all_prices_equal_is_accepted(self) -> None:
        candle = make_candle(open=100.0, high=100.0, low=100.0, close=100.0)
        assert candle.high == candle.low

    def test_high_equal_to_close_and_low_equal_to_open_is_accepted(self) -> None:
        candle = make_candle(open=95.0, high=105.0, low=95.0, close=105.0)
        assert candle.high == candle.close

    def test_zero_volume_is_accepted(self) -> None:
        assert make_candle(volume=0.0).volume == 0.0

    def test_close_ts_is_open_time_plus_one_timeframe(self) -> None:
        assert make_candle().close_ts == utc(2024, 1, 1, 11)

    def test_weekly_close_ts_is_next_monday(self) -> None:
        candle = make_candle(timeframe="1w", ts=utc(2024, 1, 1))
        assert candle.close_ts == utc(2024, 1, 8)

    def test_candle_is_frozen(self) -> None:
        candle = make_candle()
        with pytest.raises(dataclasses.FrozenInstanceError):
            candle.close = 1.0  # type: ignore[misc]

    def test_data_error_is_a_tradekit_error(self) -> None:
        with pytest.raises(TradekitError):
            make_candle(volume=-1.0)

    @given(
        open_=st.floats(min_value=1e-6, max_value=1e9),
        close=st.floats(min_value=1e-6, max_value=1e9),
        wick_up=st.floats(min_value=0, max_value=1e9),
        wick_down=st.floats(min_value=0, max_value=1.0, exclude_max=True),
        volume=st.floats(min_value=0, max_value=1e12),
    )
    def test_any_consistent_ohlcv_is_accepted(
        self, open_: float, close: float, wick_up: float, wick_down: float, volume: float
    ) -> None:
        high = max(open_, close) + wick_up
        low = min(open_, close) * (1 - wick_down)
        candle = make_candle(open=open_, high=high, low=low, close=close, volume=volume)
        assert candle.low <= min(candle.open, candle.close) <= candle.high


class TestCandlePrices:
    def test_high_below_max_of_open_and_close_is_refused(self) -> None:
        with pytest.raises(
            DataError, match=CANDLE_CONTEXT + r"high 104\.0 is below max\(open, close\) = 105\.0"
        ):
            make_candle(high=104.0)

    def test_high_below_open_is_refused(self) -> None:
        with pytest.raises(DataError, match=r"high 101\.0 is below max\(open, close\) = 102\.0"):
            make_candle(open=102.0, high=101.0, close=100.0, low=95.0)

    def test_low_above_min_of_open_and_close_is_refused(self) -> None:
        with pytest.raises(
            DataError, match=CANDLE_CONTEXT + r"low 101\.0 is above min\(open, close\) = 100\.0"
        ):
            make_candle(low=101.0)

    def test_low_above_close_is_refused(self) -> None:
        with pytest.raises(DataError, match=r"low 99\.0 is above min\(open, close\) = 98\.0"):
            make_candle(open=100.0, high=101.0, low=99.0, close=98.0)

    @pytest.mark.parametrize("field", ["open", "high", "low", "close"])
    @pytest.mark.parametrize("bad", NOT_POSITIVE, ids=["zero", "negative", "nan", "inf", "-inf"])
    def test_price_that_is_not_finite_and_positive_is_refused(self, field: str, bad: float) -> None:
        expected = CANDLE_CONTEXT + re.escape(f"{field} must be a finite number > 0, got {bad!r}")
        with pytest.raises(DataError, match=expected):
            make_candle(**{field: bad})

    @pytest.mark.parametrize("bad", [-0.5, NAN, INF], ids=["negative", "nan", "inf"])
    def test_volume_that_is_negative_or_not_finite_is_refused(self, bad: float) -> None:
        expected = CANDLE_CONTEXT + re.escape(f"volume must be a finite number >= 0, got {bad!r}")
        with pytest.raises(DataError, match=expected):
            make_candle(volume=bad)


class TestCandleTimestamp:
    def test_naive_timestamp_is_refused(self) -> None:
        expected = re.escape(
            "candle BTC/USDT 1h at 2024-01-01T10:00:00: ts 2024-01-01T10:00:00 has no time zone"
        )
        with pytest.raises(DataError, match=expected):
            make_candle(ts=datetime(2024, 1, 1, 10))

    def test_non_utc_timestamp_is_converted_to_utc(self) -> None:
        new_york_winter = timezone(timedelta(hours=-5))
        candle = make_candle(ts=datetime(2024, 1, 1, 5, tzinfo=new_york_winter))

        assert candle.ts == utc(2024, 1, 1, 10)
        assert candle.ts.tzinfo is UTC
        assert candle.ts.hour == 10

    def test_alignment_is_judged_after_conversion_to_utc(self) -> None:
        # Midnight in UTC+2 is 22:00 UTC: not the open of a daily candle.
        plus_two = timezone(timedelta(hours=2))
        with pytest.raises(DataError, match="not aligned to the 1d timeframe"):
            make_candle(timeframe="1d", ts=datetime(2024, 1, 2, 0, tzinfo=plus_two))

    def test_daily_candle_at_utc_midnight_given_in_another_zone_is_accepted(self) -> None:
        plus_two = timezone(timedelta(hours=2))
        candle = make_candle(timeframe="1d", ts=datetime(2024, 1, 2, 2, tzinfo=plus_two))
        assert candle.ts == utc(2024, 1, 2)

    def test_half_past_on_hourly_timeframe_is_refused(self) -> None:
        expected = re.escape(
            "candle BTC/USDT 1h at 2024-01-01T10:30:00+00:00: "
            "timestamp is not aligned to the 1h timeframe"
        )
        with pytest.raises(DataError, match=expected):
            make_candle(ts=utc(2024, 1, 1, 10, 30))

    def test_timestamp_with_microseconds_is_refused(self) -> None:
        with pytest.raises(DataError, match="not aligned"):
            make_candle(ts=datetime(2024, 1, 1, 10, 0, 0, 1, tzinfo=UTC))

    @pytest.mark.parametrize(
        ("timeframe", "ts"),
        [
            ("1m", utc(2024, 1, 1, 10, 7)),
            ("5m", utc(2024, 1, 1, 10, 55)),
            ("4h", utc(2024, 1, 1, 20)),
            ("1d", utc(2024, 2, 29)),
            ("1w", utc(2024, 1, 1)),
            ("1w", utc(2024, 12, 30)),
        ],
    )
    def test_open_time_of_its_timeframe_is_accepted(self, timeframe: str, ts: datetime) -> None:
        assert make_candle(timeframe=timeframe, ts=ts).ts == ts

    @pytest.mark.parametrize(
        "ts",
        [utc(2024, 1, 2), utc(2024, 1, 4), utc(2024, 1, 7), utc(2024, 1, 1, 1)],
        ids=["tuesday", "thursday", "sunday", "monday-01h"],
    )
    def test_weekly_candle_not_opening_monday_midnight_is_refused(self, ts: datetime) -> None:
        with pytest.raises(DataError, match="not aligned to the 1w timeframe"):
            make_candle(timeframe="1w", ts=ts)

    def test_four_hour_candle_off_the_utc_grid_is_refused(self) -> None:
        with pytest.raises(DataError, match="not aligned to the 4h timeframe"):
            make_candle(timeframe="4h", ts=utc(2024, 1, 1, 10))


class TestCandleTimeframe:
    def test_unknown_timeframe_is_refused_naming_candle_and_value(self) -> None:
        expected = re.escape("candle BTC/USDT 1hr at 2024-01-01T10:00:00+00:00: ") + (
            "unknown timeframe '1hr'"
        )
        with pytest.raises(DataError, match=expected):
            make_candle(timeframe="1hr")

    def test_unknown_timeframe_message_suggests_the_closest(self) -> None:
        with pytest.raises(DataError, match="did you mean '1h'"):
            make_candle(timeframe="1hr")


class TestSignal:
    @pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
    def test_strength_within_zero_and_one_is_accepted(self, strength: float) -> None:
        signal = Signal(Direction.LONG, strength, reason="rsi oversold")
        assert signal.strength == strength
        assert signal.source == ""

    @pytest.mark.parametrize("strength", [-0.01, 1.01, NAN, INF])
    def test_strength_outside_zero_and_one_is_refused(self, strength: float) -> None:
        expected = re.escape(f"signal strength must be within [0, 1], got {strength!r}")
        with pytest.raises(ValueError, match=expected):
            Signal(Direction.SHORT, strength, reason="x")

    def test_signal_is_frozen(self) -> None:
        signal = Signal(Direction.EXIT, 1.0, reason="target", source="macd")
        with pytest.raises(dataclasses.FrozenInstanceError):
            signal.strength = 0.0  # type: ignore[misc]


class TestPosition:
    def test_long_gains_when_price_rises(self) -> None:
        assert make_position(Side.LONG).unrealized_pnl(110.0) == pytest.approx(20.0)

    def test_long_loses_when_price_falls(self) -> None:
        assert make_position(Side.LONG).unrealized_pnl(90.0) == pytest.approx(-20.0)

    def test_short_gains_when_price_falls(self) -> None:
        assert make_position(Side.SHORT).unrealized_pnl(90.0) == pytest.approx(20.0)

    def test_short_loses_when_price_rises(self) -> None:
        assert make_position(Side.SHORT).unrealized_pnl(110.0) == pytest.approx(-20.0)

    @pytest.mark.parametrize("side", list(Side))
    def test_pnl_is_zero_at_entry_price(self, side: Side) -> None:
        assert make_position(side).unrealized_pnl(100.0) == 0.0

    @given(
        entry=st.floats(min_value=0.01, max_value=1e6),
        price=st.floats(min_value=0.01, max_value=1e6),
        quantity=st.floats(min_value=1e-6, max_value=1e4),
    )
    def test_long_and_short_pnl_are_opposite(
        self, entry: float, price: float, quantity: float
    ) -> None:
        long = make_position(Side.LONG, avg_entry_price=entry, quantity=quantity)
        short = make_position(Side.SHORT, avg_entry_price=entry, quantity=quantity)
        assert long.unrealized_pnl(price) == -short.unrealized_pnl(price)

    def test_notional_is_quantity_times_price(self) -> None:
        assert make_position(Side.SHORT).notional(150.0) == pytest.approx(300.0)

    def test_new_position_is_open(self) -> None:
        assert make_position(Side.LONG).is_open

    def test_position_with_closed_at_is_not_open(self) -> None:
        assert not make_position(Side.LONG, closed_at=utc(2024, 1, 2)).is_open

    def test_position_with_zero_quantity_is_not_open(self) -> None:
        assert not make_position(Side.LONG, quantity=0.0).is_open

    def test_position_is_mutable_for_its_lifecycle(self) -> None:
        position = make_position(Side.LONG)
        position.quantity = 3.0
        position.stop_loss = 95.0
        assert position.unrealized_pnl(110.0) == pytest.approx(30.0)

    def test_defaults_describe_a_fresh_position(self) -> None:
        position = make_position(Side.LONG)
        assert (position.fees_paid, position.realized_pnl, position.entries) == (0.0, 0.0, 1)
        assert position.stop_loss is None
        assert position.take_profit is None
        assert not position.trailing_active
        assert position.closed_at is None


class TestOrder:
    def test_market_order_is_the_default(self) -> None:
        order = make_order()
        assert order.type is OrderType.MARKET
        assert order.limit_price is None
        assert not order.reduce_only

    @pytest.mark.parametrize("bad", NOT_POSITIVE, ids=["zero", "negative", "nan", "inf", "-inf"])
    def test_quantity_that_is_not_finite_and_positive_is_refused(self, bad: float) -> None:
        expected = re.escape(f"order o-1: quantity must be a finite number > 0, got {bad!r}")
        with pytest.raises(ActionError, match=expected):
            make_order(quantity=bad)

    def test_limit_order_without_limit_price_is_refused(self) -> None:
        with pytest.raises(ActionError, match="order o-1: a limit order needs limit_price"):
            make_order(type=OrderType.LIMIT)

    def test_limit_order_with_limit_price_is_accepted(self) -> None:
        order = make_order(type=OrderType.LIMIT, limit_price=99.5)
        assert order.limit_price == 99.5

    @pytest.mark.parametrize("bad", [0.0, -1.0, NAN], ids=["zero", "negative", "nan"])
    def test_limit_price_that_is_not_finite_and_positive_is_refused(self, bad: float) -> None:
        with pytest.raises(ActionError, match="limit_price"):
            make_order(type=OrderType.LIMIT, limit_price=bad)

    def test_order_is_frozen(self) -> None:
        order = make_order()
        with pytest.raises(dataclasses.FrozenInstanceError):
            order.quantity = 1.0  # type: ignore[misc]


class TestFill:
    def test_fill_keeps_its_strategy_and_values(self) -> None:
        fill = Fill(
            "o-1", "rsi-btc-1h", "BTC/USDT", OrderSide.SELL, 0.5, 101.0, 0.05, utc(2024, 1, 1)
        )
        assert (fill.strategy_id, fill.quantity, fill.price, fill.fee) == (
            "rsi-btc-1h",
            0.5,
            101.0,
            0.05,
        )

    def test_fill_is_frozen(self) -> None:
        fill = Fill("o-1", "s", "BTC/USDT", OrderSide.BUY, 0.5, 101.0, 0.05, utc(2024, 1, 1))
        with pytest.raises(dataclasses.FrozenInstanceError):
            fill.price = 1.0  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("quantity", "price", "fee", "field"),
        [
            (0.0, 101.0, 0.0, "quantity"),
            (-1.0, 101.0, 0.0, "quantity"),
            (0.5, 0.0, 0.0, "price"),
            (0.5, math.nan, 0.0, "price"),
            (0.5, 101.0, math.inf, "fee"),
        ],
    )
    def test_fill_with_impossible_values_is_refused(
        self, quantity: float, price: float, fee: float, field: str
    ) -> None:
        with pytest.raises(ActionError, match=f"fill of order o-1: {field}"):
            Fill("o-1", "s", "BTC/USDT", OrderSide.BUY, quantity, price, fee, utc(2024, 1, 1))


BAD_IDS = ["zero", "negative", "nan", "inf", "-inf"]


class TestOpenPosition:
    def test_valid_action_is_accepted(self) -> None:
        action = OpenPosition("BTC/USDT", Side.LONG, 1000.0, stop_loss=95.0, take_profit=120.0)
        assert action.quote_amount == 1000.0

    def test_stop_loss_and_take_profit_are_optional(self) -> None:
        action = OpenPosition("BTC/USDT", Side.SHORT, 1000.0)
        assert action.stop_loss is None
        assert action.take_profit is None

    @pytest.mark.parametrize("bad", NOT_POSITIVE, ids=BAD_IDS)
    def test_quote_amount_that_is_not_finite_and_positive_is_refused(self, bad: float) -> None:
        expected = re.escape(f"OpenPosition: quote_amount must be a finite number > 0, got {bad!r}")
        with pytest.raises(ActionError, match=expected):
            OpenPosition("BTC/USDT", Side.LONG, bad)

    @pytest.mark.parametrize("field", ["stop_loss", "take_profit"])
    @pytest.mark.parametrize("bad", NOT_POSITIVE, ids=BAD_IDS)
    def test_price_that_is_not_finite_and_positive_is_refused(self, field: str, bad: float) -> None:
        expected = re.escape(f"OpenPosition: {field} must be a finite number > 0, got {bad!r}")
        prices: dict[str, Any] = {field: bad}
        with pytest.raises(ActionError, match=expected):
            OpenPosition("BTC/USDT", Side.LONG, 1000.0, **prices)


class TestAddToPosition:
    def test_valid_action_is_accepted(self) -> None:
        assert AddToPosition("BTC/USDT", 250.0).quote_amount == 250.0

    @pytest.mark.parametrize("bad", NOT_POSITIVE, ids=BAD_IDS)
    def test_quote_amount_that_is_not_finite_and_positive_is_refused(self, bad: float) -> None:
        expected = re.escape(
            f"AddToPosition: quote_amount must be a finite number > 0, got {bad!r}"
        )
        with pytest.raises(ActionError, match=expected):
            AddToPosition("BTC/USDT", bad)


class TestClosePercent:
    @pytest.mark.parametrize("percent", [0.01, 50.0, 100.0])
    def test_percent_within_zero_exclusive_and_hundred_inclusive_is_accepted(
        self, percent: float
    ) -> None:
        assert ClosePercent("BTC/USDT", percent).percent == percent

    @pytest.mark.parametrize(
        "bad", [0.0, -10.0, 100.01, NAN, INF], ids=["zero", "negative", "over-100", "nan", "inf"]
    )
    def test_percent_outside_bounds_is_refused(self, bad: float) -> None:
        expected = re.escape(f"ClosePercent: percent must be within (0, 100], got {bad!r}")
        with pytest.raises(ActionError, match=expected):
            ClosePercent("BTC/USDT", bad)


class TestUpdateStopLoss:
    def test_valid_action_is_accepted(self) -> None:
        assert UpdateStopLoss("BTC/USDT", 97.5, reason="breakeven").stop_price == 97.5

    @pytest.mark.parametrize("bad", NOT_POSITIVE, ids=BAD_IDS)
    def test_stop_price_that_is_not_finite_and_positive_is_refused(self, bad: float) -> None:
        expected = re.escape(f"UpdateStopLoss: stop_price must be a finite number > 0, got {bad!r}")
        with pytest.raises(ActionError, match=expected):
            UpdateStopLoss("BTC/USDT", bad)


class TestActivateTrailing:
    @pytest.mark.parametrize("distance", [0.01, 2.5, 99.99])
    def test_distance_strictly_between_zero_and_hundred_is_accepted(self, distance: float) -> None:
        assert ActivateTrailing("BTC/USDT", distance).distance_pct == distance

    @pytest.mark.parametrize(
        "bad",
        [0.0, -1.0, 100.0, 150.0, NAN, INF],
        ids=["zero", "negative", "100", "150", "nan", "inf"],
    )
    def test_distance_outside_bounds_is_refused(self, bad: float) -> None:
        expected = re.escape(f"ActivateTrailing: distance_pct must be within (0, 100), got {bad!r}")
        with pytest.raises(ActionError, match=expected):
            ActivateTrailing("BTC/USDT", bad)


class TestActionUnion:
    def test_action_covers_every_action_class(self) -> None:
        assert set(typing.get_args(Action)) == {
            OpenPosition,
            AddToPosition,
            ClosePercent,
            UpdateStopLoss,
            ActivateTrailing,
        }

    @pytest.mark.parametrize(
        "action",
        [
            OpenPosition("BTC/USDT", Side.LONG, 100.0),
            AddToPosition("BTC/USDT", 100.0),
            ClosePercent("BTC/USDT", 50.0),
            UpdateStopLoss("BTC/USDT", 90.0),
            ActivateTrailing("BTC/USDT", 1.0),
        ],
        ids=lambda action: type(action).__name__,
    )
    def test_every_action_is_frozen(self, action: Action) -> None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            action.symbol = "ETH/USDT"  # type: ignore[misc]
