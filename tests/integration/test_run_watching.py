"""Runs you can watch: one INFO line per trading fact, and a health report on an interval
(one line per bot and an atomically written JSON file) driven by injectable clocks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from ticker_strategies import ticker

from tradekit.data import synthetic_frame
from tradekit.domain import Candle, OrderSide, Side
from tradekit.events import (
    ActionFailed,
    Event,
    OrderCancelled,
    OrderFilled,
    PositionClosed,
    PositionIncreased,
    PositionOpened,
    PositionReduced,
    RiskRejected,
    StrategyFailed,
    StrategyLoaded,
    StrategyQuarantined,
    StrategyReloaded,
    StrategyResumed,
    StrategyUnloaded,
)
from tradekit.runtime import RunMode, bootstrap
from tradekit.runtime.backtest import backtest
from tradekit.runtime.health import STALE_AFTER_TIMEFRAMES, HealthReporter, default_health_path
from tradekit.runtime.live import run_live
from tradekit.runtime.trade_log import LOGGED_EVENTS, trade_line
from tradekit.services.market.clock import ManualClock
from tradekit.testing import settings_from_dict

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def hourly(count: int, symbol: str = "BTC/USDT", start: datetime = START) -> list[Candle]:
    """Hourly candles whose close walks up and down, so the ticker strategy trades."""
    candles = []
    for index in range(count):
        close = 100.0 + (index % 7)
        candles.append(
            Candle(
                symbol=symbol,
                timeframe="1h",
                ts=start + index * HOUR,
                open=close,
                high=close + 1,
                low=close - 1,
                close=close,
                volume=10.0,
            )
        )
    return candles


@pytest.fixture
def info_lines() -> Iterator[list[tuple[str, str]]]:
    """(strategy_id, message) of every INFO-and-above record tradekit logs meanwhile."""
    lines: list[tuple[str, str]] = []
    logger.enable("tradekit")  # a library's records are off until the application opts in

    def sink(message: Any) -> None:
        record = message.record
        lines.append((record["extra"].get("strategy_id", "-"), record["message"]))

    sink_id = logger.add(sink, level="INFO")
    yield lines
    logger.remove(sink_id)
    logger.disable("tradekit")


class FakeMonotonic:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


SAMPLE_EVENTS: list[Event] = [
    PositionOpened(
        ts=START,
        position_id="p1",
        symbol="BTC/USDT",
        side=Side.LONG,
        quantity=0.5,
        price=100.0,
        fee=0.05,
        stop_loss=95.0,
        take_profit=None,
    ),
    PositionIncreased(
        ts=START,
        position_id="p1",
        symbol="BTC/USDT",
        side=Side.LONG,
        quantity_added=0.25,
        price=98.0,
        fee=0.02,
        quantity=0.75,
        avg_entry_price=99.33,
    ),
    PositionReduced(
        ts=START,
        position_id="p1",
        symbol="BTC/USDT",
        side=Side.LONG,
        quantity_closed=0.25,
        price=104.0,
        fee=0.02,
        quantity_remaining=0.5,
        realized_pnl=1.1,
        reason="take_profit_partial",
    ),
    PositionClosed(
        ts=START,
        position_id="p1",
        symbol="BTC/USDT",
        side=Side.LONG,
        quantity=0.5,
        avg_entry_price=99.33,
        exit_price=95.0,
        fees=0.1,
        realized_pnl=-2.2,
        reason="stop_loss",
        bars_held=4,
    ),
    OrderFilled(
        ts=START,
        order_id="o7",
        symbol="BTC/USDT",
        side=OrderSide.SELL,
        quantity=0.5,
        price=95.0,
        fee=0.05,
    ),
    ActionFailed(ts=START, action="OpenPosition", symbol="BTC/USDT", error="insufficient funds"),
    RiskRejected(
        ts=START,
        symbol="BTC/USDT",
        rule="max_exposure_per_symbol",
        requested=2.0,
        allowed=0.5,
        reason="symbol cap",
    ),
    OrderCancelled(
        ts=START,
        order_id="o8",
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        quantity=0.5,
        reason="strategy disabled",
    ),
    StrategyLoaded(ts=START, name="ticker", symbols=("BTC/USDT",), timeframe="1h"),
    StrategyUnloaded(ts=START, reason="removed by operator"),
    StrategyReloaded(ts=START, reason="config updated"),
    StrategyFailed(ts=START, error_type="ValueError", error="boom", consecutive_failures=2),
    StrategyQuarantined(ts=START, failures=3, last_error="ValueError: boom"),
    StrategyResumed(ts=START, by="alice", reason="fixed"),
]


class TestTradeLines:
    def test_every_logged_event_type_has_a_sample(self) -> None:
        assert {type(event) for event in SAMPLE_EVENTS} == set(LOGGED_EVENTS)

    @pytest.mark.parametrize(
        "event", [e for e in SAMPLE_EVENTS if hasattr(e, "symbol")], ids=lambda e: e.event_type
    )
    def test_trading_facts_carry_symbol_side_price_quantity_and_reason(self, event: Event) -> None:
        line = trade_line(event)
        assert line is not None
        assert "\n" not in line
        for key in ("symbol=BTC/USDT", "side=", "price=", "quantity=", "reason="):
            assert key in line

    def test_lines_show_the_values(self) -> None:
        opened, _, reduced, closed, filled, failed, rejected, cancelled, *_ = SAMPLE_EVENTS
        assert trade_line(opened) == (
            "entry symbol=BTC/USDT side=long price=100 quantity=0.5 reason=signal "
            "stop=95 target=- fee=0.05"
        )
        assert "price=95 quantity=0.5 reason=stop_loss" in str(trade_line(closed))
        assert "reason=take_profit_partial" in str(trade_line(reduced))
        assert "side=sell price=95 quantity=0.5 reason=order o7" in str(trade_line(filled))
        assert "reason=OpenPosition failed: insufficient funds" in str(trade_line(failed))
        assert "reason=max_exposure_per_symbol: symbol cap" in str(trade_line(rejected))
        assert trade_line(cancelled) == (
            "cancelled symbol=BTC/USDT side=buy price=- quantity=0.5 "
            "reason=order o8: strategy disabled"
        )

    def test_state_changes_say_the_new_state_and_why(self) -> None:
        lines = [trade_line(event) for event in SAMPLE_EVENTS[8:]]
        assert lines == [
            "state loaded symbol=BTC/USDT timeframe=1h reason=ticker",
            "state unloaded reason=removed by operator",
            "state reloaded reason=config updated",
            "state failed consecutive=2 reason=ValueError: boom",
            "state quarantined failures=3 reason=ValueError: boom",
            "state resumed by=alice reason=fixed",
        ]

    def test_events_without_a_line_get_none(self) -> None:
        assert trade_line(StrategyLoaded.__base__(ts=START)) is None  # type: ignore[misc]


class TestLiveRunLogsTrades:
    def test_each_entry_exit_and_fill_is_one_info_line_tagged_with_its_strategy(
        self, info_lines: list[tuple[str, str]]
    ) -> None:
        summary = run_live(settings_from_dict({}), [ticker("tick-a")], hourly(40))

        mine = [message for strategy_id, message in info_lines if strategy_id == "tick-a"]
        entries = [line for line in mine if line.startswith("entry ")]
        exits = [line for line in mine if line.startswith("exit ")]
        fills = [line for line in mine if line.startswith("fill ")]
        assert summary.report["tick-a"]["trades"] == len(exits) > 0
        assert len(entries) >= len(exits)
        assert len(fills) == len(entries) + len(exits)
        assert mine[0] == "state loaded symbol=BTC/USDT timeframe=1h reason=tick-a"

    def test_a_backtest_logs_no_trade_lines(self, info_lines: list[tuple[str, str]]) -> None:
        frames = {("BTC/USDT", "1h"): synthetic_frame("BTC/USDT", "1h", 200, seed=3)}
        result = backtest(settings_from_dict({}), [ticker("tick-a")], frames)

        assert result.strategies["tick-a"].stats.trade_count > 0
        assert not [m for _, m in info_lines if m.startswith(("entry ", "exit ", "fill "))]


@pytest.fixture
def engine_and_clock() -> Iterator[tuple[Any, ManualClock]]:
    clock = ManualClock(START)
    runtime = bootstrap(settings_from_dict({}), mode=RunMode.TEST, clock=clock)
    runtime.engine.load([ticker("tick-a"), ticker("tick-b", symbols=("BTC/USDT", "ETH/USDT"))])
    yield runtime.engine, clock
    runtime.close()


def feed(engine: Any, reporter: HealthReporter, clock: ManualClock, candles: list[Candle]) -> None:
    for candle in candles:
        clock.set(candle.close_ts)
        engine.on_candle(candle)
        reporter.on_candle(candle)


class TestHealthReporter:
    def test_reports_once_per_interval_of_the_monotonic_clock(
        self, engine_and_clock: tuple[Any, ManualClock], info_lines: list[tuple[str, str]]
    ) -> None:
        engine, clock = engine_and_clock
        seconds = FakeMonotonic()
        reporter = HealthReporter(engine, interval=60, now=clock.now, monotonic=seconds)

        assert reporter.tick() is None
        seconds.seconds += 59.9
        assert reporter.tick() is None
        assert reporter.seconds_until_due() == pytest.approx(0.1)
        seconds.seconds += 0.1
        assert reporter.tick() is not None
        assert reporter.tick() is None  # the next one is an interval later
        seconds.seconds += 60
        assert reporter.tick() is not None

        health = [(sid, m) for sid, m in info_lines if m.startswith("health ")]
        assert sorted(sid for sid, _ in health) == ["tick-a", "tick-a", "tick-b", "tick-b"]

    def test_document_holds_state_feeds_lag_errors_positions_and_pnl(
        self, engine_and_clock: tuple[Any, ManualClock], tmp_path: Path
    ) -> None:
        engine, clock = engine_and_clock
        path = tmp_path / "run" / "health.json"
        reporter = HealthReporter(engine, interval=60, now=clock.now, path=path)
        feed(engine, reporter, clock, hourly(20))
        clock.set(clock.now() + timedelta(minutes=30))

        document = reporter.report()

        assert json.loads(path.read_text()) == document
        assert [p.name for p in path.parent.iterdir()] == ["health.json"]  # no temporary left
        bot = document["bots"]["tick-a"]
        assert bot["state"] == "active"
        assert bot["errors"] == 0
        [btc] = bot["feeds"]
        assert btc == {
            "symbol": "BTC/USDT",
            "timeframe": "1h",
            "last_candle": (START + 19 * HOUR).isoformat(),
            "last_close": (START + 20 * HOUR).isoformat(),
            "lag_seconds": 1800.0,
            "stale": False,
        }
        expected = engine.health()["tick-a"]
        for key in ("open_positions", "unrealized_pnl", "realized_pnl"):
            assert bot[key] == expected[key]
        assert expected["realized_pnl"] != 0.0
        eth = document["bots"]["tick-b"]["feeds"][1]
        assert (eth["symbol"], eth["last_candle"], eth["lag_seconds"]) == ("ETH/USDT", None, None)

    def test_a_feed_silent_past_two_timeframes_after_its_expected_close_is_stale(
        self, engine_and_clock: tuple[Any, ManualClock]
    ) -> None:
        engine, clock = engine_and_clock
        reporter = HealthReporter(engine, interval=60, now=clock.now)
        feed(engine, reporter, clock, hourly(5))
        last_close = clock.now()
        expected_next_close = last_close + HOUR

        clock.set(expected_next_close + STALE_AFTER_TIMEFRAMES * HOUR)
        assert reporter.report()["bots"]["tick-a"]["feeds"][0]["stale"] is False
        clock.set(expected_next_close + STALE_AFTER_TIMEFRAMES * HOUR + timedelta(seconds=1))
        [btc] = reporter.report()["bots"]["tick-a"]["feeds"]
        assert btc["stale"] is True
        assert btc["lag_seconds"] == (3 * HOUR + timedelta(seconds=1)).total_seconds()

    def test_a_feed_that_never_delivered_is_stale_counted_from_the_start(
        self, engine_and_clock: tuple[Any, ManualClock], info_lines: list[tuple[str, str]]
    ) -> None:
        engine, clock = engine_and_clock
        reporter = HealthReporter(engine, interval=60, now=clock.now)
        feed(engine, reporter, clock, hourly(3, symbol="BTC/USDT", start=START))
        clock.set(START + 3 * HOUR + timedelta(seconds=1))

        btc, eth = reporter.report()["bots"]["tick-b"]["feeds"]
        assert (btc["stale"], eth["stale"]) == (False, True)
        [line] = [m for sid, m in info_lines if sid == "tick-b" and m.startswith("health ")]
        assert "ETH/USDT 1h no candle yet STALE" in line

    def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(
        self,
        engine_and_clock: tuple[Any, ManualClock],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        engine, clock = engine_and_clock
        path = tmp_path / "health.json"
        reporter = HealthReporter(engine, interval=60, now=clock.now, path=path)
        reporter.report()
        before = path.read_text()

        def broken_dump(*args: object, **kwargs: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr("tradekit.runtime.health.json.dump", broken_dump)
        with pytest.raises(OSError, match="disk full"):
            reporter.report()
        assert path.read_text() == before
        assert [p.name for p in tmp_path.iterdir()] == ["health.json"]

    def test_default_path_sits_next_to_a_sqlite_journal(self, tmp_path: Path) -> None:
        database = tmp_path / "j.db"
        assert default_health_path(f"sqlite:///{database}") == tmp_path / "j.db.health.json"
        assert default_health_path("sqlite://") == Path("tradekit.health.json")
        assert default_health_path("postgresql://u@h/db") == Path("tradekit.health.json")


class TestLiveRunReportsHealth:
    def test_the_loop_reports_on_its_interval_and_writes_a_final_file(
        self, tmp_path: Path, info_lines: list[tuple[str, str]]
    ) -> None:
        seconds = FakeMonotonic()
        candles = hourly(30)

        def candles_taking_ten_seconds_each() -> Iterator[Candle]:
            for candle in candles:
                seconds.seconds += 10
                yield candle

        path = tmp_path / "health.json"
        run_live(
            settings_from_dict({"logging": {"health_interval": 60}}),
            [ticker("tick-a")],
            candles_taking_ten_seconds_each(),
            health_path=path,
            monotonic=seconds,
        )

        health = [m for sid, m in info_lines if sid == "tick-a" and m.startswith("health ")]
        # 30 candles x 10 s = 300 s. The replay reads its first candle (10 s) before the run
        # starts, so reports fall due at 70, 130, 190 and 250 s; then the final one.
        assert len(health) == 5
        document = json.loads(path.read_text())
        assert document["bots"]["tick-a"]["feeds"][0]["last_candle"] == candles[-1].ts.isoformat()


WAIT_SECONDS = 30.0


class HealthLines:
    """The health lines tradekit logs, with a condition to wait on until one is wanted."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.changed = threading.Condition()

    def sink(self, message: Any) -> None:
        record = message.record
        if record["message"].startswith("health "):
            with self.changed:
                self.lines.append((record["extra"].get("strategy_id", "-"), record["message"]))
                self.changed.notify_all()

    def wait_for(self, wanted: Callable[[list[tuple[str, str]]], bool], what: str) -> None:
        with self.changed:
            met = self.changed.wait_for(lambda: wanted(self.lines), timeout=WAIT_SECONDS)
        assert met, f"timed out waiting for {what}; health lines: {self.lines}"


@pytest.fixture
def health_lines() -> Iterator[HealthLines]:
    watched = HealthLines()
    logger.enable("tradekit")
    sink_id = logger.add(watched.sink, level="INFO")
    yield watched
    logger.remove(sink_id)
    logger.disable("tradekit")


class StallingSource:
    """Hands over ``candles``, then blocks until released: a feed that stops delivering.

    ``drained`` is set once the run asked for the candle after the last one, so
    (nothing is read ahead) it has processed them all.
    """

    def __init__(self, candles: list[Candle]) -> None:
        self.candles = candles
        self.drained = threading.Event()
        self.released = threading.Event()

    def __iter__(self) -> Iterator[Candle]:
        yield from self.candles
        self.drained.set()
        self.released.wait(WAIT_SECONDS)


def stale_line(lines: list[tuple[str, str]]) -> bool:
    return any(sid == "tick-a" and "STALE" in message for sid, message in lines)


class TestHealthWhileNoCandleComes:
    def test_a_feed_that_stops_delivering_is_reported_stale_while_the_run_waits(
        self, tmp_path: Path, health_lines: HealthLines
    ) -> None:
        candles = hourly(3)
        clock = ManualClock(candles[-1].close_ts + timedelta(minutes=1))
        seconds = FakeMonotonic()
        source = StallingSource(candles)
        path = tmp_path / "health.json"
        summaries: list[Any] = []
        run = threading.Thread(
            target=lambda: summaries.append(
                run_live(
                    settings_from_dict({"logging": {"health_interval": 60}}),
                    [ticker("tick-a")],
                    source,
                    replay_clock=False,
                    live_clock=clock,
                    health_path=path,
                    monotonic=seconds,
                )
            )
        )
        run.start()
        try:
            assert source.drained.wait(WAIT_SECONDS), "the run did not take the candles"
            assert not stale_line(health_lines.lines)
            # No candle for more than two hours past the one expected next, and a report due.
            clock.set(candles[-1].close_ts + (STALE_AFTER_TIMEFRAMES + 1) * HOUR + timedelta(1))
            seconds.seconds += 60
            health_lines.wait_for(stale_line, "a stale health line while the feed is silent")
            [feed] = json.loads(path.read_text())["bots"]["tick-a"]["feeds"]
            assert feed["stale"] is True
            assert feed["last_candle"] == candles[-1].ts.isoformat()
            assert feed["lag_seconds"] > STALE_AFTER_TIMEFRAMES * 3600
        finally:
            source.released.set()
            run.join(WAIT_SECONDS)
        assert not run.is_alive()
        assert summaries[0].candles == len(candles)

    def test_a_slow_replay_reports_while_it_waits_for_the_next_candles_turn(
        self, health_lines: HealthLines
    ) -> None:
        seconds = FakeMonotonic()
        stop = threading.Event()
        candles = hourly(3)
        first_processed = threading.Event()

        def paced() -> Iterator[Candle]:
            yield candles[0]
            first_processed.set()  # nothing is read ahead: the run asks once it processed it
            yield from candles[1:]

        summaries: list[Any] = []
        run = threading.Thread(
            target=lambda: summaries.append(
                run_live(
                    settings_from_dict({"logging": {"health_interval": 60}}),
                    [ticker("tick-a")],
                    paced(),
                    candles_per_second=0.001,  # the second candle's turn comes in 1,000 s
                    stop=stop,
                    monotonic=seconds,
                )
            )
        )
        run.start()
        try:
            assert first_processed.wait(WAIT_SECONDS), "the run did not take the first candle"
            seconds.seconds += 60
            health_lines.wait_for(
                lambda lines: any(sid == "tick-a" for sid, _ in lines),
                "a health line during the pacing wait",
            )
        finally:
            stop.set()
            run.join(WAIT_SECONDS)
        assert not run.is_alive()
        assert summaries[0].candles == 1
        assert summaries[0].stopped
