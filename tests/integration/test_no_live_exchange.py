"""Backtests, validation and the testing kit trade on paper whatever the settings say.

Every test here arms the settings for live trading the way an operator would
(``exchange.kind = "ccxt"``, ``live_orders_enabled = true`` and API credentials,
from environment variables or from a ``.env`` file) and checks that no
``CcxtExchange`` is ever built or asked to send an order, while the paper
exchange receives the orders.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ticker_strategies import ticker, ticker_data
from typer.testing import CliRunner

from tradekit.cli import app
from tradekit.config import load_settings, load_strategies
from tradekit.data import synthetic_frame
from tradekit.domain import Candle, Fill, Order
from tradekit.runtime.backtest import backtest
from tradekit.runtime.engine import Engine
from tradekit.services.exchange import CcxtExchange, PaperExchange
from tradekit.testing import FakeCandleSource, shared_container_from_dict
from tradekit.validation import check_strategies_build

ARMED = {
    "TRADEKIT_EXCHANGE__KIND": "ccxt",
    "TRADEKIT_LIVE_ORDERS_ENABLED": "true",
    "TRADEKIT_EXCHANGE__CCXT__API_KEY": "live-key-0123456789",
    "TRADEKIT_EXCHANGE__CCXT__API_SECRET": "live-secret",
    "TRADEKIT_EXCHANGE__CCXT__SANDBOX": "false",
}
ARMED_DICT: dict[str, Any] = {
    "exchange": {
        "kind": "ccxt",
        "ccxt": {"api_key": "live-key-0123456789", "api_secret": "s", "sandbox": False},
    },
    "live_orders_enabled": True,
}


@dataclass
class ExchangeSpy:
    """What reached each exchange class during a test."""

    ccxt_calls: list[str] = field(default_factory=list)
    paper_orders: list[Order] = field(default_factory=list)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> ExchangeSpy:
    """``CcxtExchange`` records and refuses being built or used; paper orders are counted."""
    recorded = ExchangeSpy()

    def refuse_init(self: CcxtExchange, *args: object, **kwargs: object) -> None:
        recorded.ccxt_calls.append("__init__")
        raise AssertionError("a CcxtExchange was built")

    def refuse_submit(self: CcxtExchange, *args: object, **kwargs: object) -> list[Fill]:
        recorded.ccxt_calls.append("submit")
        raise AssertionError("an order reached a CcxtExchange")

    paper_submit = PaperExchange.submit

    def counting_submit(
        self: PaperExchange, order: Order, candle: Candle, trigger_price: float | None = None
    ) -> list[Fill]:
        recorded.paper_orders.append(order)
        return paper_submit(self, order, candle, trigger_price)

    monkeypatch.setattr(CcxtExchange, "__init__", refuse_init)
    monkeypatch.setattr(CcxtExchange, "submit", refuse_submit)
    monkeypatch.setattr(PaperExchange, "submit", counting_submit)
    return recorded


@pytest.fixture(params=["environment", "dotenv"])
def armed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working folder whose settings are armed for live trading; returns the folder."""
    for name in [name for name in os.environ if name.upper().startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    if request.param == "environment":
        for name, value in ARMED.items():
            monkeypatch.setenv(name, value)
    else:
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in ARMED.items()))
    monkeypatch.chdir(tmp_path)
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "ticker.json").write_text(json.dumps(ticker_data("ticker")))
    return tmp_path


def test_the_settings_are_really_armed(armed: Path) -> None:
    settings = load_settings(None)
    assert settings.exchange.kind == "ccxt"
    assert settings.live_orders_enabled is True
    assert settings.exchange.ccxt.api_key is not None


class TestLibrary:
    def test_backtest_trades_on_paper(self, armed: Path, spy: ExchangeSpy) -> None:
        frames = {("BTC/USDT", "1h"): synthetic_frame("BTC/USDT", "1h", 120, seed=1)}
        result = backtest(load_settings(None), [ticker("ticker")], frames)
        assert result.portfolio_stats["trade_count"] > 0
        assert spy.paper_orders
        assert spy.ccxt_calls == []

    def test_validation_reaches_no_exchange(self, armed: Path, spy: ExchangeSpy) -> None:
        settings = load_settings(None)
        check_strategies_build(load_strategies(armed / "strategies", settings))
        assert spy.ccxt_calls == []


class TestCommands:
    def test_backtest_command_trades_on_paper(self, armed: Path, spy: ExchangeSpy) -> None:
        result = CliRunner().invoke(app, ["backtest", "--bars", "120", "--out", "report"])
        assert result.exit_code == 0, result.output
        assert spy.paper_orders
        assert spy.ccxt_calls == []

    def test_validate_command_builds_on_paper(self, armed: Path, spy: ExchangeSpy) -> None:
        result = CliRunner().invoke(app, ["validate"])
        assert result.exit_code == 0, result.output
        assert spy.ccxt_calls == []


class TestTestingKit:
    @pytest.fixture
    def tradekit_settings_data(self) -> dict[str, Any]:
        return ARMED_DICT

    def test_fixtures_trade_on_paper(
        self, armed: Path, spy: ExchangeSpy, tradekit_engine: Engine
    ) -> None:
        tradekit_engine.load([ticker("ticker")])
        for candle in FakeCandleSource.generated("BTC/USDT", "1h", 30).stream():
            tradekit_engine.on_candle(candle)
        assert spy.paper_orders
        assert spy.ccxt_calls == []

    def test_shared_container_from_dict_is_on_paper(self, spy: ExchangeSpy) -> None:
        shared = shared_container_from_dict(ARMED_DICT)
        assert isinstance(shared.exchange(), PaperExchange)
        assert spy.ccxt_calls == []
