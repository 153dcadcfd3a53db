"""Tests for ``tradekit.testing``: the fakes, the builders and the pytest fixtures users rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tradekit.config.loading import load_strategy_config
from tradekit.config.settings import TradekitSettings
from tradekit.containers import SharedContainer
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.data.synthetic import synthetic_candles, synthetic_frame
from tradekit.domain import Candle, Order, OrderSide, OrderType, Side
from tradekit.errors import ConfigError, DataError, ExchangeError
from tradekit.events import Event, OrderFilled, PositionClosed, PositionOpened
from tradekit.protocols import Exchange
from tradekit.runtime.engine import Engine
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher
from tradekit.services.exchange import PaperExchange
from tradekit.services.market.candles import CandleStore
from tradekit.testing import (
    EventRecorder,
    FakeCandleSource,
    FakeExchange,
    settings_from_dict,
    shared_container_from_dict,
    strategy_config_from_dict,
)

pytest_plugins = ["pytester"]

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def candle(
    ts: datetime = T0, *, symbol: str = "BTC/USDT", open_: float = 100.0, close: float = 105.0
) -> Candle:
    return Candle(symbol, "1h", ts, open_, 110.0, 90.0, close, 1_000.0)


def order(
    order_id: str = "a-1",
    *,
    strategy_id: str = "a",
    symbol: str = "BTC/USDT",
    side: OrderSide = OrderSide.BUY,
    quantity: float = 2.0,
) -> Order:
    return Order(order_id, strategy_id, symbol, side, quantity, created_at=T0 + HOUR)


class TestFakeExchange:
    def test_satisfies_the_exchange_protocol(self) -> None:
        assert isinstance(FakeExchange(), Exchange)

    def test_fills_at_once_at_the_candle_close_and_records_the_order(self) -> None:
        exchange = FakeExchange()
        fills = exchange.submit(order(), candle())
        assert [(fill.order_id, fill.price, fill.fee, fill.ts) for fill in fills] == [
            ("a-1", 105.0, 0.0, T0 + HOUR)
        ]
        assert exchange.orders == [order()]
        assert exchange.fills == fills

    def test_fills_at_the_configured_price_with_the_configured_fee(self) -> None:
        exchange = FakeExchange(fill_price=50.0, fee_bps=10)
        (fill,) = exchange.submit(order(quantity=4.0), candle())
        assert (fill.price, fill.fee) == (50.0, 4.0 * 50.0 * 10 / 10_000)

    def test_fills_a_triggered_order_at_its_trigger_price(self) -> None:
        (fill,) = FakeExchange().submit(order(side=OrderSide.SELL), candle(), trigger_price=95.0)
        assert fill.price == 95.0

    def test_held_orders_wait_for_a_later_candle_and_fill_at_its_open(self) -> None:
        exchange = FakeExchange(hold=True)
        assert exchange.submit(order(), candle()) == []
        assert exchange.pending_orders("a") == (order(),)
        assert exchange.fill_pending("a", candle()) == []  # the decision candle itself
        assert exchange.fill_pending("b", candle(T0 + HOUR)) == []
        (fill,) = exchange.fill_pending("a", candle(T0 + HOUR, open_=101.0))
        assert (fill.price, fill.ts) == (101.0, T0 + HOUR)
        assert exchange.pending_orders() == ()

    def test_held_orders_fill_only_on_a_candle_of_their_symbol(self) -> None:
        exchange = FakeExchange(hold=True)
        exchange.submit(order(), candle())
        assert exchange.fill_pending("a", candle(T0 + HOUR, symbol="ETH/USDT")) == []
        assert exchange.pending_orders("a") == (order(),)

    def test_triggered_orders_are_not_held(self) -> None:
        exchange = FakeExchange(hold=True)
        fills = exchange.submit(order(side=OrderSide.SELL), candle(), trigger_price=95.0)
        assert [fill.price for fill in fills] == [95.0]

    def test_cancel_pending_drops_only_that_strategys_orders(self) -> None:
        exchange = FakeExchange(hold=True)
        exchange.submit(order("a-1"), candle())
        exchange.submit(order("b-1", strategy_id="b"), candle())
        assert exchange.cancel_pending("a") == 1
        assert exchange.cancelled == [order("a-1")]
        assert exchange.pending_orders() == (order("b-1", strategy_id="b"),)

    def test_cancel_orders_drops_only_the_named_orders(self) -> None:
        exchange = FakeExchange(hold=True)
        exchange.submit(order("a-1"), candle())
        exchange.submit(order("a-2"), candle())
        exchange.submit(order("a-1", strategy_id="b"), candle())
        assert exchange.cancel_orders("a", ["a-2"]) == [order("a-2")]
        assert exchange.cancelled == [order("a-2")]
        assert exchange.pending_orders() == (order("a-1"), order("a-1", strategy_id="b"))

    def test_fail_next_submit_raises_once_and_records_the_refused_order(self) -> None:
        exchange = FakeExchange()
        exchange.fail_next_submit("venue down")
        with pytest.raises(ExchangeError, match=r"^venue down$"):
            exchange.submit(order("a-1"), candle())
        assert len(exchange.submit(order("a-2"), candle())) == 1
        assert exchange.rejected == [order("a-1")]
        assert exchange.orders == [order("a-1"), order("a-2")]

    def test_fail_next_submit_can_cover_several_submissions(self) -> None:
        exchange = FakeExchange()
        exchange.fail_next_submit(times=2)
        for number in (1, 2):
            with pytest.raises(ExchangeError):
                exchange.submit(order(f"a-{number}"), candle())
        assert exchange.submit(order("a-3"), candle()) != []

    def test_refuses_what_no_tradekit_exchange_executes(self) -> None:
        exchange = FakeExchange()
        limit = Order(
            "a-1", "a", "BTC/USDT", OrderSide.BUY, 1.0, T0, OrderType.LIMIT, limit_price=90.0
        )
        with pytest.raises(ExchangeError, match="only market orders"):
            exchange.submit(limit, candle())
        with pytest.raises(ExchangeError, match="submitted with a ETH/USDT candle"):
            exchange.submit(order("a-2"), candle(symbol="ETH/USDT"))

    def test_orders_for_lists_one_strategys_orders(self) -> None:
        exchange = FakeExchange()
        exchange.submit(order("a-1"), candle())
        exchange.submit(order("b-1", strategy_id="b"), candle())
        assert exchange.orders_for("b") == [order("b-1", strategy_id="b")]

    @pytest.mark.parametrize(
        ("options", "message"),
        [({"fill_price": 0.0}, "fill_price must be > 0"), ({"fee_bps": -1.0}, "fee_bps")],
    )
    def test_refuses_bad_settings(self, options: dict[str, float], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            FakeExchange(**options)


class TestFakeCandleSource:
    def test_streams_candles_in_close_time_order_across_timeframes(self) -> None:
        source = FakeCandleSource.generated("BTC/USDT", ["4h", "1h"], 8, seed=1)
        stream = list(source.stream())
        assert [c.close_ts for c in stream] == sorted(c.close_ts for c in stream)
        one_hour = source.candles("BTC/USDT", "1h")
        four_hour_first = stream.index(source.candles("BTC/USDT", "4h")[0])
        # It closes with the fourth 1h candle; ties keep the given order (4h first here).
        assert stream[four_hour_first - 1 : four_hour_first + 2] == [
            one_hour[2],
            source.candles("BTC/USDT", "4h")[0],
            one_hour[3],
        ]

    def test_keeps_the_given_order_for_candles_closing_together(self) -> None:
        eth = Candle("ETH/USDT", "1h", T0, 10.0, 11.0, 9.0, 10.0, 1.0)
        btc = candle()
        assert list(FakeCandleSource([eth, btc]).stream()) == [eth, btc]
        assert list(FakeCandleSource([btc, eth]).stream()) == [btc, eth]

    def test_generated_is_the_synthetic_series(self) -> None:
        source = FakeCandleSource.generated(["BTC/USDT", "ETH/USDT"], "1h", 50, seed=9)
        assert source.candles("ETH/USDT", "1h") == synthetic_candles("ETH/USDT", "1h", 50, seed=9)
        assert source.keys() == [("BTC/USDT", "1h"), ("ETH/USDT", "1h")]
        assert len(source) == 100

    def test_frames_hold_the_same_values_as_the_synthetic_frame(self) -> None:
        frame = FakeCandleSource.generated("BTC/USDT", "15m", 40, seed=9).frames()
        expected = synthetic_frame("BTC/USDT", "15m", 40, seed=9)
        assert list(frame) == [("BTC/USDT", "15m")]
        got = frame[("BTC/USDT", "15m")]
        assert got.index.equals(expected.index)
        assert (got.to_numpy() == expected.to_numpy()).all()

    def test_from_closes_builds_consecutive_candles_opening_at_the_previous_close(self) -> None:
        source = FakeCandleSource.from_closes([100.0, 110.0], timeframe="4h", start=T0)
        first, second = source.stream()
        assert (first.ts, first.open, first.close) == (T0, 100.0, 100.0)
        assert (second.ts, second.open, second.close) == (T0 + 4 * HOUR, 100.0, 110.0)
        assert (second.high, second.low) == (110.0 * (1 + 0.1 / 100), 100.0 * (1 - 0.1 / 100))

    def test_subset_keeps_only_the_named_symbols_and_timeframes(self) -> None:
        source = FakeCandleSource.generated(["BTC/USDT", "ETH/USDT"], ["1h", "4h"], 8, seed=2)
        subset = source.subset(["ETH/USDT"], ["4h"])
        assert subset.keys() == [("ETH/USDT", "4h")]
        assert list(subset.stream()) == source.candles("ETH/USDT", "4h")

    def test_preload_fills_the_store_and_numbers_each_candle_by_its_bar(self) -> None:
        source = FakeCandleSource.generated(["BTC/USDT", "ETH/USDT"], "1h", 30, seed=2)
        store = CandleStore()
        replay = source.preload(store)
        assert [pair[0] for pair in replay] == list(source.stream())
        for candle_, bar in replay:
            series = store.get(candle_.symbol, candle_.timeframe)
            assert series is not None
            assert series.candle_at(bar) == candle_
        assert [bar for candle_, bar in replay if candle_.symbol == "ETH/USDT"] == list(range(30))

    def test_preload_refuses_a_series_the_store_already_holds(self) -> None:
        store = CandleStore()
        store.append(candle())
        with pytest.raises(DataError, match="already holds a series for BTC/USDT 1h"):
            FakeCandleSource([candle(T0 + HOUR)]).preload(store)


def _publish(bus: InMemoryEventBus, strategy_id: str, *events: Event) -> None:
    publisher = StrategyPublisher(bus, strategy_id)
    for event in events:
        publisher.publish(event)


def _opened(symbol: str = "BTC/USDT") -> PositionOpened:
    return PositionOpened(
        ts=T0,
        position_id="p",
        symbol=symbol,
        side=Side.LONG,
        quantity=1.0,
        price=1.0,
        fee=0.0,
        stop_loss=None,
        take_profit=None,
    )


def _filled() -> OrderFilled:
    return OrderFilled(
        ts=T0, order_id="o", symbol="BTC/USDT", side=OrderSide.BUY, quantity=1, price=1, fee=0
    )


class TestEventRecorder:
    def test_records_every_event_in_delivery_order(self) -> None:
        bus = InMemoryEventBus()
        recorder = EventRecorder(bus)
        _publish(bus, "a", _opened(), _filled())
        _publish(bus, "b", _filled())
        assert [(e.strategy_id, e.seq, e.event_type) for e in recorder.events] == [
            ("a", 1, "PositionOpened"),
            ("a", 2, "OrderFilled"),
            ("b", 1, "OrderFilled"),
        ]
        assert recorder.types() == ["PositionOpened", "OrderFilled", "OrderFilled"]
        assert recorder.types("b") == ["OrderFilled"]
        assert [event.strategy_id for event in recorder.of_type(OrderFilled)] == ["a", "b"]
        assert [event.seq for event in recorder.for_strategy("a")] == [1, 2]
        assert len(recorder) == 3

    def test_filters_by_type_and_strategy(self) -> None:
        bus = InMemoryEventBus()
        recorder = EventRecorder(bus, OrderFilled, strategy_id="b")
        _publish(bus, "a", _opened(), _filled())
        _publish(bus, "b", _opened(), _filled())
        assert [(event.strategy_id, event.seq) for event in recorder] == [("b", 2)]

    def test_as_a_context_manager_unsubscribes_on_exit(self) -> None:
        bus = InMemoryEventBus()
        with EventRecorder(bus) as recorder:
            _publish(bus, "a", _filled())
        _publish(bus, "a", _filled())
        assert len(recorder) == 1
        assert not recorder.active
        assert bus.subscriber_count() == 0

    def test_clear_forgets_but_keeps_recording(self) -> None:
        bus = InMemoryEventBus()
        recorder = EventRecorder(bus)
        _publish(bus, "a", _filled())
        recorder.clear()
        _publish(bus, "b", _filled())
        assert recorder.types() == ["OrderFilled"]
        assert recorder.events[0].strategy_id == "b"


class TestSettingsFromDict:
    def test_ignores_dotenv_and_environment_variables(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / ".env").write_text("TRADEKIT_EXCHANGE__FEE_BPS=33\n", encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("TRADEKIT_ENGINE__FAILURES_BEFORE_QUARANTINE", "9")
        settings = settings_from_dict({"exchange": {"slippage_bps": 1.0}})
        assert type(settings) is TradekitSettings
        assert settings.exchange.fee_bps == 10.0
        assert settings.exchange.slippage_bps == 1.0
        assert settings.engine.failures_before_quarantine == 3

    def test_reports_every_problem_as_a_config_error(self) -> None:
        with pytest.raises(ConfigError) as caught:
            settings_from_dict({"exchange": {"fee_bps": -1}, "engin": {}})
        assert [str(problem) for problem in caught.value.problems] == [
            "settings dict: exchange.fee_bps: expected greater than or equal to 0, got -1",
            "settings dict: engin: unknown key 'engin'; did you mean 'engine'?",
        ]

    def test_refuses_something_that_is_not_a_dict(self) -> None:
        with pytest.raises(ConfigError, match="settings dict: expected a dict, got a list"):
            settings_from_dict([])  # type: ignore[arg-type]

    def test_shared_container_is_built_over_those_settings(self) -> None:
        shared = shared_container_from_dict({"exchange": {"fee_bps": 0.0}})
        exchange = shared.exchange()
        assert isinstance(exchange, PaperExchange)
        assert exchange.settings.fee_bps == 0.0
        assert shared_container_from_dict({}).event_bus() is not shared.event_bus()


STRATEGY = {
    "strategy_id": "mine",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
    "analyzers": [{"type": "time_interval", "params": {"every_bars": 2}}],
}


class TestStrategyConfigFromDict:
    def test_deep_merges_over_the_defaults_with_the_strategy_winning(self) -> None:
        defaults = {
            "capital": 500,
            "exit": {"stop_loss_pct": 5, "take_profit_pct": 9},
            "symbols": ["ETH/USDT", "SOL/USDT"],
        }
        config = strategy_config_from_dict({**STRATEGY, "exit": {"stop_loss_pct": 2}}, defaults)
        assert config.capital == 500
        assert (config.exit.stop_loss_pct, config.exit.take_profit_pct) == (2, 9)
        assert config.symbols == ("BTC/USDT",)

    def test_takes_the_defaults_of_settings(self) -> None:
        settings = settings_from_dict({"strategy_defaults": {"capital": 750}})
        assert strategy_config_from_dict(STRATEGY, settings).capital == 750

    def test_gives_the_same_config_as_the_same_file(self, tmp_path: Path) -> None:
        path = tmp_path / "mine.json"
        path.write_text(
            '{"strategy_id": "mine", "symbols": ["BTC/USDT"], "timeframe": "1h",'
            ' "analyzers": [{"type": "time_interval", "params": {"every_bars": 2}}]}',
            encoding="utf-8",
        )
        settings = settings_from_dict({"strategy_defaults": {"exit": {"stop_loss_pct": 4}}})
        assert strategy_config_from_dict(STRATEGY, settings) == load_strategy_config(path, settings)

    def test_says_which_bad_values_came_from_the_defaults(self) -> None:
        with pytest.raises(ConfigError) as caught:
            strategy_config_from_dict({**STRATEGY, "exit": {"stop_los_pct": 3}}, {"capital": -3})
        assert [str(problem) for problem in caught.value.problems] == [
            "strategy 'mine': capital: expected greater than 0, got -3 "
            "(value set by strategy_defaults)",
            "strategy 'mine': exit.stop_los_pct: unknown key 'stop_los_pct'; "
            "did you mean 'stop_loss_pct'?",
        ]

    def test_refuses_something_that_is_not_a_dict(self) -> None:
        with pytest.raises(ConfigError, match="strategy dict: expected a dict, got a str"):
            strategy_config_from_dict("mine")  # type: ignore[arg-type]


class TestFixtures:
    def test_shared_runs_the_paper_exchange_without_fees(
        self, tradekit_shared: SharedContainer
    ) -> None:
        exchange = tradekit_shared.exchange()
        assert isinstance(exchange, PaperExchange)
        assert (exchange.settings.fee_bps, exchange.settings.slippage_bps) == (0.0, 0.0)

    def test_factory_engine_and_recorder_share_one_shared_container(
        self,
        tradekit_shared: SharedContainer,
        tradekit_factory: TradingOrchestratorFactory,
        tradekit_engine: Engine,
        tradekit_events: EventRecorder,
    ) -> None:
        assert tradekit_engine.factory is tradekit_factory
        assert tradekit_factory.shared is tradekit_shared
        tradekit_engine.load([strategy_config_from_dict(STRATEGY)])
        assert tradekit_events.types() == ["StrategyLoaded"]

    def test_nothing_leaks_from_one_test_to_the_next(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(
            """
            from tradekit.testing import strategy_config_from_dict

            SEEN = []
            CONFIG = strategy_config_from_dict({
                "strategy_id": "leaky",
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "analyzers": [{"type": "time_interval", "params": {"every_bars": 2}}],
            })

            def test_first(tradekit_shared, tradekit_engine, tradekit_events):
                tradekit_engine.load([CONFIG])
                SEEN.append((tradekit_shared, tradekit_shared.event_bus(), tradekit_events))

            def test_second(tradekit_shared, tradekit_factory, tradekit_events):
                shared, bus, recorder = SEEN[0]
                assert tradekit_shared is not shared
                assert tradekit_shared.event_bus() is not bus
                assert len(tradekit_factory) == 0
                assert tradekit_events.events == []
                assert not recorder.active
                assert recorder.types() == ["StrategyLoaded"]
                assert bus.subscriber_count() == 0
            """
        )
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=2)

    def test_settings_data_fixture_can_be_overridden(self, pytester: pytest.Pytester) -> None:
        pytester.makeconftest(
            """
            import pytest

            @pytest.fixture
            def tradekit_settings_data():
                return {"exchange": {"fee_bps": 7.5}}
            """
        )
        pytester.makepyfile(
            """
            def test_fee(tradekit_shared):
                assert tradekit_shared.exchange().settings.fee_bps == 7.5
            """
        )
        pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


class TestReadmeExample:
    """The example of the README, kept honest by running it."""

    def test_my_strategy_buys_then_is_stopped_out(
        self, tradekit_factory: TradingOrchestratorFactory, tradekit_events: EventRecorder
    ) -> None:
        config = strategy_config_from_dict(
            {
                "strategy_id": "my-strategy",
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "analyzers": [{"type": "time_interval", "params": {"every_bars": 24}}],
                "exit": {"stop_loss_pct": 5},
            }
        )
        exchange = FakeExchange(fee_bps=10)
        candles = FakeCandleSource.from_closes([100, 101, 99, 94, 96])

        with tradekit_factory.overriding(config, shared_exchange=exchange) as strategy:
            orchestrator = strategy.trading_orchestrator()
            for candle_ in candles.stream():
                orchestrator.on_candle(candle_)

        assert [(order.side, order.quantity, order.reason) for order in exchange.orders] == [
            (OrderSide.BUY, 1.0, "long score 1.00"),
            (OrderSide.SELL, 1.0, "stop_loss"),
        ]
        assert [fill.price for fill in exchange.fills] == [100.0, 95.0]
        assert tradekit_events.types("my-strategy") == [
            "SignalGenerated",
            "OrderFilled",
            "PositionOpened",
            "ActionExecuted",
            "OrderFilled",
            "PositionClosed",
            "ActionExecuted",
            "StrategyUnloaded",
        ]
        (closed,) = tradekit_events.of_type(PositionClosed)
        assert (closed.reason, closed.exit_price) == ("stop_loss", 95.0)
        assert closed.realized_pnl == pytest.approx(-5.0 - 0.1 - 0.095)
