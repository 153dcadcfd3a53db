"""Run a call in a forked child with a deadline, so a call that hangs fails its test instead
of hanging the suite (the child is killed; a thread could not be)."""

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
    """Call ``function(*args)`` in a forked child; fail the test if it has not ended in time."""
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_child, args=(sender, function, args), daemon=True
    )
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
