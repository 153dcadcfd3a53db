"""Live runs: refused without real exchange market data, announced by a banner, and
failed orders reported by the summary and the exit code."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ticker_strategies import ticker, ticker_data
from typer.testing import CliRunner

from tradekit.cli import app
from tradekit.data import CcxtPollingSource, FrameSource, SyntheticSource, synthetic_frame
from tradekit.domain import Candle, Fill, Order
from tradekit.errors import ConfigError, ExchangeError
from tradekit.runtime import RunMode
from tradekit.runtime.live import replay_source, run_live
from tradekit.services.exchange import CcxtExchange, PaperExchange
from tradekit.services.market.clock import ManualClock
from tradekit.testing import FakeExchange, settings_from_dict

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR_MS = 3_600_000
API_KEY = "live-key-0123456789"
ARMED_DICT: dict[str, Any] = {
    "exchange": {
        "kind": "ccxt",
        "ccxt": {"exchange_id": "binance", "api_key": API_KEY, "api_secret": "s", "sandbox": False},
    },
    "live_orders_enabled": True,
}
ARMED_ENV = {
    "TRADEKIT_EXCHANGE__KIND": "ccxt",
    "TRADEKIT_LIVE_ORDERS_ENABLED": "true",
    "TRADEKIT_EXCHANGE__CCXT__API_KEY": API_KEY,
    "TRADEKIT_EXCHANGE__CCXT__API_SECRET": "live-secret",
}


class FakeVenue:
    """A ccxt-like client with an hourly BTC/USDT history; ``timeline`` records each fetch."""

    id = "fakex"

    def __init__(self, clock: ManualClock, timeline: list[str]) -> None:
        self.clock = clock
        self.timeline = timeline

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[Any]]:
        self.timeline.append("fetch")
        start_ms = int(START.timestamp() * 1000)
        now_ms = int(self.clock.now().timestamp() * 1000)
        rows = []
        for hour in range((now_ms - start_ms) // HOUR_MS):
            close = 100.0 + (hour % 7)
            rows.append([start_ms + hour * HOUR_MS, close, close + 1, close - 1, close, 10.0])
        return [row for row in rows if since is None or row[0] >= since][: limit or None]


def live_source(timeline: list[str], hours: int = 30) -> CcxtPollingSource:
    clock = ManualClock(START + timedelta(hours=hours))
    return CcxtPollingSource(
        FakeVenue(clock, timeline), ["BTC/USDT"], "1h", since=START, max_polls=1, clock=clock
    )


@pytest.fixture
def no_ccxt_exchange(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records (and refuses) every attempt to build a CcxtExchange or send it an order."""
    calls: list[str] = []

    def refuse(self: CcxtExchange, *args: object, **kwargs: object) -> Any:
        calls.append("used")
        raise AssertionError("a CcxtExchange was built or used")

    monkeypatch.setattr(CcxtExchange, "__init__", refuse)
    monkeypatch.setattr(CcxtExchange, "submit", refuse)
    return calls


@pytest.fixture
def armed_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working folder with one ticker strategy, the environment armed for live trading."""
    for name in [name for name in os.environ if name.upper().startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    for name, value in ARMED_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "ticker.json").write_text(json.dumps(ticker_data("ticker")))
    return tmp_path


class TestLiveModeNeedsRealMarketData:
    def test_run_command_refuses_live_mode_with_exit_2(
        self, armed_folder: Path, no_ccxt_exchange: list[str]
    ) -> None:
        result = CliRunner().invoke(app, ["run", "--mode", "live", "--db", "sqlite:///j.db"])
        assert result.exit_code == 2
        message = " ".join(result.output.split())
        assert "--mode live needs real exchange market data: add --source ccxt" in message
        assert "Synthetic candles are never live" in message
        assert no_ccxt_exchange == []
        assert not (armed_folder / "j.db").exists()

    @pytest.mark.parametrize("kind", ["synthetic", "frames", "replay iterator", "list"])
    def test_run_live_refuses_every_source_but_real_exchange_data(
        self, kind: str, no_ccxt_exchange: list[str]
    ) -> None:
        frames = {("BTC/USDT", "1h"): synthetic_frame("BTC/USDT", "1h", 50, seed=3)}
        sources: dict[str, object] = {
            "synthetic": SyntheticSource(["BTC/USDT"], "1h", bars=50),
            "frames": FrameSource(frames),
            "replay iterator": replay_source([ticker("ticker")], 50, 3),
            "list": list(FrameSource(frames).stream()),
        }
        with pytest.raises(ConfigError, match="live mode needs real exchange market data"):
            run_live(
                settings_from_dict(ARMED_DICT),
                [ticker("ticker")],
                sources[kind],  # type: ignore[arg-type]
                mode=RunMode.LIVE,
            )
        assert no_ccxt_exchange == []

    def test_real_market_data_without_live_settings_is_refused_before_any_fetch(self) -> None:
        timeline: list[str] = []
        with pytest.raises(ConfigError, match="live_orders_enabled"):
            run_live(
                settings_from_dict({}),
                [ticker("ticker")],
                live_source(timeline),
                mode=RunMode.LIVE,
                exchange=FakeExchange(),
            )
        assert timeline == []

    def test_paper_mode_trades_on_paper_whatever_the_settings_say(
        self, no_ccxt_exchange: list[str]
    ) -> None:
        summary = run_live(
            settings_from_dict(ARMED_DICT),
            [ticker("ticker")],
            replay_source([ticker("ticker")], 60, 3),
            mode=RunMode.PAPER,
        )
        assert summary.candles == 60
        assert summary.report["ticker"]["trades"] > 0
        assert no_ccxt_exchange == []


class TestLiveBanner:
    def test_announced_before_the_first_candle_with_venue_account_and_strategies(self) -> None:
        timeline: list[str] = []
        banners: list[str] = []
        exchange = FakeExchange()

        def announce(text: str) -> None:
            timeline.append("banner")
            banners.append(text)

        summary = run_live(
            settings_from_dict(ARMED_DICT),
            [ticker("ticker"), ticker("other")],
            live_source(timeline),
            mode=RunMode.LIVE,
            exchange=exchange,
            announce=announce,
        )
        assert timeline[0] == "banner"
        assert "fetch" in timeline
        assert summary.candles == 30
        assert exchange.orders
        (banner,) = banners
        assert "REAL ORDERS" in banner
        assert "binance" in banner
        assert "PRODUCTION" in banner
        assert "API key ****6789" in banner
        assert API_KEY not in banner
        assert re.search(r"strategies:\s+2\b", banner)
        assert "fakex" in banner

    def test_printed_to_standard_error_by_default(self, capsys: pytest.CaptureFixture[str]) -> None:
        settings = settings_from_dict(
            {
                **ARMED_DICT,
                "exchange": {
                    **ARMED_DICT["exchange"],
                    "ccxt": {"api_key": API_KEY, "api_secret": "s", "sandbox": True},
                },
            }
        )
        run_live(
            settings,
            [ticker("ticker")],
            live_source([]),
            mode=RunMode.LIVE,
            exchange=FakeExchange(),
        )
        banner = capsys.readouterr().err
        assert "REAL ORDERS" in banner
        assert "sandbox" in banner


class TestFailedOrders:
    def test_summary_counts_failed_orders_per_strategy_and_in_total(self) -> None:
        exchange = FakeExchange()
        exchange.fail_next_submit("venue says no", times=3)
        summary = run_live(
            settings_from_dict({}),
            [ticker("ticker")],
            replay_source([ticker("ticker")], 60, 3),
            mode=RunMode.TEST,
            exchange=exchange,
        )
        assert summary.failed_orders == 3
        assert summary.report["ticker"]["failed_orders"] == 3

    def test_run_command_reports_failed_orders_and_exits_1(
        self, armed_folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def reject(
            self: PaperExchange, order: Order, candle: Candle, trigger_price: float | None = None
        ) -> list[Fill]:
            raise ExchangeError(f"paper exchange: order {order.order_id} rejected")

        monkeypatch.setattr(PaperExchange, "submit", reject)
        result = CliRunner().invoke(app, ["run", "--bars", "60", "--db", "sqlite:///j.db"])
        assert result.exit_code == 1, result.output
        found = re.search(r"(\d+) failed orders", result.output)
        assert found is not None, result.output
        with sqlite3.connect(armed_folder / "j.db") as connection:
            (stored,) = connection.execute(
                "SELECT COUNT(*) FROM events WHERE event_type = 'ActionFailed'"
            ).fetchone()
        assert int(found.group(1)) == stored > 0
