"""The operating flow end to end: ``tradekit run --mode paper --source ccxt`` follows the fake
venue's live candles in a subprocess while ``tradekit strategies add/disable/update/remove``,
run as processes of their own between candles, change the registry it follows.

Each change is asked after candle k was processed and before candle k+1 is pushed; the test
waits (on the journal's ``registry_changes`` row, with a deadline) until the run applied it,
and checks from the journal that it took effect within 2 s of being asked.

Then a reference run makes the same changes at the same candles in-process: ``run_live`` on
the same warm-up (fetched from the same venue by the same feed code) and the same candles as
a list, with each change asked through the same CLI function before candle k+1 is handed
over and only handed over once the run applied it. Both journals must hold the same trading
events per strategy, in the same seq order, with the same payloads.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_binance import FakeBinance, Kline, flat_klines

from tradekit.cli.strategies_commands import (
    add_strategy,
    disable_strategy,
    remove_strategy,
    update_strategy,
)
from tradekit.config.loading import load_settings
from tradekit.domain import Candle
from tradekit.errors import StorageError
from tradekit.events import Event, StrategyControlled
from tradekit.runtime import RunMode
from tradekit.runtime.control import RunSelection
from tradekit.runtime.live import run_live
from tradekit.runtime.live_feeds import live_feeds
from tradekit.services.journal.store import RegistryChange, SqlJournal, StrategyStatus
from tradekit.testing import strategy_config_from_dict

pytestmark = pytest.mark.slow

HOUR_MS = 3_600_000
START = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
SRC = Path(__file__).resolve().parents[2] / "src"
DEADLINE_SECONDS = 60.0
TAKES_EFFECT_WITHIN = timedelta(seconds=2)
HISTORY = 30
LIVE = 12
SYMBOL = "BTC/USDT"

# After live candle k (0-based) is processed, before candle k+1: the change, as CLI arguments.
# "a" and "b" are the two bots the run starts with on one symbol; "c" is added while it runs.
CHANGES: dict[int, tuple[str, ...]] = {
    1: ("add", "c.json"),
    3: ("disable", "a"),
    5: ("update", "c-renamed.json"),
    # While b holds a position whose exit waits for the next candle's open: the operator's
    # close replaces it and fills at once, at the last close, so the removal takes effect now.
    8: ("remove", "b", "--close"),
}
IN_PROCESS: dict[str, Callable[[tuple[str, ...], Path, str], None]] = {
    "add": lambda args, folder, url: add_strategy(folder / args[0], database=url),
    "update": lambda args, folder, url: update_strategy(folder / args[0], database=url),
    "disable": lambda args, folder, url: disable_strategy(args[0], database=url),
    "remove": lambda args, folder, url: remove_strategy(
        args[0], close="--close" in args, database=url
    ),
}
# The lifecycle events of a run on live candles (``replay_clock=False``) are stamped with the
# wall clock: their ``ts`` says when the engine loaded, reloaded, controlled or unloaded the
# strategy, which no two runs share. Every other event is stamped with its candle's close time
# and compared whole.
WALL_CLOCK_STAMPED = frozenset(
    {"StrategyLoaded", "StrategyReloaded", "StrategyControlled", "StrategyUnloaded"}
)


def bot(strategy_id: str, every: int, **sections: Any) -> dict[str, Any]:
    """Buys every ``every`` candles and sells one candle later: trades known without indicators."""
    return {
        "strategy_id": strategy_id,
        "symbols": [SYMBOL],
        "timeframe": "1h",
        "analyzers": [
            {"type": "time_interval", "params": {"every_bars": every, "name": "buy"}},
            {
                "type": "time_interval",
                "params": {"every_bars": every, "offset": 1, "direction": "exit", "name": "sell"},
            },
        ],
        "exit": {"stop_loss_pct": 5, "exit_on_opposite_signal": True},
        **sections,
    }


def write_files(folder: Path, venue: FakeBinance) -> Path:
    """The config, the starting strategies (in ``strategies/``) and the files the changes name."""
    strategies = folder / "strategies"
    strategies.mkdir(parents=True)
    section = venue.ccxt_settings().model_dump(mode="json", exclude_none=True)
    (folder / "config.json").write_text(json.dumps({"exchange": {"ccxt": section}}))
    for data in (bot("a", 2), bot("b", 3)):
        (strategies / f"{data['strategy_id']}.json").write_text(json.dumps(data))
    (folder / "c.json").write_text(json.dumps(bot("c", 2)))
    (folder / "c-renamed.json").write_text(json.dumps(bot("c", 2, name="c renamed")))
    return strategies


def candle(kline: Kline) -> Candle:
    return Candle(
        SYMBOL,
        "1h",
        datetime.fromtimestamp(kline.open_ms / 1000, UTC),
        kline.open,
        kline.high,
        kline.low,
        kline.close,
        kline.volume,
    )


def environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRADEKIT_")}
    env["PYTHONPATH"] = str(SRC)
    return env


def newest_change(url: str) -> RegistryChange | None:
    """The last change row of the journal at ``url``; ``None`` while it cannot be read yet."""
    try:
        with SqlJournal(url, read_only=True) as journal:
            changes = journal.registry_changes()
    except StorageError:
        return None  # the run is still creating the database
    return changes[-1] if changes else None


def wait_until(check: Callable[[], bool], what: str, alive: Callable[[], bool]) -> None:
    """Another process's journal can only be looked at: look again until ``check`` holds."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        assert alive(), f"the run ended while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} within {DEADLINE_SECONDS:.0f} s"
        time.sleep(0.05)


def wait_applied(url: str, change_id: int, alive: Callable[[], bool]) -> RegistryChange:
    def applied() -> bool:
        change = newest_change(url)
        return (
            change is not None and change.change_id == change_id and change.applied_at is not None
        )

    wait_until(applied, f"change #{change_id} applied by the run", alive)
    found = newest_change(url)
    assert found is not None
    return found


def last_candle(health: Path) -> str | None:
    try:
        bots = json.loads(health.read_text()).get("bots", {})
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    feeds = [feed for entry in bots.values() for feed in entry["feeds"]]
    return max((feed["last_candle"] for feed in feeds if feed["last_candle"]), default=None)


def processed(health: Path, open_time: str) -> Callable[[], bool]:
    return lambda: last_candle(health) == open_time


def trading_events(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every strategy's events as dicts (type, seq, payload), without wall-clock times."""
    with SqlJournal(url, read_only=True) as journal:
        ids = [info.strategy_id for info in journal.strategies()]
        events: dict[str, list[Event]] = {sid: journal.events(sid) for sid in ids}
    return {
        sid: [
            {
                name: value
                for name, value in event.to_dict().items()
                if name != "ts" or event.event_type not in WALL_CLOCK_STAMPED
            }
            for event in found
        ]
        for sid, found in events.items()
    }


def run_as_processes(venue: FakeBinance, folder: Path, klines: list[Kline]) -> dict[str, Any]:
    """The run in a subprocess, the changes as ``tradekit strategies`` processes."""
    strategies = write_files(folder, venue)
    url = f"sqlite:///{folder / 'journal.db'}"
    # Clients before this run (the warm-up's feeds) may have subscribed too: wait for one more.
    subscribed_before = venue.subscription_count(SYMBOL, "1h")
    health = folder / "health.json"
    run = subprocess.Popen(
        [
            sys.executable, "-m", "tradekit", "run", "--mode", "paper", "--source", "ccxt",
            "--exchange", "binance", "--no-sandbox", "--config", "config.json",
            "--strategies", str(strategies), "--db", url,
            "--health-interval", "0.001", "--health-file", str(health),
        ],
        cwd=folder, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    alive = lambda: run.poll() is None  # noqa: E731
    delays: list[RegistryChange] = []
    try:
        venue.wait_for_subscription(SYMBOL, "1h", count=subscribed_before + 1)
        for index, (kline, forming) in enumerate(itertools.pairwise(klines)):
            # The venue's next candle starting is what tells that this one closed.
            venue.push(SYMBOL, "1h", kline, closed=True)
            venue.push(SYMBOL, "1h", forming, closed=False)
            expected = candle(kline).ts.isoformat()
            wait_until(processed(health, expected), f"candle {index} processed", alive)
            if index in CHANGES:
                arguments = CHANGES[index]
                asked = subprocess.run(
                    [sys.executable, "-m", "tradekit", "strategies", *arguments, "--db", url],
                    cwd=folder, env=environment(), capture_output=True, text=True,
                    timeout=DEADLINE_SECONDS, check=False,
                )  # fmt: skip
                assert asked.returncode == 0, asked.stdout + asked.stderr
                change_id = int(asked.stdout.split("#", 1)[1].split(")", 1)[0].split(",", 1)[0])
                delays.append(wait_applied(url, change_id, alive))
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=DEADLINE_SECONDS)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, stdout + stderr
    return {"url": url, "changes": delays, "stdout": stdout}


def run_in_process(
    venue: FakeBinance,
    folder: Path,
    warmup: list[Candle],
    klines: list[Kline],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The same changes at the same candles through the same CLI functions, in one process."""
    strategies = write_files(folder, venue)
    # The commands read the config of their working directory, as the processes did.
    monkeypatch.chdir(folder)
    for name in [name for name in os.environ if name.startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    url = f"sqlite:///{folder / 'journal.db'}"
    settings = load_settings(folder / "config.json", env_file=None)
    configs = [
        strategy_config_from_dict(json.loads(path.read_text()))
        for path in sorted(strategies.glob("*.json"))
    ]

    def candles() -> Iterator[Candle]:
        for index, kline in enumerate(klines):
            yield candle(kline)
            if index in CHANGES:
                arguments = CHANGES[index]
                IN_PROCESS[arguments[0]](arguments[1:], folder, url)
                change = newest_change(url)
                assert change is not None
                # The run applies it while it waits for the next candle, as the subprocess did;
                # it cannot end meanwhile, this source is what it waits on.
                wait_applied(url, change.change_id, lambda: True)

    summary = run_live(
        settings,
        configs,
        candles(),
        history=warmup,
        mode=RunMode.PAPER,
        journal=SqlJournal(url),
        replay_clock=False,
        registry=RunSelection(),
    )
    assert summary.candles == len(klines)
    return url


def test_registry_changes_reach_a_paper_run_on_the_venue_as_in_a_run_that_made_them_in_process(
    venue: FakeBinance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    klines = flat_klines(START, HISTORY + LIVE, "1h")
    venue.serve_history(SYMBOL, "1h", klines[:HISTORY])
    # The venue's newest history candle is still forming for the warm-up: it is the first
    # live candle, delivered once the next one starts. The last one only ever forms.
    live = klines[HISTORY - 1 :]
    settings = venue.ccxt_settings()
    starting = [strategy_config_from_dict(bot("a", 2)), strategy_config_from_dict(bot("b", 3))]
    feeds = live_feeds(settings, starting)
    try:
        warmup = feeds.warmup()  # the history the subprocess's feed fetches, by the same code
    finally:
        feeds.close()

    by_processes = run_as_processes(venue, tmp_path / "processes", live)
    reference = run_in_process(venue, tmp_path / "in-process", warmup, live[:-1], monkeypatch)

    # Both runs processed exactly the live candles, after the same warm-up.
    assert f"{LIVE} candles processed" in " ".join(by_processes["stdout"].split())
    assert warmup[-1].ts == candle(klines[HISTORY - 2]).ts
    for change in by_processes["changes"]:
        assert change.outcome == "applied", change
        assert change.applied_at is not None
        assert change.applied_at - change.requested_at <= TAKES_EFFECT_WITHIN, change
    got = trading_events(by_processes["url"])
    expected = trading_events(reference)
    assert set(got) == {"a", "b", "c"}
    for strategy_id in expected:
        assert got[strategy_id] == expected[strategy_id], strategy_id
    actions = {
        sid: [e["action"] for e in events if e["event_type"] == StrategyControlled.__name__]
        for sid, events in got.items()
    }
    assert actions == {"a": ["disable"], "b": ["remove"], "c": ["add", "update"]}
    closes = [e["reason"] for e in got["b"] if e["event_type"] == "PositionClosed"]
    assert closes[-1] == "operator"
    assert [e["reason"] for e in got["b"] if e["event_type"] == "OrderCancelled"] == [
        "replaced by a close at market (operator)"
    ]
    with SqlJournal(by_processes["url"], read_only=True) as journal:
        statuses = {info.strategy_id: info.status for info in journal.strategies()}
    assert statuses == {
        "a": StrategyStatus.DISABLED,
        "b": StrategyStatus.REMOVED,
        "c": StrategyStatus.ACTIVE,
    }
