"""The bot service's cached answers stay fresh: after a change asked through the API, one
written by another process (``tradekit strategies``), the engine's write-back, and a new view."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from test_service_api import AUTH, T0, TOKEN, FakeEngine, bot_config, running_view

from tradekit.domain import Position, Side
from tradekit.events import Event, PositionClosed, PositionOpened
from tradekit.insights import BotStats, StatsTracker, bot_stats
from tradekit.runtime.bot_requests import add_bot, disable_bot
from tradekit.runtime.engine_view import EngineView
from tradekit.service import bots as bots_module
from tradekit.service.app import create_app
from tradekit.service.routers.engine import engine_out
from tradekit.services.journal.store import SqlJournal


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def journal(database: str) -> Iterator[SqlJournal]:
    with SqlJournal(database) as opened:
        for strategy_id in ("alpha", "beta"):
            add_bot(opened, bot_config(strategy_id), "test")
        yield opened


class ViewEngine(FakeEngine):
    """A fake engine whose view a test replaces, as the engine publishes a new one."""

    def publish(self, view: EngineView) -> None:
        self._view = view


def running_client(journal: SqlJournal) -> TestClient:
    """A client of the API over ``journal``, with an engine running alpha (not beta)."""
    return TestClient(
        create_app(journal=journal, token=TOKEN, engine_link=FakeEngine(journal, running_view()))
    )


def bots_of(client: TestClient) -> dict[str, dict[str, Any]]:
    answer = client.get("/api/bots", headers=AUTH)
    assert answer.status_code == 200
    return {bot["id"]: bot for bot in answer.json()}


class TestBotsList:
    def test_the_cached_json_is_the_models_answer(self, journal: SqlJournal) -> None:
        app = create_app(
            journal=journal, token=TOKEN, engine_link=FakeEngine(journal, running_view())
        )
        directory = app.state.directory
        expected = [bot.model_dump(mode="json") for bot in directory.bots()]
        assert list(bots_of(TestClient(app)).values()) == expected

    def test_a_stop_asked_through_the_api_is_listed_at_once(self, journal: SqlJournal) -> None:
        client = TestClient(
            create_app(
                journal=journal, token=TOKEN, engine_link=FakeEngine(journal, running_view())
            )
        )
        assert bots_of(client)["alpha"]["last_change"]["action"] == "add"
        client.post("/api/bots/alpha/stop", headers=AUTH)
        client.post("/api/bots/beta/stop", headers=AUTH)
        bots = bots_of(client)
        assert (bots["alpha"]["last_change"]["action"], bots["alpha"]["last_change"]["state"]) == (
            "disable",
            "applied",
        )
        assert bots["beta"]["state"] == "disabled"

    def test_a_change_by_another_process_is_listed(
        self, journal: SqlJournal, database: str
    ) -> None:
        client = TestClient(create_app(journal=journal, token=TOKEN))
        assert bots_of(client)["beta"]["state"] == "active"
        script = (
            "import sys\n"
            "from tradekit.runtime.bot_requests import disable_bot\n"
            "from tradekit.services.journal.store import SqlJournal\n"
            "with SqlJournal(sys.argv[1]) as other: disable_bot(other, 'beta', 'cli')"
        )
        subprocess.run([sys.executable, "-c", script, database], check=True)
        beta = bots_of(client)["beta"]
        assert (beta["state"], beta["last_change"]["by"]) == ("disabled", "cli")

    def test_the_engines_write_back_is_listed(self, journal: SqlJournal, database: str) -> None:
        client = TestClient(
            create_app(
                journal=journal, token=TOKEN, engine_link=FakeEngine(journal, running_view())
            )
        )
        with SqlJournal(database) as cli:
            asked = disable_bot(cli, "alpha", "cli")
        assert bots_of(client)["alpha"]["last_change"]["state"] == "pending"
        with SqlJournal(database) as engine_side:
            engine_side.settle_change(asked.change_id, "applied", datetime.now(UTC))
        assert bots_of(client)["alpha"]["last_change"]["state"] == "applied"

    def test_a_new_engine_view_is_listed(self, journal: SqlJournal) -> None:
        engine = ViewEngine(journal, running_view())
        client = TestClient(create_app(journal=journal, token=TOKEN, engine_link=engine))
        assert bots_of(client)["alpha"]["realized_pnl"] == 5.0
        view = running_view()
        alpha = dataclasses.replace(view.bots["alpha"], realized_pnl=7.5)
        engine.publish(dataclasses.replace(view, bots=MappingProxyType({"alpha": alpha})))
        assert bots_of(client)["alpha"]["realized_pnl"] == 7.5

    def test_an_unchanged_registry_and_view_are_serialized_once(self, journal: SqlJournal) -> None:
        view = running_view()
        beta = dataclasses.replace(view.bots["alpha"], strategy_id="beta", name="beta")
        both = dataclasses.replace(view, bots=MappingProxyType({**view.bots, "beta": beta}))
        directory = create_app(
            journal=journal, token=TOKEN, engine_link=FakeEngine(journal, both)
        ).state.directory
        assert directory.bots_json() is directory.bots_json()

    def test_a_bot_summed_from_its_journal_is_read_again(self, journal: SqlJournal) -> None:
        """A bot the engine does not hold may change in its journal with the registry unchanged."""
        client = TestClient(
            create_app(
                journal=journal, token=TOKEN, engine_link=FakeEngine(journal, running_view())
            )
        )
        assert bots_of(client)["beta"]["open_positions"] == 0
        journal.upsert_positions(
            "beta", [Position("beta-pos-1", "beta", "BTC/USDT", Side.LONG, 2.0, 100.0, T0)]
        )
        journal.commit()
        assert bots_of(client)["beta"]["open_positions"] == 1


class TestEngineView:
    def test_the_engine_answer_is_serialized_once_per_view_and_follows_a_new_one(
        self, journal: SqlJournal
    ) -> None:
        engine = ViewEngine(journal, running_view())
        app = create_app(journal=journal, token=TOKEN, engine_link=engine)
        client = TestClient(app)
        first = client.get("/api/engine", headers=AUTH).json()
        assert first["candles"] == 12
        directory = app.state.directory
        assert directory.view_json(engine_out) is directory.view_json(engine_out)
        engine.publish(dataclasses.replace(running_view(), candles=13))
        assert client.get("/api/engine", headers=AUTH).json()["candles"] == 13


class TestNoWorkerThread:
    def test_the_bots_list_and_the_engine_are_answered_on_the_event_loop(
        self, journal: SqlJournal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        client = running_client(journal)

        def no_thread(*args: object, **kwargs: object) -> None:
            raise AssertionError("a worker thread was asked for")

        monkeypatch.setattr(anyio.to_thread, "run_sync", no_thread)
        assert set(bots_of(client)) == {"alpha", "beta"}
        assert client.get("/api/engine", headers=AUTH).json()["running"] is True


def round_trip(strategy_id: str) -> list[Event]:
    """A position of ``strategy_id`` opened and closed an hour later."""
    common: dict[str, Any] = {
        "strategy_id": strategy_id,
        "position_id": "p1",
        "symbol": "BTC/USDT",
        "side": Side.LONG,
        "quantity": 1.0,
    }
    return [
        PositionOpened(
            ts=T0, seq=1, price=100.0, fee=0.0, stop_loss=None, take_profit=None, **common
        ),
        PositionClosed(
            ts=T0 + timedelta(hours=1),
            seq=2,
            avg_entry_price=100.0,
            exit_price=110.0,
            fees=0.0,
            realized_pnl=10.0,
            reason="signal",
            bars_held=1,
            **common,
        ),
    ]


class CountingStats:
    """Counts the statistics computed: by ``bot_stats`` or by a ``StatsTracker``."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, journal: SqlJournal, strategy_id: str, **options: Any) -> BotStats:
        self.calls += 1
        return bot_stats(journal, strategy_id, **options)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> CountingStats:
    counting = CountingStats()
    tracked = StatsTracker.stats

    def tracker_stats(tracker: StatsTracker, *args: Any, **options: Any) -> BotStats:
        counting.calls += 1
        return tracked(tracker, *args, **options)

    monkeypatch.setattr(bots_module, "bot_stats", counting)
    monkeypatch.setattr(StatsTracker, "stats", tracker_stats)
    return counting


def stats_of(client: TestClient, strategy_id: str, since: str | None = None) -> dict[str, Any]:
    query = "" if since is None else f"?since={since}"
    answer = client.get(f"/api/bots/{strategy_id}/stats{query}", headers=AUTH)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


class TestStats:
    def test_a_running_bot_is_computed_once_per_engine_view(
        self, journal: SqlJournal, counted: CountingStats
    ) -> None:
        client = running_client(journal)
        assert stats_of(client, "alpha") == stats_of(client, "alpha")
        assert counted.calls == 1

    def test_a_new_view_of_the_bot_computes_them_again(
        self, journal: SqlJournal, counted: CountingStats
    ) -> None:
        engine = ViewEngine(journal, running_view())
        client = TestClient(create_app(journal=journal, token=TOKEN, engine_link=engine))
        stats_of(client, "alpha")
        view = running_view()
        alpha = dataclasses.replace(view.bots["alpha"], last_candle=T0 + timedelta(hours=1))
        engine.publish(dataclasses.replace(view, bots=MappingProxyType({"alpha": alpha})))
        stats_of(client, "alpha")
        assert counted.calls == 2

    def test_a_view_after_a_candle_of_another_series_computes_them_again(
        self, journal: SqlJournal, counted: CountingStats
    ) -> None:
        """The bot's own view is the same object, but its series' price marks may have moved
        (a bot the engine holds without running it is not built again on a candle)."""
        first = running_view()
        engine = ViewEngine(journal, first)
        client = TestClient(create_app(journal=journal, token=TOKEN, engine_link=engine))
        stats_of(client, "alpha")
        engine.publish(dataclasses.replace(first, candles=13))
        stats_of(client, "alpha")
        assert counted.calls == 2

    def test_another_period_computes_them_again(
        self, journal: SqlJournal, counted: CountingStats
    ) -> None:
        client = running_client(journal)
        stats_of(client, "alpha")
        stats_of(client, "alpha", since="2024-01-01T00:00:00Z")
        assert counted.calls == 2

    def test_a_bot_the_engine_does_not_run_is_read_from_its_journal_every_time(
        self, journal: SqlJournal, counted: CountingStats
    ) -> None:
        client = running_client(journal)
        before = stats_of(client, "beta")
        journal.record(round_trip("beta"))
        journal.commit()
        after = stats_of(client, "beta")
        assert counted.calls == 2
        assert (before["trade_count"], after["trade_count"]) == (0, 1)


class TestRunningBotStats:
    def test_follow_what_its_journal_adds_as_bot_stats_computes_them(
        self, journal: SqlJournal
    ) -> None:
        engine = ViewEngine(journal, running_view())
        directory = create_app(journal=journal, token=TOKEN, engine_link=engine).state.directory
        before = directory.stats("alpha")
        journal.record_price_mark("BTC/USDT", "1h", T0, 100.0)
        journal.record(round_trip("alpha"))
        journal.commit()
        engine.publish(dataclasses.replace(running_view(), candles=13))
        after = directory.stats("alpha")
        assert after == bot_stats(journal, "alpha")
        assert (before.trade_count, after.trade_count) == (0, 1)
