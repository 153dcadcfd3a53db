"""``tradekit serve`` as a user runs it: a real uvicorn server on 127.0.0.1 in a subprocess
over a synthetic replay and a temporary journal, driven over HTTP with httpx.

The server prints the address it listens on once it accepts connections; the
tests wait for that line, reading all it writes as it comes. What happens inside
another process can only be looked at, so conditions on the replay (a bot holds a
position, more candles went by) are looked at again until they hold, within a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from drained_process import DrainedProcess
from ticker_strategies import ticker_data

from tradekit.events import SignalGenerated, StrategyControlled
from tradekit.service.api_process import API_NICENESS
from tradekit.services.journal.store import SqlJournal

pytestmark = pytest.mark.slow

TOKEN = "integration-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEADLINE_SECONDS = 30.0


def environment() -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("TRADEKIT_")}
    return {**clean, "TRADEKIT_API_TOKEN": TOKEN}


def write_strategies(folder: Path) -> Path:
    strategies = folder / "strategies"
    strategies.mkdir()
    bots = [
        # Trades all the time: buys every 2 bars, sells a bar later.
        ticker_data("trader", every=2, exit_offset=1),
        # Buys and holds (a wide stop): it has a position to close.
        ticker_data("holder", every=2, exit_offset=None, exit={"stop_loss_pct": 90}),
    ]
    for bot in bots:
        (strategies / f"{bot['strategy_id']}.json").write_text(json.dumps(bot), encoding="utf-8")
    return strategies


class Server:
    """One ``tradekit serve`` subprocess and an httpx client to it."""

    def __init__(self, served: DrainedProcess, base_url: str) -> None:
        self.served = served
        self.process = served.process
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, headers=AUTH, timeout=DEADLINE_SECONDS)

    def get(self, path: str) -> Any:
        answer = self.client.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def eventually(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not check():
            assert self.process.poll() is None, f"the server ended while waiting for {what}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def candles(self) -> int:
        return int(self.get("/api/engine")["candles"])

    def let_candles_pass(self, count: int) -> None:
        start = self.candles()
        self.eventually(lambda: self.candles() >= start + count, f"{count} more candles")


@contextmanager
def serving(folder: Path, strategies: Path, url: str) -> Iterator[Server]:
    # Its output is read while it runs: it logs every fill, and a full pipe would stall it.
    served = DrainedProcess(
        [
            sys.executable, "-m", "tradekit", "serve", "--port", "0", "--speed", "40",
            "--bars", "5000", "--strategies", str(strategies), "--db", url,
        ],
        cwd=folder,
        env=environment(),
    )  # fmt: skip
    try:
        line = served.wait_for_stdout_line(lambda line: "API on " in line, DEADLINE_SECONDS)
        address = line.split("API on ", 1)[1].split()[0] if line else ""
        assert address.startswith("http://127.0.0.1:"), served.stderr
        server = Server(served, address)
        yield server
        server.client.close()
    finally:
        if served.process.poll() is None:
            served.process.kill()
        served.finish(DEADLINE_SECONDS)


def holds_position(server: Server, bot: str) -> bool:
    return bool(server.get(f"/api/bots/{bot}/positions"))


def api_process_of(pid: int) -> int:
    """The API's process of the ``tradekit serve`` process ``pid``: its child started by
    multiprocessing's spawn method."""
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    raise AssertionError(f"no API process among the children of {pid}")


def niceness(pid: int) -> int:
    """The nice value of ``pid`` (the 19th field of ``/proc/PID/stat``)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def has_ended(pid: int) -> bool:
    """True once ``pid`` is gone or a zombie (ended, not yet reaped by its new parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_bots_are_listed_stopped_started_and_deleted_over_the_api(tmp_path: Path) -> None:
    strategies = write_strategies(tmp_path)
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with serving(tmp_path, strategies, url) as server:
        assert httpx.get(f"{server.base_url}/api/health").status_code == 200
        # The API's process yields the CPU to the engine's when both want it.
        api = api_process_of(server.process.pid)
        assert niceness(api) - niceness(server.process.pid) == API_NICENESS
        unauthorized = [
            httpx.get(f"{server.base_url}/api/bots", headers=headers)
            for headers in ({}, {"Authorization": "Bearer wrong"})
        ]
        assert [answer.status_code for answer in unauthorized] == [401, 401]
        assert {bot["id"]: bot["state"] for bot in server.get("/api/bots")} == {
            "holder": "active",
            "trader": "active",
        }

        stopped = server.client.post("/api/bots/trader/stop")
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["change"]["state"] == "applied"
        assert stopped.json()["bot"]["state"] == "disabled"
        server.let_candles_pass(10)

        started = server.client.post("/api/bots/trader/start")
        assert started.status_code == 200, started.text
        assert started.json()["bot"]["state"] == "active"

        resumed = server.client.post("/api/bots/trader/resume")
        assert resumed.status_code == 409
        assert "is active, not quarantined" in resumed.json()["detail"]

        server.eventually(lambda: holds_position(server, "holder"), "holder to hold a position")
        refused = server.client.delete("/api/bots/holder")
        assert refused.status_code == 409
        assert "holds 1 open position(s)" in refused.json()["detail"]
        deleted = server.client.delete("/api/bots/holder?close_positions=true")
        assert deleted.status_code in (200, 202), deleted.text
        server.eventually(
            lambda: "holder" not in {bot["id"] for bot in server.get("/api/bots")},
            "holder to be removed",
        )
        stop = server.client.post("/api/engine/stop")
        assert stop.status_code == 202
        server.process.wait(timeout=DEADLINE_SECONDS)
        assert server.process.returncode == 0

    with SqlJournal(url, read_only=True) as journal:
        trader = journal.events("trader")
        holder_status = journal.registered("holder").status.value
        holder_positions = journal.open_positions("holder")
    controls = [event for event in trader if isinstance(event, StrategyControlled)]
    assert [(event.action, event.outcome) for event in controls] == [
        ("disable", "applied"),
        ("enable", "applied"),
    ]
    disabled_at, enabled_at = controls[0].seq, controls[1].seq
    assert not any(
        isinstance(event, SignalGenerated) and disabled_at < event.seq < enabled_at
        for event in trader
    )
    assert any(isinstance(event, SignalGenerated) and event.seq > enabled_at for event in trader)
    assert holder_status == "removed"
    assert holder_positions == []


def test_a_killed_server_restarts_with_every_bot_in_its_state_and_positions(
    tmp_path: Path,
) -> None:
    strategies = write_strategies(tmp_path)
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with serving(tmp_path, strategies, url) as server:
        server.eventually(lambda: holds_position(server, "holder"), "holder to hold a position")
        assert server.client.post("/api/bots/trader/stop").status_code == 200
        server.let_candles_pass(3)
        api = api_process_of(server.process.pid)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=DEADLINE_SECONDS)
        # Left alone, the API's process sees the engine's end of the pipe close and ends.
        wait_until(lambda: has_ended(api), "the API's process to end after the engine's")

    with SqlJournal(url, read_only=True) as journal:
        held = [
            (p.symbol, p.side.value, p.quantity, p.avg_entry_price)
            for p in journal.open_positions("holder")
        ]
    assert held

    with serving(tmp_path, strategies, url) as server:
        states = {bot["id"]: bot["state"] for bot in server.get("/api/bots")}
        positions = [
            (p["symbol"], p["side"], p["quantity"], p["avg_entry_price"])
            for p in server.get("/api/bots/holder/positions")
        ]
        engine = server.get("/api/engine")
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=DEADLINE_SECONDS)
        assert server.process.returncode == 0
    assert states == {"holder": "active", "trader": "disabled"}
    assert positions == held
    assert engine["running"] is True
    assert engine["bots_by_state"]["disabled"] == 1


def test_the_api_process_killed_stops_the_engine_which_commits_and_says_so(
    tmp_path: Path,
) -> None:
    strategies = write_strategies(tmp_path)
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with serving(tmp_path, strategies, url) as server:
        server.let_candles_pass(5)
        os.kill(api_process_of(server.process.pid), signal.SIGKILL)
        _, stderr = server.served.finish(DEADLINE_SECONDS)
        assert server.process.returncode == 2, stderr  # a tradekit error, as any other
        assert "the API's process ended unexpectedly (exit code -9)" in stderr
        assert "the engine stopped and committed its journal" in stderr
    with SqlJournal(url, read_only=True) as journal:
        assert any(isinstance(event, SignalGenerated) for event in journal.events("trader"))
