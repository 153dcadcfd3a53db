"""``tradekit run --source ccxt`` and ``run_live`` on the fake Binance venue: warm-up
history, live closed candles, paper and live orders, through the real ccxt code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_binance import FakeBinance, Kline, flat_klines

from tradekit.cli.data_commands import build_download_venue
from tradekit.config.loading import load_settings
from tradekit.events import PositionOpened, SignalGenerated
from tradekit.ids import StrategyIdResolver, VenueOrderId
from tradekit.runtime import RunMode
from tradekit.runtime.live import run_live
from tradekit.runtime.live_feeds import live_feeds
from tradekit.services.journal.store import SqlJournal
from tradekit.testing import strategy_config_from_dict

HOUR_MS = 3_600_000
START = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
SRC = Path(__file__).resolve().parents[2] / "src"
WAIT_SECONDS = 60


def strategy_data(strategy_id: str = "sma-bot") -> dict[str, Any]:
    """Buys on every candle its sma(5) has a value for; so one signal per processed candle."""
    return {
        "strategy_id": strategy_id,
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


def close_time(kline: Kline) -> datetime:
    return datetime.fromtimestamp(kline.open_ms / 1000, UTC) + timedelta(hours=1)


def ccxt_section(venue: FakeBinance) -> dict[str, Any]:
    return venue.ccxt_settings().model_dump(mode="json", exclude_none=True)


class TestDownloadClient:
    def test_data_download_builds_its_client_from_the_config_urls(self, venue: FakeBinance) -> None:
        venue.serve_history("BTC/USDT", "1h", flat_klines(START, 3, "1h"))
        download = build_download_venue(venue.ccxt_settings())
        rows = download.client.fetch_ohlcv("BTC/USDT", "1h", START, 10)
        assert [row[0] for row in rows] == [START, START + HOUR_MS, START + 2 * HOUR_MS]


def read_health(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def last_candle(path: Path) -> str | None:
    bots = read_health(path).get("bots", {})
    feeds = [feed for bot in bots.values() for feed in bot["feeds"]]
    return feeds[0]["last_candle"] if feeds else None


@pytest.mark.slow
class TestRunCommandOnTheVenue:
    def test_paper_run_trades_each_live_candle_once_in_order_and_never_the_warmup(
        self, venue: FakeBinance, tmp_path: Path
    ) -> None:
        klines = flat_klines(START, 40, "1h")
        history, live = klines[:30], klines[29:33]  # kline 29 forms while the run starts
        venue.serve_history("BTC/USDT", "1h", history)
        (tmp_path / "strategies").mkdir()
        (tmp_path / "strategies" / "bot.json").write_text(json.dumps(strategy_data()))
        (tmp_path / "config.json").write_text(
            json.dumps({"exchange": {"ccxt": ccxt_section(venue)}})
        )
        health = tmp_path / "health.json"
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("TRADEKIT_")
        }
        env["PYTHONPATH"] = str(SRC)
        process = subprocess.Popen(
            [
                sys.executable, "-m", "tradekit", "run", "--mode", "paper", "--source", "ccxt",
                "--exchange", "binance", "--no-sandbox", "--config", "config.json",
                "--strategies", "strategies", "--db", "sqlite:///journal.db",
                "--health-interval", "0.001", "--health-file", str(health),
            ],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            venue.wait_for_subscription("BTC/USDT", "1h")
            for kline in live:
                venue.push("BTC/USDT", "1h", kline, closed=True)
            venue.push("BTC/USDT", "1h", klines[33], closed=False)
            expected = datetime.fromtimestamp(live[-1].open_ms / 1000, UTC).isoformat()
            deadline = time.monotonic() + WAIT_SECONDS
            while last_candle(health) != expected and process.poll() is None:
                assert time.monotonic() < deadline, "the run did not process the live candles"
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, stderr
        assert "4 candles processed (stopped on request)" in " ".join(stdout.split())
        with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as journal:
            events = journal.events("sma-bot")
        signals = [event.ts for event in events if isinstance(event, SignalGenerated)]
        assert signals == [close_time(kline) for kline in live]
        assert [type(event).__name__ for event in events].count("PositionOpened") == 1

    def test_live_mode_on_a_file_source_is_still_refused(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "tradekit", "run", "--mode", "live", "--source", "file",
             "--data", "nowhere"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(SRC)},
            capture_output=True, text=True, timeout=WAIT_SECONDS,
        )  # fmt: skip
        assert result.returncode == 2
        assert "--mode live cannot run on --source file" in " ".join(result.stderr.split())


class TestLiveModeOnTheVenue:
    def test_live_orders_reach_the_venue_with_ids_naming_the_bot_after_the_banner(
        self, venue: FakeBinance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in [name for name in os.environ if name.startswith("TRADEKIT_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("TRADEKIT_LIVE_ORDERS_ENABLED", "true")
        monkeypatch.setenv("TRADEKIT_EXCHANGE__CCXT__API_KEY", "venue-key-1234")
        monkeypatch.setenv("TRADEKIT_EXCHANGE__CCXT__API_SECRET", "venue-secret")
        monkeypatch.chdir(tmp_path)
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"exchange": {"kind": "ccxt", "ccxt": ccxt_section(venue)}}))
        settings = load_settings(config, env_file=None)
        configs = [strategy_config_from_dict(strategy_data("live-bot"))]
        klines = flat_klines(START, 20, "1h")
        venue.serve_history("BTC/USDT", "1h", klines[:12])
        venue.serve_history("BTC/USDT", "1m", flat_klines(START, 1))  # market orders fill here
        stop = threading.Event()
        feeds = live_feeds(settings.exchange.ccxt, configs, stop=stop)
        announced: list[str] = []

        def pump() -> None:
            venue.wait_for_subscription("BTC/USDT", "1h")
            venue.push("BTC/USDT", "1h", klines[11], closed=True)
            venue.push("BTC/USDT", "1h", klines[12], closed=False)
            venue.wait_for_request("/api/v3/order")
            stop.set()

        pusher = threading.Thread(target=pump, daemon=True)
        pusher.start()
        try:
            summary = run_live(
                settings,
                configs,
                feeds,
                mode=RunMode.LIVE,
                journal=SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}"),
                stop=stop,
                announce=announced.append,
            )
        finally:
            feeds.close()
            pusher.join(WAIT_SECONDS)
        banner = announced[0]
        assert "LIVE TRADING" in banner
        assert "binance" in banner
        assert "****1234" in banner
        assert any("agree" in line for line in announced[1:]), announced
        assert summary.stopped
        assert summary.candles == 1
        assert summary.failed_orders == 0
        (order,) = venue.created_orders
        venue_id = VenueOrderId.parse(order["clientOrderId"])
        resolved = StrategyIdResolver(["live-bot", "other-bot"]).resolve(venue_id)
        assert resolved is not None
        assert resolved.strategy_id == "live-bot"
        with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as journal:
            events = journal.events("live-bot")
        # A live run stamps events with the wall clock: count them instead.
        assert [type(event) for event in events].count(PositionOpened) == 1
