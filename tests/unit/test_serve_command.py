"""``tradekit serve`` without the service extra: a sentence naming what is missing and the
command that installs it, not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradekit.cli import app


@pytest.mark.parametrize("missing", ["fastapi", "uvicorn"])
def test_a_missing_service_package_is_named_with_the_install_command(
    missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # A module set to None in sys.modules cannot be imported, as if it were not installed.
    monkeypatch.setitem(sys.modules, missing, None)
    for loaded in [name for name in sys.modules if name.startswith("tradekit.service.")]:
        monkeypatch.delitem(sys.modules, loaded)

    result = CliRunner().invoke(
        app, ["serve", "--db", f"sqlite:///{tmp_path / 'journal.db'}", "--port", "0"]
    )

    assert result.exit_code == 2, result.output
    assert f"tradekit serve needs FastAPI and uvicorn ({missing} is not installed)" in (
        result.output
    )
    assert "pip install 'tradekit[service]'" in result.output
    assert "Traceback" not in result.output
