"""``EngineViewPublisher`` after the run looked at the registry: only the bots a change was
about are built again."""

from __future__ import annotations

from datetime import UTC, datetime

from tradekit.config import TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.runtime.engine import Engine
from tradekit.runtime.engine_view import EngineView, EngineViewPublisher
from tradekit.runtime.waking import Doorbell
from tradekit.strategy_state import StrategyState
from tradekit.testing import strategy_config_from_dict

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def started(*strategy_ids: str) -> tuple[Engine, EngineViewPublisher]:
    engine = Engine(
        TradingOrchestratorFactory(SharedContainer(settings=TradekitSettings(_env_file=None)))
    )
    engine.load([strategy_config_from_dict(bot_config_data(i)) for i in strategy_ids])
    publisher = EngineViewPublisher("paper", "file")
    publisher.started(engine, lambda: T0, Doorbell())
    return engine, publisher


def bot_config_data(strategy_id: str) -> dict[str, object]:
    return {
        "strategy_id": strategy_id,
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "analyzers": [{"type": "time_interval", "params": {"every_bars": 3}}],
    }


def latest(publisher: EngineViewPublisher) -> EngineView:
    view = publisher.latest()
    assert view is not None
    return view


class TestAfterAPoll:
    def test_the_changed_bot_is_built_again_and_the_others_kept(self) -> None:
        engine, publisher = started("alpha", "beta")
        before = latest(publisher)
        engine.disable("alpha", "asked")
        publisher.polled(["alpha"])
        after = latest(publisher)
        assert after.bots["alpha"].state is StrategyState.DISABLED
        assert after.bots["beta"] is before.bots["beta"]

    def test_a_removed_bot_leaves_the_view(self) -> None:
        engine, publisher = started("alpha", "beta")
        engine.unload("alpha", reason="removed")
        publisher.polled(["alpha"])
        assert set(latest(publisher).bots) == {"beta"}

    def test_a_look_that_changed_nothing_publishes_no_new_view(self) -> None:
        _, publisher = started("alpha")
        before = latest(publisher)
        publisher.polled([])
        assert latest(publisher) is before
