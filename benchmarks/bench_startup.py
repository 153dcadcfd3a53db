"""How long the launcher and ``import tradekit`` take, each in a fresh interpreter.

Every figure is the median of ``--repeats`` runs of a subprocess, as a user runs
it, in wall time and in CPU time (user + system, which other work on a shared
machine disturbs less): ``--help``, ``-h``, ``--version``, ``serve --help`` and ``templates list``
import no heavy module (commands load lazily, see tradekit.cli.app);
``validate`` loads the config and checks every strategy without building it; ``backtest`` is
the whole process next to the replay it reports. Run from a folder with
``config.json`` and ``strategies/`` (default: the repository's own examples)::

    PYTHONPATH=src python benchmarks/bench_startup.py [--folder DIR] [--repeats 7]

``--baseline SRC`` also runs everything against another source tree (e.g. an
older checkout's ``src``) in the same session, interleaved, and prints both columns.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HELP_BUDGET_SECONDS = 0.5
VALIDATE_BUDGET_SECONDS = 1.0
REPLAY_LINE = re.compile(r"replayed .* in (?P<replay>[0-9.]+) s; (?P<total>[0-9.]+) s in all")


@dataclass(frozen=True)
class Case:
    """One thing to time: a label and the interpreter arguments after ``python``."""

    label: str
    arguments: tuple[str, ...]


def cases(out_dir: Path) -> list[Case]:
    launcher = ("-m", "tradekit")
    return [
        Case("import tradekit", ("-c", "import tradekit")),
        Case("tradekit --help", (*launcher, "--help")),
        Case("tradekit -h", (*launcher, "-h")),
        Case("tradekit --version", (*launcher, "--version")),
        Case("tradekit serve --help", (*launcher, "serve", "--help")),
        Case("tradekit templates list", (*launcher, "templates", "list")),
        Case("tradekit validate", (*launcher, "validate")),
        Case("tradekit backtest", (*launcher, "backtest", "--out", str(out_dir))),
    ]


@dataclass
class Timings:
    """The wall and CPU times of one case against one source tree, and the replays it
    reported."""

    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    replay_seconds: list[float] = field(default_factory=list)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(case: Case, source: Path, folder: Path, timings: Timings) -> None:
    environment = {**os.environ, "PYTHONPATH": str(source)}
    cpu_start = children_cpu_seconds()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *case.arguments],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    timings.seconds.append(time.perf_counter() - start)
    timings.cpu_seconds.append(children_cpu_seconds() - cpu_start)
    if done.returncode != 0:
        raise SystemExit(f"{case.label} failed against {source}:\n{done.stderr}")
    match = REPLAY_LINE.search(" ".join(done.stdout.split()))
    if match is not None:
        timings.replay_seconds.append(float(match["replay"]))


def milliseconds(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:11.0f} ms" if values else " " * 14


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", type=Path, help="another source tree to compare against")
    options = parser.parse_args()
    current = Path(__file__).resolve().parents[1] / "src"
    sources = {"now": current}
    if options.baseline is not None:
        sources = {"baseline": options.baseline.resolve(), **sources}
    with tempfile.TemporaryDirectory() as out_dir:
        table = {
            case: {name: Timings() for name in sources}
            for case in cases(Path(out_dir) / "backtest-out")
        }
        for _ in range(options.repeats):
            # Interleaved, so load from other work on the machine hits every column alike.
            for case, per_source in table.items():
                for name, source in sources.items():
                    run_once(case, source, options.folder, per_source[name])
    wall = "".join(f"{'wall ' + name:>14}" for name in sources)
    cpu = "".join(f"{'cpu ' + name:>14}" for name in sources)
    title = f"median of {options.repeats} fresh interpreters"
    print(f"{title:<42}{wall}{cpu}")
    for case, per_source in table.items():
        row = "".join(milliseconds(timings.seconds) for timings in per_source.values())
        row += "".join(milliseconds(timings.cpu_seconds) for timings in per_source.values())
        print(f"{case.label:<42}{row}")
        if any(timings.replay_seconds for timings in per_source.values()):
            replay = "".join(milliseconds(t.replay_seconds) for t in per_source.values())
            print(f"{'  of which the replay it reports':<42}{replay}")
    print(
        f"budgets: --help < {HELP_BUDGET_SECONDS} s, validate < {VALIDATE_BUDGET_SECONDS} s "
        "(tradekit issue 11)"
    )


if __name__ == "__main__":
    main()
