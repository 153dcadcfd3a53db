"""The dependency-injection containers: one shared per process, one per strategy."""

from tradekit.containers.shared import SharedContainer
from tradekit.containers.strategy import StrategyContainer, StrategyResource

__all__ = ["SharedContainer", "StrategyContainer", "StrategyResource"]
