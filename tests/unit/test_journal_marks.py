"""Reading a series' price marks again: only what was added, the same answer as a full read."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from tradekit.services.journal.marks import (
    ADDED_ROWS_SQL,
    NO_MARKS,
    added_by_count,
    added_by_rowid,
)
from tradekit.services.journal.store import SqlJournal

T0 = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
SERIES = [("BTC/USDT", "1h"), ("ETH/USDT", "1h"), ("BTC/USDT", "4h")]


def test_both_ways_follow_random_commits_as_a_full_read_does(tmp_path: Path) -> None:
    """Marks committed in random batches, older ones among them, on several series: after
    each commit, reading on from what was read gives exactly the series read whole."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    rng = random.Random(3)
    stored: dict[tuple[str, str], dict[datetime, float]] = {key: {} for key in SERIES}
    held_rowid = dict.fromkeys(SERIES, NO_MARKS)
    held_count = dict.fromkeys(SERIES, NO_MARKS)
    reader = create_engine(url)
    with SqlJournal(url) as writer:
        for batch in range(40):
            for _ in range(rng.randint(0, 6)):
                symbol, timeframe = rng.choice(SERIES)
                # Mostly newer than the rest, now and then an older one (a replayed period).
                hours = (
                    batch * 10 + rng.randint(0, 9) if rng.random() < 0.8 else rng.randint(-50, 0)
                )
                ts, close = T0 + hours * HOUR, float(rng.randint(1, 1000))
                stored[(symbol, timeframe)].setdefault(ts, close)  # a stored mark is kept
                writer.record_price_mark(symbol, timeframe, ts, close)
            writer.commit()
            with reader.connect() as connection:
                for symbol, timeframe in SERIES:
                    key = (symbol, timeframe)
                    expected = tuple(sorted(stored[key].items()))
                    held_rowid[key] = added_by_rowid(connection, symbol, timeframe, held_rowid[key])
                    held_count[key] = added_by_count(connection, symbol, timeframe, held_count[key])
                    assert held_rowid[key].marks == expected
                    assert held_count[key].marks == expected
    reader.dispose()


def test_sqlite_reads_only_the_rows_past_the_last_one_read(tmp_path: Path) -> None:
    """The query walks the rowid range, not the series' primary-key index (which would read
    the whole series on every call)."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    SqlJournal(url).close()
    engine = create_engine(url)
    with engine.connect() as connection:
        plan = connection.execute(
            text(f"EXPLAIN QUERY PLAN {ADDED_ROWS_SQL}"),
            {"after": 0, "symbol": "BTC/USDT", "timeframe": "1h"},
        ).all()
    engine.dispose()
    details = " ".join(str(row[-1]) for row in plan)
    assert "INTEGER PRIMARY KEY (rowid>?)" in details
    assert "autoindex" not in details
