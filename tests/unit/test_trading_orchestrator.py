"""End-to-end tests of one strategy's pipeline over real services and a hand-built candle series.

The strategy reads the close through ``sma(1)`` (aliased ``price``) with a level-mode
threshold analyzer: a close below 96 says long, above 120 says exit. Prices, fees
and P&L below are worked out by hand from the candles each test feeds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fakes import START, make_candle

from tradekit.config.settings import ExchangeSettings, GlobalRiskSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Candle, Direction, Side
from tradekit.errors import DataError
from tradekit.events import (
    ActionFailed,
    Event,
    OrderFilled,
    SignalGenerated,
)
from tradekit.orchestrators.entry import EntryOrchestrator
from tradekit.orchestrators.exit import ExitOrchestrator
from tradekit.orchestrators.filters import FilterOrchestrator
from tradekit.orchestrators.mtf_gate import MTFSnapshotGate
from tradekit.orchestrators.trading import CandleView, TradingOrchestrator
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher
from tradekit.services.exchange.paper import PaperExchange
from tradekit.services.execution.actions import ActionQueue, action_handlers
from tradekit.services.indicators.cache import IndicatorCache, IndicatorRegistry
from tradekit.services.market.candles import CandleStore
from tradekit.services.positions.lifecycle import PositionLifecycleService
from tradekit.services.risk.limits import ExposureGuard, StrategyRiskManager
from tradekit.services.signals.analyzers import AnalyzerRegistry, build_analyzers

BTC = "BTC/USDT"
ETH = "ETH/USDT"
STRATEGY = "trade-test"
PRICE: dict[str, Any] = {"name": "sma", "params": {"length": 1}, "alias": "price"}
THRESHOLD: dict[str, Any] = {
    "type": "threshold",
    "params": {"source": "price", "below": 96, "above": 120, "mode": "level"},
}


def make_config(**overrides: Any) -> StrategyConfig:
    data: dict[str, Any] = {
        "strategy_id": STRATEGY,
        "symbols": [BTC],
        "timeframe": "1h",
        "capital": 10_000,
        "indicators": [PRICE],
        "analyzers": [THRESHOLD],
        "entry": {"min_score": 0.5, "sizing": {"mode": "fixed_quote", "quote_amount": 950}},
        "exit": {"stop_loss_pct": 5, "take_profit_pct": 10},
        "risk": {"risk_per_trade_pct": 100},
    }
    data.update(overrides)
    return StrategyConfig.model_validate(data)


def bar(hour: int, open_: float, high: float, low: float, close: float) -> Candle:
    return make_candle(START + timedelta(hours=hour), close, open_=open_, high=high, low=low)


def flat(hour: int, price: float = 100.0) -> Candle:
    return bar(hour, price, price + 1.0, price - 1.0, price)


class Strategy:
    """One strategy assembled from real services, as its container would build it."""

    def __init__(
        self,
        config: StrategyConfig | None = None,
        *,
        fill_rule: str = "next_open",
        fee_bps: float = 0.0,
        slippage_bps: float = 0.0,
    ) -> None:
        self.config = config = config or make_config()
        self.bus = InMemoryEventBus()
        self.events: list[Event] = []
        self.bus.subscribe(self.events.append)
        publisher = StrategyPublisher(self.bus, STRATEGY)
        self.store = CandleStore()
        filters = FilterOrchestrator(config.filters)
        self.indicators = IndicatorRegistry(
            STRATEGY,
            [*config.indicators, *filters.required_indicators()],
            config.symbols,
            config.timeframe,
            IndicatorCache(self.store),
        )
        analyzers = AnalyzerRegistry(build_analyzers(config.analyzers, STRATEGY))
        gate = MTFSnapshotGate(config.mtf, config.timeframe)
        self.lifecycle = lifecycle = PositionLifecycleService(STRATEGY, config, publisher)
        self.exchange = PaperExchange(
            ExchangeSettings.model_validate(
                {"fee_bps": fee_bps, "slippage_bps": slippage_bps, "fill_rule": fill_rule}
            )
        )
        risk = StrategyRiskManager(
            STRATEGY,
            config,
            publisher,
            ExposureGuard(GlobalRiskSettings()),
            equity=lifecycle.equity,
            open_count=lifecycle.open_count,
            exposure=self._exposure,
        )
        queue = ActionQueue(publisher, action_handlers(STRATEGY, lifecycle, self.exchange))
        self.entry = EntryOrchestrator(config, lifecycle, risk, filters, gate, queue)
        exit_orchestrator = ExitOrchestrator(config.exit, lifecycle, queue)
        self.trading = TradingOrchestrator(
            config,
            publisher,
            self.store,
            self.indicators,
            analyzers,
            gate,
            lifecycle,
            risk,
            self.exchange,
            queue,
            self.entry,
            exit_orchestrator,
        )

    def _exposure(self, symbol: str) -> float:
        position = self.lifecycle.position(symbol)
        return 0.0 if position is None else position.quantity * position.avg_entry_price

    def feed(self, *candles: Candle) -> None:
        for candle in candles:
            self.trading.on_candle(candle)

    def of(self, event_type: type[Event]) -> list[Any]:
        return [event for event in self.events if isinstance(event, event_type)]

    def fills(self) -> list[tuple[Any, ...]]:
        return [
            (event.side.value, event.quantity, event.price, event.fee)
            for event in self.of(OrderFilled)
        ]


class TestHandBuiltSeries:
    def test_next_open_entry_and_take_profit_with_fees(self) -> None:
        strategy = Strategy(fee_bps=10)
        strategy.feed(
            flat(0),
            bar(1, 100, 100, 94, 95),  # close 95 < 96: long, 950 / 95 = 10 units
            bar(2, 96, 99, 95, 98),  # fills at the open 96; stop 91.2, target 105.6
            bar(3, 98, 106, 97, 105),  # high reaches the target
        )
        assert strategy.fills() == [
            ("buy", 10.0, 96.0, pytest.approx(0.96)),
            ("sell", 10.0, pytest.approx(105.6), pytest.approx(1.056)),
        ]
        (trade,) = strategy.lifecycle.trades
        assert (trade.side, trade.avg_entry_price, trade.exit_reason, trade.bars_held) == (
            Side.LONG,
            96.0,
            "take_profit",
            2,
        )
        assert (trade.entry_ts, trade.exit_ts) == (
            START + timedelta(hours=2),
            START + timedelta(hours=4),
        )
        # (105.6 - 96) x 10 = 96, less 0.96 + 1.056 in fees.
        assert trade.realized_pnl == pytest.approx(93.984)
        assert trade.fees == pytest.approx(2.016)
        assert strategy.lifecycle.cash == pytest.approx(10_093.984)
        assert strategy.lifecycle.position(BTC) is None

    def test_close_fill_and_stop_loss_with_slippage_and_fees(self) -> None:
        strategy = Strategy(fill_rule="close", fee_bps=10, slippage_bps=10)
        strategy.feed(
            flat(0),
            bar(1, 100, 100, 94, 95),  # buys 10 at the close 95 + 0.1% = 95.095
            bar(2, 94, 97, 90, 96),  # stop 95.095 x 0.95 = 90.34025; the low 90 reaches it
        )
        assert strategy.fills() == [
            ("buy", 10.0, pytest.approx(95.095), pytest.approx(0.95095)),
            ("sell", 10.0, pytest.approx(90.24990975), pytest.approx(0.9024990975)),
        ]
        (trade,) = strategy.lifecycle.trades
        assert trade.exit_reason == "stop_loss"
        # (90.24990975 - 95.095) x 10 = -48.4509025, less 0.95095 + 0.9024990975 in fees.
        assert trade.realized_pnl == pytest.approx(-50.3043516)
        assert strategy.lifecycle.realized_pnl == pytest.approx(-50.3043516)
        assert strategy.lifecycle.equity() == pytest.approx(10_000 - 50.3043516)

    def test_a_trailed_stop_takes_effect_from_the_next_candle(self) -> None:
        config = make_config(
            exit={"stop_loss_pct": 5, "trailing_activation_pct": 3, "trailing_distance_pct": 2}
        )
        strategy = Strategy(config, fill_rule="close")
        strategy.feed(
            flat(0),
            bar(1, 100, 100, 94, 95),  # buys 10 at 95, stop 90.25
            bar(2, 95, 98, 95, 97),  # best 98 is +3.16%: trailing on, stop 98 x 0.98 = 96.04
            bar(3, 97, 100, 96.5, 99),  # best 100: stop 98, but only from the next candle
        )
        position = strategy.lifecycle.position(BTC)
        assert position is not None
        assert position.trailing_active
        assert position.stop_loss == pytest.approx(98.0)
        strategy.feed(bar(4, 99, 99.5, 97.5, 98))
        (trade,) = strategy.lifecycle.trades
        assert trade.exit_reason == "trailing_stop"
        assert trade.avg_exit_price == pytest.approx(98.0)
        assert trade.realized_pnl == pytest.approx(30.0)

    def test_partial_take_profits_close_shares_of_the_initial_quantity(self) -> None:
        config = make_config(
            exit={
                "take_profit_pct": 10,
                "partial_take_profits": [
                    {"profit_pct": 2, "close_pct": 30},
                    {"profit_pct": 4, "close_pct": 50},
                ],
            }
        )
        strategy = Strategy(config, fill_rule="close")
        strategy.feed(
            flat(0),
            bar(1, 100, 100, 94, 95),  # buys 10 at 95: levels 96.9 and 98.8, target 104.5
            bar(2, 95, 97, 95, 96),  # 30% of 10 = 3 at 96.9
            bar(3, 96, 99, 96, 98),  # 50% of 10 = 5 at 98.8, though only 7 are left
        )
        assert strategy.fills() == [
            ("buy", 10.0, 95.0, 0.0),
            ("sell", pytest.approx(3.0), pytest.approx(96.9), 0.0),
            ("sell", pytest.approx(5.0), pytest.approx(98.8), 0.0),
        ]
        position = strategy.lifecycle.position(BTC)
        assert position is not None
        assert position.quantity == pytest.approx(2.0)
        assert position.partial_exits_done == 2
        # 3 x 1.9 + 5 x 3.8 = 24.7
        assert strategy.lifecycle.realized_pnl == pytest.approx(24.7)

    def test_a_one_candle_exit_signal_on_a_partial_candle_closes_the_rest(self) -> None:
        cross = {**THRESHOLD, "params": {**THRESHOLD["params"], "mode": "cross"}}
        config = make_config(
            analyzers=[cross],
            exit={
                "exit_on_opposite_signal": True,
                "partial_take_profits": [{"profit_pct": 2, "close_pct": 30}],
            },
        )
        strategy = Strategy(config, fill_rule="close")
        strategy.feed(
            flat(0),
            bar(1, 100, 100, 94, 95),  # crosses below 96: buys 10 at 95, level 96.9
            bar(2, 95, 121, 95, 121),  # touches 96.9, then crosses above 120 at the close
        )
        assert strategy.fills() == [
            ("buy", 10.0, 95.0, 0.0),
            ("sell", pytest.approx(3.0), pytest.approx(96.9), 0.0),
            ("sell", pytest.approx(7.0), 121.0, 0.0),
        ]
        (trade,) = strategy.lifecycle.trades
        assert trade.exit_reason == "signal_exit"
        # 3 x 96.9 + 7 x 121 = 1137.7 over 10
        assert trade.avg_exit_price == pytest.approx(113.77)
        # 3 x 1.9 + 7 x 26
        assert trade.realized_pnl == pytest.approx(187.7)


class TestPipelineOrder:
    def test_a_pending_entry_fills_at_the_open_before_stops_are_checked(self) -> None:
        strategy = Strategy()
        strategy.feed(flat(0), bar(1, 100, 100, 94, 95))
        assert strategy.lifecycle.has_pending(BTC)
        # Fills at 96 with its stop at 91.2; this same candle's low 91 then hits the stop.
        strategy.feed(bar(2, 96, 97, 91, 96))
        (trade,) = strategy.lifecycle.trades
        assert (trade.avg_entry_price, trade.exit_reason, trade.bars_held) == (96.0, "stop_loss", 1)
        assert trade.avg_exit_price == pytest.approx(91.2)

    def test_exits_run_before_entries_on_the_same_candle(self) -> None:
        strategy = Strategy(fill_rule="close")
        strategy.feed(flat(0), bar(1, 100, 100, 94, 95))  # buys 10 at 95, target 104.5
        # The target is touched and the close (95) asks for a long again.
        strategy.feed(bar(2, 100, 105, 94, 95))
        (trade,) = strategy.lifecycle.trades
        assert trade.exit_reason == "take_profit"
        assert trade.avg_exit_price == pytest.approx(104.5)
        reopened = strategy.lifecycle.position(BTC)
        assert reopened is not None
        assert (reopened.position_id, reopened.avg_entry_price, reopened.entries) == (
            f"{STRATEGY}-pos-2",
            95.0,
            1,
        )
        assert strategy.of(ActionFailed) == []

    def test_a_dca_add_is_not_sent_with_a_pending_exit(self) -> None:
        config = make_config(
            analyzers=[{"type": "time_interval", "params": {"every_bars": 1}}],
            entry={"min_score": 1.0, "sizing": {"mode": "fixed_quote", "quote_amount": 100}},
            exit={"time_stop_bars": 2},
            dca={"safety_orders": 5, "trigger": "signal"},
        )
        strategy = Strategy(config)
        strategy.feed(*(flat(hour) for hour in range(3)))
        # Bar 2: the add from bar 1 filled at the open, then the time stop sent a close.
        assert [order.reason for order in strategy.exchange.pending_orders(STRATEGY)] == [
            "time_stop"
        ]
        strategy.feed(flat(3), flat(4))
        (trade,) = strategy.lifecycle.trades
        assert (trade.exit_reason, trade.quantity) == ("time_stop", 2.0)
        position = strategy.lifecycle.position(BTC)
        assert position is not None
        assert position.position_id == f"{STRATEGY}-pos-2"
        assert strategy.of(ActionFailed) == []

    def test_a_dca_add_is_not_queued_behind_a_triggered_exit(self) -> None:
        config = make_config(
            analyzers=[{"type": "time_interval", "params": {"every_bars": 1}}],
            entry={"min_score": 1.0, "sizing": {"mode": "fixed_quote", "quote_amount": 100}},
            exit={"take_profit_pct": 10},
            dca={"safety_orders": 5, "trigger": "signal"},
        )
        strategy = Strategy(config, fill_rule="close")
        strategy.feed(flat(0), bar(1, 100, 111, 99, 105))
        (trade,) = strategy.lifecycle.trades
        assert (trade.exit_reason, trade.quantity) == ("take_profit", 1.0)
        assert strategy.of(ActionFailed) == []
        # The entry saw a flat book and opened afresh at the close instead of adding.
        position = strategy.lifecycle.position(BTC)
        assert position is not None
        assert (position.position_id, position.entries, position.avg_entry_price) == (
            f"{STRATEGY}-pos-2",
            1,
            105.0,
        )

    def test_signals_are_published_with_the_candle_close_time(self) -> None:
        strategy = Strategy()
        strategy.feed(bar(0, 100, 100, 94, 95))
        assert [
            (event.ts, event.symbol, event.direction, event.strength, event.source)
            for event in strategy.of(SignalGenerated)
        ] == [(START + timedelta(hours=1), BTC, Direction.LONG, 1.0, "threshold(price<96,>120)")]

    def test_every_processed_candle_is_counted_and_marked(self) -> None:
        strategy = Strategy()
        strategy.feed(flat(0), flat(1), flat(2))
        assert strategy.trading.candles_processed == 3
        assert [ts for ts, _ in strategy.lifecycle.equity_curve] == [
            START + timedelta(hours=hour) for hour in range(3)
        ]


class TestBadInput:
    def test_a_candle_of_another_symbol_names_the_strategy_and_its_symbols(self) -> None:
        strategy = Strategy()
        foreign = make_candle(START, 100.0, symbol=ETH)
        with pytest.raises(
            DataError, match=r"strategy 'trade-test' does not trade ETH/USDT; it trades BTC/USDT"
        ):
            strategy.trading.on_candle(foreign)
        assert strategy.store.get(ETH, "1h") is None
        assert strategy.trading.candles_processed == 0

    def test_a_candle_of_another_symbol_is_refused_by_on_bar_too(self) -> None:
        strategy = Strategy()
        with pytest.raises(DataError, match="does not trade ETH/USDT"):
            strategy.trading.on_bar(make_candle(START, 100.0, symbol=ETH), 0)

    def test_a_candle_of_another_timeframe_is_refused(self) -> None:
        strategy = Strategy()
        wrong = make_candle(START, 100.0, timeframe="4h")
        with pytest.raises(DataError, match=r"runs on 1h candles, got a 4h candle for BTC/USDT"):
            strategy.trading.on_candle(wrong)
        assert strategy.store.get(BTC, "4h") is None

    def test_an_older_candle_is_refused(self) -> None:
        strategy = Strategy()
        strategy.feed(flat(0), flat(1))
        with pytest.raises(DataError, match="older"):
            strategy.trading.on_candle(flat(0))
        assert strategy.trading.candles_processed == 2

    def test_an_older_candle_given_by_bar_names_the_strategy(self) -> None:
        strategy = Strategy()
        strategy.feed(flat(0), flat(1))
        with pytest.raises(DataError, match=r"strategy 'trade-test': candle BTC/USDT .* older"):
            strategy.trading.on_bar(flat(0), 0)
        assert strategy.trading.candles_processed == 2

    def test_the_same_candle_twice_is_processed_once(self) -> None:
        strategy = Strategy()
        signal_candle = bar(0, 100, 100, 94, 95)
        strategy.feed(signal_candle, signal_candle)
        assert strategy.trading.candles_processed == 1
        assert len(strategy.of(SignalGenerated)) == 1
        assert len(strategy.exchange.pending_orders(STRATEGY)) == 1
        assert len(strategy.lifecycle.equity_curve) == 1


class TestQuarantine:
    def test_no_new_entry_while_entries_are_disabled(self) -> None:
        strategy = Strategy(fill_rule="close")
        strategy.trading.entries_enabled = False
        strategy.feed(bar(0, 100, 100, 94, 95))
        assert strategy.lifecycle.position(BTC) is None
        assert strategy.fills() == []
        assert len(strategy.of(SignalGenerated)) == 1

    def test_an_open_positions_stop_still_closes_it(self) -> None:
        strategy = Strategy(fill_rule="close")
        strategy.feed(flat(0), bar(1, 100, 100, 94, 95))  # buys 10 at 95, stop 90.25
        strategy.trading.entries_enabled = False
        strategy.feed(bar(2, 94, 95, 90, 92))  # stop hit; the close 92 asks for a long
        (trade,) = strategy.lifecycle.trades
        assert (trade.exit_reason, trade.avg_exit_price) == ("stop_loss", 90.25)
        assert strategy.lifecycle.position(BTC) is None
        assert strategy.exchange.pending_orders(STRATEGY) == ()
        assert [side for side, *_ in strategy.fills()] == ["buy", "sell"]


class TestCandleView:
    def test_reads_the_registry_at_its_bar(self) -> None:
        strategy = Strategy()
        view = CandleView(BTC, strategy.indicators)
        candles = [flat(0, 100.0), flat(1, 101.0), flat(2, 99.0)]
        for candle in candles:
            strategy.store.append(candle)
        view._move_to(candles[1], 1)
        assert (view.symbol, view.bar, view.candle) == (BTC, 1, candles[1])
        assert view.value("price") == 101.0
        assert view.value("price", back=1) == 100.0

    def test_has_no_candle_before_the_first(self) -> None:
        strategy = Strategy()
        view = CandleView(BTC, strategy.indicators)
        assert view.bar == -1
        with pytest.raises(AssertionError, match="no candle seen yet"):
            _ = view.candle
