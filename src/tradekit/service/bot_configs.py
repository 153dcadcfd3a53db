"""The bodies of ``POST /api/bots`` and ``PUT /api/bots/{id}``, and the strategy configs they make.

A bot is made from a template (``tradekit.templates``): its name, template,
parameter values, symbols and timeframe. The template builds the validated
``StrategyConfig`` with the messages a strategy file gets; a problem's ``value``
is what the request gave at the problem's path, so a form can show the value
and the message next to the field.

The registry's ``kind`` of a bot made from a template is the template's id, so
its parameters can be read back for an edit form and an update keeps the template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.errors import ConfigError, StrategyError
from tradekit.runtime.control import registered_config
from tradekit.service.models import Problem
from tradekit.services.journal.store import StrategyInfo
from tradekit.templates import TemplateCatalog

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class BotCreate(BaseModel):
    """A new bot: a template, its parameter values, and where it trades."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The bot's name, shown everywhere; its id is made from it")
    template: str = Field(description="The template's id, from GET /api/strategies")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameter values; the template's defaults fill the rest"
    )
    symbols: list[str] = Field(description="Unified symbols such as BTC/USDT")
    timeframe: str = Field(description="Candle timeframe such as 1h")
    id: str | None = Field(
        default=None, description="The bot's id (default: made from its name, e.g. rsi-on-btc)"
    )
    start: bool = Field(default=True, description="Start trading at once (else: stopped)")


class BotUpdate(BaseModel):
    """A change to a bot made from a template; what is left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    params: dict[str, Any] | None = Field(
        default=None, description="Parameter values to change; the others keep their values"
    )
    symbols: list[str] | None = None
    timeframe: str | None = None


def problems_with_values(error: ConfigError, body: Mapping[str, Any]) -> list[Problem]:
    """``error``'s problems, each with the value ``body`` gave at its path (when it gave one)."""
    return [
        Problem(path=problem.path, value=value_at(body, problem.path), expected=problem.message)
        for problem in error.problems
    ]


def value_at(body: Mapping[str, Any], path: str | None) -> Any:
    """The JSON value at ``path`` (``params.rsi_length``, ``symbols[0]``) in ``body``, or None."""
    current: Any = body
    for key, index in _PATH_PART.findall(path or ""):
        if index and isinstance(current, list) and int(index) < len(current):
            current = current[int(index)]
        elif key and isinstance(current, Mapping) and key in current:
            current = current[key]
        else:
            return None
    return None if current is body else current


def new_bot_config(
    request: BotCreate, catalog: TemplateCatalog, settings: TradekitSettings | None
) -> StrategyConfig:
    """The validated strategy of a new bot; ``ConfigError`` with every problem."""
    config = catalog.get(request.template).build_config(
        request.name,
        request.params,
        request.symbols,
        request.timeframe,
        strategy_id=request.id,
        settings=settings,
    )
    return config if request.start else config.model_copy(update={"enabled": False})


def updated_bot_config(
    info: StrategyInfo,
    request: BotUpdate,
    catalog: TemplateCatalog,
    settings: TradekitSettings | None,
) -> StrategyConfig:
    """The bot's config with ``request``'s changes, rebuilt from its template.

    A bot not made from a template (one registered from a strategy file) is
    refused: its config is changed with ``tradekit strategies update FILE``.
    """
    template = catalog.find(info.kind)
    if template is None:
        raise StrategyError(
            f"bot '{info.strategy_id}' was not made from a template (its kind is "
            f"'{info.kind}'); change its config with 'tradekit strategies update FILE'"
        )
    current = registered_config(info)
    params = {**template.params_from_config(current), **(request.params or {})}
    config = template.build_config(
        request.name if request.name is not None else current.name,
        params,
        request.symbols if request.symbols is not None else list(current.symbols),
        request.timeframe if request.timeframe is not None else current.timeframe,
        strategy_id=info.strategy_id,
        settings=settings,
    )
    return config if current.enabled else config.model_copy(update={"enabled": False})


__all__ = [
    "BotCreate",
    "BotUpdate",
    "new_bot_config",
    "problems_with_values",
    "updated_bot_config",
    "value_at",
]
