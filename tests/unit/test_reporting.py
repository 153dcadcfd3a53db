"""Backtest report files and tables: each file agrees with the result it was written from."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from tradekit.config import StrategyConfig, TradekitSettings
from tradekit.data import synthetic_frame
from tradekit.reporting import (
    TRADE_COLUMNS,
    json_safe,
    plot_equity,
    portfolio_summary,
    print_table,
    report_document,
    results_table,
    summary_table,
    write_backtest_report,
    write_events_jsonl,
    write_trades_csv,
)
from tradekit.runtime.backtest import BacktestResult, backtest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def rsi_config(strategy_id: str, symbol: str) -> StrategyConfig:
    return StrategyConfig.model_validate(
        {
            "strategy_id": strategy_id,
            "symbols": [symbol],
            "timeframe": "1h",
            "indicators": [{"name": "rsi", "params": {"length": 14}}],
            "analyzers": [
                {
                    "type": "threshold",
                    "params": {"source": "rsi", "below": 35, "above": 65, "mode": "level"},
                }
            ],
            "exit": {"stop_loss_pct": 3, "take_profit_pct": 3},
        }
    )


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    """Two RSI strategies on two generated series: trades, losses and wins on both."""
    settings = TradekitSettings(_env_file=None)
    frames = {
        (symbol, "1h"): synthetic_frame(symbol, "1h", 1500, seed=11)
        for symbol in ("BTC/USDT", "ETH/USDT")
    }
    configs = [rsi_config("rsi-btc", "BTC/USDT"), rsi_config("rsi-eth", "ETH/USDT")]
    return backtest(settings, configs, frames)


@pytest.fixture
def empty_result() -> BacktestResult:
    return BacktestResult(
        strategies={},
        portfolio_equity=pd.Series(dtype="float64"),
        portfolio_stats={
            "capital": 0.0,
            "final_equity": 0.0,
            "total_return_pct": 0.0,
            "max_drawdown_pct": 0.0,
            "trade_count": 0,
        },
        events=[],
    )


class TestTradesCsv:
    def test_one_row_per_trade_of_every_strategy(
        self, result: BacktestResult, tmp_path: Path
    ) -> None:
        path = tmp_path / "trades.csv"
        count = write_trades_csv(result, path)
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file))
        expected = sum(len(item.trades) for item in result.strategies.values())
        assert expected > 0
        assert count == len(rows) == expected
        assert {row["strategy_id"] for row in rows} == set(result.strategies)

    def test_columns_in_order_and_times_in_iso_8601(
        self, result: BacktestResult, tmp_path: Path
    ) -> None:
        path = tmp_path / "trades.csv"
        write_trades_csv(result, path)
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            first = next(reader)
        assert tuple(reader.fieldnames or ()) == TRADE_COLUMNS
        assert first["entry_ts"].endswith("+00:00")
        assert "T" in first["entry_ts"]
        assert first["side"] in ("long", "short")

    def test_no_trade_still_writes_the_header(
        self, empty_result: BacktestResult, tmp_path: Path
    ) -> None:
        path = tmp_path / "trades.csv"
        assert write_trades_csv(empty_result, path) == 0
        assert path.read_text().strip() == ",".join(TRADE_COLUMNS)


class TestEventsJsonl:
    def test_file_hashes_to_the_event_log_hash(
        self, result: BacktestResult, tmp_path: Path
    ) -> None:
        path = tmp_path / "events.jsonl"
        assert write_events_jsonl(result, path) == len(result.events)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == result.event_log_hash

    def test_every_line_is_one_event(self, result: BacktestResult, tmp_path: Path) -> None:
        path = tmp_path / "events.jsonl"
        write_events_jsonl(result, path)
        lines = path.read_text().splitlines()
        assert len(lines) == len(result.events)
        assert [json.loads(line) for line in lines] == [
            json.loads(json.dumps(event.to_dict())) for event in result.events
        ]


class TestReportDocument:
    def test_json_safe_replaces_non_finite_floats(self) -> None:
        value = {"a": math.inf, "b": [math.nan, 1.5], "c": ("x", -math.inf), "d": 2}
        assert json_safe(value) == {"a": None, "b": [None, 1.5], "c": ["x", None], "d": 2}

    def test_statistics_hash_and_inputs(self, result: BacktestResult) -> None:
        document = report_document(result, {"bars": 3000})
        json.dumps(document, allow_nan=False)
        assert document["event_log_hash"] == result.event_log_hash
        assert document["event_count"] == len(result.events)
        assert document["inputs"] == {"bars": 3000}
        assert set(document["strategies"]) == {"rsi-btc", "rsi-eth"}
        btc = document["strategies"]["rsi-btc"]
        assert btc["trade_count"] == len(result.strategies["rsi-btc"].trades)
        assert btc["final_equity"] == pytest.approx(result.strategies["rsi-btc"].stats.final_equity)
        portfolio = document["portfolio"]
        assert portfolio["trade_count"] == sum(
            item["trade_count"] for item in document["strategies"].values()
        )
        assert portfolio["final_equity"] == pytest.approx(result.portfolio_stats["final_equity"])


class TestPortfolioSummary:
    def test_trade_figures_are_pooled_over_all_strategies(self, result: BacktestResult) -> None:
        pnls = [t.realized_pnl for item in result.strategies.values() for t in item.trades]
        wins = [pnl for pnl in pnls if pnl > 0]
        losses = [-pnl for pnl in pnls if pnl < 0]
        assert wins
        assert losses
        summary = portfolio_summary(result)
        assert summary.trade_count == len(pnls)
        assert summary.win_rate_pct == pytest.approx(len(wins) / len(pnls) * 100)
        assert summary.profit_factor == pytest.approx(sum(wins) / sum(losses))

    def test_no_trades_gives_no_win_rate_or_profit_factor(
        self, empty_result: BacktestResult
    ) -> None:
        summary = portfolio_summary(empty_result)
        assert (summary.trade_count, summary.win_rate_pct, summary.profit_factor) == (0, None, None)


class TestEquityPlot:
    def test_writes_a_png(self, result: BacktestResult, tmp_path: Path) -> None:
        path = tmp_path / "equity.png"
        plot_equity(result, path)
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 20_000

    def test_a_run_without_equity_still_gets_a_picture(
        self, empty_result: BacktestResult, tmp_path: Path
    ) -> None:
        path = tmp_path / "equity.png"
        plot_equity(empty_result, path)
        assert path.read_bytes().startswith(PNG_MAGIC)


class TestWriteBacktestReport:
    def test_writes_all_four_files_into_a_new_folder(
        self, result: BacktestResult, tmp_path: Path
    ) -> None:
        written = write_backtest_report(result, tmp_path / "a" / "b", {"bars": 1})
        for path in (written.trades, written.report, written.events, written.equity):
            assert path.is_file()
            assert path.parent == tmp_path / "a" / "b"
        assert written.event_log_hash == result.event_log_hash
        assert json.loads(written.report.read_text())["inputs"] == {"bars": 1}


class TestTables:
    def test_narrow_terminal_wraps_headers_but_never_cuts_figures(
        self, result: BacktestResult
    ) -> None:
        console = Console(file=io.StringIO(), width=72, force_terminal=True, color_system=None)
        console.print(summary_table(result))
        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert "…" not in text
        for item in result.strategies.values():
            assert f"{item.stats.final_equity:,.2f}" in text

    def test_pipe_gets_the_table_at_its_natural_width(self) -> None:
        table = results_table(
            "t", ("strategy", "a long header", "another long header"), [["s", "1.00", "2.00"]]
        )
        buffer = io.StringIO()
        print_table(Console(file=buffer, width=20), table)
        assert "strategy a long header another long header" in buffer.getvalue()

    def test_footer_is_a_last_line(self) -> None:
        table = results_table("t", ("strategy", "n"), [["a", "1"]], footer=["all", "1"])
        buffer = io.StringIO()
        print_table(Console(file=buffer), table)
        assert buffer.getvalue().rstrip().splitlines()[-1].split() == ["all", "1"]


class TestHostileText:
    def test_table_shows_markup_escape_codes_and_surrogates_as_text(self) -> None:
        buffer = io.StringIO()
        console = Console(file=buffer, width=200)
        rows = [["a[/]b", "x\ud800y", "red\x1b[31mRED"]]

        print_table(console, results_table("t[/]", ["[bold]", "h", "c"], rows, text_columns=3))

        text = buffer.getvalue()
        assert "a[/]b" in text
        assert "x\\ud800y" in text
        assert "red\\x1b[31mRED" in text
        assert "\x1b" not in text
        assert "[bold]" in text
        text.encode("utf-8")
