"""Tests for tradekit.logs: sinks, the strategy_id field, safe reconfiguration, floods of one
message summarized, and a library that stays silent until the application turns logging on."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from loguru import logger

from tradekit.errors import ConfigError
from tradekit.log_levels import LEVELS
from tradekit.logs import (
    RepeatedMessages,
    configure_logging,
    flush_repeats,
    strategy_logger,
)

if TYPE_CHECKING:
    from loguru import Record


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Leave loguru as a fresh import of tradekit would: one stderr sink, no default extra,
    no patcher, tradekit's records disabled."""
    yield
    logger.remove()
    logger.configure(extra={}, patcher=lambda record: None)
    logger.disable("tradekit")
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


class TestUnwritableJsonPath:
    @pytest.mark.parametrize("json_path", ["{tmp}/a-file/log.jsonl", "{tmp}"])
    def test_raises_config_error_naming_the_setting_and_the_path(
        self, tmp_path: Path, json_path: str
    ) -> None:
        (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
        path = json_path.format(tmp=tmp_path)

        with pytest.raises(ConfigError) as caught:
            configure_logging(json_path=path, stream=io.StringIO())

        (problem,) = caught.value.problems
        assert problem.path == "logging.json_path"
        assert f"cannot write the JSON log file {path!r}" in problem.message

    def test_leaves_the_current_sinks_in_place(self, tmp_path: Path) -> None:
        stream = io.StringIO()
        configure_logging(stream=stream)

        with pytest.raises(ConfigError):
            configure_logging(json_path=tmp_path, stream=io.StringIO())
        logger.info("still configured")

        assert "still configured" in stream.getvalue()


class FakeClock:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def _messages(stream: io.StringIO) -> list[str]:
    return [line.rsplit(" | ", 1)[-1] for line in _lines(stream)]


class TestRepeatedMessages:
    """17,511 identical ERROR lines were written while a disk was full."""

    def test_flood_of_one_message_is_cut_to_the_burst_and_one_summary_per_interval(self) -> None:
        clock, stream = FakeClock(), io.StringIO()
        configure_logging(stream=stream, repeats=RepeatedMessages(3, 60.0, clock))

        for second in range(17_511):
            clock.seconds = second / 100
            logger.error("journal write failed: disk full")
        clock.seconds = 200.0
        logger.info("disk has room again")

        assert _messages(stream) == [
            *["journal write failed: disk full"] * 3,
            "repeated 5997 more times in 60 s: journal write failed: disk full",
            *["journal write failed: disk full"] * 3,
            "repeated 5997 more times in 60 s: journal write failed: disk full",
            *["journal write failed: disk full"] * 3,
            "repeated 5508 more times in 55 s: journal write failed: disk full",
            "disk has room again",
        ]

    def test_summary_keeps_level_and_strategy_id(self) -> None:
        clock, stream = FakeClock(), io.StringIO()
        configure_logging(stream=stream, repeats=RepeatedMessages(1, 10.0, clock))

        for _ in range(3):
            strategy_logger("rsi-btc-1h").warning("order rejected")
        clock.seconds = 10.0
        logger.info("later")

        summary = [part.strip() for part in _lines(stream)[1].split("|")]
        assert summary[1:] == [
            "WARNING",
            "rsi-btc-1h",
            "repeated 2 more times in 0 s: order rejected",
        ]

    def test_different_messages_are_counted_apart(self) -> None:
        stream = io.StringIO()
        configure_logging(stream=stream, repeats=RepeatedMessages(1, 60.0, FakeClock()))

        for _ in range(3):
            logger.error("a")
            logger.error("b")

        assert _messages(stream) == ["a", "b"]

    def test_counts_held_back_are_reported_when_logging_is_reconfigured(self) -> None:
        stream = io.StringIO()
        configure_logging(stream=stream, repeats=RepeatedMessages(2, 60.0, FakeClock()))

        for _ in range(5):
            logger.error("same")
        configure_logging(stream=io.StringIO())

        assert _messages(stream) == ["same", "same", "repeated 3 more times in 0 s: same"]

    def test_a_flush_reports_the_counts_held_back_at_once(self) -> None:
        stream = io.StringIO()
        configure_logging(stream=stream, repeats=RepeatedMessages(2, 60.0, FakeClock()))

        for _ in range(5):
            logger.error("same")
        flush_repeats()
        logger.error("same")

        assert _messages(stream) == [
            "same",
            "same",
            "repeated 3 more times in 0 s: same",
            "same",
        ]

    def test_json_sink_gets_the_same_summary(self, tmp_path: Path) -> None:
        clock, json_path = FakeClock(), tmp_path / "log.jsonl"
        configure_logging(
            json_path=json_path, stream=io.StringIO(), repeats=RepeatedMessages(1, 5.0, clock)
        )

        for second in range(4):
            clock.seconds = second
            logger.error("full")
        clock.seconds = 5.0
        logger.info("next")
        configure_logging(stream=io.StringIO())

        entries = [json.loads(line) for line in json_path.read_text("utf-8").splitlines()]
        assert [entry["record"]["message"] for entry in entries] == [
            "full",
            "repeated 3 more times in 3 s: full",
            "next",
        ]


LIBRARY_USE = """
import sys
from pathlib import Path
import tradekit
from tradekit.data.sources import SyntheticSource
settings = tradekit.TradekitSettings()
configs = tradekit.load_strategy_configs(Path(sys.argv[1]) / "strategies", settings)
if sys.argv[2] == "configure":
    tradekit.configure_logging("DEBUG")
frames = SyntheticSource(["BTC/USDT"], "1h", 300).frames()
configs = [config for config in configs if config.symbols == ("BTC/USDT",)]
configs = [config for config in configs if config.timeframe == "1h"]
result = tradekit.backtest(settings, configs, frames)
assert result.candles_processed == 300, result.candles_processed
"""

BUS_ONLY_USE = """
from datetime import UTC, datetime
from tradekit.events import StrategyUnloaded
from tradekit.services.bus import InMemoryEventBus
def failing(event):
    raise RuntimeError("handler broke")
bus = InMemoryEventBus()
bus.subscribe(failing)
bus.publish(StrategyUnloaded(ts=datetime(2024, 1, 1, tzinfo=UTC), strategy_id="s", reason="x"))
assert bus.failed_deliveries == 1
"""

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRADEKIT_")}
    env["TRADEKIT_LOGGING__LEVEL"] = "DEBUG"
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestLibraryQuietness:
    """Used as a library, tradekit's DEBUG lines leaked to stderr."""

    def test_library_use_writes_nothing_to_stderr(self, tmp_path: Path) -> None:
        result = _run(["-c", LIBRARY_USE, str(REPO_ROOT), "quiet"], tmp_path)

        assert result.returncode == 0, result.stderr
        assert result.stderr == ""

    def test_a_failing_handler_logs_nothing_when_only_the_bus_is_imported(
        self, tmp_path: Path
    ) -> None:
        """``import tradekit`` loads no module eagerly, so a module that logs must silence
        tradekit's records itself (the bus logged a handler's traceback once)."""
        result = _run(["-c", BUS_ONLY_USE], tmp_path)

        assert result.returncode == 0, result.stderr
        assert result.stderr == ""

    def test_library_logs_once_the_application_configures_logging(self, tmp_path: Path) -> None:
        result = _run(["-c", LIBRARY_USE, str(REPO_ROOT), "configure"], tmp_path)

        assert result.returncode == 0, result.stderr
        assert "DEBUG" in result.stderr
        assert "strategy unloaded" in result.stderr

    def test_command_line_still_logs(self) -> None:
        result = _run(["-m", "tradekit", "validate"], REPO_ROOT)

        assert result.returncode == 0, result.stderr
        assert "strategy checked" in result.stderr
