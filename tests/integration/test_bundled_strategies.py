"""The bundled strategies run end to end, and a hand-built RSI series trades exactly as computed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tradekit.config import StrategyConfig, TradekitSettings, load_settings, load_strategy_configs
from tradekit.data import synthetic_frame
from tradekit.runtime.backtest import BacktestResult, backtest

REPO = Path(__file__).parent.parent.parent


def wilder_rsi(closes: list[float], length: int = 14) -> list[float | None]:
    """RSI with Wilder's smoothing, written out plainly as an independent oracle."""
    values: list[float | None] = [None] * len(closes)
    gains = [max(b - a, 0.0) for a, b in itertools.pairwise(closes)]
    losses = [max(a - b, 0.0) for a, b in itertools.pairwise(closes)]
    average_gain = sum(gains[:length]) / length
    average_loss = sum(losses[:length]) / length
    for index in range(length, len(closes)):
        if index > length:
            average_gain = (average_gain * (length - 1) + gains[index - 1]) / length
            average_loss = (average_loss * (length - 1) + losses[index - 1]) / length
        values[index] = (
            100.0 if average_loss == 0 else 100 - 100 / (1 + average_gain / average_loss)
        )
    return values


def first_cross(values: list[float | None], level: float, below: bool, after: int = 0) -> int:
    for index in range(max(after, 1), len(values)):
        previous, current = values[index - 1], values[index]
        if previous is None or current is None:
            continue
        if (below and previous >= level > current) or (not below and previous <= level < current):
            return index
    raise AssertionError("the series never crosses")


def rsi_series() -> pd.DataFrame:
    """Choppy, then a slide (RSI falls through 30), then a rally (RSI rises through 70)."""
    closes = [100.0]
    for index in range(40):
        closes.append(closes[-1] + (0.6 if index % 2 == 0 else -0.5))
    for _ in range(10):
        closes.append(closes[-1] - 1.8)
    for _ in range(20):
        closes.append(closes[-1] + 2.2)
    opens = [closes[0], *closes[:-1]]
    start = datetime(2024, 3, 1, tzinfo=UTC)
    return pd.DataFrame(
        {
            "open": opens,
            "high": [max(o, c) + 0.1 for o, c in zip(opens, closes, strict=True)],
            "low": [min(o, c) - 0.1 for o, c in zip(opens, closes, strict=True)],
            "close": closes,
            "volume": [1000.0] * len(closes),
        },
        index=pd.DatetimeIndex([start + timedelta(hours=h) for h in range(len(closes))]),
    )


class TestHandBuiltRsi:
    def run(self) -> tuple[pd.DataFrame, BacktestResult]:
        settings = TradekitSettings(
            _env_file=None,
            exchange={"fee_bps": 10, "slippage_bps": 0, "fill_rule": "close"},
        )
        config = StrategyConfig.model_validate(
            {
                "strategy_id": "rsi-hand",
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "indicators": [{"name": "rsi", "params": {"length": 14}}],
                "analyzers": [
                    {
                        "type": "threshold",
                        "params": {"source": "rsi", "below": 30, "above": 70, "mode": "cross"},
                    }
                ],
                "entry": {"sizing": {"mode": "fixed_quote", "quote_amount": 1000}},
                "exit": {"exit_on_opposite_signal": True, "min_profit_pct_for_signal_exit": 0.5},
                "risk": {"risk_per_trade_pct": 100},
            }
        )
        frame = rsi_series()
        return frame, backtest(settings, [config], {("BTC/USDT", "1h"): frame})

    def test_enters_and_exits_on_the_bars_the_oracle_rsi_crosses(self) -> None:
        frame, result = self.run()
        closes = frame["close"].tolist()
        oracle = wilder_rsi(closes)
        entry_bar = first_cross(oracle, 30, below=True)
        exit_bar = first_cross(oracle, 70, below=False, after=entry_bar)
        (trade,) = result.strategies["rsi-hand"].trades
        assert trade.entry_ts == frame.index[entry_bar] + timedelta(hours=1)
        assert trade.exit_ts == frame.index[exit_bar] + timedelta(hours=1)
        assert trade.avg_entry_price == pytest.approx(closes[entry_bar])
        assert trade.avg_exit_price == pytest.approx(closes[exit_bar])

    def test_fees_and_pnl_are_exact(self) -> None:
        _frame, result = self.run()
        (trade,) = result.strategies["rsi-hand"].trades
        quantity = 1000 / trade.avg_entry_price
        entry_fee = 1000 * 0.001
        exit_fee = quantity * trade.avg_exit_price * 0.001
        assert trade.quantity == pytest.approx(quantity)
        assert trade.fees == pytest.approx(entry_fee + exit_fee)
        expected = quantity * (trade.avg_exit_price - trade.avg_entry_price) - entry_fee - exit_fee
        assert trade.realized_pnl == pytest.approx(expected)
        final = result.strategies["rsi-hand"].stats.final_equity
        assert final == pytest.approx(10_000 + expected)


@pytest.fixture(scope="module")
def runs() -> tuple[BacktestResult, BacktestResult]:
    settings = load_settings(REPO / "config.json", env_file=None)
    configs = load_strategy_configs(REPO / "strategies", settings)
    frames = {
        (symbol, timeframe): synthetic_frame(symbol, timeframe, bars, seed=11)
        for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT")
        for timeframe, bars in (("15m", 6000), ("1h", 3000), ("4h", 1500), ("1d", 400))
    }
    return backtest(settings, configs, frames), backtest(settings, configs, frames)


class TestBundledStrategies:
    def test_every_bundled_strategy_trades(
        self, runs: tuple[BacktestResult, BacktestResult]
    ) -> None:
        result = runs[0]
        for strategy_id, strategy in result.strategies.items():
            opened = strategy.stats.trade_count + strategy.open_positions
            assert opened > 0, f"{strategy_id} never traded"

    def test_each_strategy_equity_adds_up(
        self, runs: tuple[BacktestResult, BacktestResult]
    ) -> None:
        for strategy in runs[0].strategies.values():
            realized = sum(trade.realized_pnl for trade in strategy.trades)
            if strategy.open_positions == 0:
                assert strategy.stats.final_equity == pytest.approx(strategy.capital + realized)

    def test_same_inputs_give_the_same_event_log(
        self, runs: tuple[BacktestResult, BacktestResult]
    ) -> None:
        first, second = runs
        assert first.event_log_hash == second.event_log_hash
        assert len(first.events) > 100

    def test_events_carry_their_strategy_and_gap_free_seq(
        self, runs: tuple[BacktestResult, BacktestResult]
    ) -> None:
        seqs: dict[str, list[int]] = {}
        for event in runs[0].events:
            seqs.setdefault(event.strategy_id, []).append(event.seq)
        assert set(seqs) == set(runs[0].strategies)
        for numbers in seqs.values():
            assert numbers == list(range(1, len(numbers) + 1))
