"""Restarts of ``tradekit run --mode live --source ccxt`` on the fake Binance venue: open and
partly filled orders and the fills made while the run was down are attributed to their bot
by client order id, applied once; a venue holding more or less than the books keeps
entries off until ``tradekit reconcile`` adopts or flattens the difference."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fake_binance import FakeBinance, Kline, flat_klines

from tradekit.events import VenueFillRecovered
from tradekit.services.journal.store import SqlJournal

HOUR_MS = 3_600_000
START = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
SRC = Path(__file__).resolve().parents[2] / "src"
WAIT_SECONDS = 60
RECONCILED = "reconciliation with binance:"
BOTS = ("live-bot", "other-bot")


def bot_data(strategy_id: str, quote_amount: float = 100.0) -> dict[str, Any]:
    """Buys ``quote_amount`` worth on every candle its sma(5) has a value for, while it
    holds nothing."""
    return {
        "strategy_id": strategy_id,
        "entry": {"sizing": {"quote_amount": quote_amount}},
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "indicators": [{"name": "sma", "params": {"length": 5}}],
        "analyzers": [
            {
                "type": "threshold",
                "params": {"source": "sma", "above": 0, "mode": "level", "above_direction": "long"},
            }
        ],
        "exit": {"stop_loss_pct": 50},
    }


@dataclass
class Finished:
    """What one process said and how it ended."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def said(self) -> str:
        """Standard error with rich's and the logger's line wrapping undone."""
        return " ".join(self.stderr.split())


class Running:
    """A ``tradekit`` process whose standard error is read as it comes, line by line."""

    def __init__(self, arguments: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tradekit", *arguments],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._lines: list[str] = []
        self._done = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait_for_line(self, text: str, times: int = 1) -> None:
        """Block until standard error had ``times`` lines containing ``text``."""

        def seen() -> bool:
            return sum(text in line for line in self._lines) >= times

        with self._changed:
            self._changed.wait_for(lambda: self._done or seen(), WAIT_SECONDS)
            if not seen():
                raise AssertionError(f"no {times} lines with {text!r} in: {''.join(self._lines)}")

    def finish(self, stop_signal: int | None = signal.SIGTERM) -> Finished:
        try:
            if stop_signal is not None:
                self.process.send_signal(stop_signal)
            self.process.wait(WAIT_SECONDS)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._reader.join(WAIT_SECONDS)
        assert self.process.stdout is not None
        stdout = self.process.stdout.read()
        self.process.stdout.close()
        self.process.stderr.close()  # type: ignore[union-attr]
        return Finished(self.process.returncode, stdout, "".join(self._lines))


class LiveFolder:
    """A folder with a config pointing at the fake venue, strategy files and a journal;
    runs ``tradekit`` commands in it with live orders armed from the environment."""

    def __init__(self, root: Path, venue: FakeBinance, bots: dict[str, float]) -> None:
        self.root = root
        self.venue = venue
        self.health = root / "health.json"
        ccxt = venue.ccxt_settings().model_dump(mode="json", exclude_none=True)
        (root / "config.json").write_text(json.dumps({"exchange": {"kind": "ccxt", "ccxt": ccxt}}))
        (root / "strategies").mkdir()
        for bot, amount in bots.items():
            (root / "strategies" / f"{bot}.json").write_text(json.dumps(bot_data(bot, amount)))
        env = {name: value for name, value in os.environ.items() if not name.startswith("TRADEKIT")}
        env.update(
            PYTHONPATH=str(SRC),
            TRADEKIT_LIVE_ORDERS_ENABLED="true",
            TRADEKIT_EXCHANGE__CCXT__API_KEY="venue-key-1234",
            TRADEKIT_EXCHANGE__CCXT__API_SECRET="venue-secret",
        )
        self.env = env
        self.url = f"sqlite:///{root / 'journal.db'}"

    def start_live_run(self) -> Running:
        return Running(
            [
                "run", "--mode", "live", "--source", "ccxt", "--exchange", "binance",
                "--no-sandbox", "--config", "config.json", "--strategies", "strategies",
                "--db", self.url, "--health-interval", "0.001", "--health-file", str(self.health),
            ],
            self.root,
            self.env,
        )  # fmt: skip

    def live_run(self, push: Sequence[Kline] = (), stop_signal: int = signal.SIGTERM) -> Finished:
        """Start a live run, let it reconcile, process ``push`` (closed 1h klines), stop it.

        The venue then starts the next kline, as it does once one closes."""
        running = self.start_live_run()
        try:
            # Logged line by line, then announced in one write: all of it is out.
            running.wait_for_line(RECONCILED, times=2)
            if push:
                subscribed = self.venue.subscription_count("BTC/USDT", "1h")
                self.venue.wait_for_subscription("BTC/USDT", "1h", max(subscribed, 1))
                for kline in push:
                    self.venue.push("BTC/USDT", "1h", kline, closed=True)
                forming = replace(push[-1], open_ms=push[-1].open_ms + HOUR_MS)
                self.venue.push("BTC/USDT", "1h", forming, closed=False, record=False)
                self._wait_for_candle(push[-1], running)
        except BaseException as exc:
            said = running.finish(signal.SIGKILL).stderr
            raise AssertionError(f"{exc}; the run said:\n{said}") from exc
        finished = running.finish(stop_signal)
        expected = 0 if stop_signal == signal.SIGTERM else -stop_signal
        assert finished.returncode == expected, finished.stderr
        return finished

    def _wait_for_candle(self, kline: Kline, running: Running) -> None:
        """Until the health file, written after each candle is committed, shows ``kline``.

        The run is another process: its health file is what it tells the world."""
        expected = datetime.fromtimestamp(kline.open_ms / 1000, UTC).isoformat()
        deadline = time.monotonic() + WAIT_SECONDS
        while _last_candle(self.health) != expected:
            assert running.process.poll() is None, "the run ended before the candle"
            assert time.monotonic() < deadline, "the run did not process the candle"
            time.sleep(0.05)

    def command(self, *arguments: str) -> Finished:
        result = subprocess.run(
            [sys.executable, "-m", "tradekit", *arguments],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=WAIT_SECONDS,
        )  # fmt: skip
        return Finished(result.returncode, result.stdout, result.stderr)

    def fills(self, bot: str) -> list[tuple[str, float, float]]:
        with SqlJournal(self.url, read_only=True) as journal:
            return [(fill.order_id, fill.quantity, fill.price) for fill in journal.fills(bot)]

    def position(self, bot: str) -> float:
        with SqlJournal(self.url, read_only=True) as journal:
            return sum(position.quantity for position in journal.open_positions(bot))

    def recovered(self, bot: str) -> list[VenueFillRecovered]:
        with SqlJournal(self.url, read_only=True) as journal:
            return [e for e in journal.events(bot) if isinstance(e, VenueFillRecovered)]


def _last_candle(path: Path) -> str | None:
    try:
        bots = json.loads(path.read_text()).get("bots", {})
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    feeds = [feed for bot in bots.values() for feed in bot["feeds"]]
    return max((feed["last_candle"] or "" for feed in feeds), default=None) or None


@pytest.fixture
def klines(venue: FakeBinance) -> list[Kline]:
    """Thirty hours of history on the venue; market orders fill at the last 1m close."""
    series = flat_klines(START, 40, "1h")
    venue.serve_history("BTC/USDT", "1h", series[:30])
    venue.serve_history("BTC/USDT", "1m", flat_klines(START, 1))
    return series


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


@pytest.mark.slow
class TestRestartWithAnOrderPartlyFilled:
    @pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
    def test_open_orders_and_fills_made_while_down_reach_their_bot_once(
        self, venue: FakeBinance, klines: list[Kline], tmp_path: Path, stop_signal: int
    ) -> None:
        folder = LiveFolder(tmp_path, venue, {"live-bot": 100.0, "other-bot": 40.0})
        venue.fill_market_orders_partly(0.4)
        folder.live_run(push=[klines[30]], stop_signal=stop_signal)
        orders = {order["clientOrderId"]: order for order in venue.created_orders}
        assert sorted(orders) == ["TKlive-bot-1", "TKother-bot-1"]
        ordered = {bot: float(orders[f"TK{bot}-1"]["origQty"]) for bot in BOTS}
        assert ordered["live-bot"] != ordered["other-bot"]
        for bot in BOTS:
            executed = float(orders[f"TK{bot}-1"]["executedQty"])
            assert 0 < executed < ordered[bot]
            assert _close(folder.position(bot), executed)
        gone = venue.open_order("BTC/USDT", "BUY", 0.01, 50.0, "TKgone-bot-7")

        # Restarted while the orders are still open: each is its bot's; the gone bot's is
        # reported and left alone.
        second = folder.live_run(stop_signal=stop_signal)
        assert "open orders of live-bot: 1" in second.said
        assert "open orders of other-bot: 1" in second.said
        assert "agree: BTC" in second.said
        assert "MISMATCH" not in second.said
        assert f"UNKNOWN open order {gone['orderId']} (buy 0.01 of 0.01 BTC/USDT" in second.said
        assert "bot 'gone-bot' no longer exists; left open, not cancelled" in second.said
        assert [method for method, _ in venue.requests if method == "DELETE"] == []

        # The rest fills while tradekit is down: the restart reads it back, once, per bot.
        rests = {
            trade["orderId"]: trade
            for trade in venue.fill_open_orders(["TKlive-bot-1", "TKother-bot-1"])
        }
        third = folder.live_run(stop_signal=stop_signal)
        assert "agree: BTC" in third.said, third.stderr
        assert "MISMATCH" not in third.said
        assert _close(sum(folder.position(bot) for bot in BOTS), venue.balances["BTC"])
        fills = {bot: folder.fills(bot) for bot in BOTS}
        for bot in BOTS:
            rest = rests[orders[f"TK{bot}-1"]["orderId"]]
            assert f"venue trade {rest['id']} " in third.said
            assert _close(folder.position(bot), ordered[bot])
            assert [order_id for order_id, *_ in fills[bot]] == [f"{bot}-1", f"{bot}-1"]
            assert _close(sum(quantity for _, quantity, _ in fills[bot]), ordered[bot])
            (recovered,) = folder.recovered(bot)
            assert (recovered.trade_id, recovered.order_id) == (str(rest["id"]), f"{bot}-1")

        fourth = folder.live_run(stop_signal=stop_signal)
        assert "agree: BTC" in fourth.said
        assert "fills read back from binance: 0 applied" in fourth.said
        for bot in BOTS:
            assert folder.fills(bot) == fills[bot]
            assert len(folder.recovered(bot)) == 1
            assert _close(folder.position(bot), ordered[bot])


@pytest.mark.slow
class TestMismatchOnRestart:
    def test_more_on_the_venue_keeps_entries_off_until_adopted_into_a_bot(
        self, venue: FakeBinance, klines: list[Kline], tmp_path: Path
    ) -> None:
        folder = LiveFolder(tmp_path, venue, {"live-bot": 100.0})
        folder.live_run(push=[klines[30]])
        held = folder.position("live-bot")
        assert held > 0
        late = tmp_path / "late-bot.json"
        late.write_text(json.dumps(bot_data("late-bot")))
        added = folder.command("strategies", "add", str(late), "--db", folder.url)
        assert added.returncode == 0, added.stderr
        venue.set_balance("BTC", venue.balances["BTC"] + 0.25)

        second = folder.live_run(push=[klines[31]])
        assert (
            f"MISMATCH BTC: the venue holds {held + 0.25:.10g}, the books hold {held:.10g} "
            f"(live-bot {held:.10g}); difference 0.25; entries stay off for "
        ) in second.said, second.stderr
        assert "late-bot" in second.said.split("entries stay off for ")[1].split(";")[0]
        assert len(venue.created_orders) == 1  # late-bot did not enter

        shown = folder.command("reconcile", "--config", "config.json", "--db", folder.url)
        assert shown.returncode == 1
        assert "difference 0.25" in " ".join(shown.stdout.split())
        adopted = folder.command(
            "reconcile", "--config", "config.json", "--db", folder.url,
            "--adopt", "BTC", "--into", "live-bot", "--price", "100",
        )  # fmt: skip
        assert adopted.returncode == 0, adopted.stdout + adopted.stderr
        assert _close(folder.position("live-bot"), held + 0.25)

        third = folder.live_run(push=[klines[32]])
        assert "agree: BTC" in third.said
        assert "MISMATCH" not in third.said
        assert len(venue.created_orders) == 2  # late-bot entered at last
        assert venue.created_orders[-1]["clientOrderId"] == "TKlate-bot-1"

    def test_less_on_the_venue_is_flattened_and_the_flattening_fill_is_no_bots(
        self, venue: FakeBinance, klines: list[Kline], tmp_path: Path
    ) -> None:
        folder = LiveFolder(tmp_path, venue, {"live-bot": 100.0})
        folder.live_run(push=[klines[30]])
        held = folder.position("live-bot")
        venue.set_balance("BTC", held - 0.005)

        second = folder.live_run()
        assert "difference -0.005; entries stay off for live-bot" in second.said

        flattened = folder.command(
            "reconcile", "--config", "config.json", "--db", folder.url, "--flatten", "BTC", "--yes"
        )
        assert flattened.returncode == 0, flattened.stdout + flattened.stderr
        flat_order = venue.created_orders[-1]
        assert flat_order["side"] == "BUY"
        assert float(flat_order["origQty"]) == pytest.approx(0.005)
        assert _close(venue.balances["BTC"], held)

        third = folder.live_run()
        assert "agree: BTC" in third.said
        (flat_trade,) = [t for t in venue.trades if t["orderId"] == flat_order["orderId"]]
        assert (
            f"UNKNOWN fill: venue trade {flat_trade['id']} (order {flat_order['orderId']}, "
            f"client order id '{flat_order['clientOrderId']}')"
        ) in third.said
        assert "not placed by tradekit; not applied to any bot" in third.said
        assert _close(folder.position("live-bot"), held)
        assert folder.recovered("live-bot") == []
