"""The short import path of the replays; the implementation lives in ``tradekit.runtime.replay``."""

from tradekit.runtime.replay import replay_every_bar, replay_skipping_quiet_bars

__all__ = ["replay_every_bar", "replay_skipping_quiet_bars"]
