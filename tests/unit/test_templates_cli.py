"""``tradekit templates list`` and ``show``: the templates and their parameters on the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradekit.cli import app


class TestTemplatesCommands:
    def test_list_shows_each_template(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(app, ["templates", "list"])
        assert result.exit_code == 0, result.output
        for template_id in ("bollinger", "dca", "ema-cross", "macd-dca", "rsi"):
            assert template_id in result.output

    def test_show_prints_parameters_with_limits(self) -> None:
        result = CliRunner().invoke(app, ["templates", "show", "rsi"])
        assert result.exit_code == 0, result.output
        assert "rsi_length" in result.output
        assert "> 0, < 100, or empty" in result.output

    def test_unknown_id_is_a_configuration_error(self) -> None:
        result = CliRunner().invoke(app, ["templates", "show", "rsii"])
        assert result.exit_code == 2
        assert "did you mean 'rsi'?" in result.output

    def test_a_named_folder_that_is_missing_is_an_error(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(app, ["templates", "list", "--templates", str(tmp_path / "x")])
        assert result.exit_code == 2
        assert "folder not found" in result.output
