"""``tradekit backtest``: the report files agree with each other, runs repeat, bad input exits 2."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tradekit.cli import EXIT_CONFIG_ERROR, app
from tradekit.data import synthetic_frame

REPO = Path(__file__).parent.parent.parent
BUNDLED_IDS = sorted(path.stem for path in (REPO / "strategies").glob("*.json"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BUNDLED_EVENT_LOG_HASH = "1cb324c31b5a2804a10156d83ae9b92ebb94bcd4e8364b5a27725edaf195f860"
"""``tradekit backtest`` with the bundled config, strategies and defaults (synthetic data)."""


def invoke(args: list[str], monkeypatch: pytest.MonkeyPatch, cwd: Path = REPO) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(app, ["backtest", *args])
    return result.exit_code, result.output


def report_of(out_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out_dir / "report.json").read_text())
    return document


def write_csv(path: Path, symbol: str, timeframe: str, bars: int) -> Path:
    """A candle file as an exchange would export it: one row per candle, with a symbol column."""
    frame = synthetic_frame(symbol, timeframe, bars, seed=5)
    frame.index.name = "timestamp"
    table = frame.reset_index()
    table.insert(1, "symbol", symbol)
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``python -m tradekit backtest --bars 500`` in a real process, from the repository root."""
    out_dir = tmp_path_factory.mktemp("backtest") / "out"
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRADEKIT_")}
    completed = subprocess.run(
        [sys.executable, "-m", "tradekit", "backtest", "--bars", "500", "--out", str(out_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return out_dir, completed.stdout


class TestDefaultRun:
    def test_writes_all_four_files(self, default_run: tuple[Path, str]) -> None:
        out_dir, _ = default_run
        for name in ("trades.csv", "report.json", "events.jsonl", "equity.png"):
            assert (out_dir / name).is_file(), name

    def test_every_bundled_strategy_ran_on_its_own_synthetic_series(
        self, default_run: tuple[Path, str]
    ) -> None:
        report = report_of(default_run[0])
        assert sorted(report["strategies"]) == BUNDLED_IDS
        inputs = report["inputs"]
        assert inputs["data"]["kind"] == "synthetic"
        assert inputs["config"] == "config.json"
        assert {(s["symbol"], s["timeframe"], s["bars"]) for s in inputs["series"]} == {
            ("BTC/USDT", "15m", 500),
            ("BTC/USDT", "1h", 500),
            ("BTC/USDT", "4h", 500),
            ("ETH/USDT", "1h", 500),
            ("ETH/USDT", "1d", 500),
            ("SOL/USDT", "15m", 500),
        }
        assert inputs["bars"] == report["candles_processed"] == 3000

    def test_trades_csv_rows_match_the_trade_counts(self, default_run: tuple[Path, str]) -> None:
        out_dir, _ = default_run
        report = report_of(out_dir)
        with (out_dir / "trades.csv").open(newline="") as file:
            rows = list(csv.DictReader(file))
        counts = {key: value["trade_count"] for key, value in report["strategies"].items()}
        assert len(rows) == sum(counts.values()) == report["portfolio"]["trade_count"] > 0
        for strategy_id, count in counts.items():
            assert sum(1 for row in rows if row["strategy_id"] == strategy_id) == count

    def test_events_jsonl_is_the_hashed_event_log(self, default_run: tuple[Path, str]) -> None:
        out_dir, _ = default_run
        report = report_of(out_dir)
        lines = (out_dir / "events.jsonl").read_text().splitlines()
        events = [json.loads(line) for line in lines]
        assert len(events) == report["event_count"] > 0
        assert all(event["event_type"] and event["strategy_id"] for event in events)
        digest = hashlib.sha256((out_dir / "events.jsonl").read_bytes()).hexdigest()
        assert digest == report["event_log_hash"]

    def test_equity_png_is_a_real_picture(self, default_run: tuple[Path, str]) -> None:
        data = (default_run[0] / "equity.png").read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 30_000

    def test_prints_the_summary_table_and_hash(self, default_run: tuple[Path, str]) -> None:
        out_dir, stdout = default_run
        lines = stdout.splitlines()
        for strategy_id in [*BUNDLED_IDS, "portfolio"]:
            assert any(line.startswith(f"{strategy_id} ") for line in lines), strategy_id
        assert report_of(out_dir)["event_log_hash"] in stdout


class TestDeterminism:
    def test_same_inputs_give_the_same_event_log_hash(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        hashes = []
        for name in ("first", "second"):
            code, output = invoke(["--bars", "300", "--out", str(tmp_path / name)], monkeypatch)
            assert code == 0, output
            hashes.append(report_of(tmp_path / name)["event_log_hash"])
        assert hashes[0] == hashes[1]
        first = (tmp_path / "first" / "events.jsonl").read_bytes()
        assert first == (tmp_path / "second" / "events.jsonl").read_bytes()

    @pytest.mark.slow
    def test_the_bundled_run_keeps_its_event_log(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The bundled backtest with its defaults publishes the events it always published:
        speed and memory work on the replay must leave the log, byte for byte, as it was."""
        code, output = invoke(["--out", str(tmp_path)], monkeypatch)
        assert code == 0, output
        assert report_of(tmp_path)["event_log_hash"] == BUNDLED_EVENT_LOG_HASH
        digest = hashlib.sha256((tmp_path / "events.jsonl").read_bytes()).hexdigest()
        assert digest == BUNDLED_EVENT_LOG_HASH

    def test_another_seed_gives_another_run(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        hashes = set()
        for seed in ("1", "2"):
            out_dir = tmp_path / seed
            args = ["--bars", "300", "--seed", seed, "--only", "rsi-btc-1h", "--out", str(out_dir)]
            assert invoke(args, monkeypatch)[0] == 0
            hashes.add(report_of(out_dir)["event_log_hash"])
        assert len(hashes) == 2


class TestFileData:
    def test_csv_file_feeds_the_strategy(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = write_csv(tmp_path / "btc.csv", "BTC/USDT", "1h", 600)
        out_dir = tmp_path / "out"
        args = ["--data", str(data), "--only", "rsi-btc-1h", "--out", str(out_dir)]
        code, output = invoke(args, monkeypatch)
        assert code == 0, output
        report = report_of(out_dir)
        assert list(report["strategies"]) == ["rsi-btc-1h"]
        assert report["inputs"]["data"]["kind"] == "files"
        assert report["inputs"]["data"]["paths"] == [str(data)]
        [series] = report["inputs"]["series"]
        assert (series["symbol"], series["timeframe"], series["bars"]) == ("BTC/USDT", "1h", 600)
        assert series["source"] == "file"

    def test_missing_timeframe_is_resampled_from_a_lower_one_and_said_so(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = write_csv(tmp_path / "btc15.csv", "BTC/USDT", "15m", 2000)
        out_dir = tmp_path / "out"
        args = ["--data", str(data), "--only", "rsi-btc-1h", "--only", "macd-dca-btc-4h"]
        code, output = invoke([*args, "--out", str(out_dir)], monkeypatch)
        assert code == 0, output
        assert "BTC/USDT 1h: 500 candles" in output
        assert "resampled from 15m" in output
        series = {item["timeframe"]: item for item in report_of(out_dir)["inputs"]["series"]}
        assert series["1h"]["bars"] == 500
        assert series["4h"]["bars"] == 125
        assert series["4h"]["source"] == "resampled from 15m"
        assert report_of(out_dir)["inputs"]["data"]["unused_series"] == ["BTC/USDT 15m"]

    def test_repairs_are_printed(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        data = write_csv(tmp_path / "btc.csv", "BTC/USDT", "1h", 300)
        lines = data.read_text().splitlines()
        data.write_text("\n".join([*lines, lines[5]]) + "\n")
        args = ["--data", str(data), "--only", "rsi-btc-1h", "--out", str(tmp_path / "out")]
        code, output = invoke(args, monkeypatch)
        assert code == 0, output
        assert "dropped 1 exact duplicate row(s)" in output


class TestWindow:
    def test_from_and_to_keep_the_candles_inside(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        out_dir = tmp_path / "out"
        args = ["--bars", "500", "--only", "rsi-btc-1h", "--from", "2024-01-03", "--to"]
        code, output = invoke([*args, "2024-01-10T12:00Z", "--out", str(out_dir)], monkeypatch)
        assert code == 0, output
        inputs = report_of(out_dir)["inputs"]
        [series] = inputs["series"]
        assert series["first"] == "2024-01-03T00:00:00+00:00"
        assert series["last"] == "2024-01-10T11:00:00+00:00"
        assert series["bars"] == 7 * 24 + 12
        assert datetime.fromisoformat(inputs["from"]) == datetime.fromisoformat("2024-01-03T00:00Z")

    def test_bad_date_exits_2_naming_the_option(self, monkeypatch: pytest.MonkeyPatch) -> None:
        code, output = invoke(["--from", "2024-13-01"], monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "--from" in output
        assert "2024-13-01" in output
        assert "ISO 8601" in output

    def test_to_before_from_exits_2(self, monkeypatch: pytest.MonkeyPatch) -> None:
        code, output = invoke(["--from", "2024-02-01", "--to", "2024-01-01"], monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "is not after --from" in output

    def test_range_outside_the_data_exits_2(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        args = ["--bars", "200", "--only", "rsi-btc-1h", "--from", "2030-01-01"]
        code, output = invoke([*args, "--out", str(tmp_path)], monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "no candles between 2030-01-01T00:00:00+00:00 and the end" in output
        assert "BTC/USDT 1h (200 candles" in output
        assert not (tmp_path / "report.json").exists()


class TestDataErrors:
    def test_missing_series_names_strategy_symbol_timeframe_and_what_the_data_holds(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = write_csv(tmp_path / "eth.csv", "ETH/USDT", "1h", 100)
        args = ["--data", str(data), "--only", "rsi-btc-1h", "--only", "bbands-eth-1h"]
        code, output = invoke([*args, "--out", str(tmp_path / "out")], monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "strategy 'rsi-btc-1h' needs BTC/USDT 1h candles" in output
        assert "the data holds: ETH/USDT 1h (100 candles" in output
        assert "bbands-eth-1h" not in output
        assert "Traceback" not in output

    def test_broken_csv_names_the_file_line_and_column(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = write_csv(tmp_path / "btc.csv", "BTC/USDT", "1h", 50)
        lines = data.read_text().splitlines()
        fields = lines[3].split(",")
        fields[-2] = "abc"
        lines[3] = ",".join(fields)
        data.write_text("\n".join(lines) + "\n")
        code, output = invoke(["--data", str(data), "--only", "rsi-btc-1h"], monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert str(data) in output
        assert "line 4, column 'close'" in output
        assert "Traceback" not in output

    def test_missing_file_exits_2(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        code, output = invoke(["--data", str(tmp_path / "absent.csv")], monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "absent.csv: no such file" in output

    def test_unknown_only_id_suggests_the_close_one(self, monkeypatch: pytest.MonkeyPatch) -> None:
        code, output = invoke(["--only", "rsi-btc-1"], monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "did you mean 'rsi-btc-1h'?" in output

    def test_broken_strategy_folder_exits_2(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        folder = tmp_path / "strategies"
        folder.mkdir()
        (folder / "bad.json").write_text('{"strategy_id": "x"')
        code, output = invoke(["--strategies", str(folder)], monkeypatch, cwd=tmp_path)
        assert code == EXIT_CONFIG_ERROR
        assert "bad.json: malformed JSON" in output


class TestSyntheticPeriod:
    def test_by_default_every_series_covers_the_same_days(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        out_dir = tmp_path / "out"
        code, output = invoke(["--days", "10", "--out", str(out_dir)], monkeypatch)
        assert code == 0, output
        inputs = report_of(out_dir)["inputs"]
        assert inputs["data"]["days"] == 10
        bars = {(s["symbol"], s["timeframe"]): s["bars"] for s in inputs["series"]}
        assert bars[("BTC/USDT", "15m")] == 10 * 96
        assert bars[("BTC/USDT", "4h")] == 10 * 6
        assert bars[("ETH/USDT", "1d")] == 10
        assert "10 days from 2024-01-01 for every series" in output


def test_a_file_named_after_no_symbol_points_to_symbol_and_the_naming_scheme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synthetic_frame("BTC/USDT", "1h", 48).to_csv(tmp_path / "btc.csv", index_label="timestamp")
    code, output = invoke(
        ["--data", str(tmp_path / "btc.csv"), "--only", "rsi-btc-1h", "--out", str(tmp_path)],
        monkeypatch,
    )
    assert code == 2
    message = " ".join(output.split())
    assert "the data holds: btc 1h" in message
    assert "like BTC-USDT_1h.csv, or from --symbol BTC/USDT" in message


def test_symbol_and_timeframe_options_label_a_bare_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prices.csv"
    synthetic_frame("BTC/USDT", "1h", 48).to_csv(path, index_label="timestamp")
    out_dir = tmp_path / "out"
    labels = ["--symbol", "BTC/USDT", "--timeframe", "1h"]
    code, output = invoke(
        ["--data", str(path), *labels, "--only", "rsi-btc-1h", "--out", str(out_dir)], monkeypatch
    )
    assert code == 0, output
    series = report_of(out_dir)["inputs"]["series"]
    assert [(item["symbol"], item["timeframe"]) for item in series] == [("BTC/USDT", "1h")]
