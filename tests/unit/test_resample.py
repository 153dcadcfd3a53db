"""Tests for resampling candles to a higher timeframe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tradekit.data.resample import floor_epoch_seconds, resample
from tradekit.errors import DataError

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def bars(
    hours: list[int], start: datetime = MONDAY, step: timedelta = timedelta(hours=1)
) -> pd.DataFrame:
    """Candles at ``start + hour * step``: open 100+h, high open+2, low open-1, close open+1."""
    opens = [100.0 + hour for hour in hours]
    return pd.DataFrame(
        {
            "open": opens,
            "high": [price + 2 for price in opens],
            "low": [price - 1 for price in opens],
            "close": [price + 1 for price in opens],
            "volume": [hour + 1.0 for hour in hours],
        },
        index=pd.DatetimeIndex([start + hour * step for hour in hours], tz=UTC, name="ts"),
    )


class TestResample:
    def test_four_hour_candles_by_hand_and_the_open_last_bucket_is_dropped(self) -> None:
        result = resample(bars(list(range(10))), "1h", "4h")
        assert list(result.index) == [pd.Timestamp(MONDAY), pd.Timestamp(MONDAY + 4 * HOUR)]
        assert result.iloc[0].tolist() == [100.0, 105.0, 99.0, 104.0, 10.0]
        assert result.iloc[1].tolist() == [104.0, 109.0, 103.0, 108.0, 26.0]

    def test_keep_partial_keeps_the_unfinished_last_bucket(self) -> None:
        result = resample(bars(list(range(10))), "1h", "4h", keep_partial=True)
        assert len(result) == 3
        assert result.index[2] == pd.Timestamp(MONDAY + 8 * HOUR)
        assert result.iloc[2].tolist() == [108.0, 111.0, 107.0, 110.0, 19.0]

    def test_a_bucket_the_data_starts_inside_is_dropped(self) -> None:
        result = resample(bars(list(range(2, 8))), "1h", "4h")
        assert list(result.index) == [pd.Timestamp(MONDAY + 4 * HOUR)]
        partial = resample(bars(list(range(2, 8))), "1h", "4h", keep_partial=True)
        assert partial.iloc[0].tolist() == [102.0, 105.0, 101.0, 104.0, 7.0]

    def test_a_gap_inside_a_bucket_still_builds_it_from_what_is_there(self) -> None:
        result = resample(bars([0, 1, 2, 3, 4, 6, 7]), "1h", "4h")
        assert result.iloc[1].tolist() == [104.0, 109.0, 103.0, 108.0, 5.0 + 7.0 + 8.0]

    def test_weekly_candles_open_on_monday(self) -> None:
        thursday = datetime(2024, 1, 4, tzinfo=UTC)
        daily = bars(list(range(14)), start=thursday, step=timedelta(days=1))
        result = resample(daily, "1d", "1w")
        assert list(result.index) == [pd.Timestamp("2024-01-08", tz="UTC")]
        assert result.iloc[0].tolist() == [
            104.0,
            112.0,
            103.0,
            111.0,
            5.0 + 6 + 7 + 8 + 9 + 10 + 11,
        ]
        kept = resample(daily, "1d", "1w", keep_partial=True)
        assert [ts.day_name() for ts in kept.index] == ["Monday"] * 3
        assert kept.index[0] == pd.Timestamp("2024-01-01", tz="UTC")

    def test_minutes_to_five_minutes(self) -> None:
        minutes = bars(list(range(10)), step=timedelta(minutes=1))
        result = resample(minutes, "1m", "5m")
        assert result["volume"].tolist() == [15.0, 40.0]
        assert result.index[1] == pd.Timestamp(MONDAY + timedelta(minutes=5))

    def test_same_timeframe_returns_the_candles_unchanged(self) -> None:
        frame = bars([0, 1, 2])
        assert resample(frame, "1h", "1h").equals(resample(frame, "1h", "1h", keep_partial=True))
        assert resample(frame, "1h", "1h")["close"].tolist() == [101.0, 102.0, 103.0]

    def test_empty_frame_gives_an_empty_frame(self) -> None:
        assert resample(bars([]), "1h", "4h").empty

    @pytest.mark.parametrize(("source", "target"), [("3m", "5m"), ("4h", "1h"), ("1h", "90m")])
    def test_target_must_be_a_whole_multiple(self, source: str, target: str) -> None:
        with pytest.raises(ValueError, match=f"{target}|unknown timeframe"):
            resample(bars([0]), source, target)

    def test_candles_not_on_the_source_timeframe_are_refused(self) -> None:
        with pytest.raises(DataError, match="not aligned to the 1h timeframe"):
            resample(bars([0, 1], start=MONDAY + timedelta(minutes=30)), "1h", "4h")


class TestFloorEpochSeconds:
    def test_floors_to_timeframe_boundaries_with_weeks_on_monday(self) -> None:
        wednesday_noon = int((MONDAY + timedelta(days=2, hours=12, minutes=7)).timestamp())
        seconds = np.array([wednesday_noon], dtype=np.int64)
        assert floor_epoch_seconds(seconds, "1w")[0] == int(MONDAY.timestamp())
        assert floor_epoch_seconds(seconds, "4h")[0] == wednesday_noon - 7 * 60
        assert floor_epoch_seconds(seconds, "1d")[0] == wednesday_noon - 12 * 3600 - 7 * 60
