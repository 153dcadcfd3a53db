"""Tests for the pieces a backtest uses to pass over quiet candles.

Trusted candles and ``SeriesReplay`` rebuild exactly what the series holds;
``mark_quiet`` and ``pass_quiet_bars`` leave exactly the state candle-by-candle
marking and quiet ``on_bar`` calls leave; ``IndicatorRegistry.values`` reads
what ``value`` reads; ``signal_bars`` and ``needs_next_bar`` refuse to skip when
a strategy needs every candle.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from tradekit.config import StrategyConfig, TradekitSettings
from tradekit.containers.factory import Container, TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.data import synthetic_frame
from tradekit.domain import Candle, Fill, Order, OrderSide, Side
from tradekit.errors import PositionError, StrategyError
from tradekit.orchestrators.trading import TradingOrchestrator
from tradekit.runtime.candle_replay import SeriesReplay
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher
from tradekit.services.market.candles import CandleSeries
from tradekit.services.positions.lifecycle import PositionLifecycleService
from tradekit.services.positions.state import OpenIntent

BTC = "BTC/USDT"
ETH = "ETH/USDT"
BARS = 400


def series(bars: int = BARS, symbol: str = BTC, seed: int = 4) -> CandleSeries:
    frame = synthetic_frame(symbol, "1h", bars, seed=seed)
    return CandleSeries.from_frame(symbol, "1h", frame)


class TestTrustedCandles:
    def test_a_trusted_candle_equals_the_validated_one(self) -> None:
        ts = datetime(2024, 5, 1, 3, tzinfo=UTC)
        checked = Candle(BTC, "1h", ts, 100.0, 101.5, 99.0, 100.5, 12.0)
        trusted = Candle.trusted(BTC, "1h", ts, 100.0, 101.5, 99.0, 100.5, 12.0)
        assert trusted == checked
        assert hash(trusted) == hash(checked)
        assert trusted.close_ts == checked.close_ts

    def test_a_trusted_candle_is_still_frozen(self) -> None:
        ts = datetime(2024, 5, 1, 3, tzinfo=UTC)
        trusted = Candle.trusted(BTC, "1h", ts, 100.0, 101.5, 99.0, 100.5, 12.0)
        with pytest.raises(AttributeError):
            trusted.close = 1.0  # type: ignore[misc]


class TestSeriesReplay:
    def test_every_candle_equals_the_series_own(self) -> None:
        loaded = series()
        replay = SeriesReplay(loaded)
        assert (replay.first, replay.stop, len(replay)) == (0, BARS, BARS)
        for bar in range(BARS):
            mine, theirs = replay.candle(bar), loaded.candle_at(bar)
            assert mine == theirs
            assert mine.ts.tzinfo is theirs.ts.tzinfo
            assert replay.close_seconds[bar] == theirs.close_ts.timestamp()

    def test_rows_and_columns_line_up_with_bars(self) -> None:
        replay = SeriesReplay(series())
        rows = replay.rows(10, 13)
        assert replay.closes[rows] == [replay.candle(bar).close for bar in (10, 11, 12)]
        closes, highs, lows = replay.stretch(rows)
        assert list(closes) == [replay.candle(bar).close for bar in (10, 11, 12)]
        assert list(highs) == [replay.candle(bar).high for bar in (10, 11, 12)]
        assert list(lows) == [replay.candle(bar).low for bar in (10, 11, 12)]
        stamps = [int(replay.candle(bar).ts.timestamp()) for bar in (10, 11, 12)]
        assert replay.open_seconds[rows].tolist() == stamps

    def test_a_bar_outside_the_replay_is_refused(self) -> None:
        replay = SeriesReplay(series(10))
        with pytest.raises(IndexError, match=r"bar 10 is outside the replayed bars 0\.\.9"):
            replay.candle(10)


def lifecycle() -> PositionLifecycleService:
    config = StrategyConfig.model_validate(
        {
            "strategy_id": "quiet",
            "symbols": [BTC, ETH],
            "timeframe": "1h",
            "analyzers": [{"type": "time_interval", "params": {"every_bars": 5}}],
        }
    )
    publisher = StrategyPublisher(InMemoryEventBus(), "quiet")
    return PositionLifecycleService("quiet", config, publisher)


def open_position(
    service: PositionLifecycleService, side: Side, quantity: float, price: float, symbol: str = BTC
) -> None:
    order_side = OrderSide.BUY if side is Side.LONG else OrderSide.SELL
    order = Order(
        order_id=service.new_order_id(),
        strategy_id="quiet",
        symbol=symbol,
        side=order_side,
        quantity=quantity,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    service.register_intent(order, OpenIntent(side))
    service.apply_fills(
        [Fill(order.order_id, "quiet", symbol, order_side, quantity, price, 0.37, order.created_at)]
    )


def state(service: PositionLifecycleService) -> dict[str, Any]:
    position = service.position(BTC)
    return {
        "curve": [(ts, value.hex()) for ts, value in service.equity_curve],
        "last": service.last_price(BTC),
        "held": None if position is None else (position.bars_held, position.best_price.hex()),
    }


class TestMarkQuiet:
    @pytest.mark.parametrize("column_slices", [False, True], ids=["lists", "column-slices"])
    @pytest.mark.parametrize(
        ("side", "quantity"), [(None, 0.0), (Side.LONG, 0.1234567), (Side.SHORT, 3.3333333)]
    )
    def test_leaves_exactly_what_marking_candle_by_candle_leaves(
        self, side: Side | None, quantity: float, column_slices: bool
    ) -> None:
        """Closes given as slices of the replay's column (valued when the curve is read)
        give the same points, bit for bit, as closes given as lists."""
        replay = SeriesReplay(series())
        one_by_one, in_bulk = lifecycle(), lifecycle()
        if side is not None:
            for service in (one_by_one, in_bulk):
                open_position(service, side, quantity, replay.closes[0])
        for bar in range(BARS):
            one_by_one.mark(replay.candle(bar))
        for first, stop in ((0, 1), (1, 57), (57, 57), (57, BARS)):
            rows = replay.rows(first, stop)
            in_bulk.mark_quiet(
                BTC,
                replay.open_seconds[rows],
                *(
                    replay.stretch(rows)
                    if column_slices
                    else (replay.closes[rows], replay.highs[rows], replay.lows[rows])
                ),
            )
        assert state(in_bulk) == state(one_by_one)

    def test_refuses_while_a_position_in_another_symbol_needs_its_own_prices(self) -> None:
        service = lifecycle()
        open_position(service, Side.LONG, 1.0, 2_000.0, symbol=ETH)
        ts = np.array([int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())])
        with pytest.raises(PositionError, match="open positions in ETH/USDT"):
            service.mark_quiet(BTC, ts, [1.0], [1.0], [1.0])

    def test_refuses_columns_of_different_lengths(self) -> None:
        ts = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
        with pytest.raises(ValueError, match="2 times but 1 closes"):
            lifecycle().mark_quiet(BTC, np.array([ts, ts]), [1.0], [1.0, 1.0], [1.0, 1.0])


def built(config: dict[str, Any], loaded: CandleSeries) -> Container:
    settings = TradekitSettings(
        _env_file=None, exchange={"fee_bps": 7.0, "slippage_bps": 0.0, "fill_rule": "close"}
    )
    shared = SharedContainer(settings=settings)
    shared.candle_provider().add(loaded)
    container = TradingOrchestratorFactory(shared).create(StrategyConfig.model_validate(config))
    shared.indicator_cache().precompute()
    return container


def trading(container: Container) -> TradingOrchestrator:
    orchestrator: TradingOrchestrator = container.trading_orchestrator()
    return orchestrator


def strategy(**changes: Any) -> dict[str, Any]:
    """Buys on bar 3 (a 1000-bar interval), never sells: holding on every later bar."""
    data: dict[str, Any] = {
        "strategy_id": "quiet",
        "symbols": [BTC],
        "timeframe": "1h",
        "indicators": [{"name": "rsi", "params": {"length": 14}}],
        "analyzers": [{"type": "time_interval", "params": {"every_bars": 1000, "offset": 3}}],
        "entry": {"sizing": {"mode": "fixed_quote", "quote_amount": 777.7}},
        "risk": {"risk_per_trade_pct": 100},
    }
    data.update(changes)
    return data


class TestPassingOverQuietBars:
    def test_leaves_what_quiet_candles_through_on_bar_leave(self) -> None:
        replay = SeriesReplay(series())
        slow, fast = built(strategy(), series()), built(strategy(), replay.series)
        one_by_one, skipping = trading(slow), trading(fast)
        for bar in range(BARS):
            one_by_one.on_bar(replay.candle(bar), bar)
        mask = skipping.signal_bars(0, BARS)
        assert mask is not None
        assert np.flatnonzero(mask).tolist() == [3]
        skipping.pass_quiet_bars(*(column[0:3] for column in columns(replay)))
        skipping.on_bar(replay.candle(3), 3)
        skipping.on_bar(replay.candle(4), 4)  # settles the exposure of the fill on bar 3
        assert not skipping.needs_next_bar()
        skipping.pass_quiet_bars(*(column[5:] for column in columns(replay)))
        assert skipping.candles_processed == one_by_one.candles_processed == BARS
        # The risk manager's trading day is the one thing left behind: only a daily loss
        # limit reads it, and a strategy with one never passes over a candle.
        mine, theirs = skipping.snapshot(), one_by_one.snapshot()
        del mine["risk"], theirs["risk"]
        assert mine == theirs
        assert state(fast.position_lifecycle()) == state(slow.position_lifecycle())
        position = fast.position_lifecycle().position(BTC)
        assert position is not None
        assert position.bars_held == BARS - 4

    def test_is_refused_while_a_stop_needs_every_candle(self) -> None:
        replay = SeriesReplay(series())
        orchestrator = trading(built(strategy(exit={"stop_loss_pct": 50}), replay.series))
        for bar in range(5):
            orchestrator.on_bar(replay.candle(bar), bar)
        assert orchestrator.needs_next_bar()
        with pytest.raises(StrategyError, match="cannot pass over candles now"):
            orchestrator.pass_quiet_bars(*(column[5:9] for column in columns(replay)))

    @pytest.mark.parametrize(
        "changes",
        [
            {"symbols": [BTC, ETH]},
            {"risk": {"risk_per_trade_pct": 100, "daily_loss_limit_pct": 5}},
            {"mtf": {"timeframe": "4h", "length": 5}},
        ],
        ids=["several symbols", "daily loss limit", "higher-timeframe gate"],
    )
    def test_strategies_that_follow_every_candle_never_skip(self, changes: dict[str, Any]) -> None:
        assert trading(built(strategy(**changes), series())).signal_bars(0, BARS) is None


class TestEachRuleSaysWhetherItNeedsEveryCandle:
    """The services owning a rule answer for it; the trading orchestrator only asks them."""

    @staticmethod
    def holding(**changes: Any) -> Container:
        """The strategy after bar 4: its position opened on bar 3 has settled."""
        replay = SeriesReplay(series())
        container = built(strategy(**changes), replay.series)
        for bar in range(5):
            trading(container).on_bar(replay.candle(bar), bar)
        assert container.position_lifecycle().position(BTC) is not None
        return container

    @pytest.mark.parametrize(
        "exit_config",
        [
            {"stop_loss_pct": 50},
            {"take_profit_pct": 500},
            {"trailing_activation_pct": 400, "trailing_distance_pct": 1},
            {"time_stop_bars": 900},
            {"partial_take_profits": [{"profit_pct": 400, "close_pct": 10}]},
        ],
        ids=["stop loss", "take profit", "trailing", "time stop", "partial take profit"],
    )
    def test_the_exit_side_needs_the_next_candle_for_an_exit_rule(
        self, exit_config: dict[str, Any]
    ) -> None:
        container = self.holding(exit=exit_config)
        assert container.exit_orchestrator().needs_next_bar(BTC)
        assert not container.entry_orchestrator().needs_next_bar(BTC)
        assert trading(container).needs_next_bar()

    def test_the_entry_side_needs_the_next_candle_for_dca_adds(self) -> None:
        container = self.holding(dca={"safety_orders": 2, "step_pct": 90})
        assert container.entry_orchestrator().needs_next_bar(BTC)
        assert not container.exit_orchestrator().needs_next_bar(BTC)
        assert trading(container).needs_next_bar()

    def test_a_position_without_rules_needs_no_candle(self) -> None:
        container = self.holding()
        assert not container.exit_orchestrator().needs_next_bar(BTC)
        assert not container.entry_orchestrator().needs_next_bar(BTC)
        assert not trading(container).needs_next_bar()

    def test_the_risk_manager_needs_every_candle_for_a_daily_loss_limit(self) -> None:
        limited = built(strategy(risk={"daily_loss_limit_pct": 5}), series())
        assert limited.risk_manager().needs_every_bar
        assert not built(strategy(), series()).risk_manager().needs_every_bar

    def test_the_higher_timeframe_gate_needs_every_candle_when_configured(self) -> None:
        gated = built(strategy(mtf={"timeframe": "4h", "length": 5}), series())
        assert gated.mtf_gate().needs_every_bar
        assert not built(strategy(), series()).mtf_gate().needs_every_bar


def columns(replay: SeriesReplay) -> tuple[Any, ...]:
    return replay.open_seconds, replay.closes, replay.highs, replay.lows


class TestIndicatorValues:
    def test_reads_what_value_reads_bar_by_bar(self) -> None:
        replay = SeriesReplay(series())
        registry = built(strategy(), replay.series).indicator_registry()
        for back in (0, 1, 5):
            found = registry.values(BTC, "rsi", -3 - back, BARS + 2 - back)
            expected = [registry.value(BTC, "rsi", bar, back) for bar in range(-3, BARS + 2)]
            assert [None if math.isnan(value) else value for value in found] == expected


def test_time_stamps_of_a_replay_are_utc() -> None:
    replay = SeriesReplay(series(3))
    open_times = [replay.open_time(bar) for bar in range(3)]
    assert all(ts.tzinfo is UTC for ts in open_times)
    assert open_times[1] - open_times[0] == timedelta(hours=1)
