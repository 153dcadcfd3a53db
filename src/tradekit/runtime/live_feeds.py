"""The ccxt candle feeds a run on a venue's live prices needs, built from the settings.

One feed per (symbol, timeframe) the strategies read, each with the warm-up
history ``runtime.warmup`` asks for, on a ``ccxt.pro`` client configured by
``exchange.ccxt`` (urls, timeouts, rate limit, sandbox).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tradekit.config.settings import CcxtSettings, TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.data.ccxt_feeds import CcxtLiveFeeds
from tradekit.errors import ConfigError
from tradekit.runtime.warmup import warmup_needs
from tradekit.services.exchange.ccxt_client import make_ccxt_client, venue_name


def with_venue(
    settings: TradekitSettings, exchange_id: str | None, sandbox: bool | None
) -> TradekitSettings:
    """``settings`` with ``exchange.ccxt``'s exchange id and sandbox flag replaced where given."""
    changes: dict[str, object] = {}
    if exchange_id is not None:
        changes["exchange_id"] = exchange_id
    if sandbox is not None:
        changes["sandbox"] = sandbox
    if not changes:
        return settings
    ccxt = settings.exchange.ccxt.model_copy(update=changes)
    exchange = settings.exchange.model_copy(update={"ccxt": ccxt})
    return settings.model_copy(update={"exchange": exchange})


def live_feeds(
    settings: CcxtSettings,
    configs: Sequence[StrategyConfig],
    *,
    stop: threading.Event | None = None,
) -> CcxtLiveFeeds:
    """Feeds of every series ``configs`` read from the venue ``settings`` name; not started.

    Candles are public: the feeds' client carries no credentials. ``stop`` closes them.
    """
    needs = warmup_needs(configs)
    if not needs:
        raise ConfigError("no strategy to run: a live feed needs at least one strategy")
    public = settings.model_copy(update={"api_key": None, "api_secret": None})
    make_ccxt_client(public, pro=True)  # an unknown exchange id fails here, before any thread
    return CcxtLiveFeeds(
        lambda: make_ccxt_client(public, pro=True),
        needs,
        venue=venue_name(settings),
        poll_seconds=settings.poll_interval_seconds,
        stop=stop,
    )


__all__ = ["live_feeds", "with_venue"]
