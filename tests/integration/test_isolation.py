"""Isolation between strategy containers over one shared container.

Per-strategy services are never shared, shared ones always are; configs,
indicators, events, positions and overrides of one strategy never reach another.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from dependency_injector import providers
from ticker_strategies import ticker

from tradekit.config.loading import load_strategy_config
from tradekit.config.strategy import StrategyConfig
from tradekit.containers import SharedContainer, StrategyContainer, StrategyResource
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.domain import Candle
from tradekit.events import OrderFilled, PositionOpened
from tradekit.runtime.engine import Engine
from tradekit.services.exchange import PaperExchange
from tradekit.services.indicators.cache import IndicatorKey
from tradekit.services.positions.state import Trade
from tradekit.testing import (
    EventRecorder,
    FakeCandleSource,
    FakeExchange,
    settings_from_dict,
    shared_container_from_dict,
    strategy_config_from_dict,
)

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ROOT / "strategies"
NO_FEES = {"exchange": {"kind": "paper", "fee_bps": 0.0, "slippage_bps": 0.0}}

PER_STRATEGY_PROVIDERS = (
    "logger",
    "publisher",
    "filter_orchestrator",
    "indicator_registry",
    "analyzer_registry",
    "mtf_gate",
    "position_lifecycle",
    "risk_manager",
    "action_queue",
    "entry_orchestrator",
    "exit_orchestrator",
    "trading_orchestrator",
)
SHARED_PROVIDERS = (
    "settings",
    "logger",
    "clock",
    "event_bus",
    "candle_provider",
    "indicator_cache",
    "exchange",
    "exposure_guard",
)


def rsi(strategy_id: str, length: int = 14, symbol: str = "BTC/USDT") -> StrategyConfig:
    return strategy_config_from_dict(
        {
            "strategy_id": strategy_id,
            "symbols": [symbol],
            "timeframe": "1h",
            "indicators": [{"name": "rsi", "params": {"length": length}}],
            "analyzers": [
                {"type": "threshold", "params": {"source": "rsi", "below": 40, "above": 60}}
            ],
            "exit": {"stop_loss_pct": 3, "exit_on_opposite_signal": True},
        }
    )


def bundled() -> list[StrategyConfig]:
    """The bundled strategies merged over no defaults."""
    settings = settings_from_dict(NO_FEES)
    return [load_strategy_config(path, settings) for path in sorted(STRATEGIES.glob("*.json"))]


def feed(
    factory: TradingOrchestratorFactory, ids: Sequence[str], candles: Sequence[Candle]
) -> None:
    """Run each candle through the named strategies in order, as the engine would."""
    orchestrators = [factory.get(strategy_id).trading_orchestrator() for strategy_id in ids]
    for candle in candles:
        for orchestrator in orchestrators:
            if candle.symbol in orchestrator.config.symbols:
                orchestrator.on_candle(candle)


def run_alone(config: StrategyConfig, candles: Sequence[Candle]) -> tuple[list[Trade], float]:
    """Trades and final equity of ``config`` run by itself in a fresh shared container."""
    factory = TradingOrchestratorFactory(shared_container_from_dict(NO_FEES))
    factory.create(config)
    feed(factory, [config.strategy_id], candles)
    positions = factory.get(config.strategy_id).position_lifecycle()
    result = list(positions.trades), positions.equity()
    factory.shutdown()
    return result


class TestContainerProviders:
    def test_per_strategy_singletons_are_distinct_objects_across_containers(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        first = tradekit_factory.create(ticker("first"))
        second = tradekit_factory.create(ticker("second"))
        for name in PER_STRATEGY_PROVIDERS:
            mine, theirs = getattr(first, name)(), getattr(second, name)()
            assert mine is not theirs, name
            assert getattr(first, name)() is mine, f"{name} is not a singleton"

    def test_shared_providers_resolve_to_the_same_objects_in_every_container(
        self, tradekit_shared: SharedContainer, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        first = tradekit_factory.create(ticker("first"))
        second = tradekit_factory.create(ticker("second"))
        for name in SHARED_PROVIDERS:
            expected = getattr(tradekit_shared, name)()
            assert getattr(first.shared, name)() is expected, name
            assert getattr(second.shared, name)() is expected, name

    def test_each_container_holds_its_own_config_and_id(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        first_config, second_config = ticker("first"), ticker("second", every=4)
        first = tradekit_factory.create(first_config)
        second = tradekit_factory.create(second_config)
        assert first.config() is first_config
        assert second.config() is second_config
        assert (first.strategy_id(), second.strategy_id()) == ("first", "second")
        assert first.publisher().strategy_id == "first"
        assert second.position_lifecycle().strategy_id == "second"


class TestMergedConfig:
    def test_container_holds_the_strategy_file_merged_over_strategy_defaults(self) -> None:
        base = json.loads((ROOT / "config.json").read_text(encoding="utf-8"))
        settings = settings_from_dict(base)
        config = load_strategy_config(STRATEGIES / "rsi-btc-1h.json", settings)
        factory = TradingOrchestratorFactory(shared_container_from_dict(base))
        container = factory.create(config)

        held: StrategyConfig = container.config()
        own = json.loads((STRATEGIES / "rsi-btc-1h.json").read_text(encoding="utf-8"))
        assert held == strategy_config_from_dict(own, base["strategy_defaults"])
        assert held.exit.stop_loss_pct == 8  # the file wins over the default 5
        assert held.exit.min_profit_pct_for_signal_exit == 0.5  # only in the file
        assert held.entry.sizing.mode == "percent_equity"  # only in the defaults
        assert held.entry.sizing.equity_pct == 20
        assert held.risk.daily_loss_limit_pct == 5
        assert held.capital == 10_000
        factory.shutdown()

    def test_services_are_built_from_the_merged_config(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        defaults = {"capital": 5_000, "entry": {"sizing": {"mode": "percent_equity"}}}
        config = strategy_config_from_dict(
            {
                "strategy_id": "merged",
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "analyzers": [{"type": "time_interval", "params": {"every_bars": 2}}],
                "entry": {"sizing": {"equity_pct": 10}},
            },
            defaults,
        )
        container = tradekit_factory.create(config)
        assert container.position_lifecycle().cash == 5_000
        assert container.entry_orchestrator().entry_amount() == 500.0


class TestIndicatorLoading:
    def test_registry_holds_exactly_the_configured_and_filter_required_indicators(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        expected = {
            "bbands-eth-1h": ("bbands", "atr", "filter_atr"),
            "dca-weekly-eth-1d": (),
            "ema-cross-sol-15m": ("ema_fast", "ema_slow"),
            "macd-dca-btc-4h": ("macd",),
            "rsi-btc-1h": ("rsi",),
        }
        for config in bundled():
            registry = tradekit_factory.create(config).indicator_registry()
            assert registry.keys() == expected[config.strategy_id]

    def test_shared_cache_holds_exactly_the_union_of_every_strategys_indicators(
        self, tradekit_shared: SharedContainer, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        for config in bundled():
            tradekit_factory.create(config)
        tradekit_factory.create(rsi("rsi-copy"))  # same key as rsi-btc-1h: no new entry
        length_14 = (("length", 14),)
        expected = {
            IndicatorKey("ETH/USDT", "1h", "bbands", (("length", 20), ("std", 2.0))),
            IndicatorKey("ETH/USDT", "1h", "atr", length_14),  # the strategy's and its filter's
            IndicatorKey("SOL/USDT", "15m", "ema", (("length", 9),)),
            IndicatorKey("SOL/USDT", "15m", "ema", (("length", 21),)),
            IndicatorKey("BTC/USDT", "15m", "ema", (("length", 9),)),
            IndicatorKey("BTC/USDT", "15m", "ema", (("length", 21),)),
            IndicatorKey("BTC/USDT", "4h", "macd", (("fast", 12), ("slow", 26), ("signal", 9))),
            IndicatorKey("BTC/USDT", "1h", "rsi", length_14),
        }
        cache = tradekit_shared.indicator_cache()
        assert set(cache.keys()) == expected
        assert len(cache) == 8
        key = IndicatorKey("BTC/USDT", "1h", "rsi", length_14)
        assert cache.users(key) == {"rsi-btc-1h", "rsi-copy"}

    def test_one_computation_per_candle_serves_every_strategy_sharing_an_indicator(
        self, tradekit_shared: SharedContainer, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        ids = [f"rsi-{number}" for number in range(5)]
        for strategy_id in ids:
            tradekit_factory.create(rsi(strategy_id))
        candles = list(FakeCandleSource.generated("BTC/USDT", "1h", 60, seed=3).stream())
        feed(tradekit_factory, ids, candles)
        assert tradekit_shared.indicator_cache().computations == 60

    def test_distinct_parameters_cost_one_computation_each(
        self, tradekit_shared: SharedContainer, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        for strategy_id, length in (("rsi-a", 10), ("rsi-b", 14), ("rsi-c", 14)):
            tradekit_factory.create(rsi(strategy_id, length))
        candles = list(FakeCandleSource.generated("BTC/USDT", "1h", 60, seed=3).stream())
        feed(tradekit_factory, ["rsi-a", "rsi-b", "rsi-c"], candles)
        assert tradekit_shared.indicator_cache().computations == 120

    def test_a_bulk_loaded_series_is_computed_in_one_call_for_all_strategies(
        self, tradekit_shared: SharedContainer, tradekit_engine: Engine
    ) -> None:
        source = FakeCandleSource.generated("BTC/USDT", "1h", 300, seed=3)
        replay = source.preload(tradekit_shared.candle_provider())
        tradekit_engine.load([rsi(f"rsi-{number}") for number in range(10)])
        for candle, bar in replay:
            tradekit_engine.on_bar(candle, bar)
        assert tradekit_shared.indicator_cache().backend_calls == 1


class _BarOnly:
    """The part of a bar view the time-interval analyzers read."""

    def __init__(self, bar: int) -> None:
        self.bar = bar
        self.symbol = "BTC/USDT"


def weighted(strategy_id: str, heavy: float, light: float, min_score: float) -> StrategyConfig:
    """Two long analyzers: ``heavy`` fires on even bars, ``light`` on odd bars."""
    return strategy_config_from_dict(
        {
            "strategy_id": strategy_id,
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "analyzers": [
                {
                    "type": "time_interval",
                    "weight": heavy,
                    "params": {"every_bars": 2, "name": "even"},
                },
                {
                    "type": "time_interval",
                    "weight": light,
                    "params": {"every_bars": 2, "offset": 1, "name": "odd"},
                },
            ],
            "entry": {"min_score": min_score},
            "exit": {"stop_loss_pct": 50},
        }
    )


class TestAnalyzerWeights:
    def test_scores_are_the_weighted_share_of_analyzers_that_fired(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        registry = tradekit_factory.create(weighted("w", 3, 1, 0.5)).analyzer_registry()
        even, odd = registry.evaluate(_BarOnly(4)), registry.evaluate(_BarOnly(5))
        assert (even.long, even.short, even.exit) == (0.75, 0.0, 0.0)
        assert (odd.long, odd.short, odd.exit) == (0.25, 0.0, 0.0)
        assert [signal.source for signal in even.signals] == ["even"]

    @pytest.mark.parametrize(
        ("heavy", "light", "decision_bar"),
        [(3.0, 1.0, 0), (1.0, 3.0, 1)],
    )
    def test_entry_follows_the_heavier_analyzer(
        self,
        tradekit_factory: TradingOrchestratorFactory,
        heavy: float,
        light: float,
        decision_bar: int,
    ) -> None:
        candles = list(FakeCandleSource.from_closes([100.0] * 4).stream())
        exchange = FakeExchange()
        with tradekit_factory.overriding(
            weighted("w", heavy, light, 0.7), shared_exchange=exchange
        ) as container:
            orchestrator = container.trading_orchestrator()
            for candle in candles:
                orchestrator.on_candle(candle)
        assert [(order.reason, order.created_at) for order in exchange.orders] == [
            ("long score 0.75", candles[decision_bar].close_ts)
        ]

    def test_no_entry_when_the_heaviest_share_is_below_min_score(
        self, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        exchange = FakeExchange()
        with tradekit_factory.overriding(
            weighted("w", 3, 1, 0.8), shared_exchange=exchange
        ) as container:
            orchestrator = container.trading_orchestrator()
            for candle in FakeCandleSource.from_closes([100.0] * 4).stream():
                orchestrator.on_candle(candle)
        assert exchange.orders == []


@pytest.fixture
def three_strategies_run(
    tradekit_shared: SharedContainer, tradekit_engine: Engine, tradekit_events: EventRecorder
) -> tuple[Engine, EventRecorder]:
    """rsi on BTC, bbands on ETH and a ticker on both, over 400 generated 1h candles each."""
    source = FakeCandleSource.generated(["BTC/USDT", "ETH/USDT"], "1h", 400, seed=11)
    replay = source.preload(tradekit_shared.candle_provider())
    configs = [
        rsi("rsi-btc"),
        next(config for config in bundled() if config.strategy_id == "bbands-eth-1h"),
        ticker("ticker-both", symbols=("BTC/USDT", "ETH/USDT")),
    ]
    tradekit_engine.load(configs)
    for candle, bar in replay:
        tradekit_engine.on_bar(candle, bar)
    return tradekit_engine, tradekit_events


class TestEventTagging:
    IDS = ("rsi-btc", "bbands-eth-1h", "ticker-both")

    def test_every_event_carries_a_loaded_strategys_id(
        self, three_strategies_run: tuple[Engine, EventRecorder]
    ) -> None:
        _, recorder = three_strategies_run
        assert {event.strategy_id for event in recorder.events} == set(self.IDS)

    def test_seq_is_gap_free_and_increasing_per_strategy(
        self, three_strategies_run: tuple[Engine, EventRecorder]
    ) -> None:
        _, recorder = three_strategies_run
        for strategy_id in self.IDS:
            seqs = [event.seq for event in recorder.for_strategy(strategy_id)]
            assert seqs == list(range(1, len(seqs) + 1)), strategy_id

    def test_orders_and_positions_in_events_belong_to_the_emitting_strategy(
        self, three_strategies_run: tuple[Engine, EventRecorder]
    ) -> None:
        _, recorder = three_strategies_run
        opened = recorder.of_type(PositionOpened)
        fills = recorder.of_type(OrderFilled)
        assert {event.strategy_id for event in opened} == set(self.IDS)
        assert {fill.strategy_id for fill in fills} == set(self.IDS)
        for event in opened:
            assert event.position_id.startswith(f"{event.strategy_id}-pos-")
        for fill in fills:
            assert fill.order_id.startswith(f"{fill.strategy_id}-")
            assert fill.order_id.removeprefix(f"{fill.strategy_id}-").isdigit()

    def test_listener_filtered_by_strategy_sees_only_that_strategys_events(
        self, tradekit_shared: SharedContainer, tradekit_engine: Engine
    ) -> None:
        bus = tradekit_shared.event_bus()
        with (
            EventRecorder(bus) as everything,
            EventRecorder(bus, strategy_id="rsi-btc") as only_rsi,
            EventRecorder(bus, OrderFilled, "ticker-both") as ticker_fills,
        ):
            source = FakeCandleSource.generated("BTC/USDT", "1h", 300, seed=11)
            replay = source.preload(tradekit_shared.candle_provider())
            tradekit_engine.load([rsi("rsi-btc"), ticker("ticker-both")])
            for candle, bar in replay:
                tradekit_engine.on_bar(candle, bar)
            assert only_rsi.events == everything.for_strategy("rsi-btc")
            assert ticker_fills.events == [
                event
                for event in everything.of_type(OrderFilled)
                if event.strategy_id == "ticker-both"
            ]
            assert len(ticker_fills) > 0
            assert len(only_rsi.of_type(OrderFilled)) > 0


class TestPositionsOnOneSymbol:
    def test_two_strategies_on_one_symbol_keep_their_own_positions_and_pnl(self) -> None:
        first, second = ticker("first", every=3), ticker("second", every=5, exit_offset=3)
        candles = list(FakeCandleSource.generated("BTC/USDT", "1h", 200, seed=5).stream())
        factory = TradingOrchestratorFactory(shared_container_from_dict(NO_FEES))
        factory.create(first)
        factory.create(second)
        feed(factory, ["first", "second"], candles)

        for config in (first, second):
            positions = factory.get(config.strategy_id).position_lifecycle()
            trades, equity = run_alone(config, candles)
            assert list(positions.trades) == trades
            assert positions.equity() == equity
            assert {trade.position_id.split("-pos-")[0] for trade in trades} == {config.strategy_id}
        first_trades = factory.get("first").position_lifecycle().trades
        second_trades = factory.get("second").position_lifecycle().trades
        assert len(first_trades) != len(second_trades)
        factory.shutdown()

    def test_exposure_is_recorded_per_strategy_in_the_shared_guard(
        self, tradekit_shared: SharedContainer, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        tradekit_factory.create(ticker("first", every=3))
        tradekit_factory.create(ticker("second", every=4, exit_offset=3))
        candles = list(FakeCandleSource.from_closes([100.0, 102.0, 104.0]).stream())
        feed(tradekit_factory, ["first", "second"], candles)
        guard = tradekit_shared.exposure_guard()
        for strategy_id in ("first", "second"):
            position = tradekit_factory.get(strategy_id).position_lifecycle().position("BTC/USDT")
            assert position is not None
            assert guard.exposure(strategy_id, "BTC/USDT") == (
                position.quantity * position.avg_entry_price
            )


class TestOverrides:
    def test_overriding_one_strategys_exchange_leaves_the_others_on_the_shared_one(
        self, tradekit_shared: SharedContainer, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        paper = tradekit_shared.exchange()
        fake = FakeExchange()
        other = tradekit_factory.create(ticker("other"))
        candles = list(FakeCandleSource.from_closes([100.0, 101.0, 102.0]).stream())
        with tradekit_factory.overriding(ticker("faked"), shared_exchange=fake) as faked:
            assert faked.shared.exchange() is fake
            assert other.shared.exchange() is paper
            assert tradekit_shared.exchange() is paper
            feed(tradekit_factory, ["faked", "other"], candles)
        assert {order.strategy_id for order in fake.orders} == {"faked"}
        assert isinstance(paper, PaperExchange)
        assert [order.order_id for order in paper.pending_orders("other")] == ["other-2"]
        assert paper.pending_orders("faked") == ()
        assert tradekit_shared.exchange() is paper

    def test_override_ends_with_the_with_block(
        self, tradekit_shared: SharedContainer, tradekit_factory: TradingOrchestratorFactory
    ) -> None:
        config = ticker("faked")
        with tradekit_factory.overriding(config, shared_exchange=FakeExchange()):
            pass
        assert "faked" not in tradekit_factory
        again = tradekit_factory.create(config)
        assert again.shared.exchange() is tradekit_shared.exchange()

    def test_raw_override_on_a_fresh_strategy_container_reaches_every_service(
        self, tradekit_shared: SharedContainer
    ) -> None:
        config = ticker("raw")
        container = StrategyContainer(shared=tradekit_shared, config=providers.Object(config))
        fake = FakeExchange()
        candles = list(FakeCandleSource.from_closes([100.0, 101.0, 102.0, 103.0]).stream())
        with container.shared.exchange.override(fake):
            orchestrator = container.trading_orchestrator()
            for candle in candles:
                orchestrator.on_candle(candle)
            assert tradekit_shared.exchange() is not fake
        assert [(order.order_id, order.side.value) for order in fake.orders] == [
            ("raw-1", "buy"),
            ("raw-2", "sell"),
            ("raw-3", "buy"),
        ]
        assert [fill.price for fill in fake.fills] == [100.0, 102.0, 103.0]
        assert container.position_lifecycle().realized_pnl == 2.0
        paper = tradekit_shared.exchange()
        assert isinstance(paper, PaperExchange)
        assert paper.pending_orders("raw") == ()
        container.shutdown_resources(StrategyResource)
