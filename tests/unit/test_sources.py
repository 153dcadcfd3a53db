"""Tests for in-memory candle sources: frames, merged streams and seeded synthetic data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from tradekit.data.sources import (
    FrameSource,
    SyntheticSource,
    find_gaps,
    frame_candles,
    merge_streams,
)
from tradekit.data.synthetic import synthetic_candles
from tradekit.errors import DataError
from tradekit.protocols import CandleSource

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def flat(count: int, step: timedelta = HOUR, price: float = 100.0) -> pd.DataFrame:
    """``count`` identical candles ``step`` apart from Monday 00:00 UTC."""
    index = pd.DatetimeIndex([MONDAY + i * step for i in range(count)], name="ts")
    return pd.DataFrame(
        {"open": price, "high": price + 1, "low": price - 1, "close": price, "volume": 1.0},
        index=index,
    )


class TestStreamOrder:
    def test_candles_merge_by_close_time_then_symbol_then_timeframe(self) -> None:
        source = FrameSource(
            {
                ("ETH", "4h"): flat(2, 4 * HOUR),
                ("ETH", "1h"): flat(8),
                ("BTC", "4h"): flat(2, 4 * HOUR),
                ("BTC", "1h"): flat(8),
            }
        )
        order = [(c.close_ts - MONDAY, c.symbol, c.timeframe) for c in source.stream()]
        assert order[:6] == [
            (HOUR, "BTC", "1h"),
            (HOUR, "ETH", "1h"),
            (2 * HOUR, "BTC", "1h"),
            (2 * HOUR, "ETH", "1h"),
            (3 * HOUR, "BTC", "1h"),
            (3 * HOUR, "ETH", "1h"),
        ]
        assert order[6:10] == [
            (4 * HOUR, "BTC", "1h"),
            (4 * HOUR, "BTC", "4h"),
            (4 * HOUR, "ETH", "1h"),
            (4 * HOUR, "ETH", "4h"),
        ]
        assert len(order) == 20
        assert order == sorted(order, key=lambda item: (item[0], item[1], item[2] == "4h"))

    def test_order_does_not_depend_on_how_the_series_were_given(self) -> None:
        frames = {("B", "1h"): flat(3), ("A", "1h"): flat(3), ("A", "2h"): flat(1, 2 * HOUR)}
        reordered = dict(reversed(list(frames.items())))
        assert list(FrameSource(frames).stream()) == list(FrameSource(reordered).stream())

    def test_merge_streams_merges_per_series_iterators(self) -> None:
        merged = merge_streams(
            [frame_candles("B", "1h", flat(2)), frame_candles("A", "1h", flat(2))]
        )
        assert [candle.symbol for candle in merged] == ["A", "B", "A", "B"]


class TestFrameSource:
    def test_is_a_candle_source_listing_series_sorted(self) -> None:
        source = FrameSource({("B", "4h"): flat(1, 4 * HOUR), ("B", "1h"): flat(1)})
        assert isinstance(source, CandleSource)
        assert source.symbols() == [("B", "1h"), ("B", "4h")]
        assert len(source) == 2

    def test_frames_are_copies(self) -> None:
        source = FrameSource({("A", "1h"): flat(3)})
        handed_out = source.frames()[("A", "1h")]
        handed_out.loc[:, "close"] = 1.0
        assert source.frames()[("A", "1h")]["close"].tolist() == [100.0] * 3

    def test_index_in_another_zone_is_converted_to_utc(self) -> None:
        frame = flat(2)
        frame.index = pd.DatetimeIndex(frame.index).tz_convert("Asia/Tokyo")
        stored = FrameSource({("A", "1h"): frame}).frames()[("A", "1h")]
        assert str(pd.DatetimeIndex(stored.index).tz) == "UTC"
        assert stored.index[0] == pd.Timestamp(MONDAY)

    def test_naive_index_is_refused_with_the_fix(self) -> None:
        frame = flat(2)
        frame.index = pd.DatetimeIndex(frame.index).tz_localize(None)
        with pytest.raises(DataError, match=r"series A 1h: .*tz_localize\('UTC'\)"):
            FrameSource({("A", "1h"): frame})

    def test_missing_column_is_named(self) -> None:
        with pytest.raises(DataError, match=r"series A 1h: frame lacks column\(s\) volume"):
            FrameSource({("A", "1h"): flat(2).drop(columns="volume")})

    def test_invalid_row_is_named(self) -> None:
        frame = flat(3)
        frame.loc[frame.index[1], "high"] = 50.0
        with pytest.raises(DataError, match=r"series A 1h: row 1 .*high is below"):
            FrameSource({("A", "1h"): frame})

    def test_unknown_timeframe_is_refused(self) -> None:
        with pytest.raises(DataError, match="unknown timeframe '1hr'"):
            FrameSource({("A", "1hr"): flat(1)})


class TestSyntheticSource:
    def test_each_symbol_is_its_own_seeded_series(self) -> None:
        source = SyntheticSource(["ETH", "BTC"], "1h", 50, seed=3)
        assert source.symbols() == [("BTC", "1h"), ("ETH", "1h")]
        streamed = list(source.stream())
        btc = [candle for candle in streamed if candle.symbol == "BTC"]
        assert btc == synthetic_candles("BTC", "1h", 50, seed=3)
        eth = [candle.close for candle in streamed if candle.symbol == "ETH"]
        assert eth != [candle.close for candle in btc]

    def test_same_arguments_give_the_same_candles(self) -> None:
        first = SyntheticSource(["A", "B"], "15m", 30, seed=11).stream()
        second = SyntheticSource(["A", "B"], "15m", 30, seed=11).stream()
        assert list(first) == list(second)

    def test_start_is_honoured(self) -> None:
        start = datetime(2023, 6, 5, tzinfo=UTC)
        frames = SyntheticSource(["A"], "1d", 3, start=start).frames()
        assert frames[("A", "1d")].index[0] == pd.Timestamp(start)

    @pytest.mark.parametrize(
        ("symbols", "timeframe", "bars", "error"),
        [
            (["A", "A"], "1h", 5, ValueError),
            (["A"], "7h", 5, ValueError),
            (["A"], "1h", 0, ValueError),
            ("AB", "1h", 5, TypeError),
        ],
    )
    def test_bad_arguments_are_refused(
        self, symbols: list[str], timeframe: str, bars: int, error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            SyntheticSource(symbols, timeframe, bars)


class TestFindGaps:
    def test_no_gaps_gives_none(self) -> None:
        assert find_gaps("A", "1h", pd.DatetimeIndex(flat(5).index)) is None

    def test_gaps_are_counted(self) -> None:
        index = pd.DatetimeIndex([MONDAY, MONDAY + HOUR, MONDAY + 4 * HOUR, MONDAY + 6 * HOUR])
        gaps = find_gaps("A", "1h", index)
        assert gaps is not None
        assert (gaps.count, gaps.missing_bars) == (2, 3)
        assert [(gap.after, gap.missing) for gap in gaps.first] == [
            (MONDAY + HOUR, 2),
            (MONDAY + 4 * HOUR, 1),
        ]
