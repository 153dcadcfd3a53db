"""What a live run needs before its first order, and the banner that announces it.

Live orders need all of: live mode, a real market-data source (never synthetic
candles or a file or frame replay), ``live_orders_enabled``, exchange kind
``ccxt`` and credentials from the environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeGuard, runtime_checkable

from pydantic import SecretStr

from tradekit.config.live_safety import CREDENTIAL_VARIABLES, LIVE_ORDERS_VARIABLE
from tradekit.config.settings import TradekitSettings
from tradekit.domain import Candle
from tradekit.errors import ConfigError, ConfigProblem

SHOWN_SECRET_CHARS = 4


@runtime_checkable
class LiveMarketData(Protocol):
    """A candle source that says whether its candles come from a venue as they close.

    Only a source whose ``live_market_data`` is true may feed a live run;
    ``venue`` names where its candles come from.
    """

    live_market_data: bool
    venue: str

    def stream(self) -> Iterator[Candle]: ...


def is_live_market_data(source: object) -> TypeGuard[LiveMarketData]:
    """True when ``source`` declares real exchange market data."""
    return isinstance(source, LiveMarketData) and source.live_market_data is True


def check_live_settings(settings: TradekitSettings) -> None:
    """``ConfigError`` listing every requirement of live orders the settings miss."""
    problems = []
    if settings.exchange.kind != "ccxt":
        problems.append(
            ConfigProblem(
                f"live mode needs exchange.kind = 'ccxt', got {settings.exchange.kind!r}",
                path="exchange.kind",
            )
        )
    if not settings.live_orders_enabled:
        problems.append(
            ConfigProblem(
                f"live mode needs live_orders_enabled = true; set {LIVE_ORDERS_VARIABLE}=true "
                "in the environment or .env only when you mean to send real orders",
                path="live_orders_enabled",
            )
        )
    for name, variable in CREDENTIAL_VARIABLES.items():
        secret: SecretStr | None = getattr(settings.exchange.ccxt, name)
        if secret is None or not secret.get_secret_value():
            problems.append(
                ConfigProblem(
                    f"live mode needs exchange.ccxt.{name}; set {variable} in the environment "
                    "or .env",
                    path=f"exchange.ccxt.{name}",
                )
            )
    if problems:
        raise ConfigError(problems)


def mask_secret(secret: SecretStr | None) -> str:
    """The secret with all but its last 4 characters hidden (never its length)."""
    value = secret.get_secret_value() if secret is not None else ""
    shown = value[-SHOWN_SECRET_CHARS:] if len(value) > 2 * SHOWN_SECRET_CHARS else ""
    return f"****{shown}" if value else "(none)"


def live_banner(settings: TradekitSettings, strategies: int, market_data: str) -> str:
    """The loud notice printed before a live run's first candle."""
    venue = settings.exchange.ccxt
    network = "sandbox (test network)" if venue.sandbox else "PRODUCTION (real money)"
    rule = "!" * 72
    return "\n".join(
        [
            rule,
            "!!  LIVE TRADING: REAL ORDERS will be sent to the exchange",
            f"!!  exchange:    {venue.exchange_id}, {network}",
            f"!!  account:     API key {mask_secret(venue.api_key)}",
            f"!!  strategies:  {strategies}",
            f"!!  market data: {market_data}",
            rule,
        ]
    )


__all__ = [
    "LiveMarketData",
    "check_live_settings",
    "is_live_market_data",
    "live_banner",
    "mask_secret",
]
