"""Every fill reaches a strategy's positions through ``PositionLifecycleService.apply_fills``:
those the exchange returns when an order is submitted and those of orders left pending."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from ticker_strategies import ticker

from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.domain import Fill
from tradekit.services.positions.lifecycle import PositionLifecycleService
from tradekit.testing import FakeCandleSource, FakeExchange


class TestFillsAppliedInOnePlace:
    def test_an_immediate_and_a_pending_fill_both_go_through_apply_fills(
        self, tradekit_factory: TradingOrchestratorFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        applied: list[Fill] = []
        original = PositionLifecycleService.apply_fills

        def recording(service: PositionLifecycleService, fills: Iterable[Fill]) -> None:
            fills = list(fills)
            applied.extend(fills)
            original(service, fills)

        monkeypatch.setattr(PositionLifecycleService, "apply_fills", recording)
        # Held: the market order opening the position fills on the next candle (pending);
        # the 5% stop carries a trigger price, so the exchange fills it on submission.
        exchange = FakeExchange(hold=True)
        candles = list(FakeCandleSource.from_closes([100.0, 100.0, 100.0, 90.0, 90.0]).stream())
        config = ticker("a", every=10, exit_offset=None)
        with tradekit_factory.overriding(config, shared_exchange=exchange):
            handle = tradekit_factory.handle("a")
            for candle in candles:
                handle.trading_orchestrator.on_candle(candle)
            assert handle.position_lifecycle.trade_count == 1
            (trade,) = handle.position_lifecycle.trades
            assert trade.exit_reason == "stop_loss"
        opening, stop = exchange.fills
        assert opening.ts == candles[1].ts  # at the next candle's open: it was pending
        assert stop.price == pytest.approx(95.0)  # at the stop level, on submission
        assert applied == [opening, stop]
