"""How long the launcher takes to answer: ``tradekit --help`` and ``tradekit validate``.

Each is run in a fresh interpreter (a subprocess, as a user runs it), best of 5.
``--help`` imports no heavy module (commands load lazily, see tradekit.cli.app);
``validate`` loads the config and builds every strategy once, so it pays for the
runtime. Run from a folder with ``config.json`` and ``strategies/`` for ``validate``
(default: the repository's own examples)::

    PYTHONPATH=src python benchmarks/bench_startup.py [--folder DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 5
HELP_BUDGET_SECONDS = 1.0


def best_time(arguments: list[str], folder: Path) -> float:
    """The fastest of ``REPEATS`` runs of ``python -m tradekit ARGUMENTS`` in ``folder``."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tradekit", *arguments],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path(__file__).resolve().parents[1])
    folder = parser.parse_args().folder
    help_seconds = best_time(["--help"], folder)
    validate_seconds = best_time(["validate"], folder)
    print(f"tradekit --help    {help_seconds * 1000:7.0f} ms (budget < {HELP_BUDGET_SECONDS} s)")
    print(f"tradekit validate  {validate_seconds * 1000:7.0f} ms (best of {REPEATS})")


if __name__ == "__main__":
    main()
