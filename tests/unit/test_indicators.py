"""Tests for indicators: backend outputs, known values, validation, sharing and live updates."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tradekit.config.strategy import IndicatorConfig
from tradekit.errors import ConfigError, DataError
from tradekit.services.indicators import backend
from tradekit.services.indicators.cache import (
    INDICATORS,
    IndicatorCache,
    IndicatorKey,
    IndicatorRegistry,
    IndicatorSpec,
    validate_indicator,
)
from tradekit.services.indicators.catalog import decay_bars
from tradekit.services.indicators.probe import random_walk
from tradekit.services.market.candles import CandleSeries, CandleStore

SYMBOL = "BTC/USDT"
HOUR = 3600
T0 = 1_704_067_200  # 2024-01-01 00:00 UTC


def cfg(name: str, alias: str | None = None, **params: Any) -> IndicatorConfig:
    return IndicatorConfig(name=name, params=params, alias=alias)


def bulk_series(bars: int, seed: int = 0, symbol: str = SYMBOL) -> CandleSeries:
    data = random_walk(bars, seed)
    ts = T0 + HOUR * np.arange(bars, dtype=np.int64)
    return CandleSeries.from_arrays(symbol, "1h", ts, **data)


def bulk_cache(bars: int = 600, seed: int = 0) -> IndicatorCache:
    store = CandleStore()
    store.add(bulk_series(bars, seed))
    return IndicatorCache(store)


def registry(
    cache: IndicatorCache, strategy_id: str, *configs: IndicatorConfig
) -> IndicatorRegistry:
    return IndicatorRegistry(strategy_id, configs, [SYMBOL], "1h", cache)


def references(spec: IndicatorSpec, key: str) -> list[str]:
    return [f"{key}.{output}" for output in spec.outputs] if spec.outputs else [key]


def dense_references(spec: IndicatorSpec) -> list[str]:
    return [
        ref
        for ref, output in zip(references(spec, spec.name), spec.output_names, strict=True)
        if output not in spec.sparse_outputs
    ]


class TestBackendOutputs:
    EXPECTED = {
        "adx": ("adx", "plus_di", "minus_di"),
        "macd": ("macd", "signal", "hist"),
        "bbands": ("lower", "mid", "upper", "percent_b", "bandwidth"),
        "stoch": ("k", "d"),
        "donchian": ("lower", "mid", "upper"),
        "supertrend": ("trend", "direction", "long", "short"),
    }

    @pytest.mark.parametrize("name", sorted(INDICATORS))
    def test_every_indicator_returns_its_declared_outputs(self, name: str) -> None:
        spec = INDICATORS[name]
        data = random_walk(300, seed=1)
        params = {param.name: param.default for param in spec.params}
        result = spec.compute({column: data[column] for column in spec.inputs}, params)
        assert tuple(result) == spec.output_names
        assert all(np.asarray(column).shape == (300,) for column in result.values())
        assert all(np.isfinite(np.asarray(column)[-1]) for column in result.values()) or (
            spec.sparse_outputs
        )

    @pytest.mark.parametrize(("name", "outputs"), sorted(EXPECTED.items()))
    def test_multi_output_names_are_stable(self, name: str, outputs: tuple[str, ...]) -> None:
        assert INDICATORS[name].outputs == outputs

    def test_single_output_indicators_use_value(self) -> None:
        assert set(backend.rsi(np.linspace(1, 2, 30), 14)) == {backend.VALUE}

    def test_too_short_input_gives_all_nan_under_the_same_names(self) -> None:
        result = backend.macd(np.ones(5), 12, 26, 9)
        assert set(result) == {"macd", "signal", "hist"}
        assert all(np.isnan(column).all() and column.size == 5 for column in result.values())


class TestKnownValues:
    LINEAR = np.arange(1.0, 41.0)

    def test_sma_of_a_linear_series_is_the_middle_value(self) -> None:
        values = backend.sma(self.LINEAR, 3)[backend.VALUE]
        assert np.isnan(values[:2]).all()
        np.testing.assert_allclose(values[2:], self.LINEAR[2:] - 1.0)

    def test_ema_of_a_constant_is_the_constant(self) -> None:
        values = backend.ema(np.full(30, 7.5), 5)[backend.VALUE]
        np.testing.assert_allclose(values[4:], 7.5)

    def test_ema_of_a_linear_series_lags_by_one_for_span_three(self) -> None:
        values = backend.ema(self.LINEAR, 3)[backend.VALUE]
        np.testing.assert_allclose(values[2:], self.LINEAR[2:] - 1.0)

    def test_wma_of_a_linear_series_lags_by_two_thirds(self) -> None:
        values = backend.wma(self.LINEAR, 3)[backend.VALUE]
        np.testing.assert_allclose(values[2:], self.LINEAR[2:] - 2.0 / 3.0)

    def test_rsi_is_100_when_rising_and_0_when_falling(self) -> None:
        np.testing.assert_allclose(backend.rsi(self.LINEAR, 5)[backend.VALUE][5:], 100.0)
        np.testing.assert_allclose(backend.rsi(self.LINEAR[::-1], 5)[backend.VALUE][5:], 0.0)

    def test_roc_of_a_geometric_series(self) -> None:
        values = backend.roc(1.01 ** np.arange(20.0), 2)[backend.VALUE]
        np.testing.assert_allclose(values[2:], (1.01**2 - 1) * 100)

    def test_macd_of_a_constant_is_zero(self) -> None:
        result = backend.macd(np.full(60, 3.0), 12, 26, 9)
        assert set(result) == {"macd", "signal", "hist"}
        for column in result.values():
            np.testing.assert_allclose(column[33:], 0.0, atol=1e-12)

    def test_bbands_of_an_alternating_series(self) -> None:
        result = backend.bbands(np.array([1.0, 3.0, 1.0, 3.0]), 2, 2.0)
        assert result["mid"][3] == 2.0
        assert (result["lower"][3], result["upper"][3]) == (0.0, 4.0)
        assert result["percent_b"][3] == pytest.approx(0.75)
        assert result["percent_b"][2] == pytest.approx(0.25)
        assert result["bandwidth"][3] == pytest.approx(200.0)

    def test_trend_indicators_on_a_steady_climb(self) -> None:
        high = self.LINEAR + 12.0
        low, close = high - 2.0, high - 1.0
        assert backend.atr(high, low, close, 5)[backend.VALUE][-1] == pytest.approx(2.0)
        adx = backend.adx(high, low, close, 5, 5)
        assert (adx["adx"][-1], adx["plus_di"][-1], adx["minus_di"][-1]) == (100.0, 50.0, 0.0)
        assert backend.cci(high, low, close, 5, 0.015)[backend.VALUE][-1] == pytest.approx(
            2.0 / (0.015 * 1.2)
        )
        assert backend.stoch(high, low, high, 5, 3, 3)["k"][-1] == pytest.approx(100.0)
        assert backend.mfi(high, low, close, np.ones(40), 5)[backend.VALUE][-1] == 100.0
        assert backend.supertrend(high, low, close, 5, 3.0)["direction"][-1] == 1.0
        channel = backend.donchian(high, low, 3)
        assert (channel["lower"][-1], channel["upper"][-1]) == (low[-3], high[-1])

    def test_obv_adds_volume_on_up_closes_and_subtracts_on_down_closes(self) -> None:
        result = backend.obv([10.0, 11.0, 10.0, 10.0, 12.0], [1.0, 2.0, 3.0, 4.0, 5.0])
        assert result[backend.VALUE].tolist() == [1.0, 3.0, 0.0, 0.0, 5.0]


class TestValidation:
    def test_defaults_are_filled_in_so_equal_configs_share_a_key(self) -> None:
        assert validate_indicator(cfg("rsi"), "indicators[0]") == (("length", 14),)
        assert validate_indicator(cfg("rsi", length=14.0), "indicators[0]") == (("length", 14),)
        assert validate_indicator(cfg("bbands", std=2), "x") == (("length", 20), ("std", 2.0))

    def test_adx_smoothing_defaults_to_its_length(self) -> None:
        assert validate_indicator(cfg("adx", length=20), "x") == (("length", 20), ("smoothing", 20))

    def test_unknown_indicator_suggests_the_closest(self) -> None:
        with pytest.raises(ConfigError) as caught:
            validate_indicator(cfg("rsii"), "indicators[0]", source="strategy 'x'")
        assert str(caught.value) == (
            "strategy 'x': unknown indicator 'rsii' in indicators[0].name; did you mean 'rsi'?"
        )

    def test_unknown_indicator_without_a_close_match_lists_the_known(self) -> None:
        with pytest.raises(ConfigError, match="known: adx, atr, bbands"):
            validate_indicator(cfg("zzzzzz"), "indicators[3]")

    @pytest.mark.parametrize(
        ("config", "expected"),
        [
            (cfg("rsi", lenght=14), "unknown parameter 'lenght' for rsi in x.params; did you mean"),
            (
                cfg("obv", length=3),
                "unknown parameter 'length' for obv in x.params (it takes none)",
            ),
            (
                cfg("rsi", length=0),
                "'length' of rsi in x.params.length must be an integer >= 1, got 0",
            ),
            (cfg("rsi", length=14.5), "must be an integer >= 1, got 14.5"),
            (cfg("rsi", length=True), "must be an integer >= 1, got True"),
            (cfg("rsi", length="14"), "must be an integer >= 1, got '14'"),
            (
                cfg("bbands", length=1),
                "'length' of bbands in x.params.length must be an integer >= 2",
            ),
            (cfg("bbands", std=0), "'std' of bbands in x.params.std must be a number > 0, got 0"),
            (
                # The config model refuses infinity first; the catalog refuses it on its own too.
                IndicatorConfig.model_construct(name="bbands", params={"std": math.inf}),
                "must be a number > 0, got inf",
            ),
            (cfg("rsi", length=1e308), "must be an integer <= 1,000,000, got 1e+308"),
            (cfg("macd", fast=26, slow=12), "macd in x.params: fast (26) must be below slow (12)"),
        ],
    )
    def test_bad_parameters_name_the_path_value_and_expectation(
        self, config: IndicatorConfig, expected: str
    ) -> None:
        with pytest.raises(ConfigError) as caught:
            validate_indicator(config, "x")
        assert expected in str(caught.value)

    def test_registry_collects_every_problem_with_its_path(self) -> None:
        with pytest.raises(ConfigError) as caught:
            registry(
                bulk_cache(50),
                "rsi-btc",
                cfg("rsi"),
                cfg("emaa"),
                cfg("macd", fast=0),
                cfg("sma", alias="rsi"),
            )
        paths = [problem.message for problem in caught.value.problems]
        assert len(paths) == 3
        assert "indicators[1].name; did you mean 'ema'?" in paths[0]
        assert "indicators[2].params.fast" in paths[1]
        assert "key 'rsi' in indicators[3] is already used by indicators[0]" in paths[2]
        assert all(p.source == "strategy 'rsi-btc'" for p in caught.value.problems)

    def test_identical_duplicates_are_merged(self) -> None:
        reg = registry(bulk_cache(50), "a", cfg("atr", "filter_atr"), cfg("atr", "filter_atr"))
        assert reg.keys() == ("filter_atr",)


class TestRegistry:
    def test_references_cover_single_and_named_outputs(self) -> None:
        reg = registry(bulk_cache(50), "a", cfg("rsi"), cfg("ema", "ema_fast"), cfg("macd"))
        assert reg.keys() == ("rsi", "ema_fast", "macd")
        assert reg.references() == ("rsi", "ema_fast", "macd.macd", "macd.signal", "macd.hist")

    def test_unknown_reference_suggests_the_closest(self) -> None:
        reg = registry(bulk_cache(50), "a", cfg("bbands"))
        with pytest.raises(ConfigError) as caught:
            reg.value(SYMBOL, "bbands.percentb", 40)
        assert str(caught.value) == (
            "strategy 'a': unknown indicator reference 'bbands.percentb'; "
            "did you mean 'bbands.percent_b'?"
        )

    def test_check_references_reports_all_unknown_at_once(self) -> None:
        reg = registry(bulk_cache(50), "a", cfg("rsi"), cfg("macd"))
        reg.check_references(["rsi", "macd.signal"])
        with pytest.raises(ConfigError) as caught:
            reg.check_references(["rsii", "macd", "rsi"], where="analyzers")
        messages = [problem.message for problem in caught.value.problems]
        assert messages == [
            "unknown indicator reference 'rsii' in analyzers; did you mean 'rsi'?",
            "unknown indicator reference 'macd' in analyzers; did you mean 'macd.macd'?",
        ]

    def test_unknown_symbol_is_a_data_error(self) -> None:
        reg = registry(bulk_cache(50), "a", cfg("rsi"))
        with pytest.raises(DataError, match="no indicators for ETH/USDT"):
            reg.value("ETH/USDT", "rsi", 10)

    @pytest.mark.parametrize("name", sorted(INDICATORS))
    def test_values_are_none_until_lookback(self, name: str) -> None:
        spec = INDICATORS[name]
        reg = registry(bulk_cache(200), "a", cfg(name))
        lookback = reg.warmup_bars
        for ref in dense_references(spec):
            if lookback:
                assert reg.value(SYMBOL, ref, lookback - 1) is None, ref
            assert reg.value(SYMBOL, ref, lookback) is not None, ref
        assert reg.ready(SYMBOL, lookback)
        assert lookback == 0 or not reg.ready(SYMBOL, lookback - 1)

    def test_back_reads_earlier_bars_and_never_ahead(self) -> None:
        reg = registry(bulk_cache(100), "a", cfg("sma", length=3))
        assert reg.value(SYMBOL, "sma", 50, back=2) == reg.value(SYMBOL, "sma", 48)
        assert reg.value(SYMBOL, "sma", 50, back=49) is None
        with pytest.raises(ValueError, match="back must be >= 0"):
            reg.value(SYMBOL, "sma", 50, back=-1)

    def test_bars_not_yet_appended_are_none(self) -> None:
        reg = registry(bulk_cache(100), "a", cfg("sma", length=3))
        assert reg.value(SYMBOL, "sma", 100) is None
        assert not reg.ready(SYMBOL, 100)

    def test_registry_holds_only_the_indicators_it_is_given(self) -> None:
        cache = bulk_cache(50)
        registry(cache, "a", cfg("rsi"))
        registry(cache, "b", cfg("ema", length=200), cfg("atr"))
        keys = cache.keys()
        assert {key.name for key in keys} == {"rsi", "ema", "atr"}
        assert cache.users(IndicatorKey(SYMBOL, "1h", "rsi", (("length", 14),))) == {"a"}

    def test_history_bars_tells_how_much_the_store_must_keep(self) -> None:
        reg = registry(bulk_cache(50), "a", cfg("sma", length=30), cfg("rsi"))
        assert reg.history_bars == 14 + decay_bars(1 / 14) + 1


class TestSharing:
    def test_two_strategies_on_the_same_key_cost_one_call(self) -> None:
        cache = bulk_cache(400)
        first = registry(cache, "a", cfg("rsi"))
        second = registry(cache, "b", cfg("rsi", "my_rsi", length=14))
        assert first.value(SYMBOL, "rsi", 300) == second.value(SYMBOL, "my_rsi", 300)
        assert first.value(SYMBOL, "rsi", 399) is not None
        assert cache.backend_calls == 1
        assert len(cache) == 1

    def test_different_params_cost_two_calls(self) -> None:
        cache = bulk_cache(400)
        registry(cache, "a", cfg("rsi")).value(SYMBOL, "rsi", 300)
        registry(cache, "b", cfg("rsi", length=7)).value(SYMBOL, "rsi", 300)
        assert cache.backend_calls == 2

    def test_live_update_is_one_computation_per_bar_for_100_strategies(self) -> None:
        source = bulk_series(120, seed=3)
        store = CandleStore()
        cache = IndicatorCache(store)
        registries = [registry(cache, f"s{i}", cfg("rsi")) for i in range(100)]
        history = source.columns(0, 100)
        store.series(SYMBOL, "1h").extend(**history)
        for bar in range(100, 120):
            assert store.append(source.candle_at(bar)) == bar
            before = cache.computations
            values = {reg.value(SYMBOL, "rsi", bar) for reg in registries}
            assert len(values) == 1
            assert None not in values
            assert cache.computations == before + 1

    def test_precompute_makes_one_call_per_key(self) -> None:
        cache = bulk_cache(300)
        registry(cache, "a", cfg("rsi"), cfg("macd"))
        registry(cache, "b", cfg("rsi"), cfg("bbands"))
        assert cache.precompute() == 3
        assert cache.precompute() == 0

    def test_release_frees_only_unshared_entries(self) -> None:
        cache = bulk_cache(100)
        registry(cache, "a", cfg("rsi"), cfg("ema"))
        registry(cache, "b", cfg("rsi"))
        rsi = IndicatorKey(SYMBOL, "1h", "rsi", (("length", 14),))
        assert cache.release("a") == 1
        assert cache.keys() == [rsi]
        assert cache.users(rsi) == {"b"}
        assert cache.release("a") == 0
        assert cache.release("b") == 1
        assert len(cache) == 0


LIVE_CASES = [
    cfg("sma", length=5),
    cfg("ema", length=5),
    cfg("wma", length=5),
    cfg("rsi", length=5),
    cfg("roc", length=5),
    cfg("cci", length=5),
    cfg("atr", length=5),
    cfg("adx", length=4, smoothing=3),
    cfg("macd", fast=3, slow=6, signal=3),
    cfg("bbands", length=5),
    cfg("stoch", k=5, d=3, smooth_k=2),
    cfg("mfi", length=5),
    cfg("obv"),
    cfg("donchian", length=5),
    cfg("supertrend", length=4),
]


class TestLiveMatchesPrecomputed:
    """Live values (a bounded window per bar) agree with whole-series ones.

    Finite-window indicators get the same numbers up to float rounding. For
    recursive ones the window's seed keeps at most SEED_TOLERANCE (1e-10) of its
    weight, so agreement is to about 1e-10 relative; 1e-8 leaves room for
    rounding and for the two-stage indicators (adx, macd).
    """

    @staticmethod
    def live_and_bulk(config: IndicatorConfig, bars: int) -> tuple[list[str], Iterator[Any]]:
        source = bulk_series(bars, seed=11)
        bulk = registry(bulk_cache(bars, seed=11), "bulk", config)
        store = CandleStore(capacity=bars)
        live = registry(IndicatorCache(store), "live", config)
        refs = list(live.references())

        def pairs() -> Iterator[tuple[int, str, float | None, float | None]]:
            for bar in range(bars):
                store.append(source.candle_at(bar))
                for ref in refs:
                    yield bar, ref, live.value(SYMBOL, ref, bar), bulk.value(SYMBOL, ref, bar)

        return refs, pairs()

    @pytest.mark.parametrize("config", LIVE_CASES, ids=lambda config: config.name)
    def test_windowed_values_match(self, config: IndicatorConfig) -> None:
        spec = INDICATORS[config.name]
        window = spec.window(dict(validate_indicator(config, "x")))
        bars = window + 80
        _, pairs = self.live_and_bulk(config, bars)
        for bar, ref, live, bulk in pairs:
            assert (live is None) == (bulk is None), (bar, ref)
            if live is not None and bulk is not None:
                assert math.isclose(live, bulk, rel_tol=1e-8, abs_tol=1e-8), (bar, ref, live, bulk)

    def test_default_rsi_matches_well_past_its_window(self) -> None:
        _, pairs = self.live_and_bulk(cfg("rsi"), 14 + decay_bars(1 / 14) + 120)
        worst = 0.0
        for _, _, live, bulk in pairs:
            if live is not None and bulk is not None:
                worst = max(worst, abs(live - bulk))
        assert worst < 1e-8
