"""Replay pacing: ``--speed N`` delivers N candles per second, processing time included.

A fake monotonic clock stands in for time: "processing" a candle advances it, and
the fake sleep records what was asked and advances it by that much.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradekit.config.settings import TradekitSettings
from tradekit.data.synthetic import synthetic_candles
from tradekit.domain import Candle
from tradekit.runtime.live import run_live
from tradekit.runtime.pacing import CandlePacer


class FakeTime:
    """A monotonic clock that only moves when the test or a sleep moves it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.releases: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class TestCandlePacer:
    def test_work_time_is_part_of_the_interval(self) -> None:
        """At 50 per second with 12 ms of work per candle, each wait is the remaining 8 ms."""
        fake = FakeTime()
        pacer = CandlePacer(50, monotonic=fake.monotonic, sleep=fake.sleep)
        for _ in range(5):
            pacer.wait()
            fake.releases.append(fake.now)
            fake.now += 0.012
        assert fake.sleeps == pytest.approx([0.008] * 4)
        assert fake.releases == pytest.approx([100.0 + k * 0.02 for k in range(5)])

    def test_a_late_candle_shortens_the_next_wait_without_shifting_the_schedule(self) -> None:
        fake = FakeTime()
        pacer = CandlePacer(10, monotonic=fake.monotonic, sleep=fake.sleep)
        for work in (0.05, 0.25, 0.0, 0.0, 0.0):
            pacer.wait()
            fake.releases.append(fake.now)
            fake.now += work
        # Candles 2 and 3 (due at 0.2 and 0.3 s) go at once, as candle 1 ended at 0.35 s;
        # candle 4 is due at 0.4 s as if nothing had been late.
        assert fake.sleeps == pytest.approx([0.05, 0.05])
        assert fake.releases == pytest.approx([100.0, 100.1, 100.35, 100.35, 100.4])

    @pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
    def test_a_rate_that_is_not_positive_and_finite_is_refused(self, rate: float) -> None:
        with pytest.raises(ValueError, match="per_second must be a finite number > 0"):
            CandlePacer(rate)


def test_run_live_releases_candles_on_the_pacers_schedule() -> None:
    """The loop waits before each candle, so 20 candles at 50/s span 19 intervals of 20 ms."""
    fake = FakeTime()

    def working(candles: list[Candle]) -> Iterator[Candle]:
        for candle in candles:
            fake.releases.append(fake.now)
            yield candle
            fake.now += 0.015  # the engine's work on this candle

    source = working(synthetic_candles("BTC/USDT", "1h", 20, seed=1))
    pacer = CandlePacer(50, monotonic=fake.monotonic, sleep=fake.sleep)
    summary = run_live(TradekitSettings(_env_file=None), [], source, pacer=pacer)
    assert summary.candles == 20
    assert fake.sleeps == pytest.approx([0.005] * 19)
    assert fake.now - 100.0 == pytest.approx(19 * 0.02 + 0.015)
