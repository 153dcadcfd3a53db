"""Tests for the entry orchestrator: sizing, score and side selection, blocks, risk and DCA adds."""

from __future__ import annotations

from typing import Any

from fakes import START, FakeBarView, make_candle

from tradekit.config.settings import GlobalRiskSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.domain import AddToPosition, Candle, OpenPosition, Position, Side
from tradekit.events import RiskRejected
from tradekit.orchestrators.entry import EntryOrchestrator
from tradekit.orchestrators.filters import FilterOrchestrator
from tradekit.orchestrators.mtf_gate import WARMING_UP, MTFSnapshotGate
from tradekit.protocols import BarView
from tradekit.services.bus import InMemoryEventBus, StrategyPublisher
from tradekit.services.risk.limits import ExposureGuard, StrategyRiskManager
from tradekit.services.signals.analyzers import Scores

BTC = "BTC/USDT"
ETH = "ETH/USDT"
STRATEGY = "entry-test"


def make_config(**overrides: Any) -> StrategyConfig:
    data: dict[str, Any] = {
        "strategy_id": STRATEGY,
        "symbols": [BTC, ETH],
        "timeframe": "1h",
        "capital": 10_000,
        "analyzers": [{"type": "threshold"}],
        "entry": {"min_score": 0.5, "sizing": {"mode": "fixed_quote", "quote_amount": 100}},
    }
    data.update(overrides)
    return StrategyConfig.model_validate(data)


def make_position(
    side: Side = Side.LONG,
    *,
    symbol: str = BTC,
    last_entry_price: float = 100.0,
    entries: int = 1,
    position_id: str = f"{STRATEGY}-pos-1",
) -> Position:
    return Position(
        position_id=position_id,
        strategy_id=STRATEGY,
        symbol=symbol,
        side=side,
        quantity=1.0,
        avg_entry_price=100.0,
        opened_at=START,
        entries=entries,
        last_entry_price=last_entry_price,
    )


def view(close: float = 100.0, *, symbol: str = BTC, volume: float = 100.0) -> FakeBarView:
    return FakeBarView(candle=make_candle(close=close, symbol=symbol, volume=volume), symbol=symbol)


class FakePositions:
    """Open positions, pending symbols and equity, set directly by the test."""

    def __init__(self, equity: float = 10_000.0) -> None:
        self.positions: dict[str, Position] = {}
        self.pending: set[str] = set()
        self.current_equity = equity

    def position(self, symbol: str) -> Position | None:
        return self.positions.get(symbol)

    def has_pending(self, symbol: str) -> bool:
        return symbol in self.pending

    def equity(self) -> float:
        return self.current_equity


class FakeRisk:
    """Approves (or refuses) every entry and records what it was asked."""

    def __init__(self, approve: bool = True) -> None:
        self.approve = approve
        self.calls: list[tuple[str, float, Candle, bool]] = []

    def approve_entry(
        self, symbol: str, quote_amount: float, candle: Candle, adding: bool = False
    ) -> bool:
        self.calls.append((symbol, quote_amount, candle, adding))
        return self.approve


class FakeFilters:
    """Blocks with ``reason`` (None lets everything through); records the sides asked about."""

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        self.sides: list[Side] = []

    def allows_entry(self, view: BarView, side: Side) -> str | None:
        self.sides.append(side)
        return self.reason


class FakeGate:
    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        self.asked: list[tuple[str, Side]] = []

    def allows_entry(self, symbol: str, side: Side) -> str | None:
        self.asked.append((symbol, side))
        return self.reason


class RecordingQueue:
    def __init__(self) -> None:
        self.actions: list[OpenPosition | AddToPosition] = []

    def enqueue(self, action: OpenPosition | AddToPosition) -> None:
        self.actions.append(action)


class Harness:
    """An entry orchestrator over fakes; every collaborator is reachable from the test."""

    def __init__(
        self,
        config: StrategyConfig | None = None,
        *,
        filters: Any = None,
        gate: Any = None,
        risk: Any = None,
        equity: float = 10_000.0,
    ) -> None:
        self.config = config or make_config()
        self.positions = FakePositions(equity)
        self.risk = risk if risk is not None else FakeRisk()
        self.filters = filters if filters is not None else FakeFilters()
        self.gate = gate if gate is not None else FakeGate()
        self.queue = RecordingQueue()
        self.entry = EntryOrchestrator(
            self.config, self.positions, self.risk, self.filters, self.gate, self.queue
        )

    def evaluate(self, bar_view: BarView, long: float = 0.0, short: float = 0.0) -> None:
        self.entry.evaluate(bar_view, Scores(long=long, short=short))

    def opened_sides(self) -> list[Side]:
        return [action.side for action in self.queue.actions if isinstance(action, OpenPosition)]


class TestSizing:
    def test_fixed_quote_opens_the_configured_amount(self) -> None:
        harness = Harness(
            make_config(entry={"sizing": {"mode": "fixed_quote", "quote_amount": 250}})
        )
        harness.evaluate(view(), long=0.6)
        assert harness.queue.actions == [
            OpenPosition(BTC, Side.LONG, 250.0, reason="long score 0.60")
        ]

    def test_percent_equity_takes_that_share_of_equity(self) -> None:
        config = make_config(entry={"sizing": {"mode": "percent_equity", "equity_pct": 25}})
        harness = Harness(config, equity=8_000.0)
        harness.evaluate(view(), long=1.0)
        assert [action.quote_amount for action in harness.queue.actions] == [2_000.0]

    def test_percent_equity_reads_equity_at_each_decision(self) -> None:
        config = make_config(entry={"sizing": {"mode": "percent_equity", "equity_pct": 25}})
        harness = Harness(config, equity=8_000.0)
        assert harness.entry.entry_amount() == 2_000.0
        harness.positions.current_equity = 12_000.0
        harness.evaluate(view(), long=1.0)
        assert [action.quote_amount for action in harness.queue.actions] == [3_000.0]

    def test_risk_mode_sizes_so_the_stop_loses_risk_pct_of_equity(self) -> None:
        config = make_config(
            entry={"sizing": {"mode": "risk", "risk_pct": 1}}, exit={"stop_loss_pct": 2}
        )
        harness = Harness(config, equity=10_000.0)
        harness.evaluate(view(), long=1.0)
        # 10,000 x 1% = 100 at risk; a 2% stop on 5,000 loses exactly 100.
        assert [action.quote_amount for action in harness.queue.actions] == [5_000.0]

    def test_risk_is_asked_about_the_sized_amount_on_the_decision_candle(self) -> None:
        harness = Harness()
        bar_view = view(close=123.0)
        harness.evaluate(bar_view, long=1.0)
        assert harness.risk.calls == [(BTC, 100.0, bar_view.candle, False)]


class TestNothingToSize:
    @staticmethod
    def percent_equity(**dca: Any) -> StrategyConfig:
        return make_config(
            entry={"sizing": {"mode": "percent_equity", "equity_pct": 10}},
            dca=dca or None,
        )

    def test_no_entry_is_sized_from_negative_equity(self) -> None:
        harness = Harness(self.percent_equity(), equity=-500.0)
        harness.evaluate(view(), long=1.0)
        assert harness.queue.actions == []
        assert harness.risk.calls == []
        assert harness.entry.last_block_reason == (
            "sizing gives -50.00: equity -500.00 leaves nothing to enter with"
        )

    def test_the_real_risk_manager_is_not_asked_about_a_negative_amount(self) -> None:
        config = self.percent_equity()
        risk = StrategyRiskManager(
            STRATEGY,
            config,
            StrategyPublisher(InMemoryEventBus(), STRATEGY),
            ExposureGuard(GlobalRiskSettings()),
            equity=lambda: -500.0,
            open_count=lambda: 0,
        )
        harness = Harness(config, risk=risk, equity=-500.0)
        harness.evaluate(view(), long=1.0)
        assert harness.queue.actions == []

    def test_no_add_is_sized_from_zero_equity(self) -> None:
        harness = Harness(self.percent_equity(safety_orders=2, step_pct=2), equity=0.0)
        harness.positions.positions[BTC] = make_position(last_entry_price=100.0)
        harness.evaluate(view(close=90.0))
        assert harness.queue.actions == []
        assert harness.risk.calls == []
        assert harness.entry.last_block_reason == (
            "sizing gives 0.00: equity 0.00 leaves nothing to enter with"
        )


class TestScoreAndSide:
    def test_score_exactly_at_min_score_opens(self) -> None:
        harness = Harness()
        harness.evaluate(view(), long=0.5)
        assert harness.opened_sides() == [Side.LONG]

    def test_score_below_min_score_does_nothing_and_asks_no_one(self) -> None:
        harness = Harness()
        harness.evaluate(view(), long=0.49)
        assert harness.queue.actions == []
        assert harness.risk.calls == []
        assert harness.filters.sides == []

    def test_long_only_strategy_ignores_a_short_score(self) -> None:
        harness = Harness()
        harness.evaluate(view(), short=1.0)
        assert harness.queue.actions == []

    def test_short_only_strategy_opens_short_on_the_short_score(self) -> None:
        harness = Harness(make_config(entry={"side": "short"}))
        harness.evaluate(view(), long=0.9, short=0.7)
        assert harness.queue.actions == [
            OpenPosition(BTC, Side.SHORT, 100.0, reason="short score 0.70")
        ]

    def test_short_only_strategy_ignores_a_long_score(self) -> None:
        harness = Harness(make_config(entry={"side": "short"}))
        harness.evaluate(view(), long=1.0, short=0.2)
        assert harness.queue.actions == []

    def test_both_sides_takes_the_higher_score(self) -> None:
        harness = Harness(make_config(entry={"side": "both"}))
        harness.evaluate(view(), long=0.6, short=0.8)
        assert harness.opened_sides() == [Side.SHORT]

    def test_both_sides_with_equal_scores_goes_long(self) -> None:
        harness = Harness(make_config(entry={"side": "both"}))
        harness.evaluate(view(), long=0.7, short=0.7)
        assert harness.opened_sides() == [Side.LONG]

    def test_both_sides_takes_the_only_side_past_min_score(self) -> None:
        harness = Harness(make_config(entry={"side": "both"}))
        harness.evaluate(view(), long=0.4, short=0.6)
        assert harness.opened_sides() == [Side.SHORT]

    def test_the_entry_is_for_the_views_symbol(self) -> None:
        harness = Harness()
        harness.evaluate(view(symbol=ETH), long=1.0)
        assert [action.symbol for action in harness.queue.actions] == [ETH]


class TestBlocks:
    def test_a_filter_block_queues_nothing_and_records_the_reason(self) -> None:
        harness = Harness(filters=FakeFilters("outside session 08:00-16:00 UTC"))
        harness.evaluate(view(), long=1.0)
        assert harness.queue.actions == []
        assert harness.entry.last_block_reason == "outside session 08:00-16:00 UTC"
        assert harness.risk.calls == []

    def test_an_mtf_gate_block_queues_nothing_and_records_the_reason(self) -> None:
        harness = Harness(gate=FakeGate("4h close below ema(50)"))
        harness.evaluate(view(), long=1.0)
        assert harness.queue.actions == []
        assert harness.entry.last_block_reason == "4h close below ema(50)"
        assert harness.gate.asked == [(BTC, Side.LONG)]
        assert harness.risk.calls == []

    def test_filters_are_asked_about_the_side_being_entered(self) -> None:
        harness = Harness(make_config(entry={"side": "short"}))
        harness.evaluate(view(), short=1.0)
        assert harness.filters.sides == [Side.SHORT]
        assert harness.gate.asked == [(BTC, Side.SHORT)]

    def test_a_real_volume_filter_blocks_with_its_reason(self) -> None:
        config = make_config(filters={"min_volume": 500})
        harness = Harness(config, filters=FilterOrchestrator(config.filters))
        harness.evaluate(view(volume=120.0), long=1.0)
        assert harness.queue.actions == []
        assert harness.entry.last_block_reason == "volume 120 below min 500"

    def test_a_real_mtf_gate_blocks_while_warming_up(self) -> None:
        config = make_config(mtf={"timeframe": "4h", "length": 3})
        harness = Harness(config, gate=MTFSnapshotGate(config.mtf, "1h"))
        harness.evaluate(view(), long=1.0)
        assert harness.queue.actions == []
        assert harness.entry.last_block_reason == WARMING_UP

    def test_an_entry_that_goes_through_clears_the_last_block_reason(self) -> None:
        filters = FakeFilters("close below ema(200)")
        harness = Harness(filters=filters)
        harness.evaluate(view(), long=1.0)
        filters.reason = None
        harness.evaluate(view(), long=1.0)
        assert harness.entry.last_block_reason is None
        assert len(harness.queue.actions) == 1


class TestRiskRefusal:
    @staticmethod
    def real_risk(
        config: StrategyConfig, open_count: int = 0
    ) -> tuple[StrategyRiskManager, list[RiskRejected]]:
        bus = InMemoryEventBus()
        rejected: list[RiskRejected] = []
        bus.subscribe(rejected.append, RiskRejected)
        risk = StrategyRiskManager(
            STRATEGY,
            config,
            StrategyPublisher(bus, STRATEGY),
            ExposureGuard(GlobalRiskSettings()),
            equity=lambda: 10_000.0,
            open_count=lambda: open_count,
        )
        return risk, rejected

    def test_a_refused_open_queues_nothing(self) -> None:
        harness = Harness(risk=FakeRisk(approve=False))
        harness.evaluate(view(), long=1.0)
        assert harness.queue.actions == []
        assert len(harness.risk.calls) == 1

    def test_max_open_positions_refusal_is_published(self) -> None:
        config = make_config(risk={"max_open_positions": 1})
        risk, rejected = self.real_risk(config, open_count=1)
        harness = Harness(config, risk=risk)
        harness.evaluate(view(symbol=ETH), long=1.0)
        assert harness.queue.actions == []
        assert [
            (event.symbol, event.rule, event.requested, event.allowed) for event in rejected
        ] == [(ETH, "max_open_positions", 2.0, 1.0)]

    def test_risk_per_trade_refusal_is_published_with_the_allowed_amount(self) -> None:
        config = make_config(
            entry={"sizing": {"mode": "fixed_quote", "quote_amount": 5_000}},
            risk={"risk_per_trade_pct": 2},
        )
        risk, rejected = self.real_risk(config)
        harness = Harness(config, risk=risk)
        harness.evaluate(view(), long=1.0)
        assert harness.queue.actions == []
        # No stop: the whole position is at risk, held to 2% of 10,000.
        assert [(event.rule, event.requested, event.allowed) for event in rejected] == [
            ("risk_per_trade", 5_000.0, 200.0)
        ]


class TestPendingOrder:
    def test_a_pending_order_on_the_symbol_blocks_an_entry(self) -> None:
        harness = Harness()
        harness.positions.pending.add(BTC)
        harness.evaluate(view(), long=1.0)
        assert harness.queue.actions == []
        assert harness.risk.calls == []

    def test_a_pending_order_on_the_symbol_blocks_a_dca_add(self) -> None:
        harness = Harness(make_config(dca={"safety_orders": 3, "trigger": "signal"}))
        harness.positions.positions[BTC] = make_position()
        harness.positions.pending.add(BTC)
        harness.evaluate(view(), long=1.0)
        assert harness.queue.actions == []

    def test_a_pending_order_on_another_symbol_does_not_block(self) -> None:
        harness = Harness()
        harness.positions.pending.add(ETH)
        harness.evaluate(view(), long=1.0)
        assert [action.symbol for action in harness.queue.actions] == [BTC]


def price_step_config(**dca: Any) -> StrategyConfig:
    settings = {"safety_orders": 3, "step_pct": 2, "step_scale": 1.5, "volume_scale": 2}
    settings.update(dca)
    return make_config(dca=settings)


class TestDCAPriceStep:
    def test_no_add_while_price_is_above_the_first_step(self) -> None:
        harness = Harness(price_step_config())
        harness.positions.positions[BTC] = make_position(last_entry_price=100.0)
        harness.evaluate(view(close=98.01), long=1.0)
        assert harness.queue.actions == []
        assert harness.risk.calls == []

    def test_first_add_fires_at_step_pct_below_the_last_entry(self) -> None:
        harness = Harness(price_step_config())
        harness.positions.positions[BTC] = make_position(last_entry_price=100.0)
        harness.evaluate(view(close=98.0))
        # One add done after this one: volume_scale**1 x the base amount of 100.
        assert harness.queue.actions == [
            AddToPosition(BTC, 200.0, reason="dca add 1: price 2.00% against entry")
        ]

    def test_a_price_step_add_needs_no_score(self) -> None:
        harness = Harness(price_step_config())
        harness.positions.positions[BTC] = make_position(last_entry_price=100.0)
        harness.evaluate(view(close=97.0), long=0.0)
        assert len(harness.queue.actions) == 1

    def test_second_step_is_scaled_by_step_scale_from_the_last_entry(self) -> None:
        harness = Harness(price_step_config())
        harness.positions.positions[BTC] = make_position(last_entry_price=98.0, entries=2)
        # Step 2% x 1.5 = 3% below 98: the trigger is 95.06.
        harness.evaluate(view(close=95.1))
        assert harness.queue.actions == []
        harness.evaluate(view(close=95.0))
        assert [action.quote_amount for action in harness.queue.actions] == [400.0]

    def test_third_step_and_amount_scale_again(self) -> None:
        harness = Harness(price_step_config())
        harness.positions.positions[BTC] = make_position(last_entry_price=95.0, entries=3)
        # Step 2% x 1.5**2 = 4.5% below 95: the trigger is 90.725.
        harness.evaluate(view(close=90.8))
        assert harness.queue.actions == []
        harness.evaluate(view(close=90.7))
        assert harness.queue.actions == [
            AddToPosition(BTC, 800.0, reason="dca add 3: price 4.53% against entry")
        ]

    def test_adds_stop_after_safety_orders(self) -> None:
        harness = Harness(price_step_config())
        harness.positions.positions[BTC] = make_position(last_entry_price=90.0, entries=4)
        harness.evaluate(view(close=50.0), long=1.0)
        assert harness.queue.actions == []
        assert harness.risk.calls == []

    def test_short_add_fires_at_step_pct_above_the_last_entry(self) -> None:
        harness = Harness(price_step_config())
        harness.positions.positions[BTC] = make_position(Side.SHORT, last_entry_price=100.0)
        harness.evaluate(view(close=101.9))
        assert harness.queue.actions == []
        harness.evaluate(view(close=102.0))
        assert harness.queue.actions == [
            AddToPosition(BTC, 200.0, reason="dca add 1: price 2.00% against entry")
        ]

    def test_an_add_is_asked_of_risk_as_an_add(self) -> None:
        harness = Harness(price_step_config())
        harness.positions.positions[BTC] = make_position(last_entry_price=100.0)
        bar_view = view(close=97.0)
        harness.evaluate(bar_view)
        assert harness.risk.calls == [(BTC, 200.0, bar_view.candle, True)]

    def test_an_add_goes_through_the_filters(self) -> None:
        harness = Harness(price_step_config(), filters=FakeFilters("close below ema(200)"))
        harness.positions.positions[BTC] = make_position(last_entry_price=100.0)
        harness.evaluate(view(close=97.0))
        assert harness.queue.actions == []
        assert harness.entry.last_block_reason == "close below ema(200)"

    def test_no_dca_config_never_adds(self) -> None:
        harness = Harness()
        harness.positions.positions[BTC] = make_position(last_entry_price=100.0)
        harness.evaluate(view(close=50.0), long=1.0)
        assert harness.queue.actions == []


class TestDCASignal:
    @staticmethod
    def config() -> StrategyConfig:
        return make_config(dca={"safety_orders": 2, "trigger": "signal", "volume_scale": 1.5})

    def test_each_qualifying_score_adds_a_scaled_amount(self) -> None:
        harness = Harness(self.config())
        harness.positions.positions[BTC] = make_position(entries=1)
        harness.evaluate(view(), long=0.8)
        harness.positions.positions[BTC] = make_position(entries=2)
        harness.evaluate(view(), long=0.5)
        assert harness.queue.actions == [
            AddToPosition(BTC, 150.0, reason="dca add 1 on score 0.80"),
            AddToPosition(BTC, 225.0, reason="dca add 2 on score 0.50"),
        ]

    def test_a_score_below_min_score_adds_nothing(self) -> None:
        harness = Harness(self.config())
        harness.positions.positions[BTC] = make_position()
        harness.evaluate(view(), long=0.49)
        assert harness.queue.actions == []

    def test_a_signal_add_ignores_price(self) -> None:
        harness = Harness(self.config())
        harness.positions.positions[BTC] = make_position(last_entry_price=100.0)
        harness.evaluate(view(close=130.0), long=1.0)
        assert len(harness.queue.actions) == 1

    def test_a_short_position_adds_on_the_short_score(self) -> None:
        harness = Harness(
            make_config(entry={"side": "short"}, dca={"safety_orders": 2, "trigger": "signal"})
        )
        harness.positions.positions[BTC] = make_position(Side.SHORT)
        harness.evaluate(view(), long=1.0, short=0.0)
        assert harness.queue.actions == []
        harness.evaluate(view(), long=0.0, short=0.9)
        assert harness.queue.actions == [
            AddToPosition(BTC, 100.0, reason="dca add 1 on score 0.90")
        ]

    def test_signal_adds_stop_after_safety_orders(self) -> None:
        harness = Harness(self.config())
        harness.positions.positions[BTC] = make_position(entries=3)
        harness.evaluate(view(), long=1.0)
        assert harness.queue.actions == []


class TestRefusedAdd:
    @staticmethod
    def refused() -> Harness:
        harness = Harness(price_step_config(), risk=FakeRisk(approve=False))
        harness.positions.positions[BTC] = make_position(last_entry_price=100.0)
        harness.evaluate(view(close=97.0))
        return harness

    def test_a_refused_add_queues_nothing(self) -> None:
        harness = self.refused()
        assert harness.queue.actions == []
        assert len(harness.risk.calls) == 1

    def test_the_same_add_is_not_asked_again_on_later_candles(self) -> None:
        harness = self.refused()
        harness.evaluate(view(close=96.0))
        harness.evaluate(view(close=95.0))
        assert len(harness.risk.calls) == 1
        assert harness.queue.actions == []

    def test_the_next_add_of_the_same_position_is_asked(self) -> None:
        harness = self.refused()
        harness.positions.positions[BTC] = make_position(last_entry_price=97.0, entries=2)
        harness.evaluate(view(close=90.0))
        assert len(harness.risk.calls) == 2

    def test_a_new_position_is_asked_again(self) -> None:
        harness = self.refused()
        harness.positions.positions[BTC] = make_position(
            last_entry_price=100.0, position_id=f"{STRATEGY}-pos-2"
        )
        harness.risk.approve = True
        harness.evaluate(view(close=97.0))
        assert [action.quote_amount for action in harness.queue.actions] == [200.0]

    def test_a_refusal_in_one_symbol_does_not_silence_another(self) -> None:
        harness = self.refused()
        harness.positions.positions[ETH] = make_position(symbol=ETH, last_entry_price=100.0)
        harness.evaluate(view(close=97.0, symbol=ETH))
        assert [call[0] for call in harness.risk.calls] == [BTC, ETH]

    def test_a_refused_signal_add_is_not_asked_again_either(self) -> None:
        config = make_config(dca={"safety_orders": 2, "trigger": "signal"})
        harness = Harness(config, risk=FakeRisk(approve=False))
        harness.positions.positions[BTC] = make_position()
        harness.evaluate(view(), long=1.0)
        harness.evaluate(view(), long=1.0)
        assert len(harness.risk.calls) == 1
