"""``DrainedProcess`` reads a child's output while it runs, so a chatty child never blocks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from drained_process import DrainedProcess

DEADLINE_SECONDS = 30.0

# Writes four times what a Linux pipe holds to stderr, then says so on stdout: it can
# only say so if someone reads its stderr meanwhile.
CHATTY_CHILD = """
import sys
for _ in range(4 * 1024):
    sys.stderr.write("x" * 63 + "\\n")
sys.stderr.flush()
print("written", flush=True)
"""


class TestDrainedProcess:
    def test_a_child_writing_more_than_a_pipe_holds_goes_on_while_it_runs(
        self, tmp_path: Path
    ) -> None:
        child = DrainedProcess(
            [sys.executable, "-c", CHATTY_CHILD], cwd=tmp_path, env=dict(os.environ)
        )
        said = child.wait_for_stdout_line(lambda line: line == "written\n", DEADLINE_SECONDS)
        stdout, stderr = child.finish(DEADLINE_SECONDS)
        assert said == "written\n"
        assert stdout == "written\n"
        assert stderr == ("x" * 63 + "\n") * 4 * 1024
        assert child.process.returncode == 0

    def test_waiting_for_a_line_the_child_never_writes_ends_when_it_closes_stdout(
        self, tmp_path: Path
    ) -> None:
        child = DrainedProcess(
            [sys.executable, "-c", "print('something else')"], cwd=tmp_path, env=dict(os.environ)
        )
        said = child.wait_for_stdout_line(lambda line: line == "written\n", DEADLINE_SECONDS)
        stdout, _ = child.finish(DEADLINE_SECONDS)
        assert said is None
        assert stdout == "something else\n"
        assert child.process.returncode == 0
