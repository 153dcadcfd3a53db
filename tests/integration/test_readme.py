"""The README's library quick start runs as written, over the repository's config and strategies."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

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
