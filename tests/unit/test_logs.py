"""Tests for tradekit.logs: sinks, the strategy_id field, and safe reconfiguration."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from loguru import logger

from tradekit.logs import LEVELS, configure_logging, strategy_logger

if TYPE_CHECKING:
    from loguru import Record


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Leave loguru as a fresh import would: one stderr sink and no default extra."""
    yield
    logger.remove()
    logger.configure(extra={})
    if sys.__stderr__ is not None:
        logger.add(sys.__stderr__)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


class TestHumanSink:
    def test_line_shows_level_default_strategy_id_and_message(self) -> None:
        stream = io.StringIO()
        configure_logging(stream=stream)

        logger.info("engine started")

        [line] = _lines(stream)
        fields = [part.strip() for part in line.split("|")]
        assert fields[1:] == ["INFO", "-", "engine started"]

    def test_line_shows_bound_strategy_id(self) -> None:
        stream = io.StringIO()
        configure_logging(stream=stream)

        strategy_logger("rsi-btc-1h").warning("stop hit")

        [line] = _lines(stream)
        fields = [part.strip() for part in line.split("|")]
        assert fields[1:] == ["WARNING", "rsi-btc-1h", "stop hit"]

    def test_records_below_level_are_dropped(self) -> None:
        stream = io.StringIO()
        configure_logging("WARNING", stream=stream)

        logger.info("quiet")
        logger.warning("loud")

        assert [line.rsplit("| ", 1)[-1] for line in _lines(stream)] == ["loud"]

    def test_level_is_case_insensitive(self) -> None:
        stream = io.StringIO()
        configure_logging("debug", stream=stream)

        logger.debug("details")

        assert "details" in stream.getvalue()

    def test_defaults_to_stderr(self, capsys: pytest.CaptureFixture[str]) -> None:
        configure_logging()

        logger.info("to stderr")

        assert "to stderr" in capsys.readouterr().err


class TestStrategyIdField:
    def test_unbound_record_carries_dash(self) -> None:
        records: list[Record] = []
        configure_logging(stream=io.StringIO())
        logger.add(lambda message: records.append(message.record))

        logger.info("no strategy")

        assert records[0]["extra"]["strategy_id"] == "-"

    def test_bound_record_carries_its_strategy_id(self) -> None:
        records: list[Record] = []
        configure_logging(stream=io.StringIO())
        logger.add(lambda message: records.append(message.record))

        strategy_logger("macd-eth-4h").info("entered")

        assert records[0]["extra"]["strategy_id"] == "macd-eth-4h"

    def test_two_strategy_loggers_do_not_share_their_id(self) -> None:
        records: list[Record] = []
        configure_logging(stream=io.StringIO())
        logger.add(lambda message: records.append(message.record))

        first, second = strategy_logger("a"), strategy_logger("b")
        first.info("one")
        second.info("two")
        logger.info("three")

        assert [record["extra"]["strategy_id"] for record in records] == ["a", "b", "-"]


class TestJsonSink:
    def test_writes_one_json_object_per_line_with_strategy_id(self, tmp_path: Path) -> None:
        json_path = tmp_path / "logs" / "nested" / "tradekit.jsonl"
        configure_logging(json_path=json_path, stream=io.StringIO())

        strategy_logger("rsi-btc-1h").info("bought")
        logger.error("engine hiccup")
        configure_logging(stream=io.StringIO())  # closes the file sink, flushing it

        entries = [json.loads(line) for line in json_path.read_text("utf-8").splitlines()]
        assert [entry["record"]["message"] for entry in entries] == ["bought", "engine hiccup"]
        assert [entry["record"]["extra"]["strategy_id"] for entry in entries] == [
            "rsi-btc-1h",
            "-",
        ]
        assert [entry["record"]["level"]["name"] for entry in entries] == ["INFO", "ERROR"]

    def test_accepts_a_string_path(self, tmp_path: Path) -> None:
        json_path = tmp_path / "out.jsonl"
        configure_logging(json_path=str(json_path), stream=io.StringIO())

        logger.info("hello")
        configure_logging(stream=io.StringIO())

        assert json.loads(json_path.read_text("utf-8"))["record"]["message"] == "hello"

    def test_reconfiguring_without_json_path_stops_writing_the_file(self, tmp_path: Path) -> None:
        json_path = tmp_path / "out.jsonl"
        configure_logging(json_path=json_path, stream=io.StringIO())
        logger.info("kept")

        configure_logging(stream=io.StringIO())
        logger.info("not in the file")

        assert len(json_path.read_text("utf-8").splitlines()) == 1


class TestReconfiguration:
    def test_configuring_twice_on_one_stream_writes_each_record_once(self) -> None:
        stream = io.StringIO()
        configure_logging(stream=stream)
        configure_logging(stream=stream)

        logger.info("once")

        assert len(_lines(stream)) == 1

    def test_new_stream_replaces_the_previous_one(self) -> None:
        old, new = io.StringIO(), io.StringIO()
        configure_logging(stream=old)
        configure_logging(stream=new)

        logger.info("where")

        assert old.getvalue() == ""
        assert len(_lines(new)) == 1

    def test_sink_added_by_caller_survives_reconfiguration(self) -> None:
        messages: list[str] = []
        configure_logging(stream=io.StringIO())
        logger.add(messages.append, format="{message}")
        configure_logging(stream=io.StringIO())
        configure_logging("DEBUG", stream=io.StringIO())

        logger.info("still here")

        assert messages == ["still here\n"]

    def test_survives_handlers_removed_behind_its_back(self) -> None:
        configure_logging(stream=io.StringIO())
        logger.remove()
        stream = io.StringIO()

        configure_logging(stream=stream)
        logger.info("back")

        assert len(_lines(stream)) == 1


class TestInvalidLevel:
    def test_raises_value_error_naming_the_bad_level_and_the_allowed_ones(self) -> None:
        with pytest.raises(ValueError, match="'LOUD'") as excinfo:
            configure_logging("LOUD", stream=io.StringIO())

        for name in LEVELS:
            assert name in str(excinfo.value)

    def test_leaves_the_current_sinks_in_place(self) -> None:
        stream = io.StringIO()
        configure_logging(stream=stream)

        with pytest.raises(ValueError, match="unknown log level"):
            configure_logging("verbose", stream=io.StringIO())
        logger.info("still configured")

        assert "still configured" in stream.getvalue()
