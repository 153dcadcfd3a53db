"""The README's library quick start runs as written, over the repository's config and strategies."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradekit.cli import app
from tradekit.data import synthetic_frame

ROOT = Path(__file__).resolve().parents[2]


def python_block(section: str) -> str:
    """The first ```python block under the README heading ``section``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(
        rf"^## {re.escape(section)}\n.*?^```python\n(.*?)^```", readme, re.MULTILINE | re.DOTALL
    )
    assert found is not None, f"README.md has no python block under '## {section}'"
    return found.group(1)


@pytest.fixture
def fresh_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working directory holding only the repository's config.json and strategies/."""
    for name in [name for name in os.environ if name.upper().startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    shutil.copy(ROOT / "config.json", tmp_path / "config.json")
    shutil.copytree(ROOT / "strategies", tmp_path / "strategies")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_library_quick_start_runs_as_written(
    fresh_checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = compile(python_block("Quick start: the library"), "README.md", "exec")
    exec(code, {"__name__": "__readme__"})
    printed = capsys.readouterr().out
    assert re.search(r"^opened BTC/USDT at \d+\.\d+$", printed, re.MULTILINE)
    assert "'rsi-btc-1h': {'state': 'active', 'errors': 0" in printed
    assert (fresh_checkout / "btc_1h.csv").is_file()


def launcher_line(prefix: str) -> list[str]:
    """The arguments of the launcher quick start's command line starting with ``prefix``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^## Quick start: the launcher\n.*?^```bash\n(.*?)^```", readme, re.M | re.S)
    assert block is not None, "README.md has no bash block under '## Quick start: the launcher'"
    lines = [line for line in block.group(1).splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"expected one line starting with {prefix!r}, found {lines}"
    return shlex.split(lines[0], comments=True)


def test_the_launchers_data_example_runs_as_written(fresh_checkout: Path) -> None:
    """The CSV the library quick start writes feeds the README's ``--data`` backtest."""
    writes_csv = next(
        line
        for line in python_block("Quick start: the library").splitlines()
        if "btc_1h.csv" in line
    )
    exec(writes_csv, {"synthetic_frame": synthetic_frame})
    args = launcher_line("tradekit backtest --data ")
    assert args[:3] == ["tradekit", "backtest", "--data"]
    result = CliRunner().invoke(app, args[1:])
    assert result.exit_code == 0, result.output
    report = json.loads((fresh_checkout / "out" / "report.json").read_text())
    assert list(report["strategies"]) == ["rsi-btc-1h"]
    assert report["inputs"]["series"][0]["symbol"] == "BTC/USDT"
