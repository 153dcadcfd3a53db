"""``python -m tradekit`` that pauses once a given number of candles has been processed.

Usage: ``python paused_run.py COUNT ARGUMENT...`` runs ``tradekit ARGUMENT...``.
When the replay is asked for candle COUNT + 1, the first COUNT candles have
been run through the engine and journaled (each candle is committed before the
next is read): it prints ``paused after COUNT candles`` and waits until its
stdin is closed. A test reads that line, then kills or signals the process at
exactly that point instead of guessing with a clock.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterator

from tradekit.data.sources import FrameSource
from tradekit.domain import Candle

PAUSED = "paused after {} candles"


def pausing_after(count: int) -> None:
    """Make every frame replay pause before yielding candle ``count + 1``."""
    stream = FrameSource.stream

    def paused_stream(self: FrameSource) -> Iterator[Candle]:
        for number, candle in enumerate(stream(self)):
            if number == count:
                print(PAUSED.format(count), flush=True)
                sys.stdin.read()
            yield candle

    FrameSource.stream = paused_stream  # type: ignore[method-assign]


if __name__ == "__main__":
    pausing_after(int(sys.argv[1]))
    sys.argv = ["tradekit", *sys.argv[2:]]
    runpy.run_module("tradekit", run_name="__main__", alter_sys=True)
