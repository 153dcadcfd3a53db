"""Every broken configuration in tests/data/broken exits with code 2 and a precise message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradekit.cli import EXIT_CONFIG_ERROR, app

BROKEN = Path(__file__).parent.parent / "data" / "broken"
REPO = Path(__file__).parent.parent.parent

# case folder -> fragments that must all appear in the message
EXPECTED: dict[str, list[str]] = {
    "malformed-json": ["strategies/broken.json", "malformed JSON at line 3, column 27"],
    "unknown-key": [
        "strategies/typo.json: exit.stop_los_pct",
        "unknown key 'stop_los_pct'; did you mean 'stop_loss_pct'?",
    ],
    "wrong-type": ["strategies/wrong.json: entry.min_score", "expected a valid number", "'high'"],
    "out-of-range": [
        "strategies/range.json: entry.min_score",
        "expected less than or equal to 1, got 1.5",
    ],
    "duplicate-id": [
        "strategy_id 'same-id' is used by 2 files",
        "strategies/first.json",
        "strategies/second.json",
    ],
    "unknown-timeframe": [
        "strategies/tf.json: timeframe",
        "unknown timeframe '1hr'",
        "did you mean '1h'?",
    ],
    "empty-folder": ["strategies: no strategy files (*.json) in this folder"],
    "many-bad-files": [
        "3 configuration problems",
        "strategies/b-negative.json: capital: expected greater than 0, got -5",
        "strategies/c-side.json: entry.side: expected 'long', 'short' or 'both', got 'sideways'",
        "strategies/d-truncated.json: malformed JSON at line 1",
    ],
    "bad-default": [
        "strategies/inherits.json: exit.stop_loss_pct: expected greater than 0, got -1",
        "value set by config.json (strategy_defaults)",
    ],
    "bad-settings": [
        "config.json: exchange.fill_rule: expected 'next_open' or 'close', got 'open'",
        "config.json: engine.max_concurent_strategies: unknown key 'max_concurent_strategies'; "
        "did you mean 'max_concurrent_strategies'?",
    ],
    "mtf-lower": [
        "strategies/mtf.json: mtf",
        "'15m' must be higher than the strategy timeframe '1h'",
    ],
    "duplicate-json-key": ["strategies/dup.json", "key 'strategy_id' appears twice"],
    "bad-symbol": [
        "strategies/sym.json: symbols[0]: expected a unified symbol such as 'BTC/USDT', "
        "got 'btcusdt'"
    ],
    "not-an-object": ["strategies/list.json: expected a JSON object at the top level, got a list"],
    "missing-required": ["strategies/nosym.json: symbols: required key 'symbols' is missing"],
    "bad-indicator-param": ["strategies/param.json: indicators[0].params.length", "got [14]"],
    "unknown-indicator": [
        "strategies/ind.json: unknown indicator 'rsii' in indicators[0].name; did you mean 'rsi'?"
    ],
    "bad-analyzer-param": [
        "strategies/an.json: analyzers[0].type: unknown analyzer type 'treshold'; "
        "did you mean 'threshold'?"
    ],
    "trailing-half": [
        "strategies/trail.json: exit",
        "'trailing_distance_pct' is set but 'trailing_activation_pct' is missing",
    ],
    "huge-indicator-length": [
        "strategies/len.json: parameter 'length' of rsi in indicators[0].params.length "
        "must be an integer <= 1,000,000, got 1e+308"
    ],
    "deep-nesting": [
        "strategies/deep.json: description[0][0][0]",
        "nested more than 20 levels deep",
    ],
    "infinite-capital": ["strategies/inf.json: capital: expected a finite number, got Infinity"],
    "nan-setting": ["config.json: risk.max_total_exposure: expected a finite number, got NaN"],
    "unwritable-log-path": [
        "config.json: logging.json_path: cannot write the JSON log file "
        "'log-folder-is-a-file/tradekit.jsonl'"
    ],
}


def _run_validate(case_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(case_dir)
    args = ["validate"]
    if (case_dir / "config.json").exists():
        args += ["--config", "config.json"]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


class TestBrokenConfigs:
    def test_every_case_folder_has_expectations(self) -> None:
        """A new broken case cannot be added without saying what its message must contain."""
        assert sorted(path.name for path in BROKEN.iterdir() if path.is_dir()) == sorted(EXPECTED)

    @pytest.mark.parametrize("case", sorted(EXPECTED))
    def test_broken_config_exits_2_with_precise_message(
        self, case: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        code, output = _run_validate(BROKEN / case, monkeypatch)
        assert code == EXIT_CONFIG_ERROR, output
        assert "Traceback" not in output
        for fragment in EXPECTED[case]:
            assert fragment in output, f"{fragment!r} missing from:\n{output}"

    def test_good_file_beside_bad_ones_is_not_reported(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, output = _run_validate(BROKEN / "many-bad-files", monkeypatch)
        assert "a-good.json" not in output


class TestMissingPaths:
    def test_missing_strategies_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(app, ["validate", "--strategies", "nowhere"])
        assert result.exit_code == EXIT_CONFIG_ERROR
        assert "nowhere: strategies folder not found" in result.output

    def test_missing_config_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(app, ["validate", "--config", "absent.json"])
        assert result.exit_code == EXIT_CONFIG_ERROR
        assert "absent.json: file not found" in result.output


class TestBundledConfig:
    def test_validate_passes_on_bundled_config(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(REPO)
        result = CliRunner().invoke(app, ["validate"])
        assert result.exit_code == 0, result.output
        lines = [line for line in result.output.splitlines() if line.startswith("ok")]
        assert len(lines) == len(list((REPO / "strategies").glob("*.json")))
        assert "rsi-btc-1h" in result.output

    def test_config_show_names_each_source(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(REPO)
        result = CliRunner().invoke(app, ["config", "show", "rsi-btc-1h"])
        assert result.exit_code == 0, result.output
        rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
        assert rows["timeframe"].endswith("# strategies/rsi-btc-1h.json")
        assert rows["capital"].endswith("# config.json (strategy_defaults)")
        assert rows["enabled"].endswith("# default")
        assert rows["indicators[0].params.length"].endswith("# strategies/rsi-btc-1h.json")

    def test_config_show_env_override_names_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(REPO)
        monkeypatch.setenv("TRADEKIT_STRATEGY_DEFAULTS__CAPITAL", "2500")
        result = CliRunner().invoke(app, ["config", "show", "rsi-btc-1h"])
        rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
        assert "2500.0" in rows["capital"]
        expected_source = "# env TRADEKIT_STRATEGY_DEFAULTS__CAPITAL (strategy_defaults)"
        assert rows["capital"].endswith(expected_source)

    def test_config_show_unknown_id_suggests_the_closest(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(REPO)
        result = CliRunner().invoke(app, ["config", "show", "rsi-btc"])
        assert result.exit_code == EXIT_CONFIG_ERROR
        assert "no strategy with id 'rsi-btc'" in result.output
        assert "did you mean 'rsi-btc-1h'?" in result.output

    def test_schema_is_the_strategy_json_schema(self) -> None:
        import json

        result = CliRunner().invoke(app, ["schema"])
        schema = json.loads(result.output)
        assert schema["title"] == "tradekit strategy"
        assert {"strategy_id", "symbols", "timeframe", "analyzers"} <= set(schema["required"])
        assert schema["additionalProperties"] is False


class TestConsoleScript:
    def test_installed_command_reports_error_without_traceback(self) -> None:
        """The real console script, in a real process, exits 2 with the message on stderr."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("TRADEKIT_")}
        result = subprocess.run(
            [sys.executable, "-m", "tradekit", "validate"],
            cwd=BROKEN / "unknown-key",
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert result.returncode == EXIT_CONFIG_ERROR
        assert "did you mean 'stop_loss_pct'?" in result.stderr
        assert "Traceback" not in result.stderr


def _console_script(
    cwd: Path, env_overrides: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``tradekit validate`` in a real process; a hang fails the test when the timeout expires."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRADEKIT_")}
    env.update(env_overrides or {})
    return subprocess.run(
        [sys.executable, "-m", "tradekit", "validate"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


class TestInputThatUsedToHang:
    """An empty key or an empty variable-name part sent ``validate`` into an endless loop."""

    def test_empty_key_in_a_strategy_file_exits_2(self, tmp_path: Path) -> None:
        strategy = json.loads((BROKEN / "unwritable-log-path/strategies/ok.json").read_text())
        strategy["analyzers"][0][""] = 1
        (tmp_path / "strategies").mkdir()
        (tmp_path / "strategies/ok.json").write_text(json.dumps(strategy), encoding="utf-8")

        result = _console_script(tmp_path)

        assert result.returncode == EXIT_CONFIG_ERROR
        assert "strategies/ok.json: analyzers[0][\"\"]: unknown key ''" in result.stderr
        assert "Traceback" not in result.stderr

    def test_empty_part_in_a_variable_name_exits_2(self) -> None:
        result = _console_script(REPO, {"TRADEKIT_EXCHANGE____FEE_BPS": "3"})

        assert result.returncode == EXIT_CONFIG_ERROR
        assert "environment: variable TRADEKIT_EXCHANGE____FEE_BPS: " in result.stderr
        assert "expected names like TRADEKIT_EXCHANGE__FEE_BPS" in result.stderr

    def test_section_variable_that_is_not_json_exits_2(self) -> None:
        result = _console_script(REPO, {"TRADEKIT_STRATEGY_DEFAULTS": "not json"})

        assert result.returncode == EXIT_CONFIG_ERROR
        assert "environment: variable TRADEKIT_STRATEGY_DEFAULTS: expected a JSON object" in (
            result.stderr
        )
        assert "Traceback" not in result.stderr
