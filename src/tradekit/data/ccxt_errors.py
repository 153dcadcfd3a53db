"""How tradekit reads ccxt's errors: by class name along the error's class hierarchy, so
this code never imports ccxt (and tests can raise look-alike classes)."""

from __future__ import annotations

from collections.abc import Mapping

TRANSIENT = "NetworkError"
"""Rate limits, timeouts and maintenance all derive from it: worth waiting out and retrying."""


def error_names(exc: BaseException) -> frozenset[str]:
    """The class names of ``exc``'s type and of every class it derives from."""
    return frozenset(cls.__name__ for cls in type(exc).__mro__)


def is_transient(names: frozenset[str]) -> bool:
    """Whether an error with these class names is worth retrying."""
    return TRANSIENT in names


def hint_for(names: frozenset[str], hints: Mapping[str, str]) -> str | None:
    """The first of ``hints`` (class name -> advice) that names one of the error's classes."""
    return next((text for name, text in hints.items() if name in names), None)
