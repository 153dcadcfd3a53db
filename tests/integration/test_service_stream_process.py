"""``GET /api/stream`` of a real ``tradekit serve`` in a subprocess: the replay's events arrive
live, tagged and in seq order per bot; a reconnect with ``Last-Event-ID`` gets what followed,
none twice; and SIGTERM ends an open stream cleanly."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_service_process import AUTH, DEADLINE_SECONDS, serving, write_strategies

pytestmark = pytest.mark.slow


def stream_messages(answer: httpx.Response) -> Iterator[dict[str, Any]]:
    """The events of an open stream: ``id``, ``event`` and the decoded ``data``."""
    message: dict[str, Any] = {}
    for line in answer.iter_lines():
        if line == "":
            if "data" in message:
                yield message
            message = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            message[field] = json.loads(value) if field == "data" else value


def take(answer: httpx.Response, count: int) -> list[dict[str, Any]]:
    found = []
    for message in stream_messages(answer):
        found.append(message)
        if len(found) == count:
            break
    assert len(found) == count
    return found


def test_the_stream_follows_resumes_and_ends_with_the_service(tmp_path: Path) -> None:
    strategies = write_strategies(tmp_path)
    with serving(tmp_path, strategies, f"sqlite:///{tmp_path / 'journal.db'}") as server:
        client = httpx.Client(base_url=server.base_url, headers=AUTH, timeout=DEADLINE_SECONDS)
        with client.stream("GET", "/api/stream", params={"bot": "trader"}) as answer:
            assert answer.status_code == 200
            first = take(answer, 6)
        assert {m["data"]["strategy_id"] for m in first} == {"trader"}
        seqs = [m["data"]["seq"] for m in first]
        assert seqs == list(range(seqs[0], seqs[0] + 6))  # every event of the bot, in order
        assert all(m["event"] == m["data"]["type"] for m in first)

        # Reconnect after the third: the fourth comes next, then on without a gap.
        resume = {"Last-Event-ID": first[2]["id"]}
        with client.stream("GET", "/api/stream", params={"bot": "trader"}, headers=resume) as again:
            resumed = take(again, 5)
        assert [m["id"] for m in resumed[:3]] == [m["id"] for m in first[3:]]
        resumed_seqs = [m["data"]["seq"] for m in resumed]
        assert resumed_seqs == list(range(seqs[3], seqs[3] + 5))

        # What the stream sent is in the journal, as the events route reads it.
        page = server.get(f"/api/bots/trader/events?after_seq={seqs[0] - 1}&limit=6")
        assert [e["type"] for e in page["events"]] == [m["event"] for m in first]

        # SIGTERM: the open stream ends, and the server exits 0.
        with client.stream("GET", "/api/stream") as open_stream:
            assert open_stream.status_code == 200
            server.process.send_signal(signal.SIGTERM)
            list(stream_messages(open_stream))  # returns once the server ended the stream
        assert server.process.wait(timeout=DEADLINE_SECONDS) == 0
        client.close()
