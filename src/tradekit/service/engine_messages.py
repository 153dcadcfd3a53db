"""What the engine's process and the API's process of one ``tradekit serve`` tell each other.

They share one duplex pipe (``multiprocessing.Pipe``). The engine's side sends
``EngineUpdate``s (what changed in its view since the last one, and the events its
journal committed) and, last, ``ServiceEnding``; the API's side sends the
commands below and, once its app is built, ``ApiReady`` (or ``ApiFailed``).
Everything crosses the pipe pickled; the engine's view types are frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from tradekit.events import Event
from tradekit.runtime.engine_view import BotView, FeedView

ASK_POLL: Final = "poll"
"""API -> engine: look at the registry now (a change was just written to it)."""
STOP_ENGINE: Final = "stop"
"""API -> engine: stop the engine and the service, as SIGTERM does."""


@dataclass(frozen=True, slots=True)
class EngineUpdate:
    """Engine -> API: the engine's view as it moved since the previous update.

    ``bots`` are the bots whose view changed or that are new, ``removed`` the ids of
    bots it no longer holds, ``candle_seconds`` the durations of the candles processed
    since (oldest first), ``events`` the tagged events its journal committed since, in
    order, and ``events_lost`` how many were dropped before them (an API process that read
    too slowly): the streams must then start over. ``polls`` counts the engine's looks at
    the registry: the view in this update already shows what those looks changed.
    """

    mode: str
    source: str
    running: bool
    published_at: datetime | None
    candles: int
    feeds: tuple[FeedView, ...]
    bots: tuple[BotView, ...]
    removed: tuple[str, ...]
    candle_seconds: tuple[float, ...]
    events: tuple[Event, ...]
    events_lost: int
    polls: int


@dataclass(frozen=True, slots=True)
class ServiceEnding:
    """Engine -> API: the service stops; the API ends its streams and shuts down."""


@dataclass(frozen=True, slots=True)
class ApiReady:
    """API -> engine: the app is built and has the engine's first view; it serves now."""


@dataclass(frozen=True, slots=True)
class ApiFailed:
    """API -> engine: the API could not start; ``message`` says why."""

    message: str


__all__ = [
    "ASK_POLL",
    "STOP_ENGINE",
    "ApiFailed",
    "ApiReady",
    "EngineUpdate",
    "ServiceEnding",
]
