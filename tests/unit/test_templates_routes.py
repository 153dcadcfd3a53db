"""``/api/strategies``: the template listing and one template's definitions, through the app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tradekit.service.app import create_app
from tradekit.services.journal.store import SqlJournal
from tradekit.templates import TemplateCatalog, load_templates

TOKEN = "a-test-token-of-enough-length"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as journal:
        yield TestClient(create_app(journal=journal, token=TOKEN), headers=AUTH)


class TestTemplateRoutes:
    def test_lists_every_bundled_template(self, client: TestClient) -> None:
        response = client.get("/api/strategies")
        assert response.status_code == 200
        ids = [item["template_id"] for item in response.json()]
        assert ids == ["bollinger", "dca", "ema-cross", "macd-dca", "rsi"]

    def test_one_template_has_definitions_and_schema(self, client: TestClient) -> None:
        body = client.get("/api/strategies/rsi").json()
        length = body["parameters"][0]
        assert (length["name"], length["type"], length["default"], length["minimum"]) == (
            "rsi_length",
            "integer",
            14,
            1,
        )
        assert body["params_schema"]["properties"]["rsi_length"]["minimum"] == 1

    def test_unknown_id_is_a_404_with_a_suggestion(self, client: TestClient) -> None:
        response = client.get("/api/strategies/rsii")
        assert response.status_code == 404
        assert response.json() == {
            "detail": "unknown template 'rsii'; did you mean 'rsi'?",
            "problems": [],
        }

    def test_the_token_is_needed(self, client: TestClient) -> None:
        assert client.get("/api/strategies", headers={"Authorization": ""}).status_code == 401

    def test_the_apps_catalog_is_served(self, client: TestClient, tmp_path: Path) -> None:
        template = {
            "template_id": "mine",
            "name": "Mine",
            "strategy": {"analyzers": [{"type": "time_interval", "params": {"every_bars": 3}}]},
            "parameters": [{"name": "every", "path": "analyzers[0].params.every_bars"}],
        }
        (tmp_path / "mine.json").write_text(json.dumps(template), encoding="utf-8")
        catalog: TemplateCatalog = load_templates(tmp_path)
        client.app.state.template_catalog = catalog  # type: ignore[attr-defined]
        assert client.get("/api/strategies/mine").json()["parameter_names"] == ["every"]

    def test_openapi_names_the_response_models(self, client: TestClient) -> None:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
        assert {"TemplateSummary", "TemplateDetail", "ParameterDefinition"} <= set(schemas)
