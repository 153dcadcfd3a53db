"""``StrategyContainer``: one strategy's services, built over the shared container.

Shared parts arrive through ``shared`` (a ``DependenciesContainer``); the
frozen ``StrategyConfig`` through ``config``. Nothing here uses wiring or
``providers.Configuration``. Resources the strategy owns are ``StrategyResource``
providers, so ``container.shutdown_resources(StrategyResource)`` releases them
without touching the shared providers. The configuration checks made while a
container is built are the functions ``tradekit.validation`` runs without
building one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from dependency_injector import containers, providers

from tradekit.config.strategy import StrategyConfig
from tradekit.logs import strategy_logger
from tradekit.orchestrators.entry import EntryOrchestrator
from tradekit.orchestrators.exit import ExitOrchestrator
from tradekit.orchestrators.filters import FilterOrchestrator, registry_indicators
from tradekit.orchestrators.mtf_gate import MTFSnapshotGate
from tradekit.orchestrators.trading import TradingOrchestrator
from tradekit.protocols import Exchange
from tradekit.services.bus import StrategyPublisher
from tradekit.services.execution.actions import ActionQueue, action_handlers
from tradekit.services.indicators.cache import IndicatorCache, IndicatorRegistry
from tradekit.services.positions.lifecycle import PositionLifecycleService
from tradekit.services.risk.limits import ExposureGuard, StrategyRiskManager
from tradekit.services.signals.analyzers import AnalyzerRegistry, build_analyzers


class StrategyResource(providers.Resource):  # type: ignore[type-arg]
    """Marks a resource owned by one strategy: shut down with it, never with the shared ones."""


def _strategy_id(config: StrategyConfig) -> str:
    return config.strategy_id


def _filter_orchestrator(config: StrategyConfig) -> FilterOrchestrator:
    return FilterOrchestrator(config.filters)


def _mtf_gate(config: StrategyConfig) -> MTFSnapshotGate:
    return MTFSnapshotGate(config.mtf, config.timeframe)


def _exit_orchestrator(
    config: StrategyConfig, positions: PositionLifecycleService, queue: ActionQueue
) -> ExitOrchestrator:
    return ExitOrchestrator(config.exit, positions, queue)


def _indicator_registry(
    config: StrategyConfig, filters: FilterOrchestrator, cache: IndicatorCache
) -> Iterator[IndicatorRegistry]:
    registry = IndicatorRegistry(
        config.strategy_id,
        registry_indicators(config, filters),
        config.symbols,
        config.timeframe,
        cache,
    )
    yield registry
    registry.release()


def _analyzer_registry(config: StrategyConfig, indicators: IndicatorRegistry) -> AnalyzerRegistry:
    analyzers = build_analyzers(config.analyzers, config.strategy_id)
    for index, (analyzer, _) in enumerate(analyzers):
        indicators.check_references(analyzer.references, f"analyzers[{index}].params")
    return AnalyzerRegistry(analyzers)


def _position_exposure(positions: PositionLifecycleService) -> Callable[[str], float]:
    def exposure(symbol: str) -> float:
        position = positions.position(symbol)
        return 0.0 if position is None else position.quantity * position.avg_entry_price

    return exposure


def _risk_manager(
    config: StrategyConfig,
    publisher: StrategyPublisher,
    guard: ExposureGuard,
    positions: PositionLifecycleService,
) -> Iterator[StrategyRiskManager]:
    manager = StrategyRiskManager(
        config.strategy_id,
        config,
        publisher,
        guard,
        equity=positions.equity,
        open_count=positions.open_or_opening_count,
        exposure=_position_exposure(positions),
    )
    yield manager
    manager.release()


def _action_queue(
    publisher: StrategyPublisher, positions: PositionLifecycleService, exchange: Exchange
) -> Iterator[ActionQueue]:
    queue = ActionQueue(publisher, action_handlers(publisher.strategy_id, positions, exchange))
    yield queue
    queue.flush(None)


class StrategyContainer(containers.DeclarativeContainer):
    """One strategy's services; one per strategy, discarded on unload.

    Build it with ``StrategyContainer(shared=shared_container, config=providers.Object(config))``.
    """

    shared = providers.DependenciesContainer()
    config = providers.Dependency(instance_of=StrategyConfig)

    strategy_id = providers.Callable(_strategy_id, config)
    logger = providers.Singleton(strategy_logger, strategy_id)
    publisher = providers.Singleton(StrategyPublisher, shared.event_bus, strategy_id)

    filter_orchestrator = providers.Singleton(_filter_orchestrator, config)
    indicator_registry = StrategyResource(
        _indicator_registry, config, filter_orchestrator, shared.indicator_cache
    )
    analyzer_registry = providers.Singleton(_analyzer_registry, config, indicator_registry)
    mtf_gate = providers.Singleton(MTFSnapshotGate, config.provided.mtf, config.provided.timeframe)

    position_lifecycle = providers.Singleton(
        PositionLifecycleService, strategy_id, config, publisher
    )
    risk_manager = StrategyResource(
        _risk_manager, config, publisher, shared.exposure_guard, position_lifecycle
    )
    action_queue = StrategyResource(_action_queue, publisher, position_lifecycle, shared.exchange)

    entry_orchestrator = providers.Singleton(
        EntryOrchestrator,
        config,
        position_lifecycle,
        risk_manager,
        filter_orchestrator,
        mtf_gate,
        action_queue,
    )
    exit_orchestrator = providers.Singleton(
        _exit_orchestrator, config, position_lifecycle, action_queue
    )
    trading_orchestrator = providers.Singleton(
        TradingOrchestrator,
        config,
        publisher,
        shared.candle_provider,
        indicator_registry,
        analyzer_registry,
        mtf_gate,
        position_lifecycle,
        risk_manager,
        shared.exchange,
        action_queue,
        entry_orchestrator,
        exit_orchestrator,
    )
