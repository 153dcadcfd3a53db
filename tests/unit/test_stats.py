"""The statistics of equity lines and trades: hand-computed values on small series,
the undefined cases, and properties over generated series."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradekit.insights.equity import thin
from tradekit.stats import (
    buy_and_hold_return_pct,
    max_drawdown_pct,
    periods_per_year,
    profit_factor,
    sharpe_of_returns,
    sharpe_ratio,
    simple_returns,
    sortino_of_returns,
    time_in_market_pct,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def hours(*values: float) -> list[datetime]:
    return [T0 + timedelta(hours=value) for value in values]


def returns_of(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


class TestReturns:
    def test_are_each_value_over_the_one_before(self) -> None:
        assert list(simple_returns([100.0, 110.0, 99.0])) == pytest.approx([0.1, -0.1])

    def test_a_single_value_has_none(self) -> None:
        assert simple_returns([100.0]).size == 0

    def test_equity_at_zero_is_refused(self) -> None:
        with pytest.raises(ValueError, match="positive equity"):
            simple_returns([100.0, 0.0, 50.0])


class TestSharpe:
    def test_hand_computed(self) -> None:
        # mean 0.03, sample deviation 0.01 * sqrt(2); 4 periods a year double it.
        assert sharpe_of_returns(returns_of(0.02, 0.04), 4) == pytest.approx(
            0.03 / (0.01 * math.sqrt(2)) * 2
        )

    def test_flat_returns_give_zero(self) -> None:
        assert sharpe_of_returns(returns_of(0.0, 0.0, 0.0), 365) == 0.0

    def test_equal_non_zero_returns_have_no_deviation_and_no_sharpe(self) -> None:
        assert sharpe_of_returns(returns_of(0.01, 0.01, 0.01), 365) is None

    def test_one_return_is_not_enough(self) -> None:
        assert sharpe_of_returns(returns_of(0.05), 365) is None

    def test_the_backtests_sharpe_stays_zero_when_undefined(self) -> None:
        assert sharpe_ratio([100.0, 101.0, 102.01], "1h") == 0.0
        assert sharpe_ratio([100.0, 101.0], "1h") == 0.0


class TestSortino:
    def test_hand_computed(self) -> None:
        # mean 0.05 / 3; downside deviation sqrt(0.01**2 / 3): the one loss over 3 periods.
        assert sortino_of_returns(returns_of(0.02, -0.01, 0.04), 1) == pytest.approx(
            (0.05 / 3) / math.sqrt(0.0001 / 3)
        )

    def test_no_losing_period_with_gains_is_unbounded(self) -> None:
        assert sortino_of_returns(returns_of(0.01, 0.0, 0.03), 365) is None

    def test_flat_returns_give_zero(self) -> None:
        assert sortino_of_returns(returns_of(0.0, 0.0), 365) == 0.0

    def test_a_loss_of_rounding_noise_counts_as_flat(self) -> None:
        assert sortino_of_returns(returns_of(0.0, -2.3e-32), 365) == 0.0


class TestTradeFigures:
    def test_profit_factor_is_gross_profit_over_gross_loss(self) -> None:
        assert profit_factor([10.0, -5.0, 20.0, -5.0]) == pytest.approx(3.0)

    def test_only_losses_give_zero(self) -> None:
        assert profit_factor([-5.0]) == 0.0

    @pytest.mark.parametrize("pnls", [[], [5.0, 3.0], [0.0]])
    def test_without_a_losing_trade_it_is_undefined(self, pnls: list[float]) -> None:
        assert profit_factor(pnls) is None


class TestTimeInMarket:
    def test_overlaps_count_once_and_intervals_are_clipped_to_the_period(self) -> None:
        start, end = hours(0, 10)
        held = [tuple(hours(1, 3)), tuple(hours(2, 5)), tuple(hours(8, 12)), tuple(hours(-2, -1))]
        # Covered: 1h-5h and 8h-10h.
        assert time_in_market_pct(held, start, end) == pytest.approx(60.0)  # type: ignore[arg-type]

    def test_an_empty_period_has_no_share(self) -> None:
        assert time_in_market_pct([], T0, T0) is None

    def test_never_in_the_market_is_zero(self) -> None:
        start, end = hours(0, 10)
        assert time_in_market_pct([], start, end) == 0.0


class TestBuyAndHold:
    def test_is_the_mean_of_the_symbols_returns(self) -> None:
        assert buy_and_hold_return_pct([(100.0, 110.0), (50.0, 40.0)]) == pytest.approx(-5.0)

    def test_without_prices_it_is_undefined(self) -> None:
        assert buy_and_hold_return_pct([]) is None
        assert buy_and_hold_return_pct([(0.0, 10.0)]) is None


class TestPeriodsPerYear:
    def test_hourly_points(self) -> None:
        assert periods_per_year(hours(0, 1, 2, 4)) == pytest.approx(365 * 24)

    def test_one_point_has_no_spacing(self) -> None:
        assert periods_per_year(hours(0)) is None
        assert periods_per_year(hours(0, 0, 0)) is None


returns_lists = st.lists(
    st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, allow_subnormal=False),
    min_size=2,
    max_size=60,
)


class TestRatioProperties:
    @given(returns_lists)
    def test_with_a_positive_mean_sortino_is_at_least_sharpe(self, values: list[float]) -> None:
        returns = returns_of(*values)
        sharpe = sharpe_of_returns(returns, 365)
        sortino = sortino_of_returns(returns, 365)
        if float(np.mean(returns)) > 1e-9 and sharpe is not None and sortino is not None:
            assert sortino >= sharpe - 1e-9 * abs(sharpe)

    @given(returns_lists)
    def test_sortino_has_the_sign_of_the_mean_return(self, values: list[float]) -> None:
        returns = returns_of(*values)
        mean = float(np.mean(returns))
        sortino = sortino_of_returns(returns, 365)
        if mean < -1e-9:
            assert sortino is not None
            assert sortino < 0
        elif mean > 1e-9:
            assert sortino is None or sortino > 0

    @given(st.lists(st.floats(min_value=1e-4, max_value=0.5), min_size=2, max_size=60))
    def test_without_a_losing_period_sortino_is_unbounded(self, values: list[float]) -> None:
        assert sortino_of_returns(returns_of(*values), 365) is None

    @given(returns_lists)
    def test_ratios_are_finite_or_none(self, values: list[float]) -> None:
        returns = returns_of(*values)
        for ratio in (sharpe_of_returns(returns, 365), sortino_of_returns(returns, 365)):
            assert ratio is None or math.isfinite(ratio)


class TestLineProperties:
    @given(st.lists(st.floats(min_value=1.0, max_value=1e6), min_size=1, max_size=80))
    def test_drawdown_is_a_percentage(self, values: list[float]) -> None:
        assert 0.0 <= max_drawdown_pct(values) < 100.0

    @given(
        st.lists(st.floats(min_value=1.0, max_value=1e6), min_size=1, max_size=80),
        st.integers(min_value=2, max_value=30),
    )
    def test_thinning_keeps_the_ends_and_the_order(self, values: list[float], limit: int) -> None:
        points = list(zip(hours(*range(len(values))), values, strict=True))
        kept = thin(points, limit)
        assert len(kept) == min(limit, len(points))
        assert kept[0] == points[0]
        assert kept[-1] == points[-1]
        assert kept == sorted(set(kept))
