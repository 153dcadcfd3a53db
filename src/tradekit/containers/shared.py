"""``SharedContainer``: what exists once per process, under every strategy container.

Its singletons are thread-safe and meant to be resolved at start-up, before
strategy containers are built from several threads.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from tradekit.config.settings import TradekitSettings
from tradekit.logs import log
from tradekit.services.bus import InMemoryEventBus
from tradekit.services.exchange import CcxtExchange, PaperExchange
from tradekit.services.indicators.cache import IndicatorCache
from tradekit.services.journal.store import SqlJournal
from tradekit.services.market.candles import CandleStore
from tradekit.services.market.clock import SystemClock
from tradekit.services.risk.limits import ExposureGuard


class SharedContainer(containers.DeclarativeContainer):
    """One per process: settings, logger, clock, event bus, candles, indicators, exchange,
    risk and the journal.

    Build it with ``SharedContainer(settings=settings)``.
    """

    settings = providers.Dependency(instance_of=TradekitSettings)
    logger = providers.Object(log)
    clock = providers.ThreadSafeSingleton(SystemClock)
    event_bus = providers.ThreadSafeSingleton(InMemoryEventBus)
    candle_provider = providers.ThreadSafeSingleton(CandleStore)
    indicator_cache = providers.ThreadSafeSingleton(IndicatorCache, candle_provider)
    exchange = providers.Selector(
        settings.provided.exchange.kind,
        paper=providers.ThreadSafeSingleton(PaperExchange, settings.provided.exchange),
        ccxt=providers.ThreadSafeSingleton(
            CcxtExchange, settings.provided.exchange, settings.provided.live_orders_enabled
        ),
    )
    exposure_guard = providers.ThreadSafeSingleton(ExposureGuard, settings.provided.risk)
    # Opened on first use only: a backtest never touches the database.
    journal = providers.ThreadSafeSingleton(SqlJournal, settings.provided.storage.database_url)
