"""schemathesis over the bot service's own OpenAPI schema: every operation, called with the
token and generated values (valid and not), never answers 5xx, and every answer is one
the schema documents (status code, content type and body).

The app runs over a journal of real bots (one holding a position) and an engine link
that settles every change at once and whose stop stops nothing, so destructive calls
(stop, delete, engine stop) exercise their paths without ending the app under test. Its
event stream is closed, so each call to the stream answers and ends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from ticker_strategies import ticker

from tradekit.config import TradekitSettings
from tradekit.domain import Position, Side
from tradekit.runtime.bot_requests import add_bot
from tradekit.runtime.engine_view import EngineView
from tradekit.service.app import create_app
from tradekit.service.event_stream import EventStream
from tradekit.services.journal.store import SqlJournal

TOKEN = "a-test-token-of-enough-length"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class SettlingEngine:
    """An engine link that applies nothing but settles each change it is asked to wait for."""

    def __init__(self, journal: SqlJournal) -> None:
        self.journal = journal
        self.polls = 0

    def view(self) -> EngineView | None:
        return None

    def ask_poll(self) -> None:
        """The change is settled when the app waits for it."""

    def wait_for_poll(self, after: int, timeout: float) -> bool:
        for change in self.journal.registry_changes(pending_only=True):
            self.journal.settle_change(change.change_id, "applied", datetime.now(UTC))
        self.polls += 1
        return True

    def stop(self) -> None:
        """Stopping is acknowledged; the app under test keeps serving."""


def app_over_bots() -> FastAPI:
    """The app over an in-memory journal of two bots, one holding a position."""
    journal = SqlJournal("sqlite://")
    for strategy_id in ("alpha", "beta"):
        add_bot(journal, ticker(strategy_id), "test")
    opened_at = datetime(2024, 1, 1, tzinfo=UTC)
    journal.upsert_positions(
        "beta", [Position("beta-1", "beta", "BTC/USDT", Side.LONG, 2.0, 100.0, opened_at)]
    )
    journal.commit()
    # A closed stream answers what it holds and ends, as when the service stops: an open one
    # would keep every generated call to GET /api/stream waiting for events.
    stream = EventStream()
    stream.close()
    return create_app(
        journal=journal,
        token=TOKEN,
        engine_link=SettlingEngine(journal),
        settings=TradekitSettings(_env_file=None),
        change_timeout=0.1,
        event_stream=stream,
    )


# Loaded when the module is collected: schemathesis makes one test per operation from it.
schema = schemathesis.openapi.from_asgi("/openapi.json", app_over_bots())


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_documented_and_never_5xx(case: Any) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS)
