"""Names with rich markup, terminal escape codes or undecodable bytes are printed as text.

They used to crash the output (``[/]`` in a rich table, a lone surrogate at the
encoder) or reach the terminal raw (an escape code colouring or clearing it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tradekit.cli import EXIT_CONFIG_ERROR, app

MARKUP = "close[/] [bold]tag"
ESCAPE = "red\x1b[31mRED\x1b[0m"

pytestmark = pytest.mark.usefixtures("clean_cwd")


@pytest.fixture
def clean_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [name for name in os.environ if name.upper().startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def strategy(name: str, strategy_id: str = "hostile") -> dict[str, Any]:
    return {
        "strategy_id": strategy_id,
        "name": name,
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "indicators": [{"name": "rsi", "params": {"length": 14}}],
        "analyzers": [{"type": "threshold", "params": {"source": "rsi", "below": 30}}],
    }


def write_strategy(name: str, file_name: str | bytes = "hostile.json") -> Path:
    folder = Path("strategies")
    folder.mkdir(exist_ok=True)
    path = folder / os.fsdecode(file_name)
    path.write_text(json.dumps(strategy(name)), encoding="utf-8")
    return path


def invoke(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(arguments))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.output


class TestValidate:
    def test_markup_in_a_name_is_shown_as_written(self) -> None:
        write_strategy(MARKUP)

        code, output = invoke("validate")

        assert code == 0
        assert f"hostile  1h  BTC/USDT  {MARKUP}  (strategies/hostile.json)" in output

    def test_escape_codes_in_a_name_are_shown_escaped(self) -> None:
        write_strategy(ESCAPE)

        code, output = invoke("validate")

        assert code == 0
        assert "\x1b" not in output
        assert "red\\x1b[31mRED\\x1b[0m" in output

    def test_undecodable_file_name_is_shown_escaped(self) -> None:
        write_strategy("fine", b"bad\xff.json")

        code, output = invoke("validate")

        assert code == 0
        assert "(strategies/bad\\udcff.json)" in output

    def test_lone_surrogate_in_a_name_is_a_config_error(self) -> None:
        Path("strategies").mkdir()
        text = json.dumps(strategy("x")).replace('"name": "x"', '"name": "x\\ud800"')
        Path("strategies/hostile.json").write_text(text, encoding="utf-8")

        code, output = invoke("validate")

        assert code == EXIT_CONFIG_ERROR
        assert "strategies/hostile.json: name: expected valid Unicode text, got 'x\\ud800'" in (
            output
        )

    def test_error_message_with_markup_and_escape_codes_is_printed_as_text(self) -> None:
        Path("strategies").mkdir()
        Path(f"strategies/[bold]tag{ESCAPE}.json").write_text("{", encoding="utf-8")

        code, output = invoke("validate")

        assert code == EXIT_CONFIG_ERROR
        assert "\x1b" not in output
        assert "strategies/[bold]tagred\\x1b[31mRED\\x1b[0m.json: malformed JSON" in output


class TestConfigShow:
    def test_name_value_is_printed_as_text(self) -> None:
        write_strategy(MARKUP + ESCAPE)

        code, output = invoke("config", "show", "hostile")

        assert code == 0
        (line,) = [line for line in output.splitlines() if line.startswith("name ")]
        assert json.dumps(MARKUP + ESCAPE) in line


class TestStrategiesTable:
    def test_registered_names_are_shown_in_the_table_as_text(self) -> None:
        path = write_strategy(MARKUP + ESCAPE)
        database = "sqlite:///journal.db"

        add_code, add_output = invoke("strategies", "add", str(path), "--db", database)
        list_code, list_output = invoke("strategies", "list", "--db", database)

        assert (add_code, list_code) == (0, 0), add_output + list_output
        assert "\x1b" not in add_output + list_output
        assert "close[/] [bold]tagred\\x1b[31mRED\\x1b[0m" in list_output
