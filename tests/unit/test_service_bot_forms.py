"""``POST /api/bots`` and ``PUT /api/bots/{id}``: bots made and changed from templates through
the API, over a journal on a temporary database; bad values answer 422 naming the field, the
value given and what was expected, with the messages a strategy file gets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tradekit.runtime.control import registered_config
from tradekit.service.app import create_app
from tradekit.services.journal.store import SqlJournal, StrategyStatus
from tradekit.templates import params_from_config

TOKEN = "a-test-token-of-enough-length"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqlJournal]:
    with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        yield opened


@pytest.fixture
def client(journal: SqlJournal) -> TestClient:
    return TestClient(create_app(journal=journal, token=TOKEN, change_timeout=0.0))


def new_rsi_bot(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "RSI on BTC",
        "template": "rsi",
        "params": {"rsi_length": 10},
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
    }
    body.update(changes)
    return body


class TestCreate:
    def test_a_bot_is_registered_from_its_template(
        self, client: TestClient, journal: SqlJournal
    ) -> None:
        answer = client.post("/api/bots", json=new_rsi_bot(), headers=AUTH)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["bot"]["id"] == "rsi-on-btc"
        assert body["bot"]["template"] == "rsi"
        assert body["change"]["action"] == "add"
        info = journal.strategy_info("rsi-on-btc")
        assert info is not None
        assert info.status is StrategyStatus.ACTIVE
        config = registered_config(info)
        assert params_from_config("rsi", config)["rsi_length"] == 10
        assert list(config.symbols) == ["BTC/USDT"]

    def test_start_false_registers_it_stopped(
        self, client: TestClient, journal: SqlJournal
    ) -> None:
        answer = client.post("/api/bots", json=new_rsi_bot(start=False), headers=AUTH)
        assert answer.status_code == 201
        assert answer.json()["bot"]["state"] == "disabled"
        info = journal.strategy_info("rsi-on-btc")
        assert info is not None
        assert info.status is StrategyStatus.DISABLED

    def test_a_value_out_of_range_names_the_field_the_value_and_the_limit(
        self, client: TestClient, journal: SqlJournal
    ) -> None:
        answer = client.post("/api/bots", json=new_rsi_bot(params={"rsi_length": 0}), headers=AUTH)
        assert answer.status_code == 422
        [problem] = answer.json()["problems"]
        assert problem["path"] == "params.rsi_length"
        assert problem["value"] == 0
        assert problem["expected"] == "must be an integer >= 1, got 0"
        assert journal.strategies() == []

    def test_bad_symbol_and_unknown_param_are_reported_together(self, client: TestClient) -> None:
        answer = client.post(
            "/api/bots",
            json=new_rsi_bot(symbols=["btc-usdt"], params={"rsi_lenght": 10}),
            headers=AUTH,
        )
        assert answer.status_code == 422
        problems = {problem["path"]: problem for problem in answer.json()["problems"]}
        assert "rsi_length" in problems["params.rsi_lenght"]["expected"]
        assert problems["symbols[0]"]["value"] == "btc-usdt"

    def test_an_unknown_template_is_a_422_at_template(self, client: TestClient) -> None:
        answer = client.post("/api/bots", json=new_rsi_bot(template="rsii"), headers=AUTH)
        assert answer.status_code == 422
        [problem] = answer.json()["problems"]
        assert (problem["path"], problem["value"]) == ("template", "rsii")
        assert "did you mean 'rsi'" in problem["expected"]

    def test_an_id_already_taken_is_a_409(self, client: TestClient) -> None:
        assert client.post("/api/bots", json=new_rsi_bot(), headers=AUTH).status_code == 201
        again = client.post("/api/bots", json=new_rsi_bot(), headers=AUTH)
        assert again.status_code == 409
        assert "already registered" in again.json()["detail"]

    def test_it_needs_the_token(self, client: TestClient, journal: SqlJournal) -> None:
        assert client.post("/api/bots", json=new_rsi_bot()).status_code == 401
        assert journal.strategies() == []


class TestUpdate:
    def test_a_parameter_changes_and_the_others_keep_their_values(
        self, client: TestClient, journal: SqlJournal
    ) -> None:
        client.post(
            "/api/bots", json=new_rsi_bot(params={"rsi_length": 10}, start=False), headers=AUTH
        )
        answer = client.put("/api/bots/rsi-on-btc", json={"params": {"oversold": 25}}, headers=AUTH)
        assert answer.status_code == 202, answer.text  # no engine runs: the change waits
        assert answer.json()["change"]["action"] == "update"
        info = journal.strategy_info("rsi-on-btc")
        assert info is not None
        params = params_from_config("rsi", registered_config(info))
        assert (params["rsi_length"], params["oversold"]) == (10, 25)
        assert info.status is StrategyStatus.DISABLED
        assert info.kind == "rsi"

    def test_a_bad_value_changes_nothing(self, client: TestClient, journal: SqlJournal) -> None:
        client.post("/api/bots", json=new_rsi_bot(), headers=AUTH)
        before = journal.strategy_info("rsi-on-btc")
        answer = client.put(
            "/api/bots/rsi-on-btc", json={"params": {"rsi_length": "ten"}}, headers=AUTH
        )
        assert answer.status_code == 422
        [problem] = answer.json()["problems"]
        assert (problem["path"], problem["value"]) == ("params.rsi_length", "ten")
        assert journal.strategy_info("rsi-on-btc") == before

    def test_an_unknown_bot_is_a_404(self, client: TestClient) -> None:
        answer = client.put("/api/bots/nope", json={"name": "x"}, headers=AUTH)
        assert answer.status_code == 404
