"""Builds ccxt exchange objects from ``CcxtSettings``: the one place ccxt is configured.

Orders (``CcxtExchange``) and live market data (the candle feeds) both get
their clients here, so urls, timeouts, rate limits, options, sandbox mode and
credentials are applied the same way everywhere.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any

from tradekit.config.settings import CcxtSettings
from tradekit.errors import ExchangeError


def ccxt_config(settings: CcxtSettings) -> dict[str, Any]:
    """The constructor config ccxt gets: rate limiting always on, open orders of every symbol
    fetchable, then what the settings say."""
    config: dict[str, Any] = {"enableRateLimit": True}
    if settings.api_key is not None:
        config["apiKey"] = settings.api_key.get_secret_value()
    if settings.api_secret is not None:
        config["secret"] = settings.api_secret.get_secret_value()
    if settings.timeout_ms is not None:
        config["timeout"] = settings.timeout_ms
    if settings.rate_limit_ms is not None:
        config["rateLimit"] = settings.rate_limit_ms
    # Reconciliation must see every open order, also those of symbols no bot trades any
    # more; ccxt refuses that call on some venues (binance) unless told it is meant.
    config["options"] = {"warnOnFetchOpenOrdersWithoutSymbol": False, **settings.options}
    return config


def venue_name(settings: CcxtSettings) -> str:
    """How the venue is named in messages: its id, with ``(sandbox)`` on the test network."""
    return settings.exchange_id + (" (sandbox)" if settings.sandbox else "")


def make_ccxt_client(settings: CcxtSettings, *, pro: bool = False) -> Any:
    """A ccxt exchange object for ``settings``: sync (``ccxt``) or asyncio with websockets
    (``ccxt.pro``). ``ExchangeError`` when ccxt is missing, the id is unknown or set-up fails."""
    module_name = "ccxt.pro" if pro else "ccxt"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ExchangeError(
            f"the ccxt package ({module_name}) is not installed; install the live extra: "
            "pip install 'tradekit[live]'"
        ) from exc
    exchange_class = getattr(module, settings.exchange_id, None)
    if not isinstance(exchange_class, type):
        known = list(getattr(module, "exchanges", []))
        close = difflib.get_close_matches(settings.exchange_id, known)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        what = "a ccxt.pro (websocket)" if pro else "a ccxt"
        raise ExchangeError(
            f"exchange.ccxt.exchange_id {settings.exchange_id!r} is not {what} exchange{hint}"
        )
    try:
        client = exchange_class(ccxt_config(settings))
        if settings.sandbox:
            client.set_sandbox_mode(True)
    except Exception as exc:
        raise ExchangeError(
            f"could not set up ccxt exchange {venue_name(settings)}: {type(exc).__name__}: {exc}"
            + (
                "; set exchange.ccxt.sandbox to false if it has no sandbox"
                if settings.sandbox
                else ""
            )
        ) from exc
    if settings.urls:
        # After sandbox mode, which replaces urls["api"] with the test network's.
        client.urls = dict(client.urls)
        api = client.urls.get("api")
        client.urls["api"] = (
            merge_urls(api, settings.urls) if isinstance(api, Mapping) else dict(settings.urls)
        )
    return client


def merge_urls(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge_urls(current, value)
        else:
            merged[key] = value
    return merged


__all__ = ["ccxt_config", "make_ccxt_client", "merge_urls", "venue_name"]
