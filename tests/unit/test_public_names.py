"""The names users import from ``tradekit`` resolve to what they document, in any import order."""

from __future__ import annotations

import subprocess
import sys

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
