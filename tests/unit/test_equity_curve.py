"""Tests for ``EquityCurve`` and the portfolio line built from such curves.

The curve holds the points a list of ``(datetime, float)`` would, in typed
buffers: the same times and values however they were added, a bounded curve
keeps exactly its latest points, and its memory does not grow by a Python
object per point. The portfolio line equals the forward-filled sum of a frame
of every curve, bit for bit.
"""

from __future__ import annotations

import random
import tracemalloc
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tradekit.runtime.backtest import StrategyResult, _portfolio_equity
from tradekit.services.market.column_slice import ColumnSlice
from tradekit.services.positions.equity_curve import EquityCurve
from tradekit.stats import PerformanceStats

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = 3600


def stamp(ts: datetime) -> int:
    return int(ts.timestamp())


def random_times(rng: random.Random, count: int) -> list[int]:
    """Ascending epoch seconds with mostly even steps, some gaps and repeats."""
    second, times = stamp(T0), []
    for _ in range(count):
        second += rng.choice([0, HOUR, HOUR, HOUR, HOUR, 2 * HOUR, 60])
        times.append(second)
    return times


def filled_in_pieces(rng: random.Random, times: list[int], values: list[float]) -> EquityCurve:
    """A curve given ``times`` by a random mix of single appends and bulk extends."""
    curve, index = EquityCurve(), 0
    while index < len(times):
        if rng.random() < 0.4:
            curve.append(datetime.fromtimestamp(times[index], UTC), values[index])
            index += 1
            continue
        stop = rng.randint(index, len(times))
        curve.extend(np.array(times[index:stop], dtype=np.int64), values[index:stop])
        index = stop
    return curve


class TestEquityCurve:
    def test_holds_the_points_it_was_given_however_they_were_added(self) -> None:
        rng = random.Random(5)
        for _ in range(300):
            times = random_times(rng, rng.randint(0, 60))
            values = [rng.uniform(900.0, 1100.0) for _ in times]
            one_by_one = EquityCurve()
            for second, value in zip(times, values, strict=True):
                one_by_one.append(datetime.fromtimestamp(second, UTC), value)
            in_pieces = filled_in_pieces(rng, times, values)
            expected = [
                (datetime.fromtimestamp(second, UTC), value)
                for second, value in zip(times, values, strict=True)
            ]
            for curve in (one_by_one, in_pieces):
                assert curve.points() == expected
                assert curve.times_micros().tolist() == [second * 1_000_000 for second in times]
                assert curve.values().tolist() == values
            assert one_by_one.times_key() == in_pieces.times_key()
            assert one_by_one == in_pieces

    def test_reads_like_a_list_of_points(self) -> None:
        curve = EquityCurve()
        for hour, value in enumerate((10.0, 11.0, 12.5)):
            curve.append(T0 + timedelta(hours=hour), value)
        assert len(curve) == 3
        assert curve[0] == (T0, 10.0)
        assert curve[-1] == (T0 + timedelta(hours=2), 12.5)
        assert curve[1:] == [(T0 + timedelta(hours=1), 11.0), (T0 + timedelta(hours=2), 12.5)]
        assert curve == list(curve)
        with pytest.raises(IndexError):
            curve[3]

    def test_a_constant_stretch_repeats_the_value(self) -> None:
        curve = EquityCurve()
        curve.extend_constant(np.array([stamp(T0), stamp(T0) + HOUR]), 5.0)
        assert curve.points() == [(T0, 5.0), (T0 + timedelta(hours=1), 5.0)]

    def test_refuses_times_and_values_of_different_lengths(self) -> None:
        with pytest.raises(ValueError, match="2 times but 1 values"):
            EquityCurve().extend(np.array([1, 2]), [1.0])

    @pytest.mark.parametrize("limit", [1, 3, 7])
    def test_a_bounded_curve_keeps_exactly_its_latest_points(self, limit: int) -> None:
        curve, everything = EquityCurve(limit), []
        for hour in range(40):
            point = (T0 + timedelta(hours=hour), float(hour))
            curve.append(*point)
            everything.append(point)
            assert list(curve) == everything[-limit:]
            assert curve.values().tolist() == [value for _, value in everything[-limit:]]

    def test_bounding_keeps_the_latest_points_and_the_bound(self) -> None:
        curve = EquityCurve()
        for hour in range(10):
            curve.append(T0 + timedelta(hours=hour), float(hour))
        bounded = curve.bounded(3)
        assert [value for _, value in bounded] == [7.0, 8.0, 9.0]
        bounded.append(T0 + timedelta(hours=10), 10.0)
        assert [value for _, value in bounded] == [8.0, 9.0, 10.0]

    def test_a_limit_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="limit must be >= 1"):
            EquityCurve(0)

    def test_memory_is_the_values_not_an_object_per_point(self) -> None:
        """100k candles of a series without gaps cost about 8 bytes each, not ~90."""
        bars = 100_000
        times = np.arange(bars, dtype=np.int64) * HOUR + stamp(T0)
        values = np.linspace(1000.0, 2000.0, bars).tolist()
        tracemalloc.start()
        try:
            curve = EquityCurve()
            for first in range(0, bars, 1_000):
                curve.append(datetime.fromtimestamp(int(times[first]), UTC), values[first])
                curve.extend(times[first + 1 : first + 1_000], values[first + 1 : first + 1_000])
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(curve) == bars
        assert held < 1_000_000


def result(strategy_id: str, curve: EquityCurve, capital: float) -> StrategyResult:
    stats = PerformanceStats(0.0, 0.0, 0.0, None, None, 0.0, 0, capital, 0.0)
    return StrategyResult(strategy_id, "1h", capital, [], curve, stats, 0)


def frame_sum(results: dict[str, StrategyResult]) -> pd.Series:
    """The portfolio line as a frame of every curve gives it: carried forward, summed across."""
    curves = []
    for strategy_id, item in results.items():
        if item.equity_curve:
            times, values = zip(*item.equity_curve, strict=True)
            curve = pd.Series(values, index=pd.DatetimeIndex(times), name=strategy_id)
            curves.append(curve[~curve.index.duplicated(keep="last")])
    frame = pd.concat(curves, axis=1, sort=True).ffill()
    for item in results.values():
        if item.strategy_id in frame:
            frame[item.strategy_id] = frame[item.strategy_id].fillna(item.capital)
    return frame.sum(axis=1)


class TestPortfolioEquity:
    def test_equals_the_forward_filled_sum_of_every_curve_bit_for_bit(self) -> None:
        rng = random.Random(11)
        for _ in range(30):
            results = {}
            shared = random_times(rng, rng.randint(1, 80))
            for number in range(rng.randint(1, 12)):
                times = shared if rng.random() < 0.5 else random_times(rng, rng.randint(0, 80))
                values = [rng.uniform(500.0, 5000.0) for _ in times]
                capital = rng.uniform(500.0, 5000.0)
                curve = filled_in_pieces(rng, times, values)
                results[f"s{number}"] = result(f"s{number}", curve, capital)
            if not any(item.equity for item in results.values()):
                continue
            found, expected = _portfolio_equity(results), frame_sum(results)
            assert found.index.equals(expected.index)
            assert found.index.dtype == expected.index.dtype
            assert found.to_numpy().tobytes() == expected.to_numpy().tobytes()

    def test_is_empty_without_equity_points(self) -> None:
        assert _portfolio_equity({"a": result("a", EquityCurve(), 100.0)}).empty


def closes_column(count: int, seed: int) -> tuple[np.ndarray, list[float]]:
    rng = np.random.default_rng(seed)
    column = 1000.0 + np.cumsum(rng.normal(0.0, 7.3, count))
    return column, column.tolist()


class TestFormulaStretches:
    """Stretches valued from a column of closes, kept as formulas until the curve is read."""

    def test_reads_the_values_computed_point_by_point_bit_for_bit(self) -> None:
        rng = random.Random(11)
        for _ in range(200):
            count = rng.randint(0, 80)
            # Two symbols' closes: a strategy's positions can take turns in them.
            columns = [closes_column(count, rng.randint(0, 10**6)) for _ in range(2)]
            times = random_times(rng, count)
            curve, expected, row = EquityCurve(), [], 0
            while row < count:
                stop = rng.randint(row + 1, count)
                seconds = np.array(times[row:stop], dtype=np.int64)
                cash, quantity = rng.uniform(-50.0, 5000.0), rng.choice([0.0, rng.random()])
                column, closes = rng.choice(columns)
                how = rng.choice(["append", "constant", "long", "short", "list"])
                if how == "append":
                    stop = row + 1
                    curve.append(datetime.fromtimestamp(times[row], UTC), closes[row] / 3)
                    expected.append(closes[row] / 3)
                elif how == "constant":
                    curve.extend_constant(seconds, cash)
                    expected += [cash] * (stop - row)
                elif how == "list":
                    curve.extend_marked(seconds, cash, quantity, closes[row:stop], short=True)
                    expected += [cash - quantity * close for close in closes[row:stop]]
                else:
                    short = how == "short"
                    stretch = ColumnSlice(column, row, stop)
                    curve.extend_marked(seconds, cash, quantity, stretch, short=short)
                    expected += [
                        cash - quantity * close if short else cash + quantity * close
                        for close in closes[row:stop]
                    ]
                row = stop
            assert [value.hex() for value in curve.values().tolist()] == [
                value.hex() for value in expected
            ]
            assert curve.times_micros().tolist() == [second * 1_000_000 for second in times]
            assert len(curve) == count
            if count:
                assert curve[-1][1] == expected[-1]
                assert curve.bounded(5).values().tolist() == expected[-5:]

    def test_stretches_that_go_on_from_the_last_are_one_formula(self) -> None:
        column, closes = closes_column(30, 8)
        seconds = np.arange(30, dtype=np.int64) * HOUR + stamp(T0)
        curve = EquityCurve()
        for start, stop in ((0, 10), (10, 25), (25, 30)):
            stretch = ColumnSlice(column, start, stop)
            curve.extend_marked(seconds[start:stop], 7.0, 0.5, stretch, short=True)
        curve.extend_constant(seconds[:0], 3.0)
        assert repr(curve) == "EquityCurve(30 points, 1 time runs, 1 formula stretches)"
        assert curve.values().tolist() == [7.0 - 0.5 * close for close in closes]

    def test_a_zero_keeps_its_sign(self) -> None:
        curve = EquityCurve()
        curve.extend_constant(np.array([stamp(T0)]), 0.0)
        curve.extend_constant(np.array([stamp(T0) + HOUR]), -0.0)
        assert [value.hex() for value in curve.values().tolist()] == ["0x0.0p+0", "-0x0.0p+0"]

    def test_a_bounded_curve_stores_the_values(self) -> None:
        column, closes = closes_column(10, 3)
        curve = EquityCurve(4)
        seconds = np.arange(10, dtype=np.int64) * HOUR + stamp(T0)
        curve.extend_marked(seconds, 100.0, 0.5, ColumnSlice(column, 0, 10), short=False)
        assert curve.values().tolist() == [100.0 + 0.5 * close for close in closes[-4:]]

    def test_refuses_times_and_closes_of_different_lengths(self) -> None:
        with pytest.raises(ValueError, match="2 times but 1 closes"):
            EquityCurve().extend_marked(np.array([1, 2]), 1.0, 1.0, [1.0], short=False)

    def test_memory_does_not_grow_with_the_points_of_formula_stretches(self) -> None:
        """100k candles passed over in stretches of about 50 cost a few bytes each, not 8."""
        bars = 100_000
        column, closes = closes_column(bars, 5)
        times = np.arange(bars, dtype=np.int64) * HOUR + stamp(T0)
        tracemalloc.start()
        try:
            curve = EquityCurve()
            for first in range(0, bars, 100):
                curve.append(datetime.fromtimestamp(int(times[first]), UTC), closes[first])
                middle, stop = first + 50, first + 100
                curve.extend_constant(times[first + 1 : middle], 1000.0)
                stretch = ColumnSlice(column, middle, stop)
                curve.extend_marked(times[middle:stop], 10.0, 0.25, stretch, short=False)
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(curve) == bars
        assert held < 200_000
        assert curve.values()[-1] == 10.0 + 0.25 * closes[-1]
