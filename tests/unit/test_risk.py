"""Tests for the exposure guard shared by all strategies and each strategy's risk manager."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tradekit.config.settings import GlobalRiskSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Candle
from tradekit.events import RiskRejected
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher
from tradekit.services.risk.limits import (
    ExposureBreach,
    ExposureGuard,
    RiskRule,
    StrategyRiskManager,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def candle(ts: datetime = T0, symbol: str = "BTC/USDT") -> Candle:
    return Candle(symbol, "1h", ts, 100.0, 101.0, 99.0, 100.0, 10.0)


def guard(per_symbol: float | None = None, total: float | None = None) -> ExposureGuard:
    return ExposureGuard(
        GlobalRiskSettings(max_exposure_per_symbol=per_symbol, max_total_exposure=total)
    )


class TestExposureGuard:
    def test_uncapped_room_is_infinite(self) -> None:
        shared = guard()
        shared.set_exposure("a", "BTC/USDT", 1e9)
        assert shared.room("BTC/USDT") == math.inf
        assert shared.reserve("b", "BTC/USDT", 1e12) is None

    def test_room_is_the_tighter_of_both_caps(self) -> None:
        shared = guard(per_symbol=1_000.0, total=1_500.0)
        shared.set_exposure("a", "BTC/USDT", 600.0)
        assert shared.room("BTC/USDT") == 400.0
        shared.set_exposure("b", "ETH/USDT", 800.0)
        assert shared.room("BTC/USDT") == 100.0  # total: 1500 - 1400
        assert shared.room("SOL/USDT") == 100.0
        assert (shared.symbol_exposure("BTC/USDT"), shared.total_exposure()) == (600.0, 1_400.0)

    def test_room_never_goes_negative(self) -> None:
        shared = guard(per_symbol=1_000.0)
        shared.set_exposure("a", "BTC/USDT", 1_200.0)  # marked up past the cap
        assert shared.room("BTC/USDT") == 0.0

    def test_reserve_within_room_counts_until_the_exposure_is_set(self) -> None:
        shared = guard(per_symbol=1_000.0)
        assert shared.reserve("a", "BTC/USDT", 700.0) is None
        assert shared.symbol_exposure("BTC/USDT") == 700.0
        assert shared.exposure("a", "BTC/USDT") == 0.0, "a reservation is not held exposure"
        shared.set_exposure("a", "BTC/USDT", 710.0)  # filled a little higher
        assert shared.symbol_exposure("BTC/USDT") == 710.0
        assert shared.exposure("a", "BTC/USDT") == 710.0

    def test_reserve_past_the_cap_names_the_cap_and_reserves_nothing(self) -> None:
        shared = guard(per_symbol=1_000.0, total=5_000.0)
        shared.set_exposure("a", "BTC/USDT", 800.0)
        breach = shared.reserve("b", "BTC/USDT", 300.0)
        assert breach == ExposureBreach(RiskRule.MAX_EXPOSURE_PER_SYMBOL, 1_000.0, 800.0, 200.0)
        assert shared.symbol_exposure("BTC/USDT") == 800.0

    def test_total_cap_is_named_when_it_is_the_tighter(self) -> None:
        shared = guard(per_symbol=1_000.0, total=1_000.0)
        shared.set_exposure("a", "ETH/USDT", 900.0)
        breach = shared.reserve("b", "BTC/USDT", 200.0)
        assert breach == ExposureBreach(RiskRule.MAX_TOTAL_EXPOSURE, 1_000.0, 900.0, 100.0)

    def test_release_reservation_and_flat_exposure_free_the_room(self) -> None:
        shared = guard(per_symbol=1_000.0)
        shared.reserve("a", "BTC/USDT", 400.0)
        shared.release_reservation("a", "BTC/USDT")
        shared.set_exposure("b", "BTC/USDT", 500.0)
        shared.set_exposure("b", "BTC/USDT", 0.0)
        assert shared.room("BTC/USDT") == 1_000.0
        assert shared.total_exposure() == 0.0

    def test_release_strategy_leaves_the_others(self) -> None:
        shared = guard()
        shared.set_exposure("a", "BTC/USDT", 100.0)
        shared.set_exposure("a", "ETH/USDT", 50.0)
        shared.reserve("a", "SOL/USDT", 25.0)
        shared.set_exposure("b", "BTC/USDT", 10.0)
        shared.release_strategy("a")
        assert shared.total_exposure() == 10.0
        assert shared.exposure("b", "BTC/USDT") == 10.0

    @pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
    def test_bad_amounts_are_refused(self, bad: float) -> None:
        shared = guard()
        with pytest.raises(ValueError, match="notional must be a finite number"):
            shared.set_exposure("a", "BTC/USDT", bad)
        with pytest.raises(ValueError, match="reserved amount"):
            shared.reserve("a", "BTC/USDT", bad)

    def test_concurrent_reservations_never_pass_the_cap(self) -> None:
        shared = guard(per_symbol=100.0)
        granted: list[int] = []
        start = threading.Barrier(8)

        def work() -> None:
            start.wait(timeout=10)
            count = sum(1 for _ in range(50) if shared.reserve("s", "BTC/USDT", 1.0) is None)
            granted.append(count)
            for _ in range(50):
                shared.set_exposure("other", "ETH/USDT", 1.0)
                shared.release_strategy("nobody")

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        assert sum(granted) == 100
        assert shared.symbol_exposure("BTC/USDT") == 100.0


@dataclass
class Book:
    """What a strategy's position lifecycle would answer: equity, open count, exposure."""

    equity: float = 10_000.0
    open_count: int = 0
    held: dict[str, float] = field(default_factory=dict)


@dataclass
class Harness:
    manager: StrategyRiskManager
    book: Book
    rejected: list[RiskRejected]


def make_config(strategy_id: str = "a", **sections: Any) -> StrategyConfig:
    return StrategyConfig.model_validate(
        {
            "strategy_id": strategy_id,
            "symbols": ["BTC/USDT", "ETH/USDT"],
            "timeframe": "1h",
            "analyzers": [{"type": "rsi"}],
            **sections,
        }
    )


@pytest.fixture
def bus() -> InMemoryEventBus:
    return InMemoryEventBus()


def harness(
    bus: InMemoryEventBus,
    shared: ExposureGuard | None = None,
    strategy_id: str = "a",
    *,
    track_exposure: bool = False,
    **sections: Any,
) -> Harness:
    book = Book()
    rejected: list[RiskRejected] = []
    bus.subscribe(rejected.append, RiskRejected, strategy_id=strategy_id)
    manager = StrategyRiskManager(
        strategy_id,
        make_config(strategy_id, **sections),
        StrategyPublisher(bus, strategy_id),
        shared or guard(),
        lambda: book.equity,
        lambda: book.open_count,
        (lambda symbol: book.held.get(symbol, 0.0)) if track_exposure else None,
    )
    return Harness(manager, book, rejected)


class TestMaxOpenPositions:
    def test_a_new_position_past_the_limit_is_refused(self, bus: InMemoryEventBus) -> None:
        h = harness(bus, risk={"max_open_positions": 2})
        h.book.open_count = 2
        assert h.manager.approve_entry("BTC/USDT", 100.0, candle()) is False
        (event,) = h.rejected
        assert (event.rule, event.requested, event.allowed) == ("max_open_positions", 3.0, 2.0)
        assert (event.strategy_id, event.symbol, event.ts) == ("a", "BTC/USDT", T0 + HOUR)

    def test_adding_to_an_open_position_is_not_a_new_position(self, bus: InMemoryEventBus) -> None:
        h = harness(bus)
        h.book.open_count = 1
        assert h.manager.approve_entry("BTC/USDT", 100.0, candle(), adding=True) is True
        assert h.rejected == []


class TestRiskPerTrade:
    def test_with_a_stop_the_loss_at_the_stop_is_capped(self, bus: InMemoryEventBus) -> None:
        # 2% of 10_000 = 200 may be lost; at a 5% stop that is a 4_000 position.
        h = harness(bus, exit={"stop_loss_pct": 5.0})
        assert h.manager.approve_entry("BTC/USDT", 4_000.0, candle()) is True
        assert h.manager.approve_entry("ETH/USDT", 4_001.0, candle()) is False
        (event,) = h.rejected
        assert (event.rule, event.requested, event.allowed) == ("risk_per_trade", 4_001.0, 4_000.0)
        assert "risks 200.05" in event.reason

    def test_risk_sizing_at_exactly_the_limit_passes_despite_rounding(
        self, bus: InMemoryEventBus
    ) -> None:
        h = harness(bus, exit={"stop_loss_pct": 3.0}, risk={"risk_per_trade_pct": 1.7})
        h.book.equity = 9_876.54
        amount = h.book.equity * 1.7 / 3.0  # what entry sizing mode "risk" computes
        assert h.manager.approve_entry("BTC/USDT", amount, candle()) is True

    def test_without_a_stop_the_whole_position_is_at_risk(self, bus: InMemoryEventBus) -> None:
        h = harness(bus)
        assert h.manager.approve_entry("BTC/USDT", 200.0, candle()) is True
        assert h.manager.approve_entry("ETH/USDT", 250.0, candle()) is False
        (event,) = h.rejected
        assert (event.rule, event.requested, event.allowed) == ("risk_per_trade", 250.0, 200.0)
        assert "no exit.stop_loss_pct" in event.reason

    def test_an_add_counts_what_is_already_held(self, bus: InMemoryEventBus) -> None:
        h = harness(bus, exit={"stop_loss_pct": 5.0})
        h.manager.set_exposure("BTC/USDT", 3_000.0)
        assert h.manager.approve_entry("BTC/USDT", 1_500.0, candle(), adding=True) is False
        (event,) = h.rejected
        assert (event.requested, event.allowed) == (1_500.0, 1_000.0)
        assert h.manager.approve_entry("BTC/USDT", 1_000.0, candle(), adding=True) is True


class TestDailyLossLimit:
    def test_blocks_entries_for_the_rest_of_the_utc_day(self, bus: InMemoryEventBus) -> None:
        h = harness(bus, risk={"daily_loss_limit_pct": 5.0})
        day_one = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)  # closes 01:00 on 1 March
        h.manager.on_candle(candle(day_one))
        assert h.manager.day_start_equity == 10_000.0
        h.book.equity = 9_500.0  # 5% down: the limit
        h.manager.on_candle(candle(day_one + HOUR))
        assert h.manager.approve_entry("BTC/USDT", 100.0, candle(day_one + HOUR)) is False
        (event,) = h.rejected
        assert (event.rule, event.requested, event.allowed) == ("daily_loss_limit", 100.0, 0.0)
        assert "2024-03-02T00:00:00+00:00" in event.reason

        h.book.equity = 10_100.0  # recovered, but the day is spent
        late = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
        h.manager.on_candle(candle(late))
        assert h.manager.approve_entry("BTC/USDT", 100.0, candle(late)) is False

        next_day = datetime(2024, 3, 1, 23, 0, tzinfo=UTC)  # closes at 00:00 on 2 March
        h.manager.on_candle(candle(next_day))
        assert h.manager.day_start_equity == 10_100.0
        assert h.manager.daily_loss_limit_hit is False
        assert h.manager.approve_entry("BTC/USDT", 100.0, candle(next_day)) is True

    def test_a_dip_to_the_limit_counts_even_if_seen_only_by_on_candle(
        self, bus: InMemoryEventBus
    ) -> None:
        h = harness(bus, risk={"daily_loss_limit_pct": 5.0})
        h.manager.on_candle(candle(T0))
        h.book.equity = 9_400.0
        h.manager.on_candle(candle(T0 + HOUR))
        h.book.equity = 9_900.0
        assert h.manager.approve_entry("BTC/USDT", 100.0, candle(T0 + 2 * HOUR)) is False

    def test_a_smaller_loss_does_not_block(self, bus: InMemoryEventBus) -> None:
        h = harness(bus, risk={"daily_loss_limit_pct": 5.0})
        h.manager.on_candle(candle(T0))
        h.book.equity = 9_501.0
        assert h.manager.approve_entry("BTC/USDT", 100.0, candle(T0 + HOUR)) is True


class TestSharedExposure:
    def test_second_strategy_on_one_symbol_is_refused_past_the_cap(
        self, bus: InMemoryEventBus
    ) -> None:
        shared = guard(per_symbol=1_000.0)
        first = harness(bus, shared, "a", risk={"risk_per_trade_pct": 100.0})
        second = harness(bus, shared, "b", risk={"risk_per_trade_pct": 100.0})
        # Both decide on the same candle, before either order fills at the next open.
        assert first.manager.approve_entry("BTC/USDT", 800.0, candle()) is True
        assert second.manager.approve_entry("BTC/USDT", 500.0, candle()) is False
        assert first.rejected == []
        (event,) = second.rejected
        assert event.strategy_id == "b"
        assert (event.rule, event.requested, event.allowed) == (
            "max_exposure_per_symbol",
            500.0,
            200.0,
        )
        assert "800.00 of the risk.max_exposure_per_symbol cap 1000.00" in event.reason
        assert second.manager.approve_entry("BTC/USDT", 200.0, candle()) is True

    def test_total_cap_is_named(self, bus: InMemoryEventBus) -> None:
        shared = guard(total=1_000.0)
        shared.set_exposure("z", "ETH/USDT", 950.0)
        h = harness(bus, shared, risk={"risk_per_trade_pct": 100.0})
        assert h.manager.approve_entry("BTC/USDT", 100.0, candle()) is False
        (event,) = h.rejected
        assert event.rule == "max_total_exposure"
        assert event.allowed == pytest.approx(50.0)

    def test_on_candle_ends_the_reservation(self, bus: InMemoryEventBus) -> None:
        shared = guard(per_symbol=1_000.0)
        h = harness(bus, shared, risk={"risk_per_trade_pct": 100.0})
        h.manager.approve_entry("BTC/USDT", 800.0, candle())
        h.manager.on_candle(candle(T0 + HOUR, "ETH/USDT"))
        assert shared.symbol_exposure("BTC/USDT") == 800.0, "another symbol's candle keeps it"
        h.manager.on_candle(candle(T0 + HOUR))
        assert shared.symbol_exposure("BTC/USDT") == 0.0

    def test_on_candle_records_held_exposure_given_a_callable(self, bus: InMemoryEventBus) -> None:
        shared = guard(per_symbol=1_000.0)
        h = harness(bus, shared, track_exposure=True, risk={"risk_per_trade_pct": 100.0})
        h.manager.approve_entry("BTC/USDT", 800.0, candle())
        h.book.held["BTC/USDT"] = 805.0  # the fill at the next open
        h.manager.on_candle(candle(T0 + HOUR))
        assert shared.exposure("a", "BTC/USDT") == 805.0
        assert shared.symbol_exposure("BTC/USDT") == 805.0
        h.book.held["BTC/USDT"] = 0.0  # closed
        h.manager.on_candle(candle(T0 + 2 * HOUR))
        assert shared.symbol_exposure("BTC/USDT") == 0.0

    def test_release_gives_everything_back(self, bus: InMemoryEventBus) -> None:
        shared = guard()
        h = harness(bus, shared, risk={"risk_per_trade_pct": 100.0})
        h.manager.set_exposure("ETH/USDT", 300.0)
        h.manager.approve_entry("BTC/USDT", 100.0, candle())
        h.manager.release()
        assert shared.total_exposure() == 0.0


class TestRuleOrder:
    def test_the_first_failing_rule_is_reported_and_nothing_is_reserved(
        self, bus: InMemoryEventBus
    ) -> None:
        shared = guard(per_symbol=10.0)
        h = harness(bus, shared, risk={"max_open_positions": 1, "daily_loss_limit_pct": 1.0})
        h.manager.on_candle(candle())
        h.book.open_count = 1
        h.book.equity = 1.0
        assert h.manager.approve_entry("BTC/USDT", 5_000.0, candle()) is False
        h.book.open_count = 0
        assert h.manager.approve_entry("BTC/USDT", 5_000.0, candle()) is False
        assert [event.rule for event in h.rejected] == ["max_open_positions", "risk_per_trade"]
        assert shared.total_exposure() == 0.0


def test_ids_must_agree(bus: InMemoryEventBus) -> None:
    with pytest.raises(ValueError, match="must match"):
        StrategyRiskManager(
            "a",
            make_config("b"),
            StrategyPublisher(bus, "a"),
            guard(),
            lambda: 1.0,
            lambda: 0,
        )
