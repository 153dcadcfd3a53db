"""Run a call in a child process with a deadline, so a call that hangs fails its test instead
of hanging the suite (the child is killed; a thread could not be).

The child is spawned, not forked: forking a process that runs threads may deadlock the
child. A spawned child sees the test's environment variables and working folder; the
function and its arguments must be picklable (module-level functions). Spawning costs
about a second, so the tests that use this carry the ``slow`` marker.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

DEADLINE_SECONDS = 20.0


@dataclass(frozen=True)
class Outcome:
    """What the call did: returned (``error_type`` is ``None``) or raised ``error_type``."""

    error_type: str | None
    message: str


def _child(connection: Connection, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        function(*args)
    except BaseException as exc:  # the parent reports whatever escaped, tracebacks included
        connection.send(Outcome(type(exc).__name__, str(exc)))
    else:
        connection.send(Outcome(None, ""))
    connection.close()


def call_with_deadline(
    function: Callable[..., Any], *args: Any, seconds: float = DEADLINE_SECONDS
) -> Outcome:
    """Call ``function(*args)`` in a child process; fail the test if it has not ended in time."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, function, args), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise AssertionError(f"{function.__name__} did not finish within {seconds} s")
        outcome: Outcome = receiver.recv()
        return outcome
    finally:
        child.kill()
        child.join()
        receiver.close()
