"""tradekit: run many isolated trading strategies side by side over shared market data.

Everything listed in ``__all__`` is the public API; anything else is internal.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from tradekit.containers.factory import TradingOrchestratorFactory
    from tradekit.containers.handle import StrategyHandle
    from tradekit.containers.shared import SharedContainer
    from tradekit.containers.strategy import StrategyContainer, StrategyResource
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
    from tradekit.runtime import RunMode, Runtime, bootstrap
    from tradekit.runtime.backtest import BacktestResult, backtest
    from tradekit.runtime.engine import Engine
    from tradekit.runtime.live import run_live
    from tradekit.services.bus import InMemoryEventBus, StrategyPublisher
    from tradekit.services.journal.store import SqlJournal
    from tradekit.strategy_state import StrategyState

__version__ = "0.1.0"

# Every public name is imported from its module on first use, so ``import tradekit``
# (and ``tradekit --help``, which needs only the version) loads no third-party library:
# pydantic, loguru, pandas, the database and the containers come with the first name
# that needs them.
_NAMES_BY_MODULE: dict[str, tuple[str, ...]] = {
    "tradekit.config": (
        "AnalyzerConfig",
        "DCAConfig",
        "EntryConfig",
        "ExitConfig",
        "FiltersConfig",
        "IndicatorConfig",
        "LoadedStrategy",
        "MTFConfig",
        "SizingConfig",
        "StrategyConfig",
        "StrategyRiskConfig",
        "TradekitSettings",
        "deep_merge",
        "load_settings",
        "load_strategies",
        "load_strategy",
        "load_strategy_config",
        "load_strategy_configs",
    ),
    "tradekit.containers.factory": ("TradingOrchestratorFactory",),
    "tradekit.containers.handle": ("StrategyHandle",),
    "tradekit.containers.shared": ("SharedContainer",),
    "tradekit.containers.strategy": ("StrategyContainer", "StrategyResource"),
    "tradekit.domain": (
        "Action",
        "ActivateTrailing",
        "AddToPosition",
        "Candle",
        "ClosePercent",
        "Direction",
        "Fill",
        "OpenPosition",
        "Order",
        "OrderSide",
        "OrderType",
        "Position",
        "Side",
        "Signal",
        "UpdateStopLoss",
    ),
    "tradekit.errors": (
        "ActionError",
        "ConfigError",
        "ConfigProblem",
        "DataError",
        "EventError",
        "ExchangeError",
        "LiveOrdersDisabledError",
        "PositionError",
        "RiskError",
        "StorageError",
        "StrategyConflictError",
        "StrategyError",
        "StrategyNotFoundError",
        "TradekitError",
    ),
    "tradekit.events": (
        "ActionExecuted",
        "ActionFailed",
        "Event",
        "OrderCancelled",
        "OrderFilled",
        "PositionClosed",
        "PositionIncreased",
        "PositionOpened",
        "PositionReduced",
        "RiskRejected",
        "SignalGenerated",
        "StopLossUpdated",
        "StrategyControlled",
        "StrategyFailed",
        "StrategyLoaded",
        "StrategyQuarantined",
        "StrategyReloaded",
        "StrategyResumed",
        "StrategyUnloaded",
        "TrailingActivated",
        "event_from_dict",
    ),
    "tradekit.exit_reasons": ("ExitReason",),
    "tradekit.ids": ("ClientOrderId", "PositionId"),
    "tradekit.logs": ("configure_logging", "configure_logging_from", "strategy_logger"),
    "tradekit.protocols": ("EventBus", "Subscription"),
    "tradekit.runtime": ("RunMode", "Runtime", "bootstrap"),
    "tradekit.runtime.backtest": ("BacktestResult", "backtest"),
    "tradekit.runtime.engine": ("Engine",),
    "tradekit.runtime.live": ("run_live",),
    "tradekit.services.bus": ("InMemoryEventBus", "StrategyPublisher"),
    "tradekit.services.journal.store": ("SqlJournal",),
    "tradekit.strategy_state": ("StrategyState",),
}
_MODULE_OF = {name: module for module, names in _NAMES_BY_MODULE.items() for name in names}


def __getattr__(name: str) -> object:
    module_name = _MODULE_OF.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tradekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
