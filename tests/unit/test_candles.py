"""Tests for the shared candle history: ordering, duplicates, gaps, capacity and bulk loading."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradekit.domain import Candle
from tradekit.errors import DataError
from tradekit.services.market.candles import BarColumns, CandleSeries, CandleStore

SYMBOL = "BTC/USDT"
START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def candle(hour: int, close: float = 100.0, symbol: str = SYMBOL, volume: float = 5.0) -> Candle:
    return Candle(
        symbol=symbol,
        timeframe="1h",
        ts=START + hour * HOUR,
        open=close,
        high=close + 1.0,
        low=close - 1.0,
        close=close,
        volume=volume,
    )


def arrays(bars: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A seeded random walk as OHLCV columns with hourly open times."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, bars)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    return {
        "ts": int(START.timestamp()) + 3600 * np.arange(bars, dtype=np.int64),
        "open": open_,
        "high": np.maximum(open_, close) * 1.002,
        "low": np.minimum(open_, close) * 0.998,
        "close": close,
        "volume": rng.uniform(1.0, 10.0, bars),
    }


class TestAppend:
    def test_indices_count_from_zero(self) -> None:
        series = CandleSeries(SYMBOL, "1h")
        assert series.last_bar == -1
        assert [series.append(candle(hour)) for hour in range(3)] == [0, 1, 2]
        assert len(series) == 3
        assert series.last_bar == 2
        assert series.close_at(1) == 100.0

    def test_older_candle_is_refused_naming_both_timestamps(self) -> None:
        series = CandleSeries(SYMBOL, "1h")
        series.append(candle(5))
        with pytest.raises(DataError) as caught:
            series.append(candle(4))
        message = str(caught.value)
        assert "BTC/USDT 1h" in message
        assert "2024-01-01T04:00:00+00:00" in message
        assert "2024-01-01T05:00:00+00:00" in message

    def test_identical_duplicate_is_ignored_and_returns_existing_index(self) -> None:
        series = CandleSeries(SYMBOL, "1h")
        series.append(candle(0))
        assert series.append(candle(1)) == 1
        assert series.append(candle(1)) == 1
        assert len(series) == 2

    def test_conflicting_duplicate_is_refused(self) -> None:
        series = CandleSeries(SYMBOL, "1h")
        series.append(candle(0, close=100.0))
        with pytest.raises(DataError, match="different candle"):
            series.append(candle(0, close=101.0))

    def test_gap_is_accepted_and_counted(self) -> None:
        series = CandleSeries(SYMBOL, "1h")
        series.append(candle(0))
        series.append(candle(1))
        assert series.append(candle(4)) == 2
        series.append(candle(5))
        assert series.gaps == 1

    def test_candle_of_another_symbol_is_refused(self) -> None:
        series = CandleSeries(SYMBOL, "1h")
        with pytest.raises(DataError, match="ETH/USDT"):
            series.append(candle(0, symbol="ETH/USDT"))

    def test_unknown_timeframe_is_refused(self) -> None:
        with pytest.raises(DataError, match="did you mean '1h'"):
            CandleSeries(SYMBOL, "1hh")


class TestCapacity:
    def test_only_the_last_capacity_bars_are_kept(self) -> None:
        series = CandleSeries(SYMBOL, "1h", capacity=10)
        for hour in range(95):
            series.append(candle(hour, close=100.0 + hour))
        assert len(series) == 10
        assert series.first_kept_bar == 85
        assert series.last_bar == 94
        assert series.close_at(85) == 185.0
        with pytest.raises(IndexError, match=re.escape("outside the kept history 85..94")):
            series.close_at(84)

    def test_frame_last_n_is_a_utc_indexed_copy(self) -> None:
        series = CandleSeries(SYMBOL, "1h", capacity=10)
        for hour in range(30):
            series.append(candle(hour, close=100.0 + hour))
        frame = series.frame(3)
        assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
        assert isinstance(frame.index, pd.DatetimeIndex)
        assert str(frame.index.tz) == "UTC"
        assert frame.index[-1] == START + 29 * HOUR
        assert frame["close"].tolist() == [127.0, 128.0, 129.0]
        assert len(series.frame()) == 10
        assert len(series.frame(100)) == 10
        series.append(candle(30, close=2.0))
        assert frame["close"].iloc[-1] == 129.0

    def test_storage_stays_bounded(self) -> None:
        columns = BarColumns({"x": np.float64}, capacity=100)
        for bar in range(10_000):
            columns.extend(bar, {"x": np.array([float(bar)])})
        assert len(columns) == 100
        assert columns.first == 9_900
        assert columns.arrays["x"].size <= 100 + 25
        assert columns.view("x", 9_900, 10_000).tolist() == [float(b) for b in range(9_900, 10_000)]

    def test_bulk_extend_larger_than_capacity_keeps_the_tail(self) -> None:
        columns = BarColumns({"x": np.float64}, capacity=5)
        columns.extend(0, {"x": np.arange(12.0)})
        assert (columns.first, columns.end) == (7, 12)
        assert columns.view("x", 7, 12).tolist() == [7.0, 8.0, 9.0, 10.0, 11.0]

    def test_extend_past_the_end_drops_what_came_before(self) -> None:
        columns = BarColumns({"x": np.float64}, capacity=50, start=3)
        columns.extend(3, {"x": np.array([1.0, 2.0])})
        columns.extend(20, {"x": np.array([3.0])})
        assert (columns.first, columns.end) == (20, 21)
        with pytest.raises(ValueError, match="already written"):
            columns.extend(20, {"x": np.array([4.0])})

    def test_views_are_read_only(self) -> None:
        series = CandleSeries.from_arrays(SYMBOL, "1h", **arrays(5))
        view = series.columns(0, 5)["close"]
        with pytest.raises(ValueError, match="read-only"):
            view[0] = 1.0


class TestBulkLoading:
    def test_from_arrays_matches_appending_one_by_one(self) -> None:
        data = arrays(50)
        bulk = CandleSeries.from_arrays(SYMBOL, "1h", **data)
        one_by_one = CandleSeries(SYMBOL, "1h")
        for bar in range(50):
            assert one_by_one.append(bulk.candle_at(bar)) == bar
        pd.testing.assert_frame_equal(bulk.frame(), one_by_one.frame())
        assert bulk.last_bar == 49

    def test_from_frame_round_trips(self) -> None:
        bulk = CandleSeries.from_arrays(SYMBOL, "1h", **arrays(20))
        again = CandleSeries.from_frame(SYMBOL, "1h", bulk.frame())
        pd.testing.assert_frame_equal(bulk.frame(), again.frame())

    def test_default_capacity_keeps_a_long_history(self) -> None:
        series = CandleSeries.from_arrays(SYMBOL, "1h", **arrays(20_000))
        assert len(series) == 20_000
        assert series.first_kept_bar == 0

    def test_append_continues_after_bulk(self) -> None:
        data = arrays(10)
        series = CandleSeries.from_arrays(SYMBOL, "1h", **data)
        assert series.append(candle(10)) == 10
        with pytest.raises(DataError, match="older than the last"):
            series.append(candle(3))

    @pytest.mark.parametrize(
        ("column", "row", "value", "problem"),
        [
            ("ts", 3, "previous", "not after the previous"),
            ("ts", 2, "plus_one", "not aligned to the 1h timeframe"),
            ("high", 4, 0.5, "high is below max"),
            ("close", 1, float("nan"), "close must be a finite number > 0"),
            ("volume", 6, -1.0, "volume must be a finite number >= 0"),
        ],
    )
    def test_first_bad_row_is_reported(
        self, column: str, row: int, value: float | str, problem: str
    ) -> None:
        data = arrays(8)
        if value == "previous":
            data[column][row] = data[column][row - 1]
        elif value == "plus_one":
            data[column][row] += 1
        else:
            data[column][row] = value
        with pytest.raises(DataError, match=f"row {row} .*{problem}"):
            CandleSeries.from_arrays(SYMBOL, "1h", **data)

    def test_bulk_gaps_are_counted(self) -> None:
        data = arrays(10)
        keep = np.array([0, 1, 2, 5, 6, 9])
        series = CandleSeries.from_arrays(SYMBOL, "1h", **{k: v[keep] for k, v in data.items()})
        assert series.gaps == 2

    def test_frame_without_time_zone_is_refused(self) -> None:
        frame = CandleSeries.from_arrays(SYMBOL, "1h", **arrays(3)).frame()
        frame.index = frame.index.tz_localize(None)
        with pytest.raises(DataError, match="time-zone aware"):
            CandleSeries.from_frame(SYMBOL, "1h", frame)

    def test_a_plain_read_csv_frame_is_refused_with_the_fix_that_makes_it_load(
        self, tmp_path: Path
    ) -> None:
        bulk = CandleSeries.from_arrays(SYMBOL, "1h", **arrays(5))
        bulk.frame().to_csv(tmp_path / "btc.csv", index_label="timestamp")
        frame = pd.read_csv(tmp_path / "btc.csv")
        fix = "frame.set_index(pd.to_datetime(frame['timestamp'], utc=True))"
        with pytest.raises(DataError, match=re.escape(f"got RangeIndex; use {fix}")):
            CandleSeries.from_frame(SYMBOL, "1h", frame)
        fixed = frame.set_index(pd.to_datetime(frame["timestamp"], utc=True))
        assert CandleSeries.from_frame(SYMBOL, "1h", fixed).frame().equals(bulk.frame())

    def test_a_naive_datetime_index_is_refused_with_the_fix(self) -> None:
        frame = CandleSeries.from_arrays(SYMBOL, "1h", **arrays(3)).frame()
        frame.index = frame.index.tz_localize(None)
        with pytest.raises(DataError, match=re.escape("use frame.tz_localize('UTC')")):
            CandleSeries.from_frame(SYMBOL, "1h", frame)


class TestCandleStore:
    def test_series_is_created_once_and_shared(self) -> None:
        store = CandleStore(capacity=50)
        first = store.series(SYMBOL, "1h")
        assert store.series(SYMBOL, "1h") is first
        assert first.capacity == 50
        assert store.series(SYMBOL, "4h") is not first
        assert len(store) == 2

    def test_append_routes_to_the_series(self) -> None:
        store = CandleStore()
        assert store.append(candle(0)) == 0
        assert store.append(candle(1)) == 1
        assert store.append(candle(0, symbol="ETH/USDT")) == 0
        assert store.append(candle(1)) == 1
        assert len(store.series(SYMBOL, "1h")) == 2

    def test_add_registers_a_bulk_series_once(self) -> None:
        store = CandleStore()
        bulk = CandleSeries.from_arrays(SYMBOL, "1h", **arrays(5))
        assert store.add(bulk) is bulk
        assert store.series(SYMBOL, "1h") is bulk
        with pytest.raises(DataError, match="already holds a series for BTC/USDT 1h"):
            store.add(CandleSeries(SYMBOL, "1h"))
