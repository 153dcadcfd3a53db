"""Tests for the event classes, their registry and their dict round-trip."""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import tradekit.events as events_module
from tradekit.domain import Direction, OrderSide, Side
from tradekit.errors import EventError
from tradekit.events import (
    EVENT_TYPES,
    Event,
    OrderFilled,
    PositionOpened,
    StopLossUpdated,
    StrategyLoaded,
    StrategyUnloaded,
    event_from_dict,
)

TS = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

# One sample value per field type used by the events; a new field type must be added here.
SAMPLE_VALUES: dict[object, object] = {
    str: "sample",
    float: 12.5,
    float | None: 3.25,
    int: 7,
    datetime: TS,
    tuple[str, ...]: ("BTC/USDT", "ETH/USDT"),
    Side: Side.SHORT,
    OrderSide: OrderSide.SELL,
    Direction: Direction.EXIT,
}


def sample_event(cls: type[Event], **overrides: Any) -> Event:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {
        field.name: SAMPLE_VALUES[hints[field.name]] for field in dataclasses.fields(cls)
    }
    values.update(strategy_id="rsi-btc-1h", seq=42)
    values.update(overrides)
    return cls(**values)


def position_opened(**overrides: Any) -> PositionOpened:
    values: dict[str, Any] = {
        "ts": TS,
        "position_id": "pos-1",
        "symbol": "BTC/USDT",
        "side": Side.LONG,
        "quantity": 0.5,
        "price": 60_000.0,
        "fee": 30.0,
        "stop_loss": 58_000.0,
        "take_profit": None,
    }
    values.update(overrides)
    return PositionOpened(**values)


def event_classes_defined_in_module() -> set[type[Event]]:
    return {
        value
        for value in vars(events_module).values()
        if isinstance(value, type) and issubclass(value, Event) and value is not Event
    }


class TestEventClasses:
    def test_event_cannot_be_mutated(self) -> None:
        event = position_opened()
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.price = 1.0  # type: ignore[misc]

    def test_stamp_fields_cannot_be_mutated(self) -> None:
        event = position_opened()
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.seq = 5  # type: ignore[misc]

    def test_event_has_no_instance_dict(self) -> None:
        assert not hasattr(position_opened(), "__dict__")

    def test_strategy_id_and_seq_default_to_unstamped(self) -> None:
        event = position_opened()
        assert (event.strategy_id, event.seq) == ("", 0)

    def test_fields_are_keyword_only(self) -> None:
        with pytest.raises(TypeError):
            StrategyUnloaded(TS, "", 0, "shutdown")  # type: ignore[call-arg]

    def test_ts_is_required(self) -> None:
        with pytest.raises(TypeError, match="ts"):
            StrategyUnloaded(reason="shutdown")  # type: ignore[call-arg]

    def test_event_type_is_the_class_name(self) -> None:
        assert position_opened().event_type == "PositionOpened"

    def test_events_with_equal_fields_are_equal(self) -> None:
        assert position_opened() == position_opened()


class TestRegistry:
    def test_every_event_class_in_the_module_is_registered(self) -> None:
        assert event_classes_defined_in_module() == set(EVENT_TYPES.values())

    def test_registry_is_keyed_by_class_name(self) -> None:
        assert all(name == cls.__name__ for name, cls in EVENT_TYPES.items())

    def test_registry_cannot_be_modified(self) -> None:
        with pytest.raises(TypeError):
            EVENT_TYPES["Fake"] = Event  # type: ignore[index]

    def test_every_registered_event_type_is_exported(self) -> None:
        assert set(EVENT_TYPES) <= set(events_module.__all__)


class TestToDict:
    def test_includes_event_type_and_every_field(self) -> None:
        data = position_opened().to_dict()
        field_names = {field.name for field in dataclasses.fields(PositionOpened)}
        assert set(data) == field_names | {"event_type"}
        assert data["event_type"] == "PositionOpened"

    def test_enum_becomes_its_value(self) -> None:
        assert position_opened(side=Side.SHORT).to_dict()["side"] == "short"

    def test_datetime_becomes_iso_string(self) -> None:
        assert position_opened().to_dict()["ts"] == "2024-03-01T12:00:00+00:00"

    def test_tuple_becomes_list(self) -> None:
        event = StrategyLoaded(ts=TS, name="rsi", symbols=("BTC/USDT", "ETH/USDT"), timeframe="1h")
        assert event.to_dict()["symbols"] == ["BTC/USDT", "ETH/USDT"]

    def test_none_stays_none(self) -> None:
        assert position_opened(take_profit=None).to_dict()["take_profit"] is None

    @pytest.mark.parametrize("cls", EVENT_TYPES.values(), ids=list(EVENT_TYPES))
    def test_result_serializes_to_json(self, cls: type[Event]) -> None:
        json.dumps(sample_event(cls).to_dict())

    def test_journal_text_is_stable(self) -> None:
        """Keys in field order after event_type, values as stored: journaled text never changes."""
        assert json.dumps(position_opened().to_dict(), separators=(",", ":")) == (
            '{"event_type":"PositionOpened","ts":"2024-03-01T12:00:00+00:00","strategy_id":"",'
            '"seq":0,"position_id":"pos-1","symbol":"BTC/USDT","side":"long","quantity":0.5,'
            '"price":60000.0,"fee":30.0,"stop_loss":58000.0,"take_profit":null}'
        )


class TestEventFromDict:
    @pytest.mark.parametrize("cls", EVENT_TYPES.values(), ids=list(EVENT_TYPES))
    def test_round_trip_through_json_restores_an_equal_event(self, cls: type[Event]) -> None:
        event = sample_event(cls)
        restored = event_from_dict(json.loads(json.dumps(event.to_dict())))
        assert type(restored) is cls
        assert restored == event

    def test_round_trip_keeps_none_in_optional_fields(self) -> None:
        event = StopLossUpdated(
            ts=TS, position_id="p", symbol="BTC/USDT", old_stop=None, new_stop=1.0, reason="r"
        )
        assert event_from_dict(event.to_dict()) == event

    def test_round_trip_keeps_the_time_zone(self) -> None:
        ts = datetime(2024, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=-3)))
        restored = event_from_dict(position_opened(ts=ts).to_dict())
        assert restored.ts == ts
        assert restored.ts.utcoffset() == timedelta(hours=-3)

    def test_restores_enum_members(self) -> None:
        data = sample_event(OrderFilled).to_dict()
        restored = event_from_dict(data)
        assert isinstance(restored, OrderFilled)
        assert restored.side is OrderSide.SELL

    def test_integer_json_number_becomes_float(self) -> None:
        data = position_opened().to_dict() | {"price": 60000}
        restored = event_from_dict(data)
        assert isinstance(restored, PositionOpened)
        assert isinstance(restored.price, float)

    def test_missing_stamp_fields_default_to_unstamped(self) -> None:
        data = position_opened().to_dict()
        del data["strategy_id"], data["seq"]
        assert event_from_dict(data) == position_opened()

    def test_unknown_event_type_is_refused_with_a_suggestion(self) -> None:
        data = position_opened().to_dict() | {"event_type": "PositionOpend"}
        with pytest.raises(EventError, match="'PositionOpend'; did you mean 'PositionOpened'"):
            event_from_dict(data)

    def test_missing_event_type_is_refused(self) -> None:
        data = position_opened().to_dict()
        del data["event_type"]
        with pytest.raises(EventError, match="unknown event_type None"):
            event_from_dict(data)

    def test_missing_required_field_is_named(self) -> None:
        data = position_opened().to_dict()
        del data["price"]
        with pytest.raises(EventError, match="PositionOpened: missing field"):
            event_from_dict(data)

    def test_unexpected_field_is_named(self) -> None:
        data = position_opened().to_dict() | {"colour": "red"}
        with pytest.raises(EventError, match=r"unexpected field.*colour"):
            event_from_dict(data)

    def test_wrong_value_type_names_field_value_and_expectation(self) -> None:
        data = position_opened().to_dict() | {"quantity": "lots"}
        with pytest.raises(EventError, match=r"PositionOpened\.quantity: got 'lots'; expected a"):
            event_from_dict(data)

    def test_bool_is_not_accepted_as_a_number(self) -> None:
        data = position_opened().to_dict() | {"fee": True}
        with pytest.raises(EventError, match="fee"):
            event_from_dict(data)

    def test_unknown_enum_value_is_refused(self) -> None:
        data = position_opened().to_dict() | {"side": "sideways"}
        with pytest.raises(EventError, match=r"side: got 'sideways'; expected one of"):
            event_from_dict(data)

    def test_malformed_timestamp_is_refused(self) -> None:
        data = position_opened().to_dict() | {"ts": "yesterday"}
        with pytest.raises(EventError, match="ts: got 'yesterday'"):
            event_from_dict(data)
