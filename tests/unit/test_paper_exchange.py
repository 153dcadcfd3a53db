"""Tests for the paper exchange: fill rules, trigger fills, fees, slippage, per-strategy books."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from tradekit.config.settings import ExchangeSettings
from tradekit.domain import Candle, Fill, Order, OrderSide, OrderType
from tradekit.errors import ExchangeError
from tradekit.protocols import Exchange
from tradekit.services.exchange import PaperExchange

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def candle(
    ts: datetime = T0,
    *,
    symbol: str = "BTC/USDT",
    open_: float = 100.0,
    high: float = 110.0,
    low: float = 90.0,
    close: float = 105.0,
) -> Candle:
    return Candle(symbol, "1h", ts, open_, high, low, close, 1_000.0)


def order(
    order_id: str = "a-1",
    *,
    strategy_id: str = "a",
    symbol: str = "BTC/USDT",
    side: OrderSide = OrderSide.BUY,
    quantity: float = 2.0,
) -> Order:
    return Order(order_id, strategy_id, symbol, side, quantity, created_at=T0 + HOUR)


def exchange(
    fee_bps: float = 10.0,
    slippage_bps: float = 5.0,
    fill_rule: Literal["next_open", "close"] = "next_open",
) -> PaperExchange:
    return PaperExchange(
        ExchangeSettings(fee_bps=fee_bps, slippage_bps=slippage_bps, fill_rule=fill_rule)
    )


class TestNextOpenRule:
    def test_is_the_default_and_submit_returns_no_fill(self) -> None:
        paper = PaperExchange(ExchangeSettings())
        assert paper.submit(order(), candle()) == []
        assert paper.pending_orders("a") == (order(),)

    def test_buy_fills_at_next_open_plus_slippage_with_fee_on_notional(self) -> None:
        paper = exchange(fee_bps=10.0, slippage_bps=5.0)
        paper.submit(order(quantity=2.0), candle(T0))
        fills = paper.fill_pending("a", candle(T0 + HOUR, open_=101.0))
        # 101 * (1 + 5/10_000) = 101.0505; fee = 2 * 101.0505 * 10/10_000 = 0.202101
        assert len(fills) == 1
        fill = fills[0]
        assert fill.price == pytest.approx(101.0505, abs=1e-12)
        assert fill.fee == pytest.approx(0.202101, abs=1e-12)
        assert (fill.order_id, fill.strategy_id, fill.symbol) == ("a-1", "a", "BTC/USDT")
        assert (fill.side, fill.quantity) == (OrderSide.BUY, 2.0)
        assert fill.ts == T0 + HOUR, "a next_open fill happens at the fill candle's open time"
        assert paper.pending_orders("a") == ()

    def test_sell_slips_down(self) -> None:
        paper = exchange(fee_bps=20.0, slippage_bps=10.0)
        paper.submit(order(side=OrderSide.SELL, quantity=0.5), candle(T0))
        (fill,) = paper.fill_pending("a", candle(T0 + HOUR, open_=200.0, high=210.0))
        # 200 * (1 - 10/10_000) = 199.8; fee = 0.5 * 199.8 * 20/10_000 = 0.1998
        assert fill.price == pytest.approx(199.8, abs=1e-12)
        assert fill.fee == pytest.approx(0.1998, abs=1e-12)

    def test_decision_candle_itself_fills_nothing(self) -> None:
        paper = exchange()
        decision = candle(T0)
        paper.submit(order(), decision)
        assert paper.fill_pending("a", decision) == []
        assert len(paper.pending_orders("a")) == 1

    def test_fills_only_orders_in_the_candles_symbol(self) -> None:
        paper = exchange()
        paper.submit(order("a-1"), candle(T0))
        paper.submit(order("a-2", symbol="ETH/USDT"), candle(T0, symbol="ETH/USDT"))
        fills = paper.fill_pending("a", candle(T0 + HOUR))
        assert [fill.order_id for fill in fills] == ["a-1"]
        assert [pending.order_id for pending in paper.pending_orders("a")] == ["a-2"]

    def test_fills_come_in_submission_order(self) -> None:
        paper = exchange()
        for number in (3, 1, 2):
            paper.submit(order(f"a-{number}"), candle(T0))
        fills = paper.fill_pending("a", candle(T0 + HOUR))
        assert [fill.order_id for fill in fills] == ["a-3", "a-1", "a-2"]

    def test_partial_close_is_a_smaller_sell(self) -> None:
        paper = exchange(fee_bps=10.0, slippage_bps=0.0)
        paper.submit(order(side=OrderSide.SELL, quantity=0.25), candle(T0))
        (fill,) = paper.fill_pending("a", candle(T0 + HOUR, open_=100.0))
        assert (fill.quantity, fill.price) == (0.25, 100.0)
        assert fill.fee == pytest.approx(0.025, abs=1e-12)

    def test_a_pending_order_id_cannot_be_reused(self) -> None:
        paper = exchange()
        paper.submit(order("a-1"), candle(T0))
        with pytest.raises(ExchangeError, match=r"a-1 .* already pending"):
            paper.submit(order("a-1"), candle(T0))


class TestCloseRule:
    def test_fills_at_once_at_the_close_at_close_time(self) -> None:
        paper = exchange(fee_bps=10.0, slippage_bps=5.0, fill_rule="close")
        decision = candle(T0, close=105.0)
        (fill,) = paper.submit(order(quantity=2.0), decision)
        # 105 * 1.0005 = 105.0525; fee = 2 * 105.0525 * 0.001 = 0.210105
        assert fill.price == pytest.approx(105.0525, abs=1e-12)
        assert fill.fee == pytest.approx(0.210105, abs=1e-12)
        assert fill.ts == decision.close_ts == T0 + HOUR
        assert paper.pending_orders("a") == ()
        assert paper.fill_pending("a", candle(T0 + HOUR)) == []


class TestTriggerFills:
    @pytest.mark.parametrize("fill_rule", ["next_open", "close"])
    def test_fill_at_once_at_the_trigger_whatever_the_rule(
        self, fill_rule: Literal["next_open", "close"]
    ) -> None:
        paper = exchange(fee_bps=10.0, slippage_bps=5.0, fill_rule=fill_rule)
        stop_candle = candle(T0, low=94.0)
        (fill,) = paper.submit(order(side=OrderSide.SELL, quantity=1.0), stop_candle, 95.0)
        # 95 * (1 - 5/10_000) = 94.9525; fee = 94.9525 * 0.001 = 0.0949525
        assert fill.price == pytest.approx(94.9525, abs=1e-12)
        assert fill.fee == pytest.approx(0.0949525, abs=1e-12)
        assert fill.ts == stop_candle.close_ts
        assert paper.pending_orders("a") == ()

    @pytest.mark.parametrize("trigger", [89.99, 110.01])
    def test_trigger_outside_the_candle_is_refused(self, trigger: float) -> None:
        paper = exchange()
        with pytest.raises(ExchangeError, match="outside the BTC/USDT candle"):
            paper.submit(order(side=OrderSide.SELL), candle(T0, low=90.0, high=110.0), trigger)


class TestIsolation:
    def test_two_strategies_pending_orders_never_mix(self) -> None:
        paper = exchange()
        paper.submit(order("a-1", strategy_id="a"), candle(T0))
        paper.submit(order("b-1", strategy_id="b", side=OrderSide.SELL), candle(T0))
        next_candle = candle(T0 + HOUR)
        fills_a = paper.fill_pending("a", next_candle)
        assert [(f.strategy_id, f.order_id) for f in fills_a] == [("a", "a-1")]
        assert [pending.order_id for pending in paper.pending_orders("b")] == ["b-1"]
        fills_b = paper.fill_pending("b", next_candle)
        assert [(f.strategy_id, f.order_id, f.side) for f in fills_b] == [
            ("b", "b-1", OrderSide.SELL)
        ]

    def test_cancel_pending_drops_only_that_strategys_orders(self) -> None:
        paper = exchange()
        paper.submit(order("a-1", strategy_id="a"), candle(T0))
        paper.submit(
            order("a-2", strategy_id="a", symbol="ETH/USDT"), candle(T0, symbol="ETH/USDT")
        )
        paper.submit(order("b-1", strategy_id="b"), candle(T0))
        assert paper.cancel_pending("a") == 2
        assert paper.cancel_pending("a") == 0
        assert paper.fill_pending("a", candle(T0 + HOUR)) == []
        assert len(paper.fill_pending("b", candle(T0 + HOUR))) == 1

    def test_cancel_orders_drops_only_the_named_orders_of_that_strategy(self) -> None:
        paper = exchange()
        paper.submit(order("a-1", strategy_id="a"), candle(T0))
        paper.submit(order("a-2", strategy_id="a", side=OrderSide.SELL), candle(T0))
        paper.submit(order("a-1", strategy_id="b"), candle(T0))
        cancelled = paper.cancel_orders("a", ["a-1", "a-9"])
        assert [pending.order_id for pending in cancelled] == ["a-1"]
        assert paper.cancel_orders("a", ["a-1"]) == []
        fills = paper.fill_pending("a", candle(T0 + HOUR))
        assert [(f.order_id, f.side) for f in fills] == [("a-2", OrderSide.SELL)]
        assert [pending.order_id for pending in paper.pending_orders("b")] == ["a-1"]

    def test_the_same_order_id_in_two_strategies_is_fine(self) -> None:
        paper = exchange()
        paper.submit(order("1", strategy_id="a"), candle(T0))
        paper.submit(order("1", strategy_id="b"), candle(T0))
        assert len(paper.pending_orders("a")) == len(paper.pending_orders("b")) == 1

    def test_concurrent_submits_and_cancels_keep_every_book_whole(self) -> None:
        paper = exchange()
        strategies = [f"s{number}" for number in range(8)]

        def work(strategy_id: str) -> None:
            for number in range(200):
                paper.submit(order(f"{number}", strategy_id=strategy_id), candle(T0))
            paper.cancel_pending(f"never-{strategy_id}")

        threads = [threading.Thread(target=work, args=(sid,)) for sid in strategies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        assert [len(paper.pending_orders(sid)) for sid in strategies] == [200] * 8
        assert sum(paper.cancel_pending(sid) for sid in strategies) == 1_600


class TestRefusals:
    def test_limit_orders_are_refused(self) -> None:
        limit = Order(
            "a-1", "a", "BTC/USDT", OrderSide.BUY, 1.0, T0, OrderType.LIMIT, limit_price=99.0
        )
        with pytest.raises(ExchangeError, match="only market orders"):
            exchange().submit(limit, candle())

    def test_a_candle_of_another_symbol_is_refused(self) -> None:
        with pytest.raises(ExchangeError, match="for BTC/USDT but was submitted with a ETH/USDT"):
            exchange().submit(order(), candle(symbol="ETH/USDT"))


def test_implements_the_exchange_protocol() -> None:
    paper: Exchange = exchange()
    assert isinstance(paper, Exchange)


def test_zero_costs_fill_at_the_reference_price() -> None:
    paper = exchange(fee_bps=0.0, slippage_bps=0.0, fill_rule="close")
    (fill,) = paper.submit(order(quantity=3.0), candle(close=105.0))
    assert fill == Fill("a-1", "a", "BTC/USDT", OrderSide.BUY, 3.0, 105.0, 0.0, T0 + HOUR)


class TestPendingSnapshot:
    def test_exported_pending_orders_fill_the_same_after_import_into_a_new_exchange(self) -> None:
        before = exchange()
        before.submit(order(), candle())
        saved = before.export_pending("a")
        after = exchange()
        after.import_pending("a", saved)
        assert after.pending_orders("a") == (order(),)
        (fill,) = after.fill_pending("a", candle(T0 + HOUR))
        assert [fill] == before.fill_pending("a", candle(T0 + HOUR))

    def test_importing_another_strategys_orders_is_refused(self) -> None:
        before = exchange()
        before.submit(order(), candle())
        with pytest.raises(ExchangeError, match="belong to another strategy"):
            exchange().import_pending("b", before.export_pending("a"))
