"""``tradekit data download`` through the real ccxt code against the fake venue, then
``tradekit backtest --data-dir``: the same trades as a backtest on the same candles in a CSV."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fake_binance import FakeBinance, Kline
from typer.testing import CliRunner

from tradekit.cli import app
from tradekit.data import synthetic_frame

SYMBOLS = ("BTC/USDT", "ETH/USDT")
START = datetime(2024, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
HOUR_MS = 3_600_000
SERVED = 2_000
"""Candles the venue holds per symbol."""
FIRST = 1_500
"""Candles the first download asks for; the second one asks for all of them."""
KLINES = "/api/v3/klines"


def served_frame(symbol: str) -> pd.DataFrame:
    return synthetic_frame(symbol, "1h", SERVED, seed=3, start=START)


def klines(frame: pd.DataFrame) -> list[Kline]:
    return [
        Kline(int(ts.timestamp() * 1000), row.open, row.high, row.low, row.close, row.volume)
        for ts, row in zip(frame.index, frame.itertuples(), strict=True)
    ]


def strategy_data() -> dict[str, object]:
    """Buys every 3 bars and sells 2 bars later on both symbols: many trades, no warm-up."""
    return {
        "strategy_id": "ticker",
        "symbols": list(SYMBOLS),
        "timeframe": "1h",
        "analyzers": [
            {"type": "time_interval", "params": {"every_bars": 3, "name": "buy"}},
            {
                "type": "time_interval",
                "params": {"every_bars": 3, "offset": 2, "direction": "exit", "name": "sell"},
            },
        ],
        "exit": {"stop_loss_pct": 5, "exit_on_opposite_signal": True},
        "risk": {"max_open_positions": 2},
    }


@pytest.fixture
def workspace(venue: FakeBinance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the strategy and a config whose exchange.ccxt urls point at the venue."""
    for name in [name for name in os.environ if name.startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    for symbol in SYMBOLS:
        venue.serve_history(symbol, "1h", klines(served_frame(symbol)))
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "ticker.json").write_text(json.dumps(strategy_data()))
    ccxt = venue.ccxt_settings().model_dump(mode="json", exclude_none=True)
    (tmp_path / "config.json").write_text(json.dumps({"exchange": {"ccxt": ccxt}}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def download(hours: int) -> str:
    """Download both symbols' 1h candles closing by ``hours`` after START into ./data."""
    end = (START + timedelta(hours=hours)).isoformat()
    args = ["data", "download", "--exchange", "binance", "--symbols", ",".join(SYMBOLS)]
    args += ["--timeframes", "1h", "--from", START.isoformat(), "--to", end, "--dir", "data"]
    result = CliRunner().invoke(app, [*args, "--config", "config.json"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.mark.slow
class TestDownloadFromTheVenueThenBacktest:
    def test_a_second_download_asks_the_venue_only_for_candles_after_the_last_stored(
        self, venue: FakeBinance, workspace: Path
    ) -> None:
        first = download(FIRST)
        assert f"data/BTC-USDT_1h.parquet: {FIRST} new candle(s), {FIRST} in all" in first
        asked_before = len(venue.queries(KLINES))
        second = download(SERVED)
        added = SERVED - FIRST
        assert f"data/ETH-USDT_1h.parquet: {added} new candle(s), {SERVED} in all" in second
        asked = venue.queries(KLINES)[asked_before:]
        after_last_stored = START_MS + FIRST * HOUR_MS
        for symbol in ("BTCUSDT", "ETHUSDT"):
            starts = [int(query["startTime"]) for query in asked if query["symbol"] == symbol]
            assert starts, f"the second download never asked for {symbol}"
            assert starts[0] == after_last_stored
            assert min(starts) >= after_last_stored

    def test_backtest_on_the_downloaded_folder_equals_one_on_the_same_candles_in_a_csv(
        self, venue: FakeBinance, workspace: Path
    ) -> None:
        download(SERVED)
        frames = []
        for symbol in SYMBOLS:
            frame = served_frame(symbol)[["open", "high", "low", "close", "volume"]]
            frames.append(frame.rename_axis("timestamp").reset_index().assign(symbol=symbol))
        candles = pd.concat(frames)[
            ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
        ]
        candles.to_csv("candles.csv", index=False)
        runner = CliRunner()
        from_dir = runner.invoke(app, ["backtest", "--data-dir", "data", "--out", "from-dir"])
        assert from_dir.exit_code == 0, from_dir.output
        from_csv = runner.invoke(app, ["backtest", "--data", "candles.csv", "--out", "from-csv"])
        assert from_csv.exit_code == 0, from_csv.output
        trades = (workspace / "from-dir" / "trades.csv").read_text()
        traded = {line.split(",")[2] for line in trades.splitlines()[1:]}
        assert len(trades.splitlines()) > 100
        assert trades == (workspace / "from-csv" / "trades.csv").read_text()
        events = (workspace / "from-dir" / "events.jsonl").read_text()
        assert events == (workspace / "from-csv" / "events.jsonl").read_text()
        assert traded >= set(SYMBOLS), traded
