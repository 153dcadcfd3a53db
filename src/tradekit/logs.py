"""Process-wide logging with loguru: one human-readable sink, an optional JSON sink.

Every record carries a ``strategy_id`` extra field ("-" outside any strategy), so
the lines of many strategies running side by side can be told apart.
"""

from __future__ import annotations

import sys
import threading
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from loguru import logger

if TYPE_CHECKING:
    from loguru import Logger

    from tradekit.config import LoggingSettings

LEVELS: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
"""The level names ``configure_logging`` accepts (case-insensitive)."""

NO_STRATEGY = "-"
"""The ``strategy_id`` of records logged outside any strategy."""

HUMAN_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
    "<cyan>{extra[strategy_id]}</cyan> | <level>{message}</level>"
)

# loguru adds this handler when it is imported; ids are never reused, so id 0 is
# always that default handler and never one somebody else added.
_LOGURU_DEFAULT_HANDLER_ID = 0

_lock = threading.Lock()
_installed_handler_ids: list[int] = []


def configure_logging(
    level: str = "INFO",
    json_path: str | Path | None = None,
    *,
    stream: TextIO | None = None,
) -> None:
    """Send log records at ``level`` and above to ``stream`` and, optionally, to a JSON file.

    ``stream`` defaults to ``sys.stderr``. With ``json_path``, every record is also
    written there as one JSON object per line (parent folders are created).
    Calling this again replaces the sinks installed by the previous call; sinks
    added directly through loguru by other code are left alone.

    Raises ``ValueError`` when ``level`` is not one of ``LEVELS``.
    """
    level_name = level.upper()
    if level_name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LEVELS)}")

    with _lock:
        for handler_id in (_LOGURU_DEFAULT_HANDLER_ID, *_installed_handler_ids):
            # Someone may already have removed it (``logger.remove()`` drops every sink).
            with suppress(ValueError):
                logger.remove(handler_id)
        _installed_handler_ids.clear()

        logger.configure(extra={"strategy_id": NO_STRATEGY})
        _installed_handler_ids.append(
            logger.add(
                stream if stream is not None else sys.stderr,
                level=level_name,
                format=HUMAN_FORMAT,
            )
        )
        if json_path is not None:
            path = Path(json_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            _installed_handler_ids.append(
                logger.add(path, level=level_name, serialize=True, encoding="utf-8")
            )


def configure_logging_from(settings: LoggingSettings, *, stream: TextIO | None = None) -> None:
    """Configure logging from the ``logging`` section of ``TradekitSettings``."""
    configure_logging(settings.level, settings.json_path, stream=stream)


def strategy_logger(strategy_id: str) -> Logger:
    """A logger whose records carry ``strategy_id``; one per strategy container."""
    return logger.bind(strategy_id=strategy_id)


log: Logger = logger.bind(strategy_id=NO_STRATEGY)
"""The logger for code outside any strategy; its records carry ``strategy_id = "-"``."""
