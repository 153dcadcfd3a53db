"""The launcher itself: --version, -h everywhere, a --help that imports nothing heavy, and
--log-level / --json-logs before or after any command, overriding the config."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from ticker_strategies import ticker_data
from typer.testing import CliRunner

import tradekit
from tradekit.cli import app
from tradekit.cli.app import LAZY_COMMANDS

HEAVY_MODULES = (
    "pandas",
    "numpy",
    "pandas_ta_classic",
    "sqlalchemy",
    "sqlmodel",
    "dependency_injector",
    "pydantic_settings",
    "loguru",
    "fastapi",
    "uvicorn",
    "ccxt",
    "matplotlib",
    "tradekit.config",
    "tradekit.runtime",
    "tradekit.reporting",
)
NOT_FOR_VALIDATION = (
    "sqlalchemy",
    "sqlmodel",
    "ccxt",
    "uvicorn",
    "matplotlib",
    "tradekit.reporting",
)
NOT_FOR_CHECKING_NAMES = (
    "pandas",
    "numpy",
    "pyarrow",
    "pandas_ta_classic",
    "dependency_injector.containers",
    "dependency_injector.wiring",
    "fastapi",
    "starlette",
    "werkzeug",
)
"""Computation backends and the web frameworks dependency-injector's wiring probes for:
validating names and parameters needs none of them."""
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working folder with one ticker strategy and no TRADEKIT_* variables."""
    for name in [name for name in os.environ if name.upper().startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "ticker.json").write_text(json.dumps(ticker_data("tick-a")))
    return tmp_path


class TestVersionAndHelp:
    def test_version_prints_the_package_version(self) -> None:
        result = CliRunner().invoke(app, ["--version"])
        assert result.exit_code == 0
        assert result.output.strip() == f"tradekit {tradekit.__version__}"

    @pytest.mark.parametrize(
        "command",
        [[], ["run"], ["report"], ["strategies"], ["strategies", "add"], ["config", "show"]],
    )
    def test_dash_h_is_help(self, command: list[str]) -> None:
        short = CliRunner().invoke(app, [*command, "-h"])
        long = CliRunner().invoke(app, [*command, "--help"])
        assert short.exit_code == long.exit_code == 0
        assert short.output == long.output
        assert "Usage:" in short.output

    def test_root_help_lists_every_command(self) -> None:
        result = CliRunner().invoke(app, ["--help"])
        for name in LAZY_COMMANDS:
            assert name in result.output

    @pytest.mark.parametrize(
        "arguments",
        [["--help"], ["-h"], ["--version"], ["serve", "--help"], ["run", "--help"]],
    )
    def test_help_and_version_import_no_heavy_module(self, arguments: list[str]) -> None:
        code = (
            "import sys\n"
            "from tradekit.cli import main\n"
            f"sys.argv = ['tradekit', *{arguments!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print([name for name in {HEAVY_MODULES!r} if name in sys.modules])\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip().splitlines()[-1] == "[]"

    def test_validate_imports_no_database_exchange_or_plotting_library(self) -> None:
        """Validation builds every strategy but never opens the journal, reaches a venue or
        draws, so it loads none of the libraries for those."""
        code = (
            "import sys\n"
            "from tradekit.cli import main\n"
            "sys.argv = ['tradekit', 'validate']\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            f"print([name for name in {NOT_FOR_VALIDATION!r} if name in sys.modules])\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]"

    def test_validate_loads_no_computation_backend_nor_container(self) -> None:
        """The bundled strategies use indicators, filters, a gate and every analyzer kind;
        checking them reads the catalog's metadata and builds no container."""
        code = (
            "import sys\n"
            "from tradekit.cli import main\n"
            "sys.argv = ['tradekit', 'validate']\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            f"print([name for name in {NOT_FOR_CHECKING_NAMES!r} if name in sys.modules])\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT
        )
        assert done.returncode == 0, done.stderr
        assert "5 strategies valid" in done.stdout
        assert done.stdout.strip().splitlines()[-1] == "[]"

    def test_lazy_summaries_match_the_commands_and_cover_them_all(self) -> None:
        for module in {lazy.module for lazy in LAZY_COMMANDS.values()}:
            importlib.import_module(module)
        registered = typer.main.get_group(app).commands
        assert set(registered) == set(LAZY_COMMANDS)
        for name, command in registered.items():
            help_text = command.help or ""
            assert help_text.split("\n\n")[0].replace("\n", " ") == LAZY_COMMANDS[name].summary


class TestLoggingOptions:
    @pytest.mark.parametrize("where", ["before", "after"])
    def test_json_logs_and_log_level_override_the_config(self, folder: Path, where: str) -> None:
        (folder / "config.json").write_text(
            json.dumps({"logging": {"level": "ERROR", "json_path": "config-logs.jsonl"}})
        )
        options = ["--log-level", "info", "--json-logs", "run-logs.jsonl"]
        command = ["run", "--bars", "40", "--db", "sqlite:///j.db"]
        arguments = [*options, *command] if where == "before" else [*command, *options]

        result = CliRunner().invoke(app, arguments)

        assert result.exit_code == 0, result.output
        assert not (folder / "config-logs.jsonl").exists()
        records = [
            json.loads(line)["record"]
            for line in (folder / "run-logs.jsonl").read_text().splitlines()
        ]
        entries = [r for r in records if r["message"].startswith("entry ")]
        assert entries
        assert {r["extra"]["strategy_id"] for r in entries} == {"tick-a"}
        assert {r["level"]["name"] for r in entries} == {"INFO"}

    def test_an_unknown_level_is_refused_with_the_choices(self, folder: Path) -> None:
        result = CliRunner().invoke(app, ["report", "--log-level", "loud"])
        assert result.exit_code == 2
        assert "'loud' is not one of TRACE, DEBUG" in " ".join(result.output.split())


class TestRunWritesHealth:
    def test_run_writes_the_health_file_next_to_the_journal(self, folder: Path) -> None:
        result = CliRunner().invoke(app, ["run", "--bars", "40", "--db", "sqlite:///j.db"])

        assert result.exit_code == 0, result.output
        document = json.loads((folder / "j.db.health.json").read_text())
        assert document["bots"]["tick-a"]["state"] == "active"
        assert document["bots"]["tick-a"]["feeds"][0]["symbol"] == "BTC/USDT"

    def test_health_file_option_wins(self, folder: Path) -> None:
        arguments = ["run", "--bars", "40", "--db", "sqlite:///j.db"]
        result = CliRunner().invoke(
            app, [*arguments, "--health-file", "out/h.json", "--health-interval", "5"]
        )

        assert result.exit_code == 0, result.output
        document = json.loads((folder / "out" / "h.json").read_text())
        assert document["interval_seconds"] == 5
        assert not (folder / "j.db.health.json").exists()
