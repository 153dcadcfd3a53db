"""The pipe between the service's two processes: ``EngineRelay`` on the engine's side,
``RemoteEngine`` on the API's, over a real ``multiprocessing`` pipe (both ends here).

What the API reports must be what the engine holds: the same bots, states,
positions and feeds; a bot the engine dropped is dropped; a route that waits for a
look at the registry sees the view that look made; the events in their order.
Either side ending ends the other.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from types import MappingProxyType

import pytest
from test_engine_view import bot_config_data

from tradekit.config import TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.domain import Candle, Direction
from tradekit.events import Event, SignalGenerated
from tradekit.runtime.engine import Engine
from tradekit.runtime.engine_view import BotView, EngineView, EngineViewPublisher
from tradekit.runtime.waking import Doorbell
from tradekit.service.engine_messages import ApiFailed, ApiReady, EngineUpdate
from tradekit.service.engine_relay import EngineRelay
from tradekit.service.event_stream import EventStream
from tradekit.service.remote_engine import RemoteEngine
from tradekit.strategy_state import StrategyState
from tradekit.testing import strategy_config_from_dict

T0 = datetime(2024, 1, 1, tzinfo=UTC)
WAIT = 10.0


@dataclass
class Linked:
    """An engine with its publisher and relay, and the API's remote view of it."""

    engine: Engine
    publisher: EngineViewPublisher
    relay: EngineRelay
    remote: RemoteEngine
    stream: EventStream
    stops: list[str] = field(default_factory=list)

    def candle(self, index: int) -> None:
        candle = Candle(
            symbol="BTC/USDT",
            timeframe="1h",
            ts=T0 + timedelta(hours=index),
            open=100.0 + index,
            high=101.0 + index,
            low=99.0 + index,
            close=100.5 + index,
            volume=1.0,
        )
        self.engine.on_candle(candle)
        self.publisher.candle(candle, 0.001 * (index + 1))
        self.relay.candle(candle, 0.001 * (index + 1))

    def poll(self, changed: list[str]) -> None:
        self.publisher.polled(changed)
        self.relay.polled(changed)

    def settled_view(self) -> EngineView:
        """The API's view once it caught up with everything the engine published."""
        wanted = self.publisher.latest()
        assert wanted is not None
        deadline = threading.Event()
        for _ in range(int(WAIT / 0.01)):
            seen = self.remote.view()
            if seen is not None and seen.candles == wanted.candles and same_bots(seen, wanted):
                return seen
            deadline.wait(0.01)
        raise AssertionError(f"the API's view never caught up: {self.remote.view()}")


def same_bots(seen: EngineView, wanted: EngineView) -> bool:
    return dict(seen.bots) == dict(wanted.bots)


@pytest.fixture
def linked() -> Iterator[Linked]:
    engine = Engine(
        TradingOrchestratorFactory(SharedContainer(settings=TradekitSettings(_env_file=None)))
    )
    engine.load([strategy_config_from_dict(bot_config_data(i)) for i in ("alpha", "beta")])
    publisher = EngineViewPublisher("paper", "file")
    engine_end, api_end = multiprocessing.get_context("spawn").Pipe(duplex=True)
    stops: list[str] = []
    relay = EngineRelay(engine_end, publisher, lambda: stops.append("stop"))
    stream = EventStream()
    remote = RemoteEngine(api_end, stream)
    relay.start()
    remote.start()
    publisher.started(engine, lambda: T0, Doorbell())
    relay.started(engine, lambda: T0, Doorbell())
    yield Linked(engine, publisher, relay, remote, stream, stops)
    close(relay, remote, engine_end, api_end)


def close(
    relay: EngineRelay, remote: RemoteEngine, engine_end: Connection, api_end: Connection
) -> None:
    """Both ends as the service closes them: each once the thread reading it ended."""
    relay.close()
    assert remote.wait_ended(WAIT)
    api_end.close()
    assert relay.wait_api_closed(WAIT)
    engine_end.close()


class TestTheViewCrossesWhole:
    def test_the_first_view_shows_every_bot_as_the_engine_holds_it(self, linked: Linked) -> None:
        assert linked.remote.wait_for_first_view(WAIT)
        seen = linked.settled_view()
        assert set(seen.bots) == {"alpha", "beta"}
        assert seen.mode == "paper"
        assert seen.source == "file"
        assert seen.running

    def test_candles_move_feeds_durations_and_bots_as_in_the_engine(self, linked: Linked) -> None:
        for index in range(30):
            linked.candle(index)
        seen = linked.settled_view()
        wanted = linked.publisher.latest()
        assert wanted is not None
        assert seen.feeds == wanted.feeds
        assert seen.candle_seconds == wanted.candle_seconds
        assert len(seen.candle_seconds) == 30
        assert seen.bots["alpha"].last_candle == T0 + timedelta(hours=29)

    def test_a_disabled_bot_shows_disabled_and_a_removed_one_leaves(self, linked: Linked) -> None:
        linked.candle(0)
        linked.engine.disable("alpha", "asked")
        linked.poll(["alpha"])
        assert linked.settled_view().bots["alpha"].state is StrategyState.DISABLED
        linked.engine.unload("alpha", reason="removed")
        linked.poll(["alpha"])
        assert set(linked.settled_view().bots) == {"beta"}

    def test_a_stopped_engine_shows_not_running(self, linked: Linked) -> None:
        linked.publisher.stopped()
        linked.relay.stopped()
        for _ in range(int(WAIT / 0.01)):
            seen = linked.remote.view()
            if seen is not None and not seen.running:
                break
            threading.Event().wait(0.01)
        seen = linked.remote.view()
        assert seen is not None
        assert not seen.running
        # A route waiting for a look at the registry does not wait for an engine that stopped.
        assert linked.remote.wait_for_poll(linked.remote.polls + 5, WAIT)


class TestLooksAtTheRegistry:
    def test_a_route_asking_for_a_look_gets_it_and_then_sees_its_change(
        self, linked: Linked
    ) -> None:
        assert linked.remote.wait_for_first_view(WAIT)
        asked = threading.Event()
        linked.publisher.ask_poll = asked.set  # type: ignore[method-assign]
        polls = linked.remote.polls
        linked.remote.ask_poll()
        assert asked.wait(WAIT), "the engine was not asked to look at the registry"
        linked.engine.disable("beta", "asked")
        linked.poll(["beta"])
        assert linked.remote.wait_for_poll(polls, WAIT)
        seen = linked.remote.view()
        assert seen is not None
        assert seen.bots["beta"].state is StrategyState.DISABLED

    def test_the_poll_count_never_runs_ahead_of_the_view_it_made(self) -> None:
        """The engine may finish a look between the relay's two reads; the count the API gets
        must then be the older one, never the newer count with the older view."""
        source = RacingEngine()
        engine_end, api_end = multiprocessing.get_context("spawn").Pipe(duplex=True)
        relay = EngineRelay(engine_end, source, lambda: None)
        remote = RemoteEngine(api_end, EventStream())
        seen: list[tuple[int, int]] = []
        remote_apply = remote._apply

        def apply(update: EngineUpdate) -> None:
            remote_apply(update)
            view = remote.view()
            assert view is not None
            seen.append((remote.polls, int(view.bots["bot"].errors)))

        remote._apply = apply  # type: ignore[method-assign]
        relay.start()
        remote.start()
        for _ in range(20):
            before = len(seen)
            relay.polled(["bot"])
            for _ in range(int(WAIT / 0.005)):
                if len(seen) > before:
                    break
                threading.Event().wait(0.005)
        close(relay, remote, engine_end, api_end)
        assert len(seen) >= 20
        # The view made by look n carries errors == n: a count is never ahead of its view.
        assert all(errors >= polls for polls, errors in seen), seen


class RacingEngine:
    """A view source whose engine finishes a look at the registry each time its view is read:
    it publishes the look's view, then counts the look (as ``EngineViewPublisher`` does)."""

    def __init__(self) -> None:
        self._polls = 0
        self._view = view_after(0)

    @property
    def polls(self) -> int:
        return self._polls

    def latest(self) -> EngineView | None:
        view = self._view
        self._view = view_after(self._polls + 1)
        self._polls += 1
        return view

    def ask_poll(self) -> None:
        return None


def view_after(looks: int) -> EngineView:
    """The view made by the engine's look number ``looks``: its bot has as many errors."""
    return view_of({"bot": bot_view("bot", looks)})


def view_of(bots: dict[str, BotView]) -> EngineView:
    """A running paper engine's view holding ``bots``."""
    return EngineView(
        mode="paper",
        source="file",
        running=True,
        published_at=T0,
        candles=0,
        feeds=(),
        bots=MappingProxyType(dict(bots)),
    )


def bot_view(strategy_id: str, errors: int) -> BotView:
    return BotView(
        strategy_id=strategy_id,
        name=strategy_id,
        symbols=("BTC/USDT",),
        timeframe="1h",
        state=StrategyState.ACTIVE,
        open_positions=(),
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        last_candle=None,
        errors=errors,
    )


class TestEvents:
    def test_committed_events_reach_the_stream_in_order(self, linked: Linked) -> None:
        events = [signal(n) for n in range(1, 251)]
        for start in range(0, 250, 50):
            linked.relay.publish(events[start : start + 50])
            linked.candle(start // 50)
        for _ in range(int(WAIT / 0.01)):
            if linked.stream.read(0, lambda event: True).cursor >= 250:
                break
            threading.Event().wait(0.01)
        found = linked.stream.read(0, lambda event: True)
        assert [item.event for item in found.events] == events

    def test_events_dropped_for_a_slow_api_make_its_streams_start_over(self) -> None:
        engine_end, api_end = multiprocessing.get_context("spawn").Pipe(duplex=True)
        relay = EngineRelay(engine_end, FixedViews(), lambda: None, capacity=5)
        stream = EventStream(epoch="e")
        remote = RemoteEngine(api_end, stream)
        # Nothing is sent yet: the API is too slow to take any of these in time.
        relay.publish([signal(n) for n in range(1, 9)])
        relay.started(None, lambda: T0, Doorbell())  # type: ignore[arg-type]
        relay.start()
        remote.start()
        for _ in range(int(WAIT / 0.01)):
            if stream.read(0, lambda event: True).cursor >= 8:
                break
            threading.Event().wait(0.01)
        found = stream.read(0, lambda event: True)
        assert [item.event.seq for item in found.events] == [4, 5, 6, 7, 8]
        assert found.cursor == 8
        assert stream.start_cursor("e-0")[1], "a client from before the loss must reset"
        close(relay, remote, engine_end, api_end)

    def test_an_update_carries_only_the_bots_that_moved(self) -> None:
        source = FixedViews()
        engine_end, api_end = multiprocessing.get_context("spawn").Pipe(duplex=True)
        relay = EngineRelay(engine_end, source, lambda: None)
        relay.start()
        try:
            relay.started(None, lambda: T0, Doorbell())  # type: ignore[arg-type]
            first = read_update(api_end)
            assert {bot.strategy_id for bot in first.bots} == {"a", "b"}
            source.replace("b", errors=1)
            relay.polled(["b"])
            second = read_update(api_end)
            assert [bot.strategy_id for bot in second.bots] == ["b"]
            assert second.removed == ()
            source.drop("a")
            relay.polled(["a"])
            third = read_update(api_end)
            assert third.bots == ()
            assert third.removed == ("a",)
        finally:
            relay.close()
            api_end.close()
            assert relay.wait_api_closed(WAIT)
            engine_end.close()


def signal(seq: int) -> SignalGenerated:
    return SignalGenerated(
        ts=T0,
        strategy_id="alpha",
        seq=seq,
        symbol="BTC/USDT",
        direction=Direction.LONG,
        strength=1.0,
        reason="test",
        source="test",
    )


def read_update(connection: Connection) -> EngineUpdate:
    assert connection.poll(WAIT), "no update came"
    message = pickle.loads(connection.recv_bytes())
    assert isinstance(message, EngineUpdate)
    return message


class FixedViews:
    """A view source whose bots the test changes."""

    polls = 0

    def __init__(self) -> None:
        self._bots = {key: bot_view(key, 0) for key in ("a", "b")}

    def replace(self, key: str, errors: int) -> None:
        self._bots[key] = bot_view(key, errors)

    def drop(self, key: str) -> None:
        del self._bots[key]

    def latest(self) -> EngineView | None:
        return view_of(self._bots)

    def ask_poll(self) -> None:
        return None


class TestEitherSideEnding:
    def test_the_engine_stopping_the_service_ends_the_api(self, linked: Linked) -> None:
        ended = threading.Event()
        linked.remote.on_end = ended.set
        linked.relay.close()
        assert ended.wait(WAIT)

    def test_the_engine_process_dying_ends_the_api(self) -> None:
        engine_end, api_end = multiprocessing.get_context("spawn").Pipe(duplex=True)
        remote = RemoteEngine(api_end, EventStream())
        ended = threading.Event()
        remote.on_end = ended.set
        remote.start()
        engine_end.close()  # as when the process is killed: no goodbye, the pipe closes
        assert ended.wait(WAIT)
        assert not remote.wait_for_first_view(0.1)
        assert remote.wait_ended(WAIT)
        api_end.close()

    def test_the_api_process_dying_is_told_to_the_engine(self) -> None:
        engine_end, api_end = multiprocessing.get_context("spawn").Pipe(duplex=True)
        relay = EngineRelay(engine_end, FixedViews(), lambda: None)
        gone = threading.Event()
        relay.on_link_lost = gone.set
        relay.start()
        api_end.close()
        assert gone.wait(WAIT)
        assert relay.api_gone
        assert relay.wait_for_api(0.1) is None
        relay.close()
        assert relay.wait_api_closed(WAIT)
        engine_end.close()

    def test_the_api_asks_the_engine_to_stop(self, linked: Linked) -> None:
        linked.remote.stop()
        for _ in range(int(WAIT / 0.01)):
            if linked.stops:
                break
            threading.Event().wait(0.01)
        assert linked.stops == ["stop"]

    def test_the_api_says_whether_it_started(self, linked: Linked) -> None:
        linked.remote.tell(ApiFailed("no journal"))
        assert linked.relay.wait_for_api(WAIT) == ApiFailed("no journal")

    def test_ready_is_told(self, linked: Linked) -> None:
        linked.remote.tell(ApiReady())
        assert linked.relay.wait_for_api(WAIT) == ApiReady()


class TestALinkThatFails:
    """Failures are loud: an API showing a view that is no longer true is worse than none."""

    def test_an_update_that_cannot_be_sent_ends_both_sides(self, linked: Linked) -> None:
        lost, ended = threading.Event(), threading.Event()
        linked.relay.on_link_lost = lost.set
        linked.remote.on_end = ended.set
        linked.relay.publish([Unpicklable(ts=T0, strategy_id="alpha", seq=1)])
        linked.candle(0)
        assert lost.wait(WAIT)
        assert linked.relay.failure is not None
        assert "pickle" in linked.relay.failure
        assert ended.wait(WAIT)  # the relay said the service ends: the API stops

    def test_an_update_that_cannot_be_read_stops_the_api(self) -> None:
        engine_end, api_end = multiprocessing.get_context("spawn").Pipe(duplex=True)
        remote = RemoteEngine(api_end, EventStream())
        ended = threading.Event()
        remote.on_end = ended.set
        remote.start()
        engine_end.send_bytes(b"not a pickle")
        assert ended.wait(WAIT)
        assert remote.failure is not None
        assert remote.wait_ended(WAIT)
        api_end.close()
        engine_end.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class Unpicklable(Event):
    """An event holding what cannot cross to another process."""

    hook: Callable[[], None] = lambda: None
