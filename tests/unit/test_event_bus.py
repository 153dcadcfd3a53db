"""Tests for the in-process event bus and the per-strategy publisher."""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from loguru import logger

from tradekit.domain import Direction, Side
from tradekit.errors import EventError
from tradekit.events import Event, PositionOpened, SignalGenerated, StrategyUnloaded
from tradekit.protocols import EventBus, Subscription
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher

TS = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(Event):
    """A test event with no fields of its own."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ScoredSignalGenerated(SignalGenerated):
    """A test subclass of a library event."""

    score: float


def signal(strategy_id: str = "") -> SignalGenerated:
    return SignalGenerated(
        ts=TS,
        strategy_id=strategy_id,
        symbol="BTC/USDT",
        direction=Direction.LONG,
        strength=0.8,
        reason="rsi below 30",
        source="rsi",
    )


def opened(strategy_id: str = "") -> PositionOpened:
    return PositionOpened(
        ts=TS,
        strategy_id=strategy_id,
        position_id="pos-1",
        symbol="BTC/USDT",
        side=Side.LONG,
        quantity=0.5,
        price=60_000.0,
        fee=30.0,
        stop_loss=None,
        take_profit=None,
    )


class Recorder:
    """A subscriber that remembers every event it received."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture
def bus() -> InMemoryEventBus:
    return InMemoryEventBus()


@pytest.fixture
def error_log() -> Iterator[list[str]]:
    messages: list[str] = []
    logger.enable("tradekit")  # a library's records are off until the application opts in
    sink_id = logger.add(
        messages.append, level="ERROR", format="{extra[strategy_id]} | {message}", colorize=False
    )
    yield messages
    logger.remove(sink_id)
    logger.disable("tradekit")


class TestProtocols:
    def test_bus_satisfies_the_event_bus_protocol(self, bus: InMemoryEventBus) -> None:
        assert isinstance(bus, EventBus)

    def test_subscribe_returns_a_subscription(self, bus: InMemoryEventBus) -> None:
        assert isinstance(bus.subscribe(Recorder()), Subscription)


class TestSubscriptionFilters:
    def test_no_filter_receives_every_event(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder)
        events = [signal("a"), opened("b"), opened()]
        for event in events:
            bus.publish(event)
        assert recorder.events == events

    def test_type_filter_receives_only_that_type(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder, PositionOpened)
        bus.publish(signal("a"))
        bus.publish(opened("a"))
        assert recorder.events == [opened("a")]

    def test_tuple_of_types_receives_each_of_them(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder, (PositionOpened, SignalGenerated))
        bus.publish(signal())
        bus.publish(opened())
        bus.publish(StrategyUnloaded(ts=TS, reason="done"))
        assert recorder.events == [signal(), opened()]

    def test_strategy_filter_receives_only_that_strategy(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder, strategy_id="a")
        bus.publish(opened("a"))
        bus.publish(opened("b"))
        bus.publish(opened())
        assert recorder.events == [opened("a")]

    def test_type_and_strategy_filters_must_both_match(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder, PositionOpened, strategy_id="a")
        bus.publish(opened("a"))
        bus.publish(opened("b"))
        bus.publish(signal("a"))
        assert recorder.events == [opened("a")]

    def test_base_event_class_matches_every_event(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder, Event)
        bus.publish(opened())
        bus.publish(Heartbeat(ts=TS))
        assert [type(event) for event in recorder.events] == [PositionOpened, Heartbeat]

    def test_base_class_filter_matches_subclasses(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder, SignalGenerated)
        scored = ScoredSignalGenerated(**dataclasses.asdict(signal()), score=2.0)
        bus.publish(scored)
        assert recorder.events == [scored]

    def test_subclass_filter_does_not_match_the_base_class(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder, ScoredSignalGenerated)
        bus.publish(signal())
        assert recorder.events == []

    def test_handlers_run_in_subscription_order(self, bus: InMemoryEventBus) -> None:
        calls: list[str] = []
        bus.subscribe(lambda event: calls.append("first"))
        bus.subscribe(lambda event: calls.append("second"), PositionOpened)
        bus.subscribe(lambda event: calls.append("third"), strategy_id="a")
        bus.publish(opened("a"))
        assert calls == ["first", "second", "third"]

    def test_subscriber_added_after_a_publish_receives_the_next_one(
        self, bus: InMemoryEventBus
    ) -> None:
        bus.publish(opened("a"))
        recorder = Recorder()
        bus.subscribe(recorder, PositionOpened, strategy_id="a")
        bus.publish(opened("a"))
        assert recorder.events == [opened("a")]

    def test_publish_with_no_subscriber_does_nothing(self, bus: InMemoryEventBus) -> None:
        bus.publish(opened("a"))
        assert bus.failed_deliveries == 0

    def test_non_callable_handler_is_refused(self, bus: InMemoryEventBus) -> None:
        with pytest.raises(TypeError, match="callable"):
            bus.subscribe("not a handler")  # type: ignore[call-overload]

    def test_non_event_type_filter_is_refused(self, bus: InMemoryEventBus) -> None:
        with pytest.raises(TypeError, match="Event subclasses"):
            bus.subscribe(Recorder(), int)  # type: ignore[type-var, arg-type]

    def test_empty_type_tuple_is_refused(self, bus: InMemoryEventBus) -> None:
        with pytest.raises(ValueError, match="pass None"):
            bus.subscribe(Recorder(), ())


class TestUnsubscribe:
    def test_unsubscribed_handler_receives_nothing_more(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        subscription = bus.subscribe(recorder)
        bus.publish(opened())
        subscription.unsubscribe()
        bus.publish(opened())
        assert len(recorder.events) == 1

    def test_unsubscribe_marks_the_handle_inactive(self, bus: InMemoryEventBus) -> None:
        subscription = bus.subscribe(Recorder())
        assert subscription.active
        subscription.unsubscribe()
        assert not subscription.active

    def test_unsubscribe_twice_removes_only_once(self, bus: InMemoryEventBus) -> None:
        handler = Recorder()
        first = bus.subscribe(handler)
        bus.subscribe(handler)
        first.unsubscribe()
        first.unsubscribe()
        assert bus.subscriber_count() == 1
        bus.publish(opened())
        assert len(handler.events) == 1

    def test_unsubscribe_leaves_other_subscriptions(self, bus: InMemoryEventBus) -> None:
        kept = Recorder()
        bus.subscribe(kept)
        bus.subscribe(Recorder()).unsubscribe()
        bus.publish(opened())
        assert kept.events == [opened()]

    def test_subscriber_count_counts_all_or_one_strategy(self, bus: InMemoryEventBus) -> None:
        bus.subscribe(Recorder())
        bus.subscribe(Recorder(), strategy_id="a")
        bus.subscribe(Recorder(), PositionOpened, strategy_id="a")
        bus.subscribe(Recorder(), strategy_id="b")
        assert bus.subscriber_count() == 4
        assert bus.subscriber_count("a") == 2
        assert bus.subscriber_count("c") == 0

    def test_unsubscribe_strategy_returns_how_many_it_removed(self, bus: InMemoryEventBus) -> None:
        bus.subscribe(Recorder(), strategy_id="a")
        bus.subscribe(Recorder(), PositionOpened, strategy_id="a")
        assert bus.unsubscribe_strategy("a") == 2
        assert bus.unsubscribe_strategy("a") == 0

    def test_unsubscribe_strategy_leaves_other_strategies_intact(
        self, bus: InMemoryEventBus
    ) -> None:
        on_a, on_b, on_all = Recorder(), Recorder(), Recorder()
        bus.subscribe(on_a, strategy_id="a")
        bus.subscribe(on_b, strategy_id="b")
        bus.subscribe(on_all)
        bus.unsubscribe_strategy("a")
        bus.publish(opened("a"))
        bus.publish(opened("b"))
        assert on_a.events == []
        assert on_b.events == [opened("b")]
        assert on_all.events == [opened("a"), opened("b")]

    def test_unsubscribe_strategy_deactivates_the_handles(self, bus: InMemoryEventBus) -> None:
        subscription = bus.subscribe(Recorder(), strategy_id="a")
        bus.unsubscribe_strategy("a")
        assert not subscription.active
        subscription.unsubscribe()
        assert bus.subscriber_count() == 0


class TestFailingSubscriber:
    @staticmethod
    def explode(event: Event) -> None:
        raise RuntimeError("subscriber broke")

    def test_other_subscribers_still_run(self, bus: InMemoryEventBus, error_log: list[str]) -> None:
        before, after = Recorder(), Recorder()
        bus.subscribe(before)
        bus.subscribe(self.explode)
        bus.subscribe(after)
        bus.publish(opened("a"))
        assert before.events == [opened("a")]
        assert after.events == [opened("a")]

    def test_failure_is_counted(self, bus: InMemoryEventBus, error_log: list[str]) -> None:
        bus.subscribe(self.explode)
        bus.publish(opened("a"))
        bus.publish(opened("a"))
        assert bus.failed_deliveries == 2

    def test_failure_is_logged_with_handler_event_type_and_strategy(
        self, bus: InMemoryEventBus, error_log: list[str]
    ) -> None:
        bus.subscribe(self.explode)
        bus.publish(opened("rsi-btc"))
        assert len(error_log) == 1
        line = error_log[0]
        assert line.startswith("rsi-btc | ")
        assert "TestFailingSubscriber.explode" in line
        assert "PositionOpened" in line
        assert "subscriber broke" in line

    def test_failure_log_includes_the_traceback(
        self, bus: InMemoryEventBus, error_log: list[str]
    ) -> None:
        bus.subscribe(self.explode)
        bus.publish(opened("a"))
        assert "Traceback" in error_log[0]

    def test_unstamped_event_failure_is_logged_with_a_dash(
        self, bus: InMemoryEventBus, error_log: list[str]
    ) -> None:
        bus.subscribe(self.explode)
        bus.publish(opened())
        assert error_log[0].startswith("- | ")

    def test_publish_returns_and_the_next_publish_is_delivered(
        self, bus: InMemoryEventBus, error_log: list[str]
    ) -> None:
        recorder = Recorder()
        bus.subscribe(self.explode)
        bus.subscribe(recorder)
        bus.publish(opened("a"))
        bus.publish(opened("b"))
        assert recorder.events == [opened("a"), opened("b")]


class TestStrategyPublisher:
    def test_stamps_the_strategy_id(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder)
        StrategyPublisher(bus, "rsi-btc").publish(opened())
        assert [event.strategy_id for event in recorder.events] == ["rsi-btc"]

    def test_seq_starts_at_one_and_increases_by_one(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder)
        publisher = StrategyPublisher(bus, "rsi-btc")
        for _ in range(3):
            publisher.publish(opened())
        assert [event.seq for event in recorder.events] == [1, 2, 3]

    def test_returns_the_event_it_delivered(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder)
        stamped = StrategyPublisher(bus, "rsi-btc").publish(opened())
        assert recorder.events[0] is stamped

    def test_stamped_event_keeps_every_other_field(self, bus: InMemoryEventBus) -> None:
        original = opened()
        stamped = StrategyPublisher(bus, "rsi-btc").publish(original)
        assert type(stamped) is PositionOpened
        assert stamped == dataclasses.replace(original, strategy_id="rsi-btc", seq=1)

    def test_original_event_is_left_unstamped(self, bus: InMemoryEventBus) -> None:
        original = opened()
        stamped = StrategyPublisher(bus, "rsi-btc").publish(original)
        assert stamped is not original
        assert (original.strategy_id, original.seq) == ("", 0)

    def test_stamped_event_is_still_frozen(self, bus: InMemoryEventBus) -> None:
        stamped = StrategyPublisher(bus, "rsi-btc").publish(opened())
        with pytest.raises(dataclasses.FrozenInstanceError):
            stamped.seq = 9  # type: ignore[misc]

    def test_stamps_an_event_with_no_fields_of_its_own(self, bus: InMemoryEventBus) -> None:
        stamped = StrategyPublisher(bus, "rsi-btc").publish(Heartbeat(ts=TS))
        assert stamped == Heartbeat(ts=TS, strategy_id="rsi-btc", seq=1)

    def test_two_publishers_keep_independent_seq(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder)
        first, second = StrategyPublisher(bus, "a"), StrategyPublisher(bus, "b")
        first.publish(opened())
        first.publish(opened())
        second.publish(opened())
        first.publish(opened())
        stamps = [(event.strategy_id, event.seq) for event in recorder.events]
        assert stamps == [("a", 1), ("a", 2), ("b", 1), ("a", 3)]

    def test_event_of_another_strategy_is_refused_naming_both(self, bus: InMemoryEventBus) -> None:
        with pytest.raises(EventError, match=r"'other'.*'rsi-btc'"):
            StrategyPublisher(bus, "rsi-btc").publish(opened("other"))

    def test_refused_event_is_not_delivered_and_uses_no_seq(self, bus: InMemoryEventBus) -> None:
        recorder = Recorder()
        bus.subscribe(recorder)
        publisher = StrategyPublisher(bus, "rsi-btc")
        with pytest.raises(EventError):
            publisher.publish(opened("other"))
        assert recorder.events == []
        assert publisher.next_seq == 1

    def test_event_already_carrying_this_strategy_id_is_accepted(
        self, bus: InMemoryEventBus
    ) -> None:
        stamped = StrategyPublisher(bus, "rsi-btc").publish(opened("rsi-btc"))
        assert (stamped.strategy_id, stamped.seq) == ("rsi-btc", 1)

    def test_next_seq_start_value_is_honoured(self, bus: InMemoryEventBus) -> None:
        publisher = StrategyPublisher(bus, "rsi-btc", next_seq=101)
        assert publisher.publish(opened()).seq == 101
        assert publisher.publish(opened()).seq == 102

    def test_next_seq_reports_the_seq_of_the_next_event(self, bus: InMemoryEventBus) -> None:
        publisher = StrategyPublisher(bus, "rsi-btc")
        publisher.publish(opened())
        publisher.publish(opened())
        assert publisher.next_seq == 3

    def test_subscriber_filtered_on_the_strategy_receives_its_events(
        self, bus: InMemoryEventBus
    ) -> None:
        recorder = Recorder()
        bus.subscribe(recorder, PositionOpened, strategy_id="rsi-btc")
        StrategyPublisher(bus, "rsi-btc").publish(opened())
        StrategyPublisher(bus, "other").publish(opened())
        assert [event.strategy_id for event in recorder.events] == ["rsi-btc"]

    def test_empty_strategy_id_is_refused(self, bus: InMemoryEventBus) -> None:
        with pytest.raises(ValueError, match="strategy_id"):
            StrategyPublisher(bus, "")

    def test_next_seq_below_one_is_refused(self, bus: InMemoryEventBus) -> None:
        with pytest.raises(ValueError, match="next_seq"):
            StrategyPublisher(bus, "rsi-btc", next_seq=0)


class TestThreads:
    def test_subscribing_on_another_thread_while_publishing_does_not_raise(
        self, bus: InMemoryEventBus
    ) -> None:
        # A short switch interval makes the two threads interleave many times.
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        iterations = 3000
        errors: list[BaseException] = []
        publisher = StrategyPublisher(bus, "a")
        received = Recorder()
        bus.subscribe(received, strategy_id="a")
        publishing = threading.Event()
        delivered_around_churn: list[int] = []

        def churn() -> None:
            try:
                publishing.wait(timeout=30)
                delivered_around_churn.append(len(received.events))
                for index in range(iterations):
                    strategy_id = "a" if index % 2 else f"other-{index}"
                    subscription = bus.subscribe(Recorder(), strategy_id=strategy_id)
                    if index % 3:
                        subscription.unsubscribe()
                    if index % 500 == 0:
                        bus.unsubscribe_strategy("never-subscribed")
                delivered_around_churn.append(len(received.events))
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=churn)
        published = 0
        try:
            thread.start()
            while thread.is_alive() and published < 50 * iterations:
                publisher.publish(opened())
                published += 1
                publishing.set()
            thread.join(timeout=30)
        finally:
            sys.setswitchinterval(previous_interval)

        assert not thread.is_alive()
        assert errors == []
        before_churn, after_churn = delivered_around_churn
        assert after_churn > before_churn, "no event was published while the other thread churned"
        assert bus.failed_deliveries == 0
        assert len(received.events) == published
        assert bus.subscriber_count() == 1 + sum(1 for i in range(iterations) if i % 3 == 0)

    def test_concurrent_subscribers_are_all_registered(self, bus: InMemoryEventBus) -> None:
        per_thread = 500

        def subscribe_many() -> None:
            for _ in range(per_thread):
                bus.subscribe(Recorder())

        threads = [threading.Thread(target=subscribe_many) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert bus.subscriber_count() == 4 * per_thread
