"""A subprocess whose stdout and stderr are read while it runs, for tests that drive
``tradekit run`` or ``tradekit serve`` and look at their output at the end.

A child writing to a pipe nobody reads blocks once the pipe's buffer (64 KiB on Linux)
is full: a run logging each fill stalls after a few seconds, silently, and a test
waiting for it times out.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO


class DrainedProcess:
    """One child process and the lines it has written so far; one per started process.

    Two threads read its stdout and stderr as they come, until the child closes them.
    """

    def __init__(self, arguments: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            list(arguments),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._changed = threading.Condition()
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._stdout_closed = False
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._drain, args=(self.process.stdout, self._stdout)),
            threading.Thread(target=self._drain, args=(self.process.stderr, self._stderr)),
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: IO[str], lines: list[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            if lines is self._stdout:
                self._stdout_closed = True
            self._changed.notify_all()

    def wait_for_stdout_line(self, wanted: Callable[[str], bool], timeout: float) -> str | None:
        """The first stdout line ``wanted`` accepts, once written; ``None`` if the child
        closes its stdout or ``timeout`` seconds pass first."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self._stdout if wanted(line)][:1]
            return bool(found) or self._stdout_closed

        with self._changed:
            self._changed.wait_for(seen, timeout)
        return found[0] if found else None

    @property
    def stdout(self) -> str:
        """Everything the child wrote to stdout so far."""
        with self._changed:
            return "".join(self._stdout)

    @property
    def stderr(self) -> str:
        """Everything the child wrote to stderr so far."""
        with self._changed:
            return "".join(self._stderr)

    def finish(self, timeout: float) -> tuple[str, str]:
        """Wait for the child to end, killing it if it outlives ``timeout``; its whole
        stdout and stderr."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for reader in self._readers:
            reader.join(timeout)
        return self.stdout, self.stderr
