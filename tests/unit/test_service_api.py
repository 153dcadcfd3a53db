"""The bot service's API through FastAPI's TestClient, over a journal on a temporary database
and a fake engine: auth, error shapes, reading bots and asking for changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tradekit.domain import Position, Side
from tradekit.runtime.bot_requests import add_bot
from tradekit.runtime.engine_view import BotView, EngineView, FeedView, PositionView
from tradekit.service.app import create_app
from tradekit.services.journal.store import SqlJournal
from tradekit.strategy_state import StrategyState
from tradekit.testing import strategy_config_from_dict

TOKEN = "a-test-token-of-enough-length"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bot_config(strategy_id: str) -> Any:
    return strategy_config_from_dict(
        {
            "strategy_id": strategy_id,
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "analyzers": [{"type": "time_interval", "params": {"every_bars": 3}}],
        }
    )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqlJournal]:
    with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        for strategy_id in ("alpha", "beta"):
            add_bot(opened, bot_config(strategy_id), "test")
        opened.upsert_positions(
            "beta", [Position("beta-pos-1", "beta", "BTC/USDT", Side.LONG, 2.0, 100.0, T0)]
        )
        opened.commit()
        yield opened


class FakeEngine:
    """An engine link whose 'engine' settles every pending change when the API waits for it."""

    def __init__(self, journal: SqlJournal, view: EngineView | None = None) -> None:
        self.journal = journal
        self._view = view
        self.polls = 0
        self.polls_asked = 0
        self.stopped = False

    def view(self) -> EngineView | None:
        return self._view

    def ask_poll(self) -> None:
        self.polls_asked += 1

    def wait_for_poll(self, after: int, timeout: float) -> bool:
        for change in self.journal.registry_changes(pending_only=True):
            self.journal.settle_change(change.change_id, "applied", datetime.now(UTC))
        self.polls += 1
        return True

    def stop(self) -> None:
        self.stopped = True


def running_view() -> EngineView:
    alpha = BotView(
        strategy_id="alpha",
        name="alpha",
        symbols=("BTC/USDT",),
        timeframe="1h",
        state=StrategyState.ACTIVE,
        open_positions=(
            PositionView("BTC/USDT", Side.LONG, 1.0, 100.0, T0, 110.0, 10.0, 95.0, None),
        ),
        realized_pnl=5.0,
        unrealized_pnl=10.0,
        last_candle=T0,
        errors=0,
    )
    return EngineView(
        mode="paper",
        source="synthetic",
        running=True,
        published_at=T0,
        candles=12,
        feeds=(FeedView("BTC/USDT", "1h", T0, 3600.0),),
        bots=MappingProxyType({"alpha": alpha}),
    )


def client_for(journal: SqlJournal, engine: FakeEngine | None = None) -> TestClient:
    return TestClient(create_app(journal=journal, token=TOKEN, engine_link=engine))


class TestAuth:
    def test_health_is_open(self, journal: SqlJournal) -> None:
        answer = client_for(journal).get("/api/health")
        assert answer.status_code == 200
        assert answer.json()["status"] == "ok"

    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}],
        ids=["missing", "wrong", "not-bearer"],
    )
    def test_a_missing_or_wrong_token_gets_401_and_nothing_else(
        self, journal: SqlJournal, headers: dict[str, str]
    ) -> None:
        client = client_for(journal)
        for method, path in [
            ("GET", "/api/bots"),
            ("GET", "/api/bots/alpha"),
            ("POST", "/api/bots/alpha/stop"),
            ("GET", "/api/engine"),
        ]:
            answer = client.request(method, path, headers=headers)
            assert answer.status_code == 401, (method, path)
            assert answer.json() == {"detail": "missing or wrong bearer token", "problems": []}
            assert answer.headers["www-authenticate"] == "Bearer"

    def test_a_wrong_token_with_a_bad_query_is_still_401(self, journal: SqlJournal) -> None:
        answer = client_for(journal).get("/api/bots/alpha/events?limit=0")
        assert answer.status_code == 401

    def test_no_cors_header_unless_origins_are_configured(self, journal: SqlJournal) -> None:
        origin = {"Origin": "https://elsewhere.example"}
        closed = client_for(journal).get("/api/health", headers=origin)
        assert "access-control-allow-origin" not in closed.headers
        app = create_app(journal=journal, token=TOKEN, cors_origins=["https://elsewhere.example"])
        opened = TestClient(app).get("/api/health", headers=origin)
        assert opened.headers["access-control-allow-origin"] == "https://elsewhere.example"


class TestErrorShapes:
    def test_an_unknown_bot_is_404_with_a_suggestion(self, journal: SqlJournal) -> None:
        answer = client_for(journal).get("/api/bots/alpah", headers=AUTH)
        assert answer.status_code == 404
        assert answer.json() == {
            "detail": "unknown strategy 'alpah' in the registry; did you mean 'alpha'?",
            "problems": [],
        }

    def test_a_bad_query_value_is_422_naming_path_value_and_expectation(
        self, journal: SqlJournal
    ) -> None:
        answer = client_for(journal).get("/api/bots/alpha/events?limit=0&after_seq=x", headers=AUTH)
        assert answer.status_code == 422
        problems = {problem["path"]: problem for problem in answer.json()["problems"]}
        assert problems["query.limit"]["value"] == "0"
        assert "greater than or equal to 1" in problems["query.limit"]["expected"]
        assert (
            problems["query.after_seq"]["expected"]
            == "a valid integer, unable to parse string as an integer"
        )

    @pytest.mark.parametrize("method", ["POST", "PUT"])
    def test_a_body_that_is_not_utf8_is_422_naming_the_body(
        self, journal: SqlJournal, method: str
    ) -> None:
        path = "/api/bots" if method == "POST" else "/api/bots/alpha"
        answer = client_for(journal).request(
            method,
            path,
            content=b"\xff{",
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert answer.status_code == 422
        [problem] = answer.json()["problems"]
        assert problem["path"] == "body"
        assert problem["expected"].startswith("a JSON document in UTF-8")

    def test_an_unknown_route_is_404_in_the_same_shape(self, journal: SqlJournal) -> None:
        answer = client_for(journal).get("/api/nothing", headers=AUTH)
        assert answer.status_code == 404
        assert set(answer.json()) == {"detail", "problems"}

    def test_deleting_a_bot_with_positions_is_409_with_the_cli_message(
        self, journal: SqlJournal
    ) -> None:
        answer = client_for(journal).delete("/api/bots/beta", headers=AUTH)
        assert answer.status_code == 409
        detail = answer.json()["detail"]
        assert "strategy 'beta' holds 1 open position(s) (BTC/USDT long 2)" in detail
        assert "close_positions=true" in detail

    def test_resuming_a_bot_not_quarantined_is_409_with_the_cli_message(
        self, journal: SqlJournal
    ) -> None:
        answer = client_for(journal).post("/api/bots/alpha/resume", headers=AUTH)
        assert answer.status_code == 409
        assert answer.json()["detail"] == (
            "strategy 'alpha' is active, not quarantined; only a quarantined strategy can be "
            "resumed"
        )

    def test_every_error_answer_in_the_schema_is_the_error_body(self, journal: SqlJournal) -> None:
        schema = client_for(journal).get("/openapi.json").json()
        checked = 0
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                for status, response in operation["responses"].items():
                    if status.startswith(("4", "5")):
                        reference = response["content"]["application/json"]["schema"]["$ref"]
                        assert reference.endswith("/ErrorBody"), (path, status)
                        checked += 1
        assert checked > 20

    def test_the_openapi_page_is_served(self, journal: SqlJournal) -> None:
        answer = client_for(journal).get("/docs")
        assert answer.status_code == 200
        assert "swagger" in answer.text.lower()


class TestReading:
    def test_without_an_engine_bots_come_from_the_journal(self, journal: SqlJournal) -> None:
        answer = client_for(journal).get("/api/bots", headers=AUTH)
        assert answer.status_code == 200
        bots = {bot["id"]: bot for bot in answer.json()}
        assert set(bots) == {"alpha", "beta"}
        assert bots["beta"]["open_positions"] == 1
        assert bots["beta"]["state"] == "active"
        assert bots["alpha"]["symbols"] == ["BTC/USDT"]
        assert bots["alpha"]["last_change"]["action"] == "add"

    def test_a_running_bot_comes_from_the_engine_view(self, journal: SqlJournal) -> None:
        client = client_for(journal, FakeEngine(journal, running_view()))
        bot = client.get("/api/bots/alpha", headers=AUTH).json()
        assert bot["realized_pnl"] == 5.0
        assert bot["unrealized_pnl"] == 10.0
        assert bot["positions"][0]["last_price"] == 110.0
        assert bot["config"]["strategy_id"] == "alpha"
        engine = client.get("/api/engine", headers=AUTH).json()
        assert engine["running"] is True
        assert engine["bots_by_state"]["active"] == 1
        assert engine["feeds"][0]["lag_seconds"] == 3600.0

    def test_events_are_paged_after_a_seq(self, journal: SqlJournal) -> None:
        from tradekit.events import StrategyLoaded

        journal.record(
            [
                StrategyLoaded(
                    ts=T0, strategy_id="alpha", seq=seq, name="a", symbols=("X/Y",), timeframe="1h"
                )
                for seq in range(1, 6)
            ]
        )
        journal.commit()
        client = client_for(journal)
        first = client.get("/api/bots/alpha/events?limit=2", headers=AUTH).json()
        assert [event["seq"] for event in first["events"]] == [1, 2]
        assert first["more"] is True
        rest = client.get(
            f"/api/bots/alpha/events?after_seq={first['next_after_seq']}&limit=10", headers=AUTH
        ).json()
        assert [event["seq"] for event in rest["events"]] == [3, 4, 5]
        assert rest["more"] is False
        assert rest["events"][0]["type"] == "StrategyLoaded"


class TestControl:
    def test_without_an_engine_a_stop_is_202_pending(self, journal: SqlJournal) -> None:
        answer = client_for(journal).post("/api/bots/alpha/stop", headers=AUTH)
        assert answer.status_code == 202
        body = answer.json()
        assert body["change"]["state"] == "pending"
        assert body["change"]["action"] == "disable"
        assert body["change"]["by"].startswith("api")
        assert body["bot"]["state"] == "disabled"

    def test_a_stop_the_engine_applied_is_200_with_its_outcome(self, journal: SqlJournal) -> None:
        answer = client_for(journal, FakeEngine(journal, running_view())).post(
            "/api/bots/alpha/stop?close_positions=true", headers=AUTH
        )
        assert answer.status_code == 200
        change = answer.json()["change"]
        assert (change["state"], change["outcome"], change["close_positions"]) == (
            "applied",
            "applied",
            True,
        )

    def test_a_stop_has_the_engine_look_at_the_registry_at_once(self, journal: SqlJournal) -> None:
        engine = FakeEngine(journal, running_view())
        answer = client_for(journal, engine).post("/api/bots/alpha/stop", headers=AUTH)
        assert answer.status_code == 200
        assert engine.polls_asked == 1

    def test_engine_stop_asks_the_engine_to_stop(self, journal: SqlJournal) -> None:
        engine = FakeEngine(journal)
        answer = client_for(journal, engine).post("/api/engine/stop", headers=AUTH)
        assert answer.status_code == 202
        assert engine.stopped

    def test_engine_stop_without_an_engine_is_409(self, journal: SqlJournal) -> None:
        answer = client_for(journal).post("/api/engine/stop", headers=AUTH)
        assert answer.status_code == 409
