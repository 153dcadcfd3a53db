"""``tradekit run --source file``: candle files replayed through the paper loop."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ticker_strategies import ticker_data
from typer.testing import CliRunner

from tradekit.cli import app
from tradekit.data import synthetic_frame

BARS = 60


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with one ticker strategy on BTC/USDT 1h and its candles in data/."""
    for name in [name for name in os.environ if name.startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "ticker.json").write_text(json.dumps(ticker_data("ticker")))
    (tmp_path / "data").mkdir()
    frame = synthetic_frame("BTC/USDT", "1h", BARS, seed=7)
    frame.rename_axis("timestamp").to_parquet(tmp_path / "data" / "BTC-USDT_1h.parquet")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", *args])
    return result.exit_code, " ".join(result.output.split())


class TestRunFromFiles:
    def test_a_file_replay_trades_as_the_synthetic_replay_of_the_same_candles(
        self, folder: Path
    ) -> None:
        # Trade lines carry wall-clock stamps: compare the summaries only.
        quiet = ("--log-level", "WARNING")
        code, from_files = run(
            "--source", "file", "--data", "data", "--db", "sqlite:///a.db", *quiet
        )
        assert code == 0, from_files
        code, synthetic = run("--bars", str(BARS), "--seed", "7", "--db", "sqlite:///b.db", *quiet)
        assert code == 0, synthetic
        assert f"{BARS} candles processed (source exhausted)" in from_files
        assert from_files == synthetic

    def test_live_mode_is_refused_on_a_file_replay(self, folder: Path) -> None:
        code, output = run("--mode", "live", "--source", "file", "--data", "data")
        assert code == 2
        assert "--mode live cannot run on --source file" in output
        assert "Use --mode paper" in output

    def test_without_data_the_option_is_named(self, folder: Path) -> None:
        code, output = run("--source", "file", "--db", "sqlite:///a.db")
        assert code == 2
        assert "--source file needs candles: --data FILE or --data FOLDER" in output

    def test_data_without_the_file_source_is_refused(self, folder: Path) -> None:
        code, output = run("--data", "data", "--db", "sqlite:///a.db")
        assert code == 2
        assert "--data is read only with --source file, not --source synthetic" in output

    def test_a_missing_series_names_it_the_strategy_and_what_the_files_hold(
        self, folder: Path
    ) -> None:
        (folder / "data" / "BTC-USDT_1h.parquet").rename(folder / "data" / "ETH-USDT_1h.parquet")
        code, output = run("--source", "file", "--data", "data", "--db", "sqlite:///a.db")
        assert code == 2
        assert "lack series the strategies trade: BTC/USDT 1h (for ticker)" in output
        assert "they hold ETH/USDT 1h" in output
        assert not (folder / "a.db").exists()


class TestSpeedIsForReplays:
    def test_speed_with_a_venue_source_is_refused_naming_what_it_paces(self, folder: Path) -> None:
        code, output = run("--source", "ccxt", "--speed", "5", "--db", "sqlite:///a.db")
        assert code == 2
        assert "--speed 5: --speed paces replays only" in output
        assert "exchange.ccxt.poll_interval_seconds" in output
        assert not (folder / "a.db").exists()
