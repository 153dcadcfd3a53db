"""Tests for tradekit.services.signals.analyzers: built-in analyzers, building them, scoring."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeBarView, FixedAnalyzer
from pydantic import BaseModel, ConfigDict

from tradekit.config.strategy import AnalyzerConfig
from tradekit.domain import Direction, Signal
from tradekit.errors import ConfigError
from tradekit.protocols import BarView
from tradekit.services.signals.analyzers import (
    ANALYZER_TYPES,
    NO_SCORES,
    Analyzer,
    AnalyzerRegistry,
    Scores,
    build_analyzers,
    register_analyzer,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

Series = Mapping[str, Sequence[float | None]]


def build(type_name: str, **params: Any) -> Analyzer:
    [(analyzer, _)] = build_analyzers([AnalyzerConfig(type=type_name, params=params)], "test")
    return analyzer


def fired_bars(analyzer: Analyzer, series: Series) -> dict[int, Signal]:
    """Run ``analyzer`` over every bar of ``series``; the bars it fired on and what it said."""
    view = FakeBarView(series)
    found = {}
    for bar in view.bars():
        signal = analyzer.analyze(view.at(bar))
        if signal is not None:
            found[bar] = signal
    return found


def directions(signals: Mapping[int, Signal]) -> dict[int, str]:
    return {bar: signal.direction.value for bar, signal in signals.items()}


def config_error(configs: list[dict[str, Any]]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        build_analyzers([AnalyzerConfig.model_validate(c) for c in configs], "rsi-btc")
    return caught.value


class TestThreshold:
    RSI: Sequence[float | None] = [None, None, 50, 40, 31, 29.5, 25, 27, 35, 60, 69, 72, 80, 65]

    def test_cross_below_fires_only_on_the_crossing_bar(self) -> None:
        analyzer = build("threshold", source="rsi", below=30)
        signals = fired_bars(analyzer, {"rsi": self.RSI})
        assert list(signals) == [5]
        signal = signals[5]
        assert signal.direction is Direction.LONG
        assert signal.strength == 1.0
        assert signal.reason == "rsi crossed below 30 (29.5)"
        assert signal.source == analyzer.name == "threshold(rsi<30)"

    def test_rsi_30_70_mean_reversion_is_long_below_and_exit_above(self) -> None:
        analyzer = build("threshold", source="rsi", below=30, above=70)
        signals = fired_bars(analyzer, {"rsi": self.RSI})
        assert directions(signals) == {5: "long", 11: "exit"}
        assert signals[11].reason == "rsi crossed above 70 (72)"
        assert analyzer.name == "threshold(rsi<30,>70)"
        assert analyzer.references == ("rsi",)

    def test_above_direction_may_be_short(self) -> None:
        analyzer = build("threshold", source="rsi", above=70, above_direction="short")
        signals = fired_bars(analyzer, {"rsi": self.RSI})
        assert [(bar, s.direction) for bar, s in signals.items()] == [(11, Direction.SHORT)]

    def test_level_mode_fires_on_every_bar_beyond_the_level(self) -> None:
        analyzer = build("threshold", source="rsi", below=30, mode="level")
        assert list(fired_bars(analyzer, {"rsi": self.RSI})) == [5, 6, 7]

    def test_a_value_exactly_at_the_level_is_not_beyond_it(self) -> None:
        analyzer = build("threshold", source="rsi", below=30)
        assert fired_bars(analyzer, {"rsi": [35, 30, 29]}).keys() == {2}

    def test_none_while_warming_up(self) -> None:
        analyzer = build("threshold", source="rsi", below=30)
        view = FakeBarView({"rsi": [None, 25, None]})
        assert analyzer.analyze(view.at(0)) is None
        # Below the level, but the previous value is not ready: not a cross.
        assert analyzer.analyze(view.at(1)) is None
        assert analyzer.analyze(view.at(2)) is None

    def test_quiet_candle_reads_one_value(self) -> None:
        analyzer = build("threshold", source="rsi", below=30, above=70)
        view = FakeBarView({"rsi": [50, 55]}, bar=1)
        assert analyzer.analyze(view) is None
        assert view.reads == 1

    def test_nan_previous_value_is_not_a_cross(self) -> None:
        analyzer = build("threshold", source="rsi", below=30)
        assert fired_bars(analyzer, {"rsi": [float("nan"), 25]}) == {}


class TestCrossover:
    FAST: Sequence[float | None] = [None, 9, 9.5, 10, 11, 12, 11, 9, 8]
    SLOW: Sequence[float | None] = [None, 10, 10, 10, 10, 10, 10, 10, 10]

    def test_fast_crossing_above_is_long_and_below_is_exit(self) -> None:
        analyzer = build("crossover", fast="ema_fast", slow="ema_slow")
        signals = fired_bars(analyzer, {"ema_fast": self.FAST, "ema_slow": self.SLOW})
        # Bar 3 touches (10 == 10), bar 4 goes above: the cross is on bar 4.
        assert directions(signals) == {4: "long", 7: "exit"}
        assert signals[4].reason == "ema_fast crossed above ema_slow"
        assert signals[7].reason == "ema_fast crossed below ema_slow"
        assert analyzer.references == ("ema_fast", "ema_slow")

    def test_directions_are_configurable(self) -> None:
        analyzer = build("crossover", fast="macd.macd", slow="macd.signal", down_direction="short")
        signals = fired_bars(analyzer, {"macd.macd": self.FAST, "macd.signal": self.SLOW})
        assert signals[7].direction is Direction.SHORT

    def test_none_while_either_series_warms_up(self) -> None:
        analyzer = build("crossover", fast="a", slow="b")
        assert fired_bars(analyzer, {"a": [1, 3], "b": [None, 2]}) == {}
        assert fired_bars(analyzer, {"a": [None, 3], "b": [2, 2]}) == {}


class TestBandPosition:
    PERCENT_B: Sequence[float | None] = [None, 0.5, 0.2, -0.1, -0.3, 0.4, 1.2, 1.1, 0.9]

    def test_level_mode_is_the_default(self) -> None:
        analyzer = build("band_position", source="bbands.percent_b")
        signals = fired_bars(analyzer, {"bbands.percent_b": self.PERCENT_B})
        assert directions(signals) == {3: "long", 4: "long", 6: "exit", 7: "exit"}
        assert signals[3].reason == "bbands.percent_b -0.1 below 0"

    def test_cross_mode_fires_on_leaving_the_band_only(self) -> None:
        analyzer = build("band_position", source="bbands.percent_b", mode="cross")
        signals = fired_bars(analyzer, {"bbands.percent_b": self.PERCENT_B})
        assert directions(signals) == {3: "long", 6: "exit"}

    def test_custom_band(self) -> None:
        analyzer = build("band_position", source="pb", lower=0.3, upper=0.8)
        assert list(fired_bars(analyzer, {"pb": [0.5, 0.25, 0.85]})) == [1, 2]


class TestTrend:
    def test_slope_over_lookback_against_min_slope(self) -> None:
        analyzer = build("trend", source="ema", lookback=2, min_slope_pct=1.5)
        series = {"ema": [100, 101, 102, 102.5, 101, 100, 99, 100]}
        signals = fired_bars(analyzer, series)
        # Bar 2: +2%; bar 3: +1.49% and bar 4: -0.98%, too flat; bar 5: -2.44%; bar 6: -1.98%.
        assert directions(signals) == {2: "long", 5: "exit", 6: "exit"}
        assert signals[2].reason == "ema moved +2% over 2 bars"

    def test_exactly_the_min_slope_fires(self) -> None:
        analyzer = build("trend", source="ema", lookback=1, min_slope_pct=1)
        assert fired_bars(analyzer, {"ema": [100, 101]}).keys() == {1}

    def test_none_while_lookback_is_not_ready(self) -> None:
        analyzer = build("trend", source="ema", lookback=3, min_slope_pct=1)
        assert fired_bars(analyzer, {"ema": [None, 100, 150, 200]}) == {}

    def test_down_direction_configurable_and_zero_base_ignored(self) -> None:
        analyzer = build("trend", source="x", lookback=1, min_slope_pct=10, down_direction="short")
        signals = fired_bars(analyzer, {"x": [0, 5, 4]})
        assert [(bar, s.direction) for bar, s in signals.items()] == [(2, Direction.SHORT)]


class TestTimeInterval:
    def test_fires_long_every_n_bars_from_bar_zero(self) -> None:
        analyzer = build("time_interval", every_bars=7)
        view = FakeBarView()
        fired = [bar for bar in range(22) if analyzer.analyze(view.at(bar)) is not None]
        assert fired == [0, 7, 14, 21]
        assert analyzer.references == ()

    def test_offset_shifts_the_schedule(self) -> None:
        analyzer = build("time_interval", every_bars=3, offset=1)
        view = FakeBarView()
        fired = [bar for bar in range(10) if analyzer.analyze(view.at(bar)) is not None]
        assert fired == [1, 4, 7]
        signal = analyzer.analyze(view.at(4))
        assert signal is not None
        assert signal.direction is Direction.LONG
        assert signal.reason == "every 3 bars (bar 4)"


class TestAnalyzerRegistry:
    def test_one_of_weights_two_and_one_firing_scores_two_thirds(self) -> None:
        registry = AnalyzerRegistry(
            [(FixedAnalyzer("a", Direction.LONG), 2.0), (FixedAnalyzer("b", None), 1.0)]
        )
        scores = registry.evaluate(FakeBarView())
        assert scores.long == pytest.approx(2 / 3)
        assert (scores.short, scores.exit) == (0.0, 0.0)
        assert [signal.source for signal in scores.signals] == ["a"]

    def test_scores_split_by_direction(self) -> None:
        registry = AnalyzerRegistry(
            [
                (FixedAnalyzer("a", Direction.LONG), 2.0),
                (FixedAnalyzer("b", Direction.EXIT), 1.0),
                (FixedAnalyzer("c", Direction.SHORT), 1.0),
            ]
        )
        scores = registry.evaluate(FakeBarView())
        assert (scores.long, scores.short, scores.exit) == (0.5, 0.25, 0.25)
        assert len(scores.signals) == 3

    def test_weighted_threshold_and_interval(self) -> None:
        registry = AnalyzerRegistry(
            build_analyzers(
                [
                    AnalyzerConfig(
                        type="threshold", weight=2, params={"source": "rsi", "below": 30}
                    ),
                    AnalyzerConfig(type="time_interval", weight=1, params={"every_bars": 5}),
                ],
                "test",
            )
        )
        view = FakeBarView({"rsi": [40, 35, 28, 20, 25, 31]})
        assert registry.evaluate(view.at(2)).long == pytest.approx(2 / 3)
        assert registry.evaluate(view.at(5)).long == pytest.approx(1 / 3)
        assert registry.evaluate(view.at(0)).long == pytest.approx(1 / 3)

    def test_quiet_candle_returns_the_shared_empty_scores(self) -> None:
        registry = AnalyzerRegistry(
            [(FixedAnalyzer("a", None), 1.0), (FixedAnalyzer("b", None), 1.0)]
        )
        scores = registry.evaluate(FakeBarView())
        assert scores is NO_SCORES
        assert scores == Scores(0.0, 0.0, 0.0, ())
        assert scores.signals == ()

    def test_references_are_the_union_in_first_use_order(self) -> None:
        analyzers = build_analyzers(
            [
                AnalyzerConfig(type="crossover", params={"fast": "ema_fast", "slow": "ema_slow"}),
                AnalyzerConfig(type="threshold", params={"source": "ema_fast", "below": 1}),
                AnalyzerConfig(type="threshold", params={"source": "rsi", "above": 70}),
                AnalyzerConfig(type="time_interval", params={"every_bars": 3}),
            ],
            "test",
        )
        assert AnalyzerRegistry(analyzers).references() == ("ema_fast", "ema_slow", "rsi")

    @pytest.mark.parametrize("weight", [0.0, -1.0, float("nan")])
    def test_weights_must_be_positive(self, weight: float) -> None:
        with pytest.raises(ValueError, match="weight must be a finite number > 0"):
            AnalyzerRegistry([(FixedAnalyzer("a", None), weight)])


class TestBuildAnalyzers:
    def test_weights_are_kept_in_config_order(self) -> None:
        built = build_analyzers(
            [
                AnalyzerConfig(type="threshold", weight=3, params={"source": "rsi", "below": 30}),
                AnalyzerConfig(type="time_interval", params={"every_bars": 24}),
            ],
            "test",
        )
        assert [(a.name, w) for a, w in built] == [
            ("threshold(rsi<30)", 3.0),
            ("time_interval(24)", 1.0),
        ]

    def test_unknown_type_suggests_the_closest(self) -> None:
        error = config_error([{"type": "treshold", "params": {"source": "rsi"}}])
        assert str(error) == (
            "strategy 'rsi-btc': analyzers[0].type: unknown analyzer type 'treshold'; "
            "did you mean 'threshold'?"
        )

    def test_unknown_type_without_a_close_match_lists_the_known(self) -> None:
        error = config_error([{"type": "zzz"}])
        assert "known: band_position, crossover, threshold, time_interval, trend" in str(error)

    def test_unknown_param_suggests_the_closest(self) -> None:
        error = config_error([{"type": "threshold", "params": {"source": "rsi", "belw": 30}}])
        [problem] = error.problems
        assert problem.path == "analyzers[0].params.belw"
        assert problem.message == "unknown key 'belw'; did you mean 'below'?"

    def test_bad_value_names_field_value_and_expectation(self) -> None:
        error = config_error(
            [{"type": "threshold", "params": {"source": "rsi", "below": "low", "mode": "x"}}]
        )
        messages = {problem.path: problem.message for problem in error.problems}
        assert messages.keys() == {"analyzers[0].params.below", "analyzers[0].params.mode"}
        assert "'low'" in messages["analyzers[0].params.below"]
        assert "number" in messages["analyzers[0].params.below"]
        assert messages["analyzers[0].params.mode"] == "expected 'cross' or 'level', got 'x'"

    def test_bad_direction_lists_the_choices(self) -> None:
        error = config_error(
            [{"type": "crossover", "params": {"fast": "a", "slow": "b", "up_direction": "buy"}}]
        )
        [problem] = error.problems
        assert problem.path == "analyzers[0].params.up_direction"
        assert problem.message == "expected 'long', 'short' or 'exit', got 'buy'"

    def test_missing_and_rule_problems(self) -> None:
        error = config_error(
            [
                {"type": "threshold", "params": {"below": 30}},
                {"type": "threshold", "params": {"source": "rsi"}},
                {"type": "time_interval", "params": {"every_bars": 3, "offset": 3}},
                {"type": "band_position", "params": {"source": "pb", "lower": 1, "upper": 0}},
                {"type": "trend", "params": {"source": "not a ref", "min_slope_pct": 1}},
            ]
        )
        assert [(p.path, p.message) for p in error.problems] == [
            ("analyzers[0].params.source", "required key 'source' is missing"),
            ("analyzers[1].params", "set 'below', 'above' or both"),
            ("analyzers[2].params", "'offset' (3) must be below 'every_bars' (3)"),
            ("analyzers[3].params", "'lower' (1.0) must be below 'upper' (0.0)"),
            (
                "analyzers[4].params.source",
                "expected an indicator reference such as 'rsi' or 'bbands.percent_b', "
                "got 'not a ref'",
            ),
        ]
        assert str(error).startswith("5 configuration problems:")
        assert all(problem.source == "strategy 'rsi-btc'" for problem in error.problems)

    def test_duplicate_names_are_refused(self) -> None:
        error = config_error(
            [
                {"type": "threshold", "params": {"source": "rsi", "below": 30}},
                {"type": "threshold", "params": {"source": "rsi", "below": 30, "mode": "level"}},
            ]
        )
        [problem] = error.problems
        assert problem.path == "analyzers[1]"
        assert "already used by analyzers[0]" in problem.message
        assert "params.name" in problem.message

    def test_explicit_name_tells_analyzers_apart(self) -> None:
        built = build_analyzers(
            [
                AnalyzerConfig(type="threshold", params={"source": "rsi", "below": 30}),
                AnalyzerConfig(
                    type="threshold", params={"source": "rsi", "below": 30, "name": "deep"}
                ),
            ],
            "test",
        )
        assert [analyzer.name for analyzer, _ in built] == ["threshold(rsi<30)", "deep"]

    def test_every_bundled_strategy_builds(self) -> None:
        for path in sorted((REPO_ROOT / "strategies").glob("*.json")):
            configs = json.loads(path.read_text())["analyzers"]
            built = build_analyzers([AnalyzerConfig.model_validate(c) for c in configs], path.stem)
            assert len(built) == len(configs)


class _LevelParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    level: float


class _AboveLevel:
    def __init__(self, params: _LevelParams) -> None:
        self.name = f"above({params.source})"
        self.references: tuple[str, ...] = (params.source,)
        self._params = params

    def analyze(self, view: BarView) -> Signal | None:
        value = view.value(self._params.source)
        if value is None or value <= self._params.level:
            return None
        return Signal(Direction.LONG, 0.5, "above", self.name)


def _raw_factory(params: Mapping[str, Any]) -> Analyzer:
    if "source" not in params:
        raise ValueError("needs 'source'")
    return FixedAnalyzer(str(params["source"]), Direction.EXIT)


class TestRegisterAnalyzer:
    @pytest.fixture(autouse=True)
    def _restore_types(self) -> Iterator[None]:
        saved = dict(ANALYZER_TYPES)
        yield
        ANALYZER_TYPES.clear()
        ANALYZER_TYPES.update(saved)

    def test_user_type_with_params_model_builds_and_scores(self) -> None:
        register_analyzer("above_level", _AboveLevel, _LevelParams)
        registry = AnalyzerRegistry(
            build_analyzers(
                [AnalyzerConfig(type="above_level", weight=2, params={"source": "x", "level": 5})],
                "test",
            )
        )
        assert registry.evaluate(FakeBarView({"x": [6]})).long == 0.5

    def test_user_params_get_the_same_messages(self) -> None:
        register_analyzer("above_level", _AboveLevel, _LevelParams)
        error = config_error([{"type": "above_level", "params": {"source": "x", "levl": 5}}])
        assert [(p.path, p.message) for p in error.problems] == [
            ("analyzers[0].params.level", "required key 'level' is missing"),
            ("analyzers[0].params.levl", "unknown key 'levl'; did you mean 'level'?"),
        ]

    def test_raw_factory_errors_become_problems(self) -> None:
        register_analyzer("raw", _raw_factory)
        assert build_analyzers([AnalyzerConfig(type="raw", params={"source": "s"})], "t")
        error = config_error([{"type": "raw"}])
        assert [(p.path, p.message) for p in error.problems] == [
            ("analyzers[0].params", "needs 'source'")
        ]

    def test_existing_type_needs_replace(self) -> None:
        with pytest.raises(ValueError, match="already registered"):
            register_analyzer("threshold", _raw_factory)
        register_analyzer("threshold", _raw_factory, replace=True)
        assert ANALYZER_TYPES["threshold"].factory is _raw_factory

    def test_type_name_must_be_an_identifier(self) -> None:
        with pytest.raises(ValueError, match="lowercase identifier"):
            register_analyzer("My Type", _raw_factory)
