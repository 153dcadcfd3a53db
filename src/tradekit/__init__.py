"""tradekit: run many isolated trading strategies side by side over shared market data.

Everything listed in ``__all__`` is the public API; anything else is internal.
"""

from typing import TYPE_CHECKING

from tradekit.config import (
    AnalyzerConfig,
    DCAConfig,
    EntryConfig,
    ExitConfig,
    FiltersConfig,
    IndicatorConfig,
    LoadedStrategy,
    MTFConfig,
    SizingConfig,
    StrategyConfig,
    StrategyRiskConfig,
    TradekitSettings,
    deep_merge,
    load_settings,
    load_strategies,
    load_strategy,
    load_strategy_config,
    load_strategy_configs,
)
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
)
from tradekit.errors import (
    ActionError,
    ConfigError,
    ConfigProblem,
    DataError,
    EventError,
    ExchangeError,
    LiveOrdersDisabledError,
    PositionError,
    RiskError,
    StorageError,
    StrategyConflictError,
    StrategyError,
    StrategyNotFoundError,
    TradekitError,
)
from tradekit.events import (
    ActionExecuted,
    ActionFailed,
    Event,
    OrderCancelled,
    OrderFilled,
    PositionClosed,
    PositionIncreased,
    PositionOpened,
    PositionReduced,
    RiskRejected,
    SignalGenerated,
    StopLossUpdated,
    StrategyControlled,
    StrategyFailed,
    StrategyLoaded,
    StrategyQuarantined,
    StrategyReloaded,
    StrategyResumed,
    StrategyUnloaded,
    TrailingActivated,
    event_from_dict,
)
from tradekit.exit_reasons import ExitReason
from tradekit.ids import ClientOrderId, PositionId
from tradekit.logs import configure_logging, configure_logging_from, strategy_logger
from tradekit.protocols import EventBus, Subscription
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher
from tradekit.strategy_state import StrategyState

if TYPE_CHECKING:
    from tradekit.containers.factory import TradingOrchestratorFactory
    from tradekit.containers.handle import StrategyHandle
    from tradekit.containers.shared import SharedContainer
    from tradekit.containers.strategy import StrategyContainer, StrategyResource
    from tradekit.runtime import RunMode, Runtime, bootstrap
    from tradekit.runtime.engine import Engine
    from tradekit.runtime.live import run_live
    from tradekit.services.journal.store import SqlJournal

__version__ = "0.1.0"

# Heavier parts (dependency-injector containers, pandas, the database) load on first use,
# so ``import tradekit`` stays quick for configuration work and for tests.
_LAZY = {
    "SharedContainer": "tradekit.containers.shared",
    "StrategyContainer": "tradekit.containers.strategy",
    "StrategyResource": "tradekit.containers.strategy",
    "TradingOrchestratorFactory": "tradekit.containers.factory",
    "StrategyHandle": "tradekit.containers.handle",
    "Engine": "tradekit.runtime.engine",
    "backtest": "tradekit.runtime.backtest",
    "BacktestResult": "tradekit.runtime.backtest",
    "run_live": "tradekit.runtime.live",
    "bootstrap": "tradekit.runtime",
    "RunMode": "tradekit.runtime",
    "Runtime": "tradekit.runtime",
    "SqlJournal": "tradekit.services.journal.store",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tradekit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


__all__ = [
    "Action",
    "ActionError",
    "ActionExecuted",
    "ActionFailed",
    "ActivateTrailing",
    "AddToPosition",
    "AnalyzerConfig",
    "BacktestResult",
    "Candle",
    "ClientOrderId",
    "ClosePercent",
    "ConfigError",
    "ConfigProblem",
    "DCAConfig",
    "DataError",
    "Direction",
    "Engine",
    "EntryConfig",
    "Event",
    "EventBus",
    "EventError",
    "ExchangeError",
    "ExitConfig",
    "ExitReason",
    "Fill",
    "FiltersConfig",
    "InMemoryEventBus",
    "IndicatorConfig",
    "LiveOrdersDisabledError",
    "LoadedStrategy",
    "MTFConfig",
    "OpenPosition",
    "Order",
    "OrderCancelled",
    "OrderFilled",
    "OrderSide",
    "OrderType",
    "Position",
    "PositionClosed",
    "PositionError",
    "PositionId",
    "PositionIncreased",
    "PositionOpened",
    "PositionReduced",
    "RiskError",
    "RiskRejected",
    "RunMode",
    "Runtime",
    "SharedContainer",
    "Side",
    "Signal",
    "SignalGenerated",
    "SizingConfig",
    "SqlJournal",
    "StopLossUpdated",
    "StorageError",
    "StrategyConfig",
    "StrategyConflictError",
    "StrategyContainer",
    "StrategyControlled",
    "StrategyError",
    "StrategyFailed",
    "StrategyHandle",
    "StrategyLoaded",
    "StrategyNotFoundError",
    "StrategyPublisher",
    "StrategyQuarantined",
    "StrategyReloaded",
    "StrategyResource",
    "StrategyResumed",
    "StrategyRiskConfig",
    "StrategyState",
    "StrategyUnloaded",
    "Subscription",
    "TradekitError",
    "TradekitSettings",
    "TradingOrchestratorFactory",
    "TrailingActivated",
    "UpdateStopLoss",
    "__version__",
    "backtest",
    "bootstrap",
    "configure_logging",
    "configure_logging_from",
    "deep_merge",
    "event_from_dict",
    "load_settings",
    "load_strategies",
    "load_strategy",
    "load_strategy_config",
    "load_strategy_configs",
    "run_live",
    "strategy_logger",
]
