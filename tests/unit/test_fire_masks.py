"""Tests for the analyzers' ``could_fire`` masks: never False on a bar ``analyze`` fires on.

Each built-in analyzer is run bar by bar over random series (warm-up gaps,
infinities, values sitting exactly on a level included) and its mask over the
same series must cover every bar it fired on, and its mask of each direction
(``could_fire_toward``) every bar it fired on in that direction. The registry's
score bounds must never fall below the scores it gives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradekit.config.strategy import AnalyzerConfig
from tradekit.domain import Candle, Direction
from tradekit.protocols import BarView
from tradekit.services.signals.analyzers import Analyzer, AnalyzerRegistry, build_analyzers

if TYPE_CHECKING:
    from tradekit.services.signals.fire_masks import BoolArray

Values = Sequence[float | None]


class SeriesView:
    """A ``BarView`` over plain lists, reading them as the indicator registry would."""

    def __init__(self, series: Mapping[str, Values]) -> None:
        self.series = series
        self._bar = 0

    @property
    def symbol(self) -> str:
        return "BTC/USDT"

    @property
    def bar(self) -> int:
        return self._bar

    @property
    def candle(self) -> Candle:
        raise AssertionError("the built-in analyzers never read the candle")

    def at(self, bar: int) -> SeriesView:
        self._bar = bar
        return self

    def value(self, ref: str, back: int = 0) -> float | None:
        index = self._bar - back
        values = self.series[ref]
        if not 0 <= index < len(values):
            return None
        found = values[index]
        return None if found is None or math.isnan(found) else found


class SeriesColumns:
    """``IndicatorColumns`` over the same lists: NaN wherever ``SeriesView.value`` gives None."""

    def __init__(self, series: Mapping[str, Values], size: int, first: int = 0) -> None:
        self.series = series
        self.bars: npt.NDArray[np.int64] = np.arange(first, first + size, dtype=np.int64)

    def values(self, ref: str, back: int = 0) -> npt.NDArray[np.float64]:
        view = SeriesView(self.series)
        return np.array(
            [
                math.nan if (found := view.at(int(bar)).value(ref, back)) is None else found
                for bar in self.bars
            ],
            dtype=np.float64,
        )


def build(type_name: str, **params: Any) -> Analyzer:
    [(analyzer, _)] = build_analyzers([AnalyzerConfig(type=type_name, params=params)], "test")
    return analyzer


def fired(analyzer: Analyzer, series: Mapping[str, Values], size: int) -> list[int]:
    view = SeriesView(series)
    return [bar for bar in range(size) if analyzer.analyze(view.at(bar)) is not None]


def mask_of(analyzer: Analyzer, series: Mapping[str, Values], size: int) -> BoolArray:
    mask = analyzer.could_fire(SeriesColumns(series, size))  # type: ignore[attr-defined]
    assert mask.dtype == np.bool_
    assert mask.shape == (size,)
    return np.asarray(mask)


def assert_covers(analyzer: Analyzer, series: Mapping[str, Values], size: int) -> BoolArray:
    mask = mask_of(analyzer, series, size)
    missed = [bar for bar in fired(analyzer, series, size) if not mask[bar]]
    assert missed == [], f"{analyzer.name} fired on bars its mask rules out: {missed}"
    assert_covers_per_direction(analyzer, series, size, mask)
    return mask


def assert_covers_per_direction(
    analyzer: Analyzer, series: Mapping[str, Values], size: int, mask: BoolArray
) -> None:
    """Each signal's bar is in the mask of its direction; the masks together are ``mask``."""
    toward = analyzer.could_fire_toward(SeriesColumns(series, size))  # type: ignore[attr-defined]
    view = SeriesView(series)
    for bar in range(size):
        signal = analyzer.analyze(view.at(bar))
        if signal is not None:
            assert toward[signal.direction][bar], (analyzer.name, bar, signal.direction)
    union = np.zeros(size, dtype=np.bool_)
    for direction_mask in toward.values():
        assert direction_mask.dtype == np.bool_
        assert direction_mask.shape == (size,)
        union |= direction_mask
    assert union.tolist() == mask.tolist()


LEVELS = (-1.0, 0.0, 20.0, 30.0, 50.0, 70.0, 80.0, 100.0)


def values(size: int) -> st.SearchStrategy[list[float | None]]:
    """Values near and exactly on the levels used, with gaps, NaN and infinities."""
    item = st.one_of(
        st.none(),
        st.sampled_from([*LEVELS, math.nan, math.inf, -math.inf]),
        st.floats(min_value=-200, max_value=200, allow_nan=False),
    )
    return st.lists(item, min_size=size, max_size=size)


sizes = st.integers(min_value=1, max_value=40)


class TestThresholdMask:
    @settings(max_examples=300, deadline=None)
    @given(
        data=st.data(),
        size=sizes,
        below=st.sampled_from([None, 0.0, 30.0, 50.0]),
        gap=st.sampled_from([None, 0.0, 20.0, 40.0]),
        mode=st.sampled_from(["cross", "level"]),
    )
    def test_covers_every_bar_it_fires_on(
        self, data: st.DataObject, size: int, below: float | None, gap: float | None, mode: str
    ) -> None:
        if below is None and gap is None:
            gap = 10.0
        above = None if gap is None else (below or 0.0) + gap
        analyzer = build("threshold", source="rsi", below=below, above=above, mode=mode)
        series = {"rsi": data.draw(values(size))}
        mask = assert_covers(analyzer, series, size)
        # The mask uses the very comparisons analyze makes: it is exact, not just a superset.
        assert np.flatnonzero(mask).tolist() == fired(analyzer, series, size)


class TestBandPositionMask:
    @settings(max_examples=200, deadline=None)
    @given(
        data=st.data(),
        size=sizes,
        lower=st.sampled_from([-1.0, 0.0, 20.0]),
        width=st.sampled_from([1.0, 50.0, 80.0]),
        mode=st.sampled_from(["cross", "level"]),
    )
    def test_covers_every_bar_it_fires_on(
        self, data: st.DataObject, size: int, lower: float, width: float, mode: str
    ) -> None:
        analyzer = build(
            "band_position", source="bbands.percent_b", lower=lower, upper=lower + width, mode=mode
        )
        assert_covers(analyzer, {"bbands.percent_b": data.draw(values(size))}, size)


class TestCrossoverMask:
    @settings(max_examples=300, deadline=None)
    @given(data=st.data(), size=sizes)
    def test_covers_every_bar_it_fires_on(self, data: st.DataObject, size: int) -> None:
        analyzer = build("crossover", fast="ema_fast", slow="ema_slow")
        series = {"ema_fast": data.draw(values(size)), "ema_slow": data.draw(values(size))}
        mask = assert_covers(analyzer, series, size)
        assert np.flatnonzero(mask).tolist() == fired(analyzer, series, size)

    def test_touching_and_then_crossing_is_in_the_mask(self) -> None:
        analyzer = build("crossover", fast="fast", slow="slow")
        series: dict[str, Values] = {"fast": [1.0, 2.0, 3.0], "slow": [2.0, 2.0, 2.0]}
        assert mask_of(analyzer, series, 3).tolist() == [False, False, True]


class TestTrendMask:
    @settings(max_examples=300, deadline=None)
    @given(
        data=st.data(),
        size=sizes,
        lookback=st.integers(min_value=1, max_value=5),
        min_slope=st.sampled_from([0.5, 1.0, 10.0, 100.0]),
    )
    def test_covers_every_bar_it_fires_on(
        self, data: st.DataObject, size: int, lookback: int, min_slope: float
    ) -> None:
        analyzer = build("trend", source="ema", lookback=lookback, min_slope_pct=min_slope)
        assert_covers(analyzer, {"ema": data.draw(values(size))}, size)

    def test_a_slope_exactly_at_the_minimum_is_in_the_mask(self) -> None:
        analyzer = build("trend", source="ema", lookback=1, min_slope_pct=1.0)
        series: dict[str, Values] = {"ema": [100.0, 101.0, 99.99, 0.0, 5.0]}
        assert mask_of(analyzer, series, 5).tolist() == [False, True, True, True, False]


class TestTimeIntervalMask:
    @settings(max_examples=100, deadline=None)
    @given(
        every=st.integers(min_value=1, max_value=9),
        data=st.data(),
        first=st.integers(min_value=0, max_value=50),
        size=sizes,
    )
    def test_is_exactly_the_bars_it_fires_on(
        self, every: int, data: st.DataObject, first: int, size: int
    ) -> None:
        offset = data.draw(st.integers(min_value=0, max_value=every - 1))
        analyzer = build("time_interval", every_bars=every, offset=offset)
        view = SeriesView({})
        expected = [
            analyzer.analyze(view.at(bar)) is not None for bar in range(first, first + size)
        ]
        mask = analyzer.could_fire(SeriesColumns({}, size, first))  # type: ignore[attr-defined]
        assert mask.tolist() == expected
        toward = analyzer.could_fire_toward(SeriesColumns({}, size, first))  # type: ignore[attr-defined]
        assert list(toward) == [Direction.LONG]
        assert toward[Direction.LONG].tolist() == expected


class _Silent:
    """A user analyzer without ``could_fire``: it might fire anywhere."""

    name = "silent"
    references: tuple[str, ...] = ()

    def analyze(self, view: BarView) -> None:
        return None


class _WrongShape(_Silent):
    name = "wrong"

    def could_fire(self, columns: Any) -> BoolArray:
        return np.zeros(1, dtype=np.bool_)


class TestRegistryMask:
    def test_is_the_union_of_the_analyzers_masks(self) -> None:
        registry = AnalyzerRegistry(
            [
                (build("threshold", source="rsi", below=30, mode="level"), 1.0),
                (build("time_interval", every_bars=4), 1.0),
            ]
        )
        series: dict[str, Values] = {"rsi": [50, 20, 50, 50, 50, 50, 25, 50]}
        mask = registry.could_fire(SeriesColumns(series, 8))
        assert mask is not None
        assert np.flatnonzero(mask).tolist() == [0, 1, 4, 6]

    def test_an_analyzer_without_a_mask_rules_nothing_out(self) -> None:
        registry = AnalyzerRegistry([(build("time_interval", every_bars=4), 1.0), (_Silent(), 1.0)])
        assert registry.could_fire(SeriesColumns({}, 8)) is None

    def test_a_mask_of_the_wrong_shape_is_refused(self) -> None:
        registry = AnalyzerRegistry([(_WrongShape(), 1.0)])
        with pytest.raises(TypeError, match="'wrong': could_fire must return 8 booleans"):
            registry.could_fire(SeriesColumns({}, 8))


class TestRegistryScoreBounds:
    @settings(max_examples=200, deadline=None)
    @given(
        data=st.data(),
        size=sizes,
        weights=st.lists(st.sampled_from([0.1, 0.3, 0.5, 1.0, 2.5]), min_size=3, max_size=3),
    )
    def test_never_below_the_scores_evaluate_gives(
        self, data: st.DataObject, size: int, weights: list[float]
    ) -> None:
        analyzers = [
            build("threshold", source="rsi", below=30, above=70, above_direction="short"),
            build("crossover", fast="ema_fast", slow="ema_slow"),
            build("trend", source="ema_fast", lookback=2, min_slope_pct=1.0),
        ]
        registry = AnalyzerRegistry(zip(analyzers, weights, strict=True))
        series = {name: data.draw(values(size)) for name in ("rsi", "ema_fast", "ema_slow")}
        bounds = registry.score_bounds(SeriesColumns(series, size))
        assert bounds is not None
        bounded = {
            int(bar): (long, short, exit_)
            for bar, long, short, exit_ in zip(
                bounds.bars, bounds.long, bounds.short, bounds.exit, strict=True
            )
        }
        view = SeriesView(series)
        for bar in range(size):
            scores = registry.evaluate(view.at(bar))
            if scores.signals:
                long, short, exit_ = bounded[bar]
                assert scores.long <= long
                assert scores.short <= short
                assert scores.exit <= exit_

    def test_an_analyzer_without_directions_counts_toward_each_where_it_could_fire(self) -> None:
        registry = AnalyzerRegistry(
            [(build("time_interval", every_bars=2, direction="short"), 1.0), (_Everywhere(), 3.0)]
        )
        bounds = registry.score_bounds(SeriesColumns({}, 5, first=10))
        assert bounds is not None
        assert bounds.bars.tolist() == [10, 11, 12, 13, 14]
        assert bounds.long.tolist() == [0.0, 0.75, 0.0, 0.75, 0.0]
        assert bounds.short.tolist() == [0.25, 0.75, 0.25, 0.75, 0.25]
        assert bounds.exit.tolist() == [0.0, 0.75, 0.0, 0.75, 0.0]

    def test_an_analyzer_without_a_mask_leaves_no_bounds(self) -> None:
        registry = AnalyzerRegistry([(build("time_interval", every_bars=4), 1.0), (_Silent(), 1.0)])
        assert registry.score_bounds(SeriesColumns({}, 8)) is None


class _Everywhere(_Silent):
    """A user analyzer that says where it could fire (odd bars) but not in which direction."""

    name = "odd"

    def could_fire(self, columns: Any) -> BoolArray:
        odd: BoolArray = columns.bars % 2 == 1
        return odd
