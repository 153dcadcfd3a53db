"""Process-wide logging with loguru: one human-readable sink, an optional JSON sink.

Every record carries a ``strategy_id`` extra field ("-" outside any strategy), so
the lines of many strategies running side by side can be told apart.

Used as a library, tradekit logs nothing until the application opts in: its
records are disabled when it is imported, and ``configure_logging`` (which the
``tradekit`` command calls) enables them. An application with its own loguru
sinks calls ``logger.enable("tradekit")`` instead.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from loguru import logger

from tradekit.errors import ConfigError, ConfigProblem
from tradekit.log_levels import LEVELS

if TYPE_CHECKING:
    from loguru import Logger, Record

    from tradekit.config import LoggingSettings

PACKAGE = "tradekit"

# A library stays silent until the application turns its logging on.
logger.disable(PACKAGE)

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

REPEAT_BURST = 3
"""How many records of one message pass per interval before the rest are counted."""

REPEAT_INTERVAL_SECONDS = 60.0
"""How often a message that keeps repeating is summarized."""

_SUPPRESSED = "repeat_suppressed"
_SUMMARY = "repeat_summary"

_RepeatKey = tuple[str, str, str]


@dataclass
class _RepeatWindow:
    start: float
    last: float
    seen: int = 0
    suppressed: int = 0


class RepeatedMessages:
    """Summarizes floods: per (level, strategy_id, message), ``burst`` records pass per interval.

    Records beyond the burst are counted, not written; once the interval is over
    (seen on the next record of any message) one line reports how many were
    held back. One per ``configure_logging`` call; ``clock`` returns seconds.
    """

    def __init__(
        self,
        burst: int = REPEAT_BURST,
        interval: float = REPEAT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or interval <= 0:
            raise ValueError(f"burst must be >= 1 and interval > 0, got {burst} and {interval}")
        self._burst, self._interval, self._clock = burst, interval, clock
        self._lock = threading.Lock()
        self._windows: dict[_RepeatKey, _RepeatWindow] = {}
        self._next_sweep = clock() + interval

    def patch(self, record: Record) -> None:
        """The loguru patcher: mark a record beyond its burst as suppressed."""
        extra = record["extra"]
        if extra.get(_SUMMARY):
            return
        key = (record["level"].name, str(extra.get("strategy_id", NO_STRATEGY)), record["message"])
        now = self._clock()
        with self._lock:
            due = self._sweep(now) if now >= self._next_sweep else []
            window = self._windows.get(key)
            if window is None or now - window.start >= self._interval:
                if window is not None and window.suppressed:
                    due.append((key, window))
                window = self._windows[key] = _RepeatWindow(start=now, last=now)
            window.seen += 1
            window.last = now
            if window.seen > self._burst:
                window.suppressed += 1
                extra[_SUPPRESSED] = True
        # Logged outside the lock: the summary passes through this patcher too.
        for summary in due:
            self._report(*summary)

    def flush(self) -> None:
        """Report every count still held back (when logging is reconfigured)."""
        with self._lock:
            due = [(key, window) for key, window in self._windows.items() if window.suppressed]
            self._windows.clear()
        for summary in due:
            self._report(*summary)

    def _sweep(self, now: float) -> list[tuple[_RepeatKey, _RepeatWindow]]:
        """Forget windows whose interval is over; return those that held records back."""
        self._next_sweep = now + self._interval
        windows = self._windows
        over = [key for key, window in windows.items() if now - window.start >= self._interval]
        due = [(key, windows[key]) for key in over if windows[key].suppressed]
        for key in over:
            del windows[key]
        return due

    @staticmethod
    def _report(key: _RepeatKey, window: _RepeatWindow) -> None:
        level, strategy_id, message = key
        seconds = window.last - window.start
        logger.bind(strategy_id=strategy_id, **{_SUMMARY: True}).log(
            level, f"repeated {window.suppressed} more times in {seconds:.0f} s: {message}"
        )


def flush_repeats() -> None:
    """Report every count of repeated messages still held back, now: a run calls it as it
    ends, so its summaries are written with its own output, not with a later command's."""
    _repeats.flush()


def _not_suppressed(record: Record) -> bool:
    return not record["extra"].get(_SUPPRESSED, False)


_repeats = RepeatedMessages()


def _current_stderr(message: str) -> None:
    """Write to whatever ``sys.stderr`` is when the record comes: a stream swapped in for a
    while (a test runner's capture, closed when it ends) is never written after it closed."""
    sys.stderr.write(message)


def _stderr_is_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()


def configure_logging(
    level: str = "INFO",
    json_path: str | Path | None = None,
    *,
    stream: TextIO | None = None,
    repeats: RepeatedMessages | None = None,
) -> None:
    """Send log records at ``level`` and above to ``stream`` and, optionally, to a JSON file.

    ``stream`` defaults to ``sys.stderr``. With ``json_path``, every record is also
    written there as one JSON object per line (parent folders are created).
    Calling this again replaces the sinks installed by the previous call; sinks
    added directly through loguru by other code are left alone. tradekit's own
    records are enabled from here on.

    A message repeated in a flood (the same error on every candle while a disk
    is full) is summarized: see ``RepeatedMessages``; ``repeats`` replaces the
    default one (tests pass one with their own clock).

    Raises ``ValueError`` when ``level`` is not one of ``LEVELS`` and
    ``ConfigError`` when the JSON file cannot be written; the current sinks are
    then left as they were.
    """
    global _repeats
    level_name = level.upper()
    if level_name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LEVELS)}")

    with _lock:
        json_handler_id = None if json_path is None else _add_json_sink(Path(json_path), level_name)
        # Counts held back go to the sinks that held them back, before those are removed.
        _repeats.flush()
        for handler_id in (_LOGURU_DEFAULT_HANDLER_ID, *_installed_handler_ids):
            # Someone may already have removed it (``logger.remove()`` drops every sink).
            with suppress(ValueError):
                logger.remove(handler_id)
        _installed_handler_ids.clear()
        _repeats = repeats if repeats is not None else RepeatedMessages()

        logger.configure(extra={"strategy_id": NO_STRATEGY}, patcher=_repeats.patch)
        _installed_handler_ids.append(
            logger.add(
                stream if stream is not None else _current_stderr,
                level=level_name,
                format=HUMAN_FORMAT,
                filter=_not_suppressed,
                colorize=None if stream is not None else _stderr_is_terminal(),
            )
        )
        if json_handler_id is not None:
            _installed_handler_ids.append(json_handler_id)
        logger.enable(PACKAGE)


def _add_json_sink(path: Path, level_name: str) -> int:
    """Open the JSON-lines sink at ``path``; ``ConfigError`` names the setting when it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return logger.add(
            path, level=level_name, serialize=True, encoding="utf-8", filter=_not_suppressed
        )
    except OSError as exc:
        culprit = f" ({exc.filename})" if exc.filename and exc.filename != str(path) else ""
        raise ConfigError(
            [
                ConfigProblem(
                    f"cannot write the JSON log file {str(path)!r}: {exc.strerror or exc}"
                    f"{culprit}; expected a file path in a folder this process can write to",
                    path="logging.json_path",
                )
            ]
        ) from None


def configure_logging_from(settings: LoggingSettings, *, stream: TextIO | None = None) -> None:
    """Configure logging from the ``logging`` section of ``TradekitSettings``."""
    configure_logging(settings.level, settings.json_path, stream=stream)


def strategy_logger(strategy_id: str) -> Logger:
    """A logger whose records carry ``strategy_id``; one per strategy container."""
    return logger.bind(strategy_id=strategy_id)


log: Logger = logger.bind(strategy_id=NO_STRATEGY)
"""The logger for code outside any strategy; its records carry ``strategy_id = "-"``."""
