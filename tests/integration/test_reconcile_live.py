"""Reconciliation of a venue account with the bots' books: at the start of a live run,
and through ``tradekit reconcile`` (adopt, flatten). The venue is a fake ccxt client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from ticker_strategies import ticker
from typer.testing import CliRunner

from tradekit.cli import app, reconcile_command
from tradekit.config.settings import TradekitSettings
from tradekit.data import CcxtPollingSource
from tradekit.errors import StrategyError
from tradekit.events import VenueHoldingAdopted
from tradekit.ids import ClientOrderId, StrategyIdResolver, VenueOrderId, venue_id_rules
from tradekit.runtime import RunMode
from tradekit.runtime.live import LiveRunSummary, run_live
from tradekit.runtime.reconcile import compare, registry_view
from tradekit.runtime.reconcile_actions import adopt_holding
from tradekit.services.exchange import CcxtExchange
from tradekit.services.journal.store import SqlJournal
from tradekit.services.market.clock import ManualClock
from tradekit.testing import settings_from_dict

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR_MS = 3_600_000
PRICE = 100.0
LONG_ID = "btc-momentum-breakout-strategy-v2"  # too long for Binance: sent as its tag
ARMED: dict[str, Any] = {
    "exchange": {
        "kind": "ccxt",
        "ccxt": {"exchange_id": "binance", "api_key": "k", "api_secret": "s", "sandbox": True},
    },
    "live_orders_enabled": True,
}


@pytest.fixture(autouse=True)
def quiet_after_cli() -> Iterator[None]:
    """The launcher logs to the stream a CliRunner closes: stop tradekit's records after."""
    yield
    logger.disable("tradekit")


class FakeCcxtVenue:
    """A ccxt-like spot venue: constant hourly candles, market orders filled at ``PRICE``
    that move the balances, open orders as given; records orders and any cancel."""

    id = "fakex"

    def __init__(self, balances: dict[str, float], open_orders: list[dict[str, Any]] | None = None):
        self.balances = dict(balances)
        self.orders: list[tuple[str, str, float, dict[str, Any]]] = []
        self.open = list(open_orders or [])
        self.cancelled: list[str] = []
        self.hours = 30

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[Any]]:
        start_ms = int(START.timestamp() * 1000)
        rows = [
            [start_ms + hour * HOUR_MS, PRICE, 101.0, 99.0, PRICE, 10.0]
            for hour in range(self.hours)
        ]
        return [row for row in rows if since is None or row[0] >= since][: limit or None]

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        params = dict(params or {})
        self.orders.append((symbol, side, amount, params))
        base = symbol.split("/")[0]
        sign = 1 if side == "buy" else -1
        self.balances[base] = self.balances.get(base, 0.0) + sign * amount
        self.balances["USDT"] = self.balances.get("USDT", 0.0) - sign * amount * PRICE
        return {
            "id": f"v{len(self.orders)}",
            "clientOrderId": params.get("clientOrderId"),
            "filled": amount,
            "average": PRICE,
            "fee": {"cost": 0.0, "currency": "USDT"},
        }

    def fetch_balance(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"total": dict(self.balances)}

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        return list(self.open)

    def cancel_order(self, order_id: str, symbol: str | None = None) -> None:
        self.cancelled.append(order_id)


def open_order(
    venue_id: str, client_order_id: str | None, symbol: str = "BTC/USDT"
) -> dict[str, Any]:
    return {
        "id": venue_id,
        "clientOrderId": client_order_id,
        "symbol": symbol,
        "side": "buy",
        "amount": 0.1,
        "remaining": 0.1,
    }


def live_run(
    venue: FakeCcxtVenue,
    bots: list[str],
    symbols: dict[str, str],
    journal: SqlJournal | None = None,
    announced: list[str] | None = None,
) -> LiveRunSummary:
    settings = settings_from_dict(ARMED)
    clock = ManualClock(START + timedelta(hours=venue.hours))
    source = CcxtPollingSource(
        venue, sorted(set(symbols.values())), "1h", since=START, max_polls=1, clock=clock
    )
    exchange = CcxtExchange(settings.exchange, True, venue)
    return run_live(
        settings,
        [ticker(bot, symbols=[symbols[bot]]) for bot in bots],
        source,
        mode=RunMode.LIVE,
        exchange=exchange,
        journal=journal,
        announce=(announced if announced is not None else []).append,
    )


class TestAtTheStartOfALiveRun:
    def test_a_mismatch_keeps_entries_off_for_that_assets_bots_only(self) -> None:
        venue = FakeCcxtVenue({"BTC": 0.3, "USDT": 10_000.0})
        announced: list[str] = []
        summary = live_run(
            venue,
            ["btc-bot", "eth-bot"],
            {"btc-bot": "BTC/USDT", "eth-bot": "ETH/USDT"},
            announced=announced,
        )
        assert summary.report["btc-bot"]["trades"] == 0
        assert summary.report["btc-bot"]["open_positions"] == 0
        assert summary.report["eth-bot"]["trades"] > 0
        assert {symbol for symbol, *_ in venue.orders} == {"ETH/USDT"}
        text = "\n".join(announced)
        assert "BTC: the venue holds 0.3, the books hold 0 (no bot holds any)" in text
        assert "difference 0.3; entries stay off for btc-bot;" in text
        assert "agree: ETH" in text
        assert "quote balance (not compared): USDT 10000" in text

    def test_after_a_restart_books_agree_and_every_order_maps_to_its_bot(
        self, tmp_path: Path
    ) -> None:
        venue = FakeCcxtVenue({"USDT": 10_000.0})
        symbols = {LONG_ID: "BTC/USDT", "eth-bot": "ETH/USDT"}
        url = f"sqlite:///{tmp_path / 'journal.db'}"
        with SqlJournal(url) as journal:
            journal.acquire_writer()
            first = live_run(venue, list(symbols), symbols, journal)
        assert first.report[LONG_ID]["trades"] > 0
        sent = [params["clientOrderId"] for *_, params in venue.orders]
        with SqlJournal(url, read_only=True) as journal:
            resolver = StrategyIdResolver(journal.strategy_ids())
            recorded = {
                (order.strategy_id, ClientOrderId.parse(order.order_id).number)
                for bot in symbols
                for order in journal.orders(bot)
            }
        attributed = {tuple(resolver.resolve(VenueOrderId.parse(text)) or ()) for text in sent}
        assert attributed == recorded
        assert any(text.startswith("TH") for text in sent)  # the long id went as its tag

        rules = venue_id_rules("binance")
        mine = VenueOrderId.encode(ClientOrderId(LONG_ID, 999), rules)
        gone = VenueOrderId.encode(ClientOrderId("gone-bot", 4), rules)
        venue.open = [open_order("o1", mine), open_order("o2", gone), open_order("o3", None)]
        venue.hours = 40
        sent_before = len(venue.orders)
        announced: list[str] = []
        with SqlJournal(url) as journal:
            journal.acquire_writer()
            second = live_run(venue, list(symbols), symbols, journal, announced)
        text = "\n".join(announced)
        assert "MISMATCH" not in text
        assert f"open orders of {LONG_ID}: 1" in text
        unknown = {
            line.split()[3]: line for line in announced[-1].splitlines() if "UNKNOWN" in line
        }
        assert sorted(unknown) == ["o2", "o3"]
        assert "bot 'gone-bot' no longer exists; left open, not cancelled" in unknown["o2"]
        assert "not placed by tradekit; left open, not cancelled" in unknown["o3"]
        assert venue.cancelled == []
        assert second.report[LONG_ID]["trades"] > first.report[LONG_ID]["trades"]
        # The open order's number is the venue's: the bot's next orders are numbered after it.
        numbers = [
            resolved.number
            for *_, params in venue.orders[sent_before:]
            if (resolved := resolver.resolve(VenueOrderId.parse(params["clientOrderId"])))
            and resolved.strategy_id == LONG_ID
        ]
        assert numbers
        assert min(numbers) == 1000


@pytest.fixture
def venue_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in [name for name in os.environ if name.upper().startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TRADEKIT_EXCHANGE__KIND", "ccxt")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def journal_with_btc_position(tmp_path: Path, venue: FakeCcxtVenue) -> str:
    """A journal where btc-bot and eth-bot traded on ``venue`` and btc-bot holds BTC."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    symbols = {"btc-bot": "BTC/USDT", "eth-bot": "ETH/USDT"}
    venue.hours = 31  # the ticker buys every 3 bars and sells 2 later: it ends holding
    with SqlJournal(url) as journal:
        journal.acquire_writer()
        live_run(venue, list(symbols), symbols, journal)
        assert journal.open_positions("btc-bot")
    return url


def use_venue(monkeypatch: pytest.MonkeyPatch, venue: FakeCcxtVenue) -> None:
    def exchange(settings: TradekitSettings) -> CcxtExchange:
        return CcxtExchange(settings.exchange, settings.live_orders_enabled, venue)

    monkeypatch.setattr(reconcile_command, "venue_exchange", exchange)


class TestReconcileCommand:
    def test_shows_the_difference_and_exits_1(
        self, venue_folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        venue = FakeCcxtVenue({"USDT": 10_000.0})
        url = journal_with_btc_position(venue_folder, venue)
        held = venue.balances["BTC"]
        venue.balances["BTC"] += 0.25
        use_venue(monkeypatch, venue)
        result = CliRunner().invoke(app, ["reconcile", "--db", url])
        assert result.exit_code == 1, result.output
        output = " ".join(result.output.split())
        assert (
            f"BTC: the venue holds {held + 0.25:.10g}, the books hold {held:.10g} "
            f"(btc-bot {held:.10g})" in output
        )

    def test_adopt_writes_the_venue_quantity_into_the_bot_with_who_asked(
        self, venue_folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        venue = FakeCcxtVenue({"USDT": 10_000.0})
        url = journal_with_btc_position(venue_folder, venue)
        venue.balances["BTC"] += 0.25
        sent = len(venue.orders)
        use_venue(monkeypatch, venue)
        result = CliRunner().invoke(
            app,
            [
                "reconcile",
                "--db",
                url,
                "--adopt",
                "BTC",
                "--into",
                "btc-bot",
                "--price",
                "99",
                "--by",
                "ops@desk",
            ],
        )
        assert result.exit_code == 0, result.output
        assert "agree: BTC, ETH" in result.output
        with SqlJournal(url, read_only=True) as journal:
            adopted = [e for e in journal.events("btc-bot") if isinstance(e, VenueHoldingAdopted)]
            (position,) = journal.open_positions("btc-bot")
            traded, books, known = registry_view(journal)
        assert len(adopted) == 1
        assert (adopted[0].by, adopted[0].asset, adopted[0].quantity_change) == (
            "ops@desk",
            "BTC",
            pytest.approx(0.25),
        )
        assert position.quantity == pytest.approx(venue.balances["BTC"])
        assert len(venue.orders) == sent  # adopting sends nothing
        again = compare("v", venue.balances, [], books, traded, StrategyIdResolver(known))
        assert again.agrees

    def test_adopt_into_a_bot_not_trading_the_asset_is_refused(
        self, venue_folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        venue = FakeCcxtVenue({"USDT": 10_000.0})
        url = journal_with_btc_position(venue_folder, venue)
        venue.balances["BTC"] += 0.25
        with SqlJournal(url) as journal:
            journal.acquire_writer()
            traded, books, known = registry_view(journal)
            (difference,) = compare(
                "v", venue.balances, [], books, traded, StrategyIdResolver(known)
            ).differences
            with pytest.raises(StrategyError, match="trades 0 symbols with base BTC"):
                adopt_holding(
                    settings_from_dict({}), journal, difference, "eth-bot", price=1.0, by="me"
                )

    def test_flatten_is_refused_without_live_orders_and_sends_nothing(
        self, venue_folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        venue = FakeCcxtVenue({"USDT": 10_000.0})
        url = journal_with_btc_position(venue_folder, venue)
        venue.balances["BTC"] += 0.25
        sent = len(venue.orders)
        use_venue(monkeypatch, venue)
        result = CliRunner().invoke(app, ["reconcile", "--db", url, "--flatten", "BTC", "--yes"])
        assert result.exit_code == 2, result.output
        assert "live orders are disabled" in " ".join(result.output.split())
        assert len(venue.orders) == sent

    def test_flatten_asks_then_sells_the_difference_at_market(
        self, venue_folder: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        venue = FakeCcxtVenue({"USDT": 10_000.0})
        url = journal_with_btc_position(venue_folder, venue)
        venue.balances["BTC"] += 0.25
        sent = len(venue.orders)
        use_venue(monkeypatch, venue)
        monkeypatch.setenv("TRADEKIT_LIVE_ORDERS_ENABLED", "true")
        declined = CliRunner().invoke(
            app, ["reconcile", "--db", url, "--flatten", "BTC"], input="n\n"
        )
        assert "sell 0.25 BTC/USDT at market" in declined.output
        assert len(venue.orders) == sent
        result = CliRunner().invoke(app, ["reconcile", "--db", url, "--flatten", "BTC", "--yes"])
        assert result.exit_code == 0, result.output
        (symbol, side, amount, params) = venue.orders[-1]
        assert (symbol, side, amount) == ("BTC/USDT", "sell", pytest.approx(0.25))
        assert params["clientOrderId"].startswith("tkflat")
        assert "agree: BTC, ETH" in result.output
