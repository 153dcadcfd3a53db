"""Where live trading may be switched on from: the environment (or ``.env``) only.

Files that travel with the strategies (the base config, ``strategy_defaults``,
strategy files) can never turn live orders on or carry exchange credentials.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tradekit.errors import ConfigProblem

LIVE_ORDERS_VARIABLE = "TRADEKIT_LIVE_ORDERS_ENABLED"
CREDENTIAL_VARIABLES = {
    "api_key": "TRADEKIT_EXCHANGE__CCXT__API_KEY",
    "api_secret": "TRADEKIT_EXCHANGE__CCXT__API_SECRET",
}
"""Each ``exchange.ccxt`` credential and the only variable it may come from."""

_ONLY_FROM_ENVIRONMENT = f"set {LIVE_ORDERS_VARIABLE}=true in the environment or .env instead"


def _looks_like_live_switch(key: str) -> bool:
    """``live_orders_enabled`` in any spelling: ``liveOrders``, ``LIVE-ORDER-ENABLED``, ..."""
    letters = "".join(character for character in key.lower() if character.isalnum())
    return "live" in letters and ("order" in letters or "trad" in letters)


def _keys(data: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every (key, dotted path) in nested objects and lists."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield str(key), path
            yield from _keys(value, path)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _keys(item, f"{prefix}[{index}]")


def strategy_file_problems(data: Mapping[str, Any], source: str) -> list[ConfigProblem]:
    """A strategy file (or ``strategy_defaults``) that tries to switch live orders on."""
    return [
        ConfigProblem(
            f"a strategy can never enable live orders ({key!r}); {_ONLY_FROM_ENVIRONMENT}",
            source=source,
            path=path,
        )
        for key, path in _keys(data)
        if _looks_like_live_switch(key)
    ]


def base_file_problems(data: Mapping[str, Any], source: str) -> list[ConfigProblem]:
    """The base config file enabling live orders, carrying credentials or strategy switches.

    ``"live_orders_enabled": false`` is allowed: a file may say that live orders are off.
    """
    problems = []
    if data.get("live_orders_enabled", False) is not False:
        problems.append(
            ConfigProblem(
                f"live orders cannot be enabled from a config file; {_ONLY_FROM_ENVIRONMENT}",
                source=source,
                path="live_orders_enabled",
            )
        )
    exchange = data.get("exchange")
    ccxt = exchange.get("ccxt") if isinstance(exchange, Mapping) else None
    if isinstance(ccxt, Mapping):
        for name, variable in CREDENTIAL_VARIABLES.items():
            if ccxt.get(name) is not None:
                problems.append(
                    ConfigProblem(
                        f"credentials are never read from a config file; remove it and set "
                        f"{variable} in the environment or .env",
                        source=source,
                        path=f"exchange.ccxt.{name}",
                    )
                )
    defaults = data.get("strategy_defaults")
    if isinstance(defaults, Mapping):
        problems.extend(
            ConfigProblem(problem.message, source=source, path=f"strategy_defaults.{problem.path}")
            for problem in strategy_file_problems(defaults, source)
        )
    return problems


__all__ = [
    "CREDENTIAL_VARIABLES",
    "LIVE_ORDERS_VARIABLE",
    "base_file_problems",
    "strategy_file_problems",
]
