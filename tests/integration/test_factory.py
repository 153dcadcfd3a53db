"""``TradingOrchestratorFactory`` over a real shared container: cache, unload, reload, overrides."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from ticker_strategies import ticker, ticker_data

from tradekit.containers import SharedContainer
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.handle import StrategyHandle
from tradekit.domain import Candle, ClosePercent
from tradekit.errors import ConfigError, StrategyConflictError, StrategyNotFoundError
from tradekit.events import (
    ActionFailed,
    PositionClosed,
    PositionOpened,
    StrategyReloaded,
    StrategyUnloaded,
)
from tradekit.runtime.engine import Engine
from tradekit.services.exchange import PaperExchange
from tradekit.services.indicators.cache import IndicatorKey
from tradekit.services.signals.analyzers import AnalyzerRegistry
from tradekit.testing import (
    EventRecorder,
    FakeCandleSource,
    FakeExchange,
    strategy_config_from_dict,
)

RSI_14 = IndicatorKey("BTC/USDT", "1h", "rsi", (("length", 14),))
ATR_14 = IndicatorKey("BTC/USDT", "1h", "atr", (("length", 14),))


def candles(count: int, start_close: float = 100.0) -> list[Candle]:
    closes = [start_close + index for index in range(count)]
    return list(FakeCandleSource.from_closes(closes).stream())


def feed(engine: Engine, stream: Sequence[Candle]) -> None:
    for candle in stream:
        engine.on_candle(candle)


def paper(shared: SharedContainer) -> PaperExchange:
    exchange = shared.exchange()
    assert isinstance(exchange, PaperExchange)
    return exchange


class TestGetOrCreate:
    def test_returns_the_cached_container_for_an_equal_config(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        first = tradekit_factory.get_or_create(ticker("a"))
        assert tradekit_factory.get_or_create(ticker("a")) is first
        assert tradekit_factory.strategy_ids() == ["a"]

    def test_refuses_a_different_config_for_a_loaded_id(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        loaded = tradekit_factory.get_or_create(ticker("a"))
        with pytest.raises(StrategyConflictError) as caught:
            tradekit_factory.get_or_create(ticker("a", every=4))
        assert str(caught.value) == (
            "strategy 'a' is loaded with a different config; use reload(config) to replace it"
        )
        assert tradekit_factory.get("a") is loaded
        assert loaded.config() == ticker("a")

    def test_create_refuses_an_id_already_loaded(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        tradekit_factory.create(ticker("a"))
        with pytest.raises(StrategyConflictError, match="already loaded; use reload"):
            tradekit_factory.create(ticker("a"))


class TestGet:
    def test_unknown_id_names_the_closest_loaded_one(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        tradekit_factory.create(ticker("rsi-btc-1h"))
        tradekit_factory.create(ticker("macd-dca-btc-4h"))
        with pytest.raises(StrategyNotFoundError) as caught:
            tradekit_factory.get("rsi-btc-1x")
        assert str(caught.value) == (
            "no strategy 'rsi-btc-1x' is loaded; did you mean 'rsi-btc-1h'? "
            "(loaded: macd-dca-btc-4h, rsi-btc-1h)"
        )

    def test_unknown_id_without_a_close_match_lists_what_is_loaded(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        with pytest.raises(StrategyNotFoundError) as caught:
            tradekit_factory.get("zzz")
        assert str(caught.value) == "no strategy 'zzz' is loaded (loaded: none)"


class TestHandle:
    def test_holds_the_services_the_container_built(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        container = tradekit_factory.create(ticker("a"))
        handle = tradekit_factory.handle("a")
        assert isinstance(handle, StrategyHandle)
        assert handle.strategy_id == "a"
        assert handle.config is container.config()
        assert handle.trading_orchestrator is container.trading_orchestrator()
        assert handle.position_lifecycle is container.position_lifecycle()
        assert handle.publisher is container.publisher()
        assert handle.risk_manager is container.risk_manager()
        assert handle.action_queue is container.action_queue()

    def test_a_reload_hands_out_a_new_handle_and_an_unload_none(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        tradekit_factory.create(ticker("a"))
        before = tradekit_factory.handle("a")
        tradekit_factory.reload(ticker("a", capital=20_000))
        after = tradekit_factory.handle("a")
        assert after is not before
        assert after.trading_orchestrator is tradekit_factory.get("a").trading_orchestrator()
        assert after.config.capital == 20_000
        tradekit_factory.unload("a")
        assert tradekit_factory.find_handle("a") is None
        with pytest.raises(StrategyNotFoundError, match="no strategy 'a' is loaded"):
            tradekit_factory.handle("a")

    def test_the_engine_routes_the_handle_s_orchestrator(self, tradekit_engine: Engine) -> None:
        tradekit_engine.load([ticker("a")])
        (entry,) = tradekit_engine.route("BTC/USDT", "1h")
        assert entry.orchestrator is tradekit_engine.factory.handle("a").trading_orchestrator


@pytest.fixture
def two_holding(
    tradekit_shared: SharedContainer, tradekit_engine: Engine
) -> tuple[Engine, list[Candle]]:
    """``gone`` (rsi + atr) and ``kept`` (rsi), each holding a position and a pending sell."""
    gone = ticker_data(
        "gone",
        indicators=[
            {"name": "rsi", "params": {"length": 14}},
            {"name": "atr", "params": {"length": 14}},
        ],
    )
    kept = ticker_data("kept", indicators=[{"name": "rsi", "params": {"length": 14}}])
    tradekit_engine.load([strategy_config_from_dict(gone), strategy_config_from_dict(kept)])
    stream = candles(8)
    feed(tradekit_engine, stream[:3])  # bought on bar 0, filled on bar 1, sell sent on bar 2
    return tradekit_engine, stream


class TestUnload:
    def test_releases_its_indicator_claims_and_keeps_the_shared_ones(
        self, tradekit_shared: SharedContainer, two_holding: tuple[Engine, list[Candle]]
    ) -> None:
        engine, _ = two_holding
        cache = tradekit_shared.indicator_cache()
        assert cache.users(RSI_14) == {"gone", "kept"}
        engine.factory.unload("gone")
        assert cache.users(RSI_14) == {"kept"}
        assert ATR_14 not in cache
        assert cache.keys() == [RSI_14]

    def test_drops_its_bus_subscriptions_only(
        self, tradekit_shared: SharedContainer, two_holding: tuple[Engine, list[Candle]]
    ) -> None:
        engine, _ = two_holding
        bus = tradekit_shared.event_bus()
        gone_recorder = EventRecorder(bus, strategy_id="gone")
        kept_recorder = EventRecorder(bus, strategy_id="kept")
        engine.factory.unload("gone")
        assert bus.subscriber_count("gone") == 0
        assert not gone_recorder.active
        assert bus.subscriber_count("kept") == 1
        assert kept_recorder.active

    def test_gives_back_its_exposure_and_leaves_the_others(
        self, tradekit_shared: SharedContainer, two_holding: tuple[Engine, list[Candle]]
    ) -> None:
        engine, _ = two_holding
        guard = tradekit_shared.exposure_guard()
        kept_exposure = guard.exposure("kept", "BTC/USDT")
        assert guard.exposure("gone", "BTC/USDT") == kept_exposure == 100.0
        engine.factory.unload("gone")
        assert guard.exposure("gone", "BTC/USDT") == 0.0
        assert guard.exposure("kept", "BTC/USDT") == kept_exposure
        assert guard.symbol_exposure("BTC/USDT") == kept_exposure

    def test_cancels_its_pending_orders_on_the_exchange_and_no_one_elses(
        self, tradekit_shared: SharedContainer, two_holding: tuple[Engine, list[Candle]]
    ) -> None:
        engine, _ = two_holding
        exchange = paper(tradekit_shared)
        assert [order.order_id for order in exchange.pending_orders("gone")] == ["gone-2"]
        engine.factory.unload("gone")
        assert exchange.pending_orders("gone") == ()
        assert [order.order_id for order in exchange.pending_orders("kept")] == ["kept-2"]

    def test_the_shared_bus_and_exchange_keep_serving_the_remaining_strategy(
        self, two_holding: tuple[Engine, list[Candle]], tradekit_events: EventRecorder
    ) -> None:
        engine, stream = two_holding
        engine.factory.unload("gone")
        tradekit_events.clear()
        feed(engine, stream[3:5])
        closed = tradekit_events.of_type(PositionClosed)
        assert [(event.strategy_id, event.reason, event.exit_price) for event in closed] == [
            ("kept", "signal_exit", 102.0)
        ]
        assert {event.strategy_id for event in tradekit_events.events} == {"kept"}
        assert [event.price for event in tradekit_events.of_type(PositionOpened)] == [103.0]

    def test_emits_strategy_unloaded_next_in_its_seq(
        self, two_holding: tuple[Engine, list[Candle]], tradekit_events: EventRecorder
    ) -> None:
        engine, _ = two_holding
        last_seq = engine.factory.get("gone").publisher().next_seq - 1
        engine.factory.unload("gone", reason="retired")
        unloaded = tradekit_events.of_type(StrategyUnloaded)
        assert [(event.strategy_id, event.seq, event.reason) for event in unloaded] == [
            ("gone", last_seq + 1, "retired")
        ]

    def test_records_a_snapshot_of_its_book(self, two_holding: tuple[Engine, list[Candle]]) -> None:
        engine, _ = two_holding
        before = engine.factory.get("gone").position_lifecycle().snapshot()
        engine.factory.unload("gone")
        assert engine.factory.snapshots == {"gone": before}
        assert [item["position"]["position_id"] for item in before["positions"]] == ["gone-pos-1"]
        assert [item["order"]["order_id"] for item in before["pending"]] == ["gone-2"]

    def test_forgets_the_strategy(self, two_holding: tuple[Engine, list[Candle]]) -> None:
        engine, stream = two_holding
        engine.factory.unload("gone")
        assert "gone" not in engine.factory
        assert engine.factory.strategy_ids() == ["kept"]
        assert engine.on_candle(stream[3]) == 1
        with pytest.raises(StrategyNotFoundError):
            engine.factory.get("gone")

    def test_with_close_positions_closes_at_the_last_close(
        self, two_holding: tuple[Engine, list[Candle]], tradekit_events: EventRecorder
    ) -> None:
        engine, stream = two_holding
        engine.factory.unload("gone", close_positions=True)
        closed = tradekit_events.of_type(PositionClosed)
        assert [(event.strategy_id, event.reason, event.exit_price) for event in closed] == [
            ("gone", "unload", stream[2].close)
        ]


class TestReload:
    def test_keeps_open_positions_and_manages_them_under_the_new_config(
        self, tradekit_engine: Engine, tradekit_events: EventRecorder
    ) -> None:
        tradekit_engine.load([ticker("a", every=4, exit_offset=3)])
        stream = candles(6)
        feed(tradekit_engine, stream[:2])
        before = tradekit_engine.factory.get("a").position_lifecycle().position("BTC/USDT")
        assert before is not None
        tradekit_engine.reload(ticker("a", every=4, exit_offset=3, capital=20_000))
        container = tradekit_engine.factory.get("a")
        after = container.position_lifecycle().position("BTC/USDT")
        assert after is not None
        assert (after.position_id, after.quantity, after.avg_entry_price) == (
            before.position_id,
            before.quantity,
            before.avg_entry_price,
        )
        assert container.config().capital == 20_000
        feed(tradekit_engine, stream[2:5])
        closed = tradekit_events.of_type(PositionClosed)
        assert [(event.position_id, event.reason) for event in closed] == [
            ("a-pos-1", "signal_exit")
        ]

    def test_continues_seq_without_gaps_or_repeats(
        self, tradekit_engine: Engine, tradekit_events: EventRecorder
    ) -> None:
        tradekit_engine.load([ticker("a")])
        stream = candles(9)
        feed(tradekit_engine, stream[:4])
        tradekit_engine.reload(ticker("a", capital=20_000), reason="bigger")
        feed(tradekit_engine, stream[4:])
        events = tradekit_events.for_strategy("a")
        assert [event.seq for event in events] == list(range(1, len(events) + 1))
        reloaded = tradekit_events.of_type(StrategyReloaded)
        assert [event.reason for event in reloaded] == ["bigger"]
        assert reloaded[0].seq < events[-1].seq

    def test_seq_stays_unique_when_the_old_queue_still_held_actions(
        self, tradekit_engine: Engine, tradekit_events: EventRecorder
    ) -> None:
        tradekit_engine.load([ticker("a", every=4, exit_offset=3)])
        stream = candles(4)
        feed(tradekit_engine, stream[:2])
        # An action left behind by a candle that failed half-way: the old queue discards it.
        old_queue = tradekit_engine.factory.get("a").action_queue()
        old_queue.enqueue(ClosePercent("BTC/USDT", 100.0, "left over"))
        tradekit_engine.reload(ticker("a", every=4, exit_offset=3, capital=20_000))
        feed(tradekit_engine, stream[2:])
        events = tradekit_events.for_strategy("a")
        assert [event.seq for event in events] == list(range(1, len(events) + 1))
        assert [event.error for event in tradekit_events.of_type(ActionFailed)] == [
            "discarded at shutdown: no candle to carry it out on"
        ]

    def test_keeps_the_strategys_exposure_in_the_shared_guard(
        self, tradekit_shared: SharedContainer, tradekit_engine: Engine
    ) -> None:
        tradekit_engine.load([ticker("a", every=4, exit_offset=3)])
        feed(tradekit_engine, candles(2))
        guard = tradekit_shared.exposure_guard()
        assert guard.exposure("a", "BTC/USDT") == 100.0
        tradekit_engine.reload(ticker("a", every=4, exit_offset=3, capital=20_000))
        assert guard.exposure("a", "BTC/USDT") == 100.0

    def test_with_an_unknown_indicator_raises_and_leaves_the_strategy_running(
        self,
        tradekit_shared: SharedContainer,
        tradekit_engine: Engine,
        tradekit_events: EventRecorder,
    ) -> None:
        good = ticker("a", indicators=[{"name": "rsi", "params": {"length": 14}}])
        tradekit_engine.load([good])
        stream = candles(6)
        feed(tradekit_engine, stream[:3])
        running = tradekit_engine.factory.get("a")
        bad = ticker("a", indicators=[{"name": "rsii", "params": {"length": 14}}])
        with pytest.raises(ConfigError) as caught:
            tradekit_engine.reload(bad)
        assert str(caught.value) == (
            "strategy 'a': unknown indicator 'rsii' in indicators[0].name; did you mean 'rsi'?"
        )
        assert tradekit_engine.factory.get("a") is running
        assert running.config() == good
        assert tradekit_shared.indicator_cache().users(RSI_14) == {"a"}
        feed(tradekit_engine, stream[3:])
        assert running.trading_orchestrator().candles_processed == 6
        events = tradekit_events.for_strategy("a")
        assert [event.seq for event in events] == list(range(1, len(events) + 1))
        assert tradekit_events.of_type(StrategyReloaded) == []

    def test_with_a_bad_analyzer_reference_keeps_the_running_strategys_claims(
        self, tradekit_shared: SharedContainer, tradekit_engine: Engine
    ) -> None:
        good = ticker("a", indicators=[{"name": "rsi", "params": {"length": 14}}])
        tradekit_engine.load([good])
        feed(tradekit_engine, candles(3))
        data = ticker_data("a", indicators=[{"name": "rsi", "params": {"length": 14}}])
        data["analyzers"] = [{"type": "threshold", "params": {"source": "rsj", "below": 30}}]
        with pytest.raises(ConfigError, match="unknown indicator reference 'rsj'"):
            tradekit_engine.reload(strategy_config_from_dict(data))
        cache = tradekit_shared.indicator_cache()
        assert cache.users(RSI_14) == {"a"}
        registry = tradekit_engine.factory.get("a").indicator_registry()
        assert registry.value("BTC/USDT", "rsi", 2) is None  # warming up, but still resolvable
        assert cache.keys() == [RSI_14]

    def test_of_an_unknown_id_suggests_the_closest(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        tradekit_factory.create(ticker("alpha"))
        with pytest.raises(StrategyNotFoundError, match="did you mean 'alpha'"):
            tradekit_factory.reload(ticker("alpah"))


class _Silent:
    """An analyzer that never fires."""

    name = "silent"
    references: tuple[str, ...] = ()

    def analyze(self, view: object) -> None:
        return None


class TestOverriding:
    def test_unload_at_the_end_cancels_pending_orders_on_the_overriding_exchange(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        fake = FakeExchange(hold=True)
        with tradekit_factory.overriding(ticker("a"), shared_exchange=fake) as container:
            container.trading_orchestrator().on_candle(candles(1)[0])
            assert [order.order_id for order in fake.pending_orders("a")] == ["a-1"]
        assert fake.pending_orders("a") == ()
        assert [order.order_id for order in fake.cancelled] == ["a-1"]

    def test_an_order_held_by_the_fake_exchange_survives_a_snapshot_and_restore(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        before, after = FakeExchange(hold=True), FakeExchange(hold=True)
        with tradekit_factory.overriding(ticker("a"), shared_exchange=before) as container:
            container.trading_orchestrator().on_candle(candles(1)[0])
            state = container.trading_orchestrator().snapshot()
        with tradekit_factory.overriding(ticker("a"), shared_exchange=after) as container:
            container.trading_orchestrator().restore(state)
            assert list(after.pending_orders("a")) == before.cancelled != []

    def test_a_strategy_provider_is_overridden_by_its_name_for_that_strategy_only(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        tradekit_factory.create(ticker("loud"))
        with tradekit_factory.overriding(
            ticker("quiet"), analyzer_registry=AnalyzerRegistry([(_Silent(), 1.0)])
        ) as quiet:
            for candle in candles(4):
                quiet.trading_orchestrator().on_candle(candle)
                tradekit_factory.get("loud").trading_orchestrator().on_candle(candle)
            assert quiet.position_lifecycle().trades == []
            assert quiet.publisher().next_seq == 1
        loud = tradekit_factory.get("loud").position_lifecycle()
        assert [trade.exit_reason for trade in loud.trades] == ["signal_exit"]

    def test_an_unknown_provider_name_is_refused_with_the_known_names(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        with (
            pytest.raises(StrategyConflictError, match="no provider named 'exchange'"),
            tradekit_factory.overriding(ticker("a"), exchange=FakeExchange()),
        ):
            pass
        assert "a" not in tradekit_factory

    def test_refuses_an_id_already_loaded(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        tradekit_factory.create(ticker("a"))
        with (
            pytest.raises(StrategyConflictError, match="already loaded; unload it first"),
            tradekit_factory.overriding(ticker("a"), shared_exchange=FakeExchange()),
        ):
            pass


class TestShutdown:
    def test_unloads_every_strategy_most_recent_first(
        self, tradekit_factory: TradingOrchestratorFactory, tradekit_events: EventRecorder
    ) -> None:
        for strategy_id in ("a", "b", "c"):
            tradekit_factory.create(ticker(strategy_id))
        tradekit_factory.shutdown()
        unloaded = tradekit_events.of_type(StrategyUnloaded)
        assert [(event.strategy_id, event.reason) for event in unloaded] == [
            ("c", "shutdown"),
            ("b", "shutdown"),
            ("a", "shutdown"),
        ]
        assert len(tradekit_factory) == 0
        assert sorted(tradekit_factory.snapshots) == ["a", "b", "c"]
