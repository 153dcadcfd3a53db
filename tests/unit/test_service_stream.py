"""``GET /api/stream`` through FastAPI's TestClient, and the event stream behind it: numbered
events, filters, resuming after ``Last-Event-ID``, resets, heartbeats and closing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tradekit.domain import Side
from tradekit.events import Event, PositionOpened, StopLossUpdated
from tradekit.runtime.waking import Doorbell
from tradekit.service.app import create_app
from tradekit.service.event_stream import EventStream, EventStreamFeed, event_filter
from tradekit.services.bus import InMemoryEventBus
from tradekit.services.journal.store import SqlJournal

TOKEN = "a-test-token-of-enough-length"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def opened(strategy_id: str, seq: int) -> PositionOpened:
    return PositionOpened(
        ts=T0, strategy_id=strategy_id, seq=seq, position_id=f"{strategy_id}-{seq}",
        symbol="BTC/USDT", side=Side.LONG, quantity=1.0, price=100.0, fee=0.1,
        stop_loss=None, take_profit=None,
    )  # fmt: skip


def stop_moved(strategy_id: str, seq: int) -> StopLossUpdated:
    return StopLossUpdated(
        ts=T0, strategy_id=strategy_id, seq=seq, position_id=f"{strategy_id}-1",
        symbol="BTC/USDT", old_stop=None, new_stop=95.0, reason="trailing",
    )  # fmt: skip


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqlJournal]:
    with SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}") as opened_journal:
        yield opened_journal


def client_for(journal: SqlJournal, stream: EventStream, heartbeat: float = 30.0) -> TestClient:
    app = create_app(journal=journal, token=TOKEN, event_stream=stream, stream_heartbeat=heartbeat)
    return TestClient(app)


def messages(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The server-sent messages in ``lines``: ``id``, ``event`` and the decoded ``data``;
    comments as ``{"comment": ...}``."""
    message: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if message:
                yield message
            message = {}
        elif line.startswith(":"):
            message.setdefault("comment", line[1:].strip())
        else:
            field, _, value = line.partition(": ")
            message[field] = json.loads(value) if field == "data" else value
    if message:
        yield message


def events_of(
    client: TestClient, headers: dict[str, str] | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Every event message of a stream that ends (its EventStream is closed)."""
    with client.stream(
        "GET", "/api/stream", headers={**AUTH, **(headers or {})}, params=params
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        return [m for m in messages(answer.iter_lines()) if "event" in m]


class TestStreamRoute:
    def test_a_missing_or_wrong_token_gets_401(self, journal: SqlJournal) -> None:
        client = client_for(journal, EventStream())
        assert client.get("/api/stream").status_code == 401
        wrong = client.get("/api/stream", headers={"Authorization": "Bearer wrong-token-xxxxxxxx"})
        assert wrong.status_code == 401
        assert wrong.json()["detail"] == "missing or wrong bearer token"

    def test_resuming_after_an_id_gives_what_followed_in_order_and_once(
        self, journal: SqlJournal
    ) -> None:
        stream = EventStream(epoch="e1")
        stream.publish([opened("alpha", 1), stop_moved("alpha", 2), opened("beta", 1)])
        stream.close()
        found = events_of(client_for(journal, stream), {"Last-Event-ID": "e1-1"})
        assert [m["id"] for m in found] == ["e1-2", "e1-3"]
        assert [(m["data"]["strategy_id"], m["data"]["seq"]) for m in found] == [
            ("alpha", 2),
            ("beta", 1),
        ]
        first = found[0]
        assert first["event"] == "StopLossUpdated"
        assert first["data"]["type"] == "StopLossUpdated"
        assert first["data"]["ts"] == T0.isoformat()
        assert first["data"]["data"]["new_stop"] == 95.0
        assert "seq" not in first["data"]["data"]

    def test_filters_by_bot_and_by_type(self, journal: SqlJournal) -> None:
        stream = EventStream(epoch="e1")
        stream.publish(
            [opened("alpha", 1), stop_moved("alpha", 2), opened("beta", 1), opened("gamma", 1)]
        )
        stream.close()
        client = client_for(journal, stream)
        resume = {"Last-Event-ID": "e1-0"}
        by_bot = events_of(client, resume, bot=["beta", "gamma"])
        assert [m["data"]["strategy_id"] for m in by_bot] == ["beta", "gamma"]
        by_type = events_of(client, resume, type="StopLossUpdated")
        assert [m["id"] for m in by_type] == ["e1-2"]
        both = events_of(client, resume, bot="alpha", type="PositionOpened")
        assert [m["id"] for m in both] == ["e1-1"]

    @pytest.mark.parametrize("last_id", ["other-3", "e1-1", "e1-99", "garbage"])
    def test_an_id_not_held_starts_with_a_reset_and_then_follows_live(
        self, journal: SqlJournal, last_id: str
    ) -> None:
        stream = EventStream(capacity=2, epoch="e1")
        stream.publish([opened("alpha", seq) for seq in range(1, 6)])  # keeps 4 and 5
        stream.close()
        found = events_of(client_for(journal, stream), {"Last-Event-ID": last_id})
        assert [m["event"] for m in found] == ["reset"]
        assert found[0]["id"] == "e1-5"

    def test_the_oldest_id_still_followed_by_held_events_resumes(self, journal: SqlJournal) -> None:
        stream = EventStream(capacity=2, epoch="e1")
        stream.publish([opened("alpha", seq) for seq in range(1, 6)])
        stream.close()
        found = events_of(client_for(journal, stream), {"Last-Event-ID": "e1-3"})
        assert [m["id"] for m in found] == ["e1-4", "e1-5"]

    def test_a_live_stream_gets_events_as_they_are_published_and_ends_on_close(
        self, journal: SqlJournal
    ) -> None:
        stream = EventStream(epoch="e1")
        stream.publish([opened("alpha", 1)])  # before the client came: not sent
        client = client_for(journal, stream)
        with client.stream("GET", "/api/stream", headers=AUTH) as answer:
            lines = answer.iter_lines()
            received = messages(lines)
            assert next(received) == {"retry": "2000", "comment": "connected"}
            stream.publish([opened("beta", 1)])
            message = next(received)
            assert (message["id"], message["data"]["strategy_id"]) == ("e1-2", "beta")
            stream.close()
            assert list(received) == []

    def test_a_live_stream_that_missed_events_gets_a_reset_then_follows(
        self, journal: SqlJournal
    ) -> None:
        stream = EventStream(epoch="e1")
        client = client_for(journal, stream)
        with client.stream("GET", "/api/stream", headers=AUTH) as answer:
            received = messages(answer.iter_lines())
            next(received)  # connected
            stream.publish([opened("alpha", 1)])
            assert next(received)["id"] == "e1-1"
            stream.lose(3)  # the engine's process dropped three before they came
            stream.publish([opened("alpha", 5)])
            reset = next(received)
            assert (reset["event"], reset["id"]) == ("reset", "e1-1")
            assert next(received)["id"] == "e1-5"
            stream.close()
            assert list(received) == []

    def test_an_idle_stream_gets_keepalive_comments(self, journal: SqlJournal) -> None:
        stream = EventStream(epoch="e1")
        client = client_for(journal, stream, heartbeat=0.01)
        with client.stream("GET", "/api/stream", headers=AUTH) as answer:
            received = messages(answer.iter_lines())
            next(received)  # connected
            assert next(received) == {"comment": "keepalive"}
            stream.close()

    def test_the_stream_is_in_the_openapi_schema_as_event_stream(self, journal: SqlJournal) -> None:
        schema = client_for(journal, EventStream()).get("/openapi.json").json()
        route = schema["paths"]["/api/stream"]["get"]
        assert "text/event-stream" in route["responses"]["200"]["content"]
        assert {p["name"] for p in route["parameters"]} >= {"bot", "type", "last-event-id"}


class TestEventStream:
    def test_keeps_at_most_its_capacity_numbering_on(self) -> None:
        stream = EventStream(capacity=3, epoch="e")
        stream.publish([opened("alpha", seq) for seq in range(1, 8)])
        read = stream.read(4, event_filter([], []))
        assert [item.number for item in read.events] == [5, 6, 7]
        assert (read.cursor, read.reset, read.closed) == (7, False, False)

    def test_events_lost_on_the_way_reset_every_stream_behind_them(self) -> None:
        stream = EventStream(epoch="e")
        stream.publish([opened("alpha", 1), opened("alpha", 2)])
        stream.lose(5)
        waiting = stream.read(2, event_filter([], []))
        assert (waiting.events, waiting.cursor, waiting.reset) == ((), 7, True)
        stream.publish([opened("alpha", 8)])
        behind = stream.read(2, event_filter([], []))
        assert [item.number for item in behind.events] == [8]
        assert behind.reset
        assert stream.start_cursor("e-2") == (8, True)
        assert not stream.read(7, event_filter([], [])).reset

    def test_a_fresh_stream_starts_at_the_newest_event(self) -> None:
        stream = EventStream(epoch="e")
        stream.publish([opened("alpha", 1), opened("alpha", 2)])
        assert stream.start_cursor(None) == (2, False)
        assert stream.start_cursor("e-2") == (2, False)
        assert stream.start_cursor("e-3") == (2, True)


class FakeShared:
    def __init__(self, bus: InMemoryEventBus) -> None:
        self.event_bus = lambda: bus


class FakeFactory:
    def __init__(self, bus: InMemoryEventBus) -> None:
        self.shared = FakeShared(bus)


class FakeEngine:
    def __init__(self, bus: InMemoryEventBus) -> None:
        self.factory = FakeFactory(bus)


class TestEventStreamFeed:
    def test_events_reach_the_stream_when_the_candle_is_done_not_when_published(self) -> None:
        bus = InMemoryEventBus()
        stream = EventStream(epoch="e")
        feed = EventStreamFeed(stream)
        feed.started(FakeEngine(bus), lambda: T0, Doorbell())  # type: ignore[arg-type]
        events: list[Event] = [opened("alpha", 1), stop_moved("alpha", 2)]
        for event in events:
            bus.publish(event)
        assert stream.read(0, event_filter([], [])).events == ()
        feed.polled([])
        assert [item.event for item in stream.read(0, event_filter([], [])).events] == events
        bus.publish(opened("beta", 1))
        feed.stopped()
        assert stream.read(2, event_filter([], [])).cursor == 3


class TestWebPage:
    def test_the_page_and_its_files_are_served_without_a_token(self, journal: SqlJournal) -> None:
        client = client_for(journal, EventStream())
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script src="/web/app.js"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/web/app.js").headers["content-type"].startswith("text/javascript")
        assert client.get("/web/app.css").headers["content-type"].startswith("text/css")

    @pytest.mark.parametrize("name", ["index.html", "..%2Fapp.py", "missing.js"])
    def test_no_other_file_can_be_asked_for(self, journal: SqlJournal, name: str) -> None:
        answer = client_for(journal, EventStream()).get(f"/web/{name}")
        assert answer.status_code == 404
        assert set(answer.json()) == {"detail", "problems"}

    def test_the_page_is_not_in_the_openapi_schema(self, journal: SqlJournal) -> None:
        schema = client_for(journal, EventStream()).get("/openapi.json").json()
        assert "/" not in schema["paths"]
        assert not any(path.startswith("/web") for path in schema["paths"])
