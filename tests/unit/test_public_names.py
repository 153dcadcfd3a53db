"""The names users import from ``tradekit`` resolve to what they document, in any import order."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tradekit


class TestPublicNames:
    def test_every_name_in_all_resolves(self) -> None:
        missing = [name for name in tradekit.__all__ if getattr(tradekit, name, None) is None]
        assert missing == []

    def test_backtest_stays_the_function_whatever_is_imported(self) -> None:
        """Importing every module of the package never turns ``tk.backtest`` into a module
        (it did once anything had imported a ``tradekit.backtest`` module)."""
        program = (
            "import importlib, pkgutil\n"
            "import tradekit as tk\n"
            "for module in pkgutil.walk_packages(tk.__path__, 'tradekit.'):\n"
            "    if module.name != 'tradekit.__main__':\n"
            "        importlib.import_module(module.name)\n"
            "from tradekit.runtime.backtest import backtest\n"
            "assert tk.backtest is backtest, type(tk.backtest)\n"
            "print('ok')\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "ok"

    def test_the_short_paths_reexport_the_runtime(self) -> None:
        from tradekit import live, replay
        from tradekit.runtime import live as runtime_live
        from tradekit.runtime import replay as runtime_replay

        assert live.run_live is runtime_live.run_live
        assert replay.replay_every_bar is runtime_replay.replay_every_bar

    def test_every_public_name_imports_in_a_fresh_interpreter(self) -> None:
        """``from tradekit import *`` and ``dir(tradekit)`` see every name, though they load
        on first use."""
        program = (
            "import tradekit\n"
            "public = set(tradekit.__all__)\n"
            "listed = set(dir(tradekit))\n"
            "namespace = {}\n"
            "exec('from tradekit import *', namespace)\n"
            "print(sorted(public - listed), sorted(public - set(namespace)))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[] []"

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        with pytest.raises(AttributeError, match="no attribute 'backtset'"):
            _ = tradekit.backtset  # type: ignore[attr-defined]


LIBRARIES_IMPORT_LEAVES_OUT = (
    "pydantic",
    "pydantic_settings",
    "loguru",
    "pandas",
    "numpy",
    "pandas_ta_classic",
    "sqlalchemy",
    "sqlmodel",
    "dependency_injector",
    "fastapi",
    "uvicorn",
    "ccxt",
)


class TestImportIsLight:
    def test_import_tradekit_loads_no_third_party_library(self) -> None:
        """Every public name loads on first use, so importing the package alone pulls in
        none of the libraries behind them."""
        program = (
            "import sys\n"
            "import tradekit\n"
            f"print([name for name in {LIBRARIES_IMPORT_LEAVES_OUT!r} if name in sys.modules])\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"

    def test_a_config_name_loads_the_config_but_not_the_backtest_stack(self) -> None:
        program = (
            "import sys\n"
            "from tradekit import StrategyConfig, load_strategies\n"
            "print(StrategyConfig.__module__, load_strategies.__module__)\n"
            "print([name for name in ('pandas', 'sqlalchemy', 'dependency_injector') "
            "if name in sys.modules])\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "tradekit.config.strategy tradekit.config.loading",
            "[]",
        ]
