"""The short import path of ``run_live``; the implementation lives in ``tradekit.runtime.live``."""

from tradekit.runtime.live import LiveRunSummary, replay_source, run_live

__all__ = ["LiveRunSummary", "replay_source", "run_live"]
