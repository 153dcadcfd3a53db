"""The bot service's figures and symbols routes over a journal the engine wrote on replayed
candles, and the cheap journal reads behind them and behind the bots list: each answers
what the read of every event (the way it was computed before) answers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ticker_strategies import ticker

from tradekit.config import TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.data import synthetic_candles
from tradekit.events import Event
from tradekit.insights import bot_equity, bot_stats, strategy_reports, symbol_exposures
from tradekit.runtime.bot_requests import disable_bot
from tradekit.runtime.engine import Engine
from tradekit.service.app import create_app
from tradekit.service.bots import BotDirectory
from tradekit.services.journal.store import RegistryChange, SqlJournal

TOKEN = "a-test-token-of-enough-length"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BTC, ETH = "BTC/USDT", "ETH/USDT"
CAP = 50_000.0
BOTS = ("btc-holder", "btc-trader", "pair-trader")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A journal of three bots after 80 candles of two symbols, and a change of each."""
    url = f"sqlite:///{tmp_path_factory.mktemp('figures') / 'journal.db'}"
    configs = [
        ticker("btc-trader", every=5, exit_offset=3),
        ticker("pair-trader", every=4, exit_offset=2, symbols=[BTC, ETH]),
        ticker("btc-holder", every=3, exit_offset=None, exit={"stop_loss_pct": 60}),
    ]
    candles = sorted(
        [*synthetic_candles(BTC, "1h", 80, seed=3), *synthetic_candles(ETH, "1h", 80, seed=4)],
        key=lambda candle: (candle.ts, candle.symbol),
    )
    with SqlJournal(url) as journal:
        shared = SharedContainer(settings=TradekitSettings(_env_file=None))
        engine = Engine(TradingOrchestratorFactory(shared), journal=journal)
        engine.load(configs)
        for candle in candles:
            engine.on_candle(candle)
        engine.shutdown()
        for strategy_id in (*BOTS, "btc-trader"):
            disable_bot(journal, strategy_id, "test")
    return url


@pytest.fixture
def journal(url: str) -> Iterator[SqlJournal]:
    with SqlJournal(url) as opened:
        yield opened


class EveryEventJournal(SqlJournal):
    """Reads as the figures were read before: every event decoded, filtered in Python."""

    def events(
        self,
        strategy_id: str,
        after_seq: int = 0,
        *,
        limit: int | None = None,
        types: Iterable[type[Event]] | None = None,
    ) -> list[Event]:
        return super().events(strategy_id, after_seq, limit=limit)

    def event_span(
        self, strategy_id: str, *, since: datetime | None = None
    ) -> tuple[datetime, datetime] | None:
        times = [
            event.ts for event in self.events(strategy_id) if since is None or event.ts >= since
        ]
        return (times[0], times[-1]) if times else None


@pytest.fixture
def every_event(url: str) -> Iterator[SqlJournal]:
    with EveryEventJournal(url) as opened:
        yield opened


def client(journal: SqlJournal, cap: float | None = CAP) -> TestClient:
    settings = TradekitSettings(_env_file=None, risk={"max_exposure_per_symbol": cap})
    return TestClient(create_app(journal=journal, token=TOKEN, settings=settings))


class TestCheapReadsAnswerTheSame:
    @pytest.mark.parametrize("strategy_id", BOTS)
    def test_bot_stats_equal_those_from_every_event(
        self, journal: SqlJournal, every_event: SqlJournal, strategy_id: str
    ) -> None:
        assert bot_stats(journal, strategy_id) == bot_stats(every_event, strategy_id)
        since = bot_equity(journal, strategy_id)[30][0] + timedelta(minutes=1)
        assert bot_stats(journal, strategy_id, since=since) == bot_stats(
            every_event, strategy_id, since=since
        )

    def test_strategy_reports_equal_those_from_every_event(
        self, journal: SqlJournal, every_event: SqlJournal
    ) -> None:
        reports = strategy_reports(journal)
        assert [report.strategy_id for report in reports] == list(BOTS)
        assert reports == strategy_reports(every_event)
        assert [report.events for report in reports] == [
            len(journal.events(strategy_id)) for strategy_id in BOTS
        ]

    def test_trades_equal_every_closed_position_in_the_events(
        self, journal: SqlJournal, every_event: SqlJournal
    ) -> None:
        for strategy_id in BOTS:
            cheap = BotDirectory(journal).trades(strategy_id)
            assert cheap == BotDirectory(every_event).trades(strategy_id)
        assert BotDirectory(journal).trades("btc-trader")

    def test_latest_changes_are_the_last_change_of_each_bot(self, journal: SqlJournal) -> None:
        folded: dict[str, RegistryChange] = {}
        for change in journal.registry_changes():
            folded[change.strategy_id] = change
        assert journal.latest_changes() == folded
        assert journal.latest_changes("btc-trader") == {"btc-trader": folded["btc-trader"]}
        assert journal.latest_changes("nobody") == {}

    def test_one_change_is_read_by_its_id(self, journal: SqlJournal) -> None:
        changes = journal.registry_changes()
        assert [journal.registry_change(change.change_id) for change in changes] == changes
        assert journal.registry_change(changes[-1].change_id + 1) is None

    def test_the_bots_list_equals_the_one_from_every_event(
        self, journal: SqlJournal, every_event: SqlJournal
    ) -> None:
        listed = BotDirectory(journal).bots()
        assert [bot.id for bot in listed] == list(BOTS)
        assert listed == BotDirectory(every_event).bots()


class TestStats:
    @pytest.mark.parametrize("strategy_id", BOTS)
    def test_answers_the_bots_statistics(self, journal: SqlJournal, strategy_id: str) -> None:
        answer = client(journal).get(f"/api/bots/{strategy_id}/stats", headers=AUTH)
        assert answer.status_code == 200
        stats = bot_stats(journal, strategy_id)
        body = answer.json()
        assert body["id"] == strategy_id
        assert body["return_pct"] == pytest.approx(stats.total_return_pct)
        assert body["max_drawdown_pct"] == pytest.approx(stats.max_drawdown_pct)
        assert body["win_rate_pct"] == stats.win_rate_pct
        assert body["trade_count"] == stats.trade_count
        assert body["exposure_pct"] == pytest.approx(stats.exposure_time_pct)
        assert {"sharpe", "sortino", "profit_factor", "buy_and_hold_return_pct"} <= set(body)

    def test_a_since_without_a_zone_is_read_as_utc(self, journal: SqlJournal) -> None:
        since = bot_equity(journal, "btc-trader")[40][0]
        naive = since.replace(tzinfo=None).isoformat()
        answers = [
            client(journal).get("/api/bots/btc-trader/stats", params={"since": when}, headers=AUTH)
            for when in (naive, since.isoformat())
        ]
        assert [answer.status_code for answer in answers] == [200, 200]
        assert answers[0].json() == answers[1].json()
        assert answers[0].json()["start"] == since.isoformat().replace("+00:00", "Z")

    def test_an_unknown_bot_is_404(self, journal: SqlJournal) -> None:
        answer = client(journal).get("/api/bots/btc-trade/stats", headers=AUTH)
        assert answer.status_code == 404
        assert "did you mean 'btc-trader'?" in answer.json()["detail"]

    def test_needs_the_token(self, journal: SqlJournal) -> None:
        assert client(journal).get("/api/bots/btc-trader/stats").status_code == 401


class TestEquity:
    def test_answers_the_equity_points(self, journal: SqlJournal) -> None:
        answer = client(journal).get(
            "/api/bots/pair-trader/equity", params={"max_points": 20}, headers=AUTH
        )
        assert answer.status_code == 200
        expected = bot_equity(journal, "pair-trader", max_points=20)
        points = answer.json()["points"]
        assert len(points) == len(expected) == 20
        assert [point["equity"] for point in points] == [value for _, value in expected]
        assert [datetime.fromisoformat(point["ts"]) for point in points] == [
            ts for ts, _ in expected
        ]

    def test_since_keeps_the_later_points(self, journal: SqlJournal) -> None:
        since = bot_equity(journal, "btc-holder", max_points=10_000)[50][0]
        answer = client(journal).get(
            "/api/bots/btc-holder/equity",
            params={"since": since.isoformat(), "max_points": 10_000},
            headers=AUTH,
        )
        points = answer.json()["points"]
        assert datetime.fromisoformat(points[0]["ts"]) == since
        assert len(points) == len(bot_equity(journal, "btc-holder", since=since, max_points=10_000))

    def test_too_few_points_is_422_naming_the_parameter(self, journal: SqlJournal) -> None:
        answer = client(journal).get("/api/bots/btc-holder/equity?max_points=1", headers=AUTH)
        assert answer.status_code == 422
        [problem] = answer.json()["problems"]
        assert problem["path"] == "query.max_points"
        assert problem["value"] == "1"

    def test_an_unknown_bot_is_404(self, journal: SqlJournal) -> None:
        assert client(journal).get("/api/bots/nobody/equity", headers=AUTH).status_code == 404


def by_id(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {bot["id"]: bot for bot in item["bots"]}


class TestSymbols:
    def test_lists_each_symbols_bots_positions_and_exposure_as_the_report(
        self, journal: SqlJournal
    ) -> None:
        answer = client(journal).get("/api/symbols", headers=AUTH)
        assert answer.status_code == 200
        body = answer.json()
        expected = symbol_exposures(strategy_reports(journal), CAP)
        assert [item["symbol"] for item in body] == [BTC, ETH] == [e.symbol for e in expected]
        for item, report in zip(body, expected, strict=True):
            assert list(by_id(item)) == report.strategies
            assert item["exposure"] == pytest.approx(report.exposure)
            assert item["cap"] == CAP
            assert item["cap_used_pct"] == pytest.approx(report.cap_used_pct)
            for bot, reported in zip(item["bots"], report.bots, strict=True):
                assert bot["exposure"] == pytest.approx(reported.exposure)
                assert len(bot["positions"]) == len(reported.positions)
                assert bot["state"] == "disabled"
        holder = by_id(body[0])["btc-holder"]
        assert holder["positions"][0]["symbol"] == BTC
        assert holder["exposure"] > 0

    def test_without_a_cap_the_cap_is_null(self, journal: SqlJournal) -> None:
        [btc, _] = client(journal, cap=None).get("/api/symbols", headers=AUTH).json()
        assert btc["cap"] is None
        assert btc["cap_used_pct"] is None

    @pytest.mark.parametrize("written", ["BTC-USDT", "BTC%2FUSDT"])
    def test_one_symbol_by_its_path_form_or_url_encoded(
        self, journal: SqlJournal, written: str
    ) -> None:
        answer = client(journal).get(f"/api/symbols/{written}", headers=AUTH)
        assert answer.status_code == 200
        assert answer.json()["symbol"] == BTC
        assert answer.json()["path_symbol"] == "BTC-USDT"
        assert list(by_id(answer.json())) == ["btc-holder", "btc-trader", "pair-trader"]

    def test_an_unknown_symbol_is_404_with_a_suggestion(self, journal: SqlJournal) -> None:
        answer = client(journal).get("/api/symbols/BTC-USDC", headers=AUTH)
        assert answer.status_code == 404
        assert answer.json()["detail"] == (
            "no bot trades symbol 'BTC-USDC' (symbols: BTC/USDT, ETH/USDT); "
            "did you mean 'BTC/USDT' (BTC-USDT in a path)?"
        )

    def test_needs_the_token(self, journal: SqlJournal) -> None:
        assert client(journal).get("/api/symbols").status_code == 401
        assert client(journal).get("/api/symbols/BTC-USDT").status_code == 401
