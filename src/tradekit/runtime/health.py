"""``HealthReporter``: every ``health_interval`` seconds, one health line per bot and a JSON file.

Per bot the report holds its state, the last candle of each feed it reads
(symbol, timeframe), that feed's lag (now minus the candle's close), its error
count, its open positions and its unrealized and realized P&L. A feed is
*stale* when no candle has arrived for more than ``STALE_AFTER_TIMEFRAMES`` of
its timeframes past the close expected next (a feed that never delivered is
measured from when the reporter started).

The reporter keeps no thread of its own. The run loop calls ``on_candle`` for
every candle and ``tick`` whenever it can: after each candle, and, while it
waits for the next candle, each time it wakes up (``run_live`` wakes at least
every ``CONTROL_POLL_SECONDS``), so a quiet market still gets its reports and a
dead feed is reported stale on time. ``tick`` is cheap when nothing is due.

Two clocks drive it, both injectable: ``now`` (the run's clock, candle time in
a replay) measures lag, and ``monotonic`` (seconds) spaces the reports, so a
fast replay is not reported on every candle. The file is written atomically
(a temporary file in the same folder, then a rename), so a reader never sees
half a report.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tradekit.domain import Candle
from tradekit.logs import log
from tradekit.runtime.engine import Engine
from tradekit.services.journal.sqlite import beside_journal
from tradekit.timeframes import timeframe_delta

STALE_AFTER_TIMEFRAMES = 2
"""How many timeframes past its expected close a feed may stay silent before it is stale."""

HEALTH_FILE_SUFFIX = ".health.json"

FeedKey = tuple[str, str]


def default_health_path(database_url: str) -> Path:
    """Next to a SQLite journal file (``tradekit.db`` -> ``tradekit.db.health.json``);
    ``./tradekit.health.json`` for other databases and in-memory ones."""
    return beside_journal(database_url, HEALTH_FILE_SUFFIX)


def write_json_atomically(path: Path, document: Any) -> None:
    """Write ``document`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=2, allow_nan=False)
            file.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class HealthReporter:
    """Reports the bots of one engine on a fixed interval; one per run."""

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float,
        now: Callable[[], datetime],
        path: Path | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"health interval must be > 0 seconds, got {interval}")
        self._engine = engine
        self._interval = interval
        self._now = now
        self._path = path
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._started = now()
        self._next_due = monotonic() + interval
        self._last: dict[FeedKey, Candle] = {}

    @property
    def path(self) -> Path | None:
        """Where the JSON report goes; ``None`` when only lines are logged."""
        return self._path

    def on_candle(self, candle: Candle) -> None:
        """Remember ``candle`` as the latest of its feed."""
        self._last[(candle.symbol, candle.timeframe)] = candle

    def seconds_until_due(self) -> float:
        """How long until the next report is due (0 when it is due now)."""
        return max(0.0, self._next_due - self._monotonic())

    def tick(self) -> dict[str, Any] | None:
        """Report when the interval is over; returns the report, or ``None`` when not due."""
        if self._monotonic() < self._next_due:
            return None
        return self.report()

    def report(self) -> dict[str, Any]:
        """Log one line per bot, write the file (when a path is set) and return the document."""
        with self._lock:
            self._next_due = self._monotonic() + self._interval
            document = self._document()
            # The file first: whoever reads the lines finds the file of the same report.
            if self._path is not None:
                write_json_atomically(self._path, document)
            for strategy_id, bot in document["bots"].items():
                log.bind(strategy_id=strategy_id).info("{}", health_line(bot))
        return document

    def _document(self) -> dict[str, Any]:
        now = self._now()
        bots: dict[str, Any] = {}
        for strategy_id, health in self._engine.health().items():
            handle = self._engine.factory.find_handle(strategy_id)
            config = None if handle is None else handle.config
            feeds = (
                []
                if config is None
                else [self._feed(symbol, config.timeframe, now) for symbol in config.symbols]
            )
            bots[strategy_id] = {
                "state": health["state"],
                "feeds": feeds,
                "errors": health["errors"],
                "last_errors": health["last_errors"],
                "open_positions": health["open_positions"],
                "unrealized_pnl": health["unrealized_pnl"],
                "realized_pnl": health["realized_pnl"],
            }
        return {"generated_at": now.isoformat(), "interval_seconds": self._interval, "bots": bots}

    def _feed(self, symbol: str, timeframe: str, now: datetime) -> dict[str, Any]:
        length = timeframe_delta(timeframe)
        candle = self._last.get((symbol, timeframe))
        if candle is None:
            last_close = None
            silent_since = self._started
        else:
            last_close = candle.close_ts
            silent_since = last_close + length  # when the next candle should have closed
        stale = now - silent_since > STALE_AFTER_TIMEFRAMES * length
        return {
            "symbol": symbol,
            "timeframe": timeframe,
            "last_candle": None if candle is None else candle.ts.isoformat(),
            "last_close": None if last_close is None else last_close.isoformat(),
            "lag_seconds": None if last_close is None else _seconds(now - last_close),
            "stale": stale,
        }


def _seconds(delta: timedelta) -> float:
    return round(delta.total_seconds(), 3)


def health_line(bot: dict[str, Any]) -> str:
    """One bot's report as one log line: state, feeds with lag, errors, positions, P&L."""
    feeds = []
    for feed in bot["feeds"]:
        lag = "no candle yet" if feed["lag_seconds"] is None else f"lag {feed['lag_seconds']:g}s"
        stale = " STALE" if feed["stale"] else ""
        feeds.append(f"{feed['symbol']} {feed['timeframe']} {lag}{stale}")
    return (
        f"health state={bot['state']} feeds=[{', '.join(feeds)}] errors={bot['errors']} "
        f"open={bot['open_positions']} unrealized={bot['unrealized_pnl']:.2f} "
        f"realized={bot['realized_pnl']:.2f}"
    )


__all__ = [
    "STALE_AFTER_TIMEFRAMES",
    "HealthReporter",
    "default_health_path",
    "health_line",
    "write_json_atomically",
]
