"""``StrategyHandle``: the typed parts of one strategy that the runtime layer works with.

The factory builds one right after it builds a strategy's container, so the
engine, the journal and the reports read typed attributes instead of resolving
providers (which return ``Any``) on every use.
"""

from __future__ import annotations

from dataclasses import dataclass

from dependency_injector import containers

from tradekit.config.strategy import StrategyConfig
from tradekit.orchestrators.entry import EntryOrchestrator
from tradekit.orchestrators.exit import ExitOrchestrator
from tradekit.orchestrators.trading import TradingOrchestrator
from tradekit.services.bus import StrategyPublisher
from tradekit.services.execution.actions import ActionQueue
from tradekit.services.positions.lifecycle import PositionLifecycleService
from tradekit.services.risk.limits import StrategyRiskManager


@dataclass(frozen=True, slots=True)
class StrategyHandle:
    """One loaded strategy's services, resolved once; one per strategy container.

    It lives as long as the container it was taken from: a reload builds a new
    container and a new handle, an unload discards both.
    """

    strategy_id: str
    config: StrategyConfig
    publisher: StrategyPublisher
    trading_orchestrator: TradingOrchestrator
    position_lifecycle: PositionLifecycleService
    risk_manager: StrategyRiskManager
    action_queue: ActionQueue
    entry_orchestrator: EntryOrchestrator
    exit_orchestrator: ExitOrchestrator

    @classmethod
    def of(cls, container: containers.DynamicContainer) -> StrategyHandle:
        """The handle of a built ``StrategyContainer`` (its singletons already resolved)."""
        config: StrategyConfig = container.config()
        return cls(
            strategy_id=config.strategy_id,
            config=config,
            publisher=container.publisher(),
            trading_orchestrator=container.trading_orchestrator(),
            position_lifecycle=container.position_lifecycle(),
            risk_manager=container.risk_manager(),
            action_queue=container.action_queue(),
            entry_orchestrator=container.entry_orchestrator(),
            exit_orchestrator=container.exit_orchestrator(),
        )
