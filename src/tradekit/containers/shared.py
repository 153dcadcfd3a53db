"""``SharedContainer``: what exists once per process, under every strategy container.

Its singletons are thread-safe and meant to be resolved at start-up, before
strategy containers are built from several threads. The exchange is the paper
simulator unless ``tradekit.runtime.bootstrap`` puts another in its place: no
setting can make this container reach a live venue by itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dependency_injector import containers, providers

from tradekit.config.settings import TradekitSettings
from tradekit.logs import log
from tradekit.services.bus import InMemoryEventBus
from tradekit.services.exchange import PaperExchange
from tradekit.services.indicators.cache import IndicatorCache
from tradekit.services.market.candles import CandleStore
from tradekit.services.market.clock import SystemClock
from tradekit.services.risk.limits import ExposureGuard

if TYPE_CHECKING:
    from tradekit.services.journal.store import SqlJournal


def open_journal(database_url: str) -> SqlJournal:
    """The run's journal at ``database_url``, writing promptly (see ``SqlJournal``);
    SQLAlchemy and the tables load only here, so a backtest or a validation, which never
    touch the database, skip them."""
    from tradekit.services.journal.store import SqlJournal

    return SqlJournal(database_url, prompt_writer=True)


class SharedContainer(containers.DeclarativeContainer):
    """One per process: settings, logger, clock, event bus, candles, indicators, exchange,
    risk and the journal.

    Built by ``tradekit.runtime.bootstrap``, which decides the exchange, clock and
    journal from the run's mode.
    """

    settings = providers.Dependency(instance_of=TradekitSettings)
    logger = providers.Object(log)
    clock = providers.ThreadSafeSingleton(SystemClock)
    event_bus = providers.ThreadSafeSingleton(InMemoryEventBus)
    candle_provider = providers.ThreadSafeSingleton(CandleStore)
    indicator_cache = providers.ThreadSafeSingleton(IndicatorCache, candle_provider)
    exchange = providers.ThreadSafeSingleton(PaperExchange, settings.provided.exchange)
    exposure_guard = providers.ThreadSafeSingleton(ExposureGuard, settings.provided.risk)
    # Opened on first use only: a backtest never touches the database.
    journal = providers.ThreadSafeSingleton(open_journal, settings.provided.storage.database_url)
