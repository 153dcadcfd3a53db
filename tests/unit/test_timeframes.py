"""Tests for tradekit.timeframes: names, lengths, flooring and alignment of timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradekit.timeframes import (
    TIMEFRAME_SECONDS,
    floor_timestamp,
    is_aligned,
    is_higher_timeframe,
    timeframe_delta,
    timeframe_seconds,
    unknown_timeframe_message,
)

ALL_TIMEFRAMES = list(TIMEFRAME_SECONDS)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


class TestTimeframeLengths:
    @pytest.mark.parametrize(
        ("timeframe", "seconds"),
        [("1m", 60), ("15m", 900), ("1h", 3600), ("4h", 14_400), ("1d", 86_400), ("1w", 604_800)],
    )
    def test_seconds_of_known_timeframe(self, timeframe: str, seconds: int) -> None:
        assert timeframe_seconds(timeframe) == seconds

    @pytest.mark.parametrize("timeframe", ALL_TIMEFRAMES)
    def test_delta_matches_seconds(self, timeframe: str) -> None:
        assert timeframe_delta(timeframe) == timedelta(seconds=TIMEFRAME_SECONDS[timeframe])

    def test_timeframes_are_listed_shortest_first(self) -> None:
        lengths = list(TIMEFRAME_SECONDS.values())
        assert lengths == sorted(lengths)
        assert len(set(lengths)) == len(lengths)

    def test_unknown_timeframe_raises_value_error_with_suggestion(self) -> None:
        with pytest.raises(ValueError, match=r"unknown timeframe '1hr'.*did you mean '1h'\?"):
            timeframe_seconds("1hr")

    def test_unknown_timeframe_in_delta_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match="unknown timeframe '2d'"):
            timeframe_delta("2d")

    def test_timeframe_names_are_case_sensitive(self) -> None:
        with pytest.raises(ValueError, match="unknown timeframe '1H'"):
            timeframe_seconds("1H")


class TestUnknownTimeframeMessage:
    def test_names_the_value_and_lists_every_known_timeframe(self) -> None:
        message = unknown_timeframe_message("7m")

        assert message.startswith("unknown timeframe '7m'; expected one of ")
        for timeframe in ALL_TIMEFRAMES:
            assert timeframe in message

    @pytest.mark.parametrize(
        ("typo", "suggestion"), [("1hr", "1h"), ("15min", "15m"), ("1wk", "1w"), ("12", "12h")]
    )
    def test_suggests_the_closest_timeframe(self, typo: str, suggestion: str) -> None:
        assert unknown_timeframe_message(typo).endswith(f"; did you mean '{suggestion}'?")

    def test_has_no_suggestion_when_nothing_is_close(self) -> None:
        assert "did you mean" not in unknown_timeframe_message("fortnight")

    def test_accepts_a_value_that_is_not_a_string(self) -> None:
        assert unknown_timeframe_message(60).startswith("unknown timeframe 60;")


class TestFloorTimestamp:
    @pytest.mark.parametrize(
        ("timeframe", "expected"),
        [
            ("1m", utc(2024, 3, 5, 13, 47)),
            ("5m", utc(2024, 3, 5, 13, 45)),
            ("15m", utc(2024, 3, 5, 13, 45)),
            ("30m", utc(2024, 3, 5, 13, 30)),
            ("1h", utc(2024, 3, 5, 13)),
            ("4h", utc(2024, 3, 5, 12)),
            ("12h", utc(2024, 3, 5, 12)),
            ("1d", utc(2024, 3, 5)),
            ("1w", utc(2024, 3, 4)),
        ],
    )
    def test_returns_open_time_of_containing_candle(
        self, timeframe: str, expected: datetime
    ) -> None:
        ts = datetime(2024, 3, 5, 13, 47, 29, 123_456, tzinfo=UTC)
        assert floor_timestamp(ts, timeframe) == expected

    def test_aligned_timestamp_is_its_own_floor(self) -> None:
        ts = utc(2024, 3, 5, 12)
        assert floor_timestamp(ts, "4h") == ts

    @pytest.mark.parametrize(
        "ts",
        [utc(2024, 1, 1), utc(2024, 1, 3, 9), utc(2024, 1, 7, 23, 59, 59)],
        ids=["monday", "wednesday", "sunday-last-second"],
    )
    def test_weekly_candle_opens_on_monday_midnight(self, ts: datetime) -> None:
        floored = floor_timestamp(ts, "1w")

        assert floored == utc(2024, 1, 1)
        assert floored.weekday() == 0

    def test_weekly_floor_crosses_month_and_year(self) -> None:
        assert floor_timestamp(utc(2025, 1, 2, 8), "1w") == utc(2024, 12, 30)

    def test_result_is_utc(self) -> None:
        floored = floor_timestamp(utc(2024, 3, 5, 13, 47), "1h")
        assert floored.tzinfo is UTC

    def test_floors_in_utc_not_in_the_timestamps_zone(self) -> None:
        # 01:30 at UTC+2 is 23:30 UTC the day before.
        ts = datetime(2024, 3, 5, 1, 30, tzinfo=timezone(timedelta(hours=2)))
        assert floor_timestamp(ts, "1d") == utc(2024, 3, 4)

    def test_unknown_timeframe_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match="did you mean '1d'"):
            floor_timestamp(utc(2024, 1, 1), "1dd")

    def test_floor_is_not_after_a_pre_epoch_timestamp_with_microseconds(self) -> None:
        ts = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
        assert floor_timestamp(ts, "1m") == utc(1969, 12, 31, 23, 59)

    def test_floor_is_not_after_a_far_future_timestamp_with_microseconds(self) -> None:
        ts = datetime(3000, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
        assert floor_timestamp(ts, "1m") == utc(3000, 12, 31, 23, 59)

    @given(
        ts=st.datetimes(
            min_value=datetime(1970, 1, 1),
            max_value=datetime(2200, 1, 1),
            timezones=st.just(UTC),
        ),
        timeframe=st.sampled_from(ALL_TIMEFRAMES),
    )
    def test_floor_is_aligned_and_contains_ts(self, ts: datetime, timeframe: str) -> None:
        floored = floor_timestamp(ts, timeframe)

        assert is_aligned(floored, timeframe)
        assert floored <= ts < floored + timeframe_delta(timeframe)

    @given(
        ts=st.datetimes(
            min_value=datetime(1970, 1, 1),
            max_value=datetime(2200, 1, 1),
            timezones=st.just(UTC),
        ),
        timeframe=st.sampled_from(ALL_TIMEFRAMES),
    )
    def test_floor_is_idempotent(self, ts: datetime, timeframe: str) -> None:
        floored = floor_timestamp(ts, timeframe)
        assert floor_timestamp(floored, timeframe) == floored

    @given(
        ts=st.datetimes(
            min_value=datetime(1970, 1, 8),
            max_value=datetime(2200, 1, 1),
            timezones=st.just(UTC),
        ),
        pair=st.sampled_from(
            [(high, low) for high in ALL_TIMEFRAMES for low in ALL_TIMEFRAMES]
        ).filter(lambda pair: is_higher_timeframe(*pair)),
    )
    def test_higher_timeframe_candle_opens_on_a_lower_timeframe_boundary(
        self, ts: datetime, pair: tuple[str, str]
    ) -> None:
        higher, lower = pair
        assert is_aligned(floor_timestamp(ts, higher), lower)


class TestIsAligned:
    @pytest.mark.parametrize(
        ("ts", "timeframe"),
        [
            (utc(2024, 3, 5, 13, 47), "1m"),
            (utc(2024, 3, 5, 13, 45), "15m"),
            (utc(2024, 3, 5, 13), "1h"),
            (utc(2024, 3, 5, 8), "4h"),
            (utc(2024, 3, 5, 16), "8h"),
            (utc(2024, 3, 5), "1d"),
            (utc(2024, 3, 4), "1w"),
        ],
    )
    def test_open_time_is_aligned(self, ts: datetime, timeframe: str) -> None:
        assert is_aligned(ts, timeframe)

    @pytest.mark.parametrize(
        ("ts", "timeframe"),
        [
            (utc(2024, 3, 5, 10, 30), "1h"),
            (utc(2024, 3, 5, 13, 1), "5m"),
            (utc(2024, 3, 5, 6), "4h"),
            (utc(2024, 3, 5, 12), "1d"),
            (utc(2024, 3, 5), "1w"),
            (utc(2024, 3, 7), "1w"),
        ],
    )
    def test_time_inside_a_candle_is_not_aligned(self, ts: datetime, timeframe: str) -> None:
        assert not is_aligned(ts, timeframe)

    def test_thursday_is_not_a_weekly_open_although_the_epoch_was_a_thursday(self) -> None:
        assert not is_aligned(utc(1970, 1, 1), "1w")
        assert is_aligned(utc(1970, 1, 5), "1w")

    def test_seconds_make_a_timestamp_unaligned(self) -> None:
        assert not is_aligned(utc(2024, 3, 5, 13, 0, 1), "1m")

    def test_microseconds_make_a_timestamp_unaligned(self) -> None:
        assert not is_aligned(datetime(2024, 3, 5, 13, 0, 0, 1, tzinfo=UTC), "1m")

    def test_aware_non_utc_timestamp_is_judged_in_utc(self) -> None:
        ist = timezone(timedelta(hours=5, minutes=30))
        assert is_aligned(datetime(2024, 3, 5, 5, 30, tzinfo=ist), "1d")
        assert not is_aligned(datetime(2024, 3, 5, 0, 0, tzinfo=ist), "1h")

    def test_naive_timestamp_is_never_aligned(self) -> None:
        assert not is_aligned(datetime(2024, 3, 5), "1d")

    def test_unknown_timeframe_raises_value_error(self) -> None:
        with pytest.raises(ValueError, match="unknown timeframe '90m'"):
            is_aligned(utc(2024, 3, 5), "90m")


class TestIsHigherTimeframe:
    @pytest.mark.parametrize(
        ("candidate", "base"),
        [("1h", "1m"), ("4h", "1h"), ("1d", "4h"), ("1w", "1d"), ("1w", "8h"), ("15m", "3m")],
    )
    def test_longer_whole_multiple_is_higher(self, candidate: str, base: str) -> None:
        assert is_higher_timeframe(candidate, base)

    @pytest.mark.parametrize("timeframe", ALL_TIMEFRAMES)
    def test_timeframe_is_not_higher_than_itself(self, timeframe: str) -> None:
        assert not is_higher_timeframe(timeframe, timeframe)

    def test_shorter_timeframe_is_not_higher(self) -> None:
        assert not is_higher_timeframe("1h", "4h")

    @pytest.mark.parametrize(("candidate", "base"), [("5m", "3m"), ("12h", "8h")])
    def test_longer_but_not_a_whole_multiple_is_not_higher(self, candidate: str, base: str) -> None:
        assert not is_higher_timeframe(candidate, base)

    @pytest.mark.parametrize(("candidate", "base"), [("2d", "1h"), ("1h", "2d")])
    def test_unknown_timeframe_raises_value_error(self, candidate: str, base: str) -> None:
        with pytest.raises(ValueError, match="unknown timeframe '2d'"):
            is_higher_timeframe(candidate, base)
