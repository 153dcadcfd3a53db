"""Tests for live ccxt polling: closed candles only, each once, in order, errors translated.

A fake venue answers ``fetch_ohlcv`` from a scripted history, including the
candle still forming at the fake clock's time; the fake sleep moves that clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from tradekit.data.ccxt_source import CcxtPollingSource, default_poll_seconds
from tradekit.errors import DataError, ExchangeError
from tradekit.protocols import CandleSource
from tradekit.services.market.clock import ManualClock

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
HOUR_MS = 3_600_000
START_MS = int(START.timestamp()) * 1000


# The source matches ccxt errors by class name, so the fakes carry ccxt's names.
class NetworkError(Exception):
    """Like ccxt's base class for transient failures."""


class RequestTimeout(NetworkError):  # noqa: N818
    """Like ccxt's timeout, a NetworkError."""


class BadSymbol(Exception):  # noqa: N818
    """Like ccxt's error for a market the venue does not list."""


class BadResponse(Exception):  # noqa: N818
    """Like ccxt's error for an answer it cannot parse."""


def row(hour: int, close: float = 100.0) -> list[Any]:
    return [START_MS + hour * HOUR_MS, close, close + 1, close - 1, close, 10.0]


class FakeVenue:
    """Answers from a fixed hourly history, showing only what exists at the clock's time.

    The candle whose hour has begun but not ended is returned with a provisional
    close of 1.0, as a venue shows a forming candle.
    """

    id = "fakex"

    def __init__(self, clock: ManualClock, hours: int, ignore_since: bool = False) -> None:
        self.clock = clock
        self.forming: list[Any] = [1.0, 1.0, 1.0, 1.0, 0.0]
        self.history = {symbol: [row(h, 100.0 + h) for h in range(hours)] for symbol in "AB"}
        self.ignore_since = ignore_since
        self.calls: list[tuple[str, int | None, int | None]] = []
        self.failures: list[Exception] = []

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[Any]]:
        assert timeframe == "1h"
        self.calls.append((symbol, since, limit))
        if self.failures:
            raise self.failures.pop(0)
        now = int(self.clock.now().timestamp() * 1000)
        visible = []
        for item in self.history[symbol]:
            if item[0] + HOUR_MS <= now:
                visible.append(list(item))
            elif item[0] <= now:
                visible.append([item[0], *self.forming])
        if since is not None and not self.ignore_since:
            visible = [item for item in visible if item[0] >= since]
            return visible[:limit]
        return visible[-limit:] if limit else visible


def make_source(
    venue: FakeVenue, symbols: list[str] | None = None, **kwargs: Any
) -> CcxtPollingSource:
    clock = venue.clock

    def sleep(seconds: float) -> None:
        clock.set(clock.now() + timedelta(seconds=seconds))

    kwargs.setdefault("poll_seconds", 1800.0)
    return CcxtPollingSource(venue, symbols or ["A"], "1h", sleep=sleep, clock=clock, **kwargs)


class TestClosedCandles:
    def test_the_forming_candle_waits_until_it_has_closed(self) -> None:
        clock = ManualClock(START + 3 * HOUR + timedelta(minutes=10))
        venue = FakeVenue(clock, hours=10)
        source = make_source(venue, since=START, max_polls=3)
        candles = list(source.stream())
        # 03:10 sees 0-2 closed; 03:40 nothing new; 04:10 sees the 03:00 candle, final values.
        assert [c.ts for c in candles] == [START + h * HOUR for h in range(4)]
        assert candles[-1].close == 103.0
        assert all(candle.close != 1.0 for candle in candles)

    def test_an_incomplete_forming_row_is_not_read(self) -> None:
        venue = FakeVenue(ManualClock(START + HOUR + timedelta(minutes=30)), hours=5)
        venue.forming = [None, None, None, None, None]
        source = make_source(venue, since=START, max_polls=1)
        assert [c.ts for c in source.stream()] == [START]

    def test_a_candle_closing_exactly_now_is_delivered(self) -> None:
        clock = ManualClock(START + 2 * HOUR)
        source = make_source(FakeVenue(clock, hours=5), since=START, max_polls=1)
        assert [c.ts for c in source.stream()] == [START, START + HOUR]

    def test_each_candle_is_yielded_once_even_when_the_venue_repeats_rows(self) -> None:
        clock = ManualClock(START + 3 * HOUR + timedelta(minutes=1))
        venue = FakeVenue(clock, hours=10, ignore_since=True)
        source = make_source(venue, max_polls=6)
        stamps = [candle.ts for candle in source.stream()]
        assert stamps == sorted(set(stamps))
        assert stamps == [START + h * HOUR for h in range(5)]

    def test_since_passes_after_the_last_delivered_candle(self) -> None:
        clock = ManualClock(START + 2 * HOUR + timedelta(minutes=5))
        venue = FakeVenue(clock, hours=10)
        source = make_source(venue, since=START, max_polls=2, poll_seconds=3600.0)
        list(source.stream())
        assert [since for _, since, _ in venue.calls] == [START_MS, START_MS + 2 * HOUR_MS]

    def test_a_backlog_larger_than_limit_is_paged_through(self) -> None:
        clock = ManualClock(START + 9 * HOUR + timedelta(minutes=5))
        venue = FakeVenue(clock, hours=12)
        source = make_source(venue, since=START, max_polls=1, limit=4)
        assert [c.ts for c in source.stream()] == [START + h * HOUR for h in range(9)]
        assert len(venue.calls) == 3

    def test_a_second_stream_continues_where_the_first_stopped(self) -> None:
        clock = ManualClock(START + 2 * HOUR + timedelta(minutes=5))
        source = make_source(FakeVenue(clock, hours=10), since=START, max_polls=1)
        first = [c.ts for c in source.stream()]
        clock.set(clock.now() + 2 * HOUR)
        second = [c.ts for c in source.stream()]
        assert first == [START, START + HOUR]
        assert second == [START + 2 * HOUR, START + 3 * HOUR]


class TestOrderAcrossSymbols:
    def test_polls_merge_symbols_by_close_time(self) -> None:
        clock = ManualClock(START + 2 * HOUR + timedelta(minutes=5))
        venue = FakeVenue(clock, hours=5)
        source = make_source(venue, ["B", "A"], since=START, max_polls=2, poll_seconds=3600.0)
        order = [(candle.ts, candle.symbol) for candle in source.stream()]
        assert order == [
            (START, "A"),
            (START, "B"),
            (START + HOUR, "A"),
            (START + HOUR, "B"),
            (START + 2 * HOUR, "A"),
            (START + 2 * HOUR, "B"),
        ]

    def test_is_a_candle_source(self) -> None:
        clock = ManualClock(START + 3 * HOUR)
        source = make_source(FakeVenue(clock, hours=5), ["B", "A"], since=START)
        assert isinstance(source, CandleSource)
        assert source.symbols() == [("A", "1h"), ("B", "1h")]
        frames = source.frames()
        assert frames[("A", "1h")]["close"].tolist() == [100.0, 101.0, 102.0]
        assert str(pd.DatetimeIndex(frames[("B", "1h")].index).tz) == "UTC"


class TestErrors:
    def test_network_errors_are_retried(self) -> None:
        clock = ManualClock(START + 2 * HOUR)
        venue = FakeVenue(clock, hours=5)
        venue.failures = [RequestTimeout("slow"), NetworkError("reset")]
        source = make_source(venue, since=START, max_polls=1, retries=2)
        assert len(list(source.stream())) >= 2

    def test_persistent_network_errors_raise_exchange_error_naming_venue_and_symbol(
        self,
    ) -> None:
        venue = FakeVenue(ManualClock(START + 2 * HOUR), hours=5)
        venue.failures = [RequestTimeout("slow")] * 3
        source = make_source(venue, ["B"], max_polls=1, retries=2)
        with pytest.raises(ExchangeError) as caught:
            list(source.stream())
        message = str(caught.value)
        assert message.startswith("fakex B 1h: fetch_ohlcv failed with RequestTimeout: slow")
        assert "after 2 retries" in message

    def test_bad_symbol_is_not_retried_and_explained(self) -> None:
        venue = FakeVenue(ManualClock(START + 2 * HOUR), hours=5)
        venue.failures = [BadSymbol("no such market")]
        with pytest.raises(ExchangeError, match=r"fakex A 1h: .*does not list this symbol"):
            list(make_source(venue, max_polls=1).stream())
        assert len(venue.calls) == 1

    def test_garbled_answer_is_a_data_error(self) -> None:
        venue = FakeVenue(ManualClock(START + 2 * HOUR), hours=5)
        venue.failures = [BadResponse("not json")]
        with pytest.raises(DataError, match="fakex A 1h: fetch_ohlcv failed with BadResponse"):
            list(make_source(venue, max_polls=1).stream())

    @pytest.mark.parametrize(
        ("bad", "expected"),
        [
            ([START_MS, 1.0, 2.0], "malformed row"),
            ([START_MS, "x", 2.0, 0.5, 1.5, 3.0], "malformed row"),
            ([START_MS + 1, 1.0, 2.0, 0.5, 1.5, 3.0], "bad candle"),
            ([START_MS, 1.0, 0.9, 0.5, 1.5, 3.0], "bad candle"),
        ],
    )
    def test_invalid_rows_raise_data_error_naming_venue(
        self, bad: list[Any], expected: str
    ) -> None:
        venue = FakeVenue(ManualClock(START + 2 * HOUR), hours=0)
        venue.history["A"] = [bad]
        with pytest.raises(DataError, match=f"fakex.*{expected}"):
            list(make_source(venue, max_polls=1).stream())

    def test_missing_volume_reads_as_zero(self) -> None:
        venue = FakeVenue(ManualClock(START + 2 * HOUR), hours=0)
        venue.history["A"] = [[START_MS, 1.0, 2.0, 0.5, 1.5, None]]
        assert [c.volume for c in make_source(venue, max_polls=1).stream()] == [0.0]

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"poll_seconds": 0.0},
            {"max_polls": 0},
            {"limit": 0},
        ],
    )
    def test_bad_settings_are_refused(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="must be"):
            make_source(FakeVenue(ManualClock(START), hours=1), **kwargs)

    def test_client_without_fetch_ohlcv_is_refused(self) -> None:
        with pytest.raises(TypeError, match="fetch_ohlcv"):
            CcxtPollingSource(object(), ["A"], "1h")


class TestPollingInterval:
    @pytest.mark.parametrize(("timeframe", "seconds"), [("1m", 6.0), ("5m", 10.0), ("1d", 10.0)])
    def test_the_default_is_a_tenth_of_the_timeframe_at_most_ten_seconds(
        self, timeframe: str, seconds: float
    ) -> None:
        assert default_poll_seconds(timeframe) == seconds

    def test_without_an_interval_polls_are_the_timeframes_default_apart(self) -> None:
        clock = ManualClock(START + 2 * HOUR)
        waits: list[float] = []
        source = CcxtPollingSource(
            FakeVenue(clock, hours=5), ["A"], "1h", max_polls=3, sleep=waits.append, clock=clock
        )
        list(source.stream())
        assert waits == [default_poll_seconds("1h")] * 2
