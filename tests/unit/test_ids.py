"""Order and position ids are built and read back in one place, and exit reasons are fixed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_positions import Book, make_config

from tradekit import ClientOrderId, ExitReason, PositionId
from tradekit.domain import OrderSide, Side
from tradekit.services.positions.state import OpenIntent

STRATEGY_IDS = st.text(alphabet="abc-_019", min_size=1, max_size=12)


class TestClientOrderId:
    @given(strategy_id=STRATEGY_IDS, number=st.integers(min_value=1, max_value=10**9))
    def test_the_strategy_id_is_recovered_from_any_order_id(
        self, strategy_id: str, number: int
    ) -> None:
        assert ClientOrderId.parse(str(ClientOrderId(strategy_id, number))) == (
            strategy_id,
            number,
        )

    def test_text_is_the_strategy_id_and_the_number(self) -> None:
        assert str(ClientOrderId("rsi-btc-1h", 7)) == "rsi-btc-1h-7"

    @pytest.mark.parametrize("text", ["", "7", "-7", "rsi", "rsi-", "rsi-x", "rsi-0", "rsi-pos"])
    def test_an_id_not_made_by_a_strategy_is_refused_with_its_value(self, text: str) -> None:
        with pytest.raises(ValueError, match=f"order id {text!r} is not"):
            ClientOrderId.parse(text)

    def test_the_lifecycle_numbers_orders_of_its_strategy(self) -> None:
        book = Book(make_config("dca-btc-2"))
        order = book.order(OrderSide.BUY, 1.0, OpenIntent(Side.LONG))
        assert ClientOrderId.parse(order.order_id) == ("dca-btc-2", 1)
        assert ClientOrderId.parse(book.service.new_order_id()) == ("dca-btc-2", 2)


class TestPositionId:
    @given(strategy_id=STRATEGY_IDS, number=st.integers(min_value=1, max_value=10**9))
    def test_the_strategy_id_is_recovered_from_any_position_id(
        self, strategy_id: str, number: int
    ) -> None:
        assert PositionId.parse(str(PositionId(strategy_id, number))) == (strategy_id, number)

    def test_text_is_the_strategy_id_pos_and_the_number(self) -> None:
        assert str(PositionId("rsi-btc", 3)) == "rsi-btc-pos-3"

    @pytest.mark.parametrize("text", ["", "rsi-3", "rsi-pos-", "-pos-3", "rsi-pos-0"])
    def test_an_id_not_made_by_a_strategy_is_refused_with_its_value(self, text: str) -> None:
        with pytest.raises(ValueError, match=f"position id {text!r} is not"):
            PositionId.parse(text)


class TestExitReason:
    def test_values_are_the_strings_events_and_journals_carry(self) -> None:
        """Changing one would change every journal and every backtest's event hash."""
        assert {reason.name: reason.value for reason in ExitReason} == {
            "STOP_LOSS": "stop_loss",
            "TRAILING_STOP": "trailing_stop",
            "TAKE_PROFIT": "take_profit",
            "TIME_STOP": "time_stop",
            "SIGNAL_EXIT": "signal_exit",
            "UNLOAD": "unload",
            "OPERATOR": "operator",
            "PARTIAL_TAKE_PROFIT": "partial_take_profit",
        }
