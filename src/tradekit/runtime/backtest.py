"""``backtest``: run strategies over whole series; per-strategy and portfolio results.

Series are bulk-loaded into the shared candle history before any strategy is
built, so every indicator is computed once per series in one vectorized call;
candles are then replayed in close-time order through the same engine and
services a live run uses. The same inputs always give the same event log,
exposed as a hash.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.data.sources import series_sort_key
from tradekit.errors import DataError
from tradekit.events import Event
from tradekit.runtime.bootstrap import RunMode, bootstrap
from tradekit.runtime.candle_replay import SeriesReplay
from tradekit.runtime.replay import replay_every_bar, replay_skipping_quiet_bars
from tradekit.services.market.candles import CandleSeries
from tradekit.services.market.clock import ManualClock
from tradekit.services.positions.equity_curve import EquityCurve
from tradekit.services.positions.state import Trade
from tradekit.stats import PerformanceStats, max_drawdown_pct, performance

SeriesKey = tuple[str, str]


class FrameProvider(Protocol):
    """Anything that hands over whole candle series: ``{(symbol, timeframe): DataFrame}``."""

    def frames(self) -> Mapping[SeriesKey, pd.DataFrame]: ...


@dataclass
class StrategyResult:
    """One strategy's outcome: its trades, equity curve and statistics."""

    strategy_id: str
    timeframe: str
    capital: float
    trades: list[Trade]
    equity: EquityCurve
    """The equity point of every candle: read it through its numpy arrays (``values``,
    ``times_micros``); one Python object per point would cost ~12 MB per 100k candles."""
    stats: PerformanceStats
    open_positions: int

    @property
    def equity_curve(self) -> list[tuple[datetime, float]]:
        """``(candle open time, equity)`` of every candle, as a new list on each call.

        Costly (three objects per point: about 12 MB per 100k candles); ``equity``
        holds the same points as arrays.
        """
        return self.equity.points()


@dataclass
class BacktestResult:
    """Per-strategy results, the portfolio across them, and the run's event log."""

    strategies: dict[str, StrategyResult]
    portfolio_equity: pd.Series
    portfolio_stats: dict[str, float]
    events: list[Event] = field(repr=False)
    candles_processed: int = 0

    @property
    def event_log_hash(self) -> str:
        """SHA-256 of the event log as JSON lines: equal hashes mean identical runs."""
        digest = hashlib.sha256()
        for event in self.events:
            digest.update(json.dumps(event.to_dict(), sort_keys=True).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def trades_frame(self) -> pd.DataFrame:
        """Every trade of every strategy, one row each."""
        rows = [
            {"strategy_id": strategy_id, **dataclasses.asdict(trade)}
            for strategy_id, result in self.strategies.items()
            for trade in result.trades
        ]
        return pd.DataFrame(rows)


def _frames(source: FrameProvider | Mapping[SeriesKey, pd.DataFrame]) -> Mapping[SeriesKey, Any]:
    frames = source if isinstance(source, Mapping) else source.frames()
    if not frames:
        raise DataError("the backtest source holds no candle series")
    return frames


def needed_series(configs: Iterable[StrategyConfig]) -> dict[SeriesKey, list[str]]:
    """Each (symbol, timeframe) the enabled strategies trade, with the ids of those trading it.

    A disabled strategy is not built by a backtest (nothing to manage), so it needs nothing.
    """
    needed: dict[SeriesKey, list[str]] = {}
    for config in configs:
        if config.enabled:
            for symbol in config.symbols:
                needed.setdefault((symbol, config.timeframe), []).append(config.strategy_id)
    return {key: needed[key] for key in sorted(needed, key=series_sort_key)}


def series_span(frame: pd.DataFrame) -> str:
    """How many candles a frame holds and from when to when."""
    if frame.empty:
        return "no candles"
    return f"{len(frame)} candles, {frame.index[0].isoformat()} to {frame.index[-1].isoformat()}"


def check_series(
    configs: Iterable[StrategyConfig],
    frames: Mapping[SeriesKey, pd.DataFrame],
    *,
    held: Mapping[SeriesKey, pd.DataFrame] | None = None,
    why: str = "the data has none",
    advice: str = "add the candles, or leave the strategy out",
) -> None:
    """``DataError`` naming each enabled strategy and every series it trades that ``frames``
    lack; without the check such a strategy would sit idle and drag the portfolio down.

    The message lists what the data holds (``held``, by default ``frames``) and
    ``advice``; ``why`` says why a series is missing (``{symbol}`` is its symbol).
    """
    missing = [
        f"strategy '{strategy_id}' needs {symbol} {timeframe} candles; " + why.format(symbol=symbol)
        for (symbol, timeframe), strategy_ids in needed_series(configs).items()
        if (symbol, timeframe) not in frames
        for strategy_id in strategy_ids
    ]
    if missing:
        shown = frames if held is None else held
        holds = "; ".join(
            f"{name} {tf} ({series_span(frame)})" for (name, tf), frame in shown.items()
        )
        raise DataError("\n".join(missing) + f"\nthe data holds: {holds}\n{advice}")


def backtest(
    settings: TradekitSettings,
    configs: Sequence[StrategyConfig],
    source: FrameProvider | Mapping[SeriesKey, pd.DataFrame],
    progress: Callable[[int, int], None] | None = None,
    *,
    skip_quiet_bars: bool = True,
) -> BacktestResult:
    """Run ``configs`` over every series of ``source``; deterministic for the same inputs.

    ``progress``, when given, is called with (candles replayed, candles in all) about
    100 times during the replay, the last time when it is complete.

    Every series an enabled strategy trades must be in ``source`` (else ``DataError``,
    naming each strategy and the series it lacks; see ``check_series``).

    ``skip_quiet_bars`` (the default) runs a candle through a strategy only when
    something could happen on it and does the bookkeeping of the others in bulk;
    ``False`` runs every candle through every strategy. Both give the same event
    log, trades, equity curves and statistics (see ``tradekit.runtime.replay``).
    """
    frames = _frames(source)
    check_series(configs, frames)
    loaded = [
        CandleSeries.from_frame(symbol, timeframe, frame, capacity=None)
        for (symbol, timeframe), frame in sorted(frames.items())
    ]
    # Replay time, not wall time, stamps lifecycle events: the same run, the same log.
    clock = ManualClock(min(series.candle_at(series.first_kept_bar).ts for series in loaded))
    runtime = bootstrap(settings, mode=RunMode.BACKTEST, clock=clock)
    shared, factory, engine = runtime.shared, runtime.factory, runtime.engine
    store = shared.candle_provider()
    for series in loaded:
        store.add(series)
    events: list[Event] = []
    shared.event_bus().subscribe(events.append)
    engine.load(configs)
    shared.indicator_cache().precompute()
    replays = [SeriesReplay(series) for series in loaded]
    replay = replay_skipping_quiet_bars if skip_quiet_bars else replay_every_bar
    with _cyclic_gc_paused():
        processed = replay(engine, clock, replays, progress)
        strategy_ids = factory.strategy_ids()
        summing = _PortfolioSum(
            [
                factory.handle(strategy_id).position_lifecycle.equity_curve
                for strategy_id in strategy_ids
            ]
        )
        results = {
            strategy_id: _strategy_result(factory, strategy_id, summing)
            for strategy_id in strategy_ids
        }
        engine.shutdown()
        portfolio = summing.series()
    capital = sum(result.capital for result in results.values())
    final_equity = float(portfolio.iloc[-1]) if len(portfolio) else capital
    portfolio_stats = {
        "capital": capital,
        "final_equity": final_equity,
        "total_return_pct": (final_equity / capital - 1) * 100 if capital else 0.0,
        "max_drawdown_pct": max_drawdown_pct([capital, *portfolio.tolist()]),
        "trade_count": sum(result.stats.trade_count for result in results.values()),
    }
    return BacktestResult(results, portfolio, portfolio_stats, events, processed)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector off for the block, then put it back as it was.

    A replay allocates millions of small objects that live until the results are
    built and beyond (events, equity points, orders, trades) and makes almost no
    reference cycles, so every automatic collection would only walk an ever
    larger heap again (measured: about a tenth of a 10-strategy run). Reference
    counting frees objects as usual meanwhile. On the way out the survivors are
    moved to the oldest generation at once (``freeze`` then ``unfreeze`` splice
    lists and walk nothing), so the next young collections do not walk them
    either; any cycle among them is still found by the next full collection.
    That step is left out when the caller froze objects of their own, which
    ``unfreeze`` would release.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()


def _strategy_result(
    factory: TradingOrchestratorFactory, strategy_id: str, portfolio: _PortfolioSum
) -> StrategyResult:
    """One strategy's result; its equity is added to ``portfolio`` meanwhile: a curve's
    values are computed once (formula stretches) and not kept (8 bytes a candle)."""
    handle = factory.handle(strategy_id)
    config = handle.config
    positions = handle.position_lifecycle
    open_bars = sum(position.bars_held for position in positions.open_positions())
    values = positions.equity_curve.values()
    portfolio.add(positions.equity_curve, values, config.capital)
    return StrategyResult(
        strategy_id=strategy_id,
        timeframe=config.timeframe,
        capital=config.capital,
        trades=list(positions.trades),
        equity=positions.equity_curve,
        stats=performance(
            values,
            positions.trades,
            config.capital,
            config.timeframe,
            positions.fees_paid,
            open_bars,
        ),
        open_positions=positions.open_count(),
    )


def _portfolio_equity(results: Mapping[str, StrategyResult]) -> pd.Series:
    """Sum of the strategies' equity, each carried forward between its own candles
    (see ``_PortfolioSum``)."""
    summing = _PortfolioSum([result.equity for result in results.values()])
    for result in results.values():
        summing.add(result.equity, result.equity.values(), result.capital)
    return summing.series()


class _PortfolioSum:
    """Sum of the strategies' equity, each carried forward between its own candles, built
    one strategy at a time (a curve's values need not all be held at once).

    At each time any strategy has a point, the strategies are added in their order,
    each with its last value at or before that time (its capital before its first,
    the last of several points at one time): the figures a frame of every curve,
    forward-filled and summed across, gives, without holding that frame (8 bytes
    per candle per strategy).
    """

    def __init__(self, curves: Sequence[EquityCurve]) -> None:
        # Strategies on the same candles have equal times: each distinct time line is read once.
        lines: dict[bytes, npt.NDArray[np.int64]] = {}
        for curve in curves:
            if curve:
                key = curve.times_key()
                if key not in lines:
                    lines[key] = curve.times_micros()
        self._union = (
            np.unique(np.concatenate(list(lines.values())))
            if lines
            else np.empty(0, dtype=np.int64)
        )
        # Per time line: the order that sorts it stably, and where each union time finds
        # the last point at or before it (-1: before its first point).
        self._alignments = {key: _alignment(times, self._union) for key, times in lines.items()}
        self._total = np.zeros(self._union.size, dtype=np.float64)

    def add(self, curve: EquityCurve, values: npt.NDArray[np.float64], capital: float) -> None:
        """Add a curve given at construction, with its ``values``; in the strategies' order."""
        if not curve:
            return
        order, picks = self._alignments[curve.times_key()]
        if order is not None:
            values = values[order]
        if picks is None:
            self._total += values
        else:
            self._total += np.where(picks >= 0, values[picks], capital)

    def series(self) -> pd.Series:
        if not self._union.size:
            return pd.Series(dtype="float64")
        index = pd.DatetimeIndex(pd.to_datetime(self._union, unit="us", utc=True))
        return pd.Series(self._total, index=index)


def _alignment(
    times: npt.NDArray[np.int64], union: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.intp] | None, npt.NDArray[np.intp] | None]:
    """How a curve on ``times`` reaches the ``union`` times: the stable order that sorts its
    points (``None`` when sorted), and for each union time the sorted point carried to it
    (``None`` when every union time is one of its own, each once)."""
    order = None
    if times.size > 1 and bool(np.any(times[1:] < times[:-1])):
        order = np.argsort(times, kind="stable")
        times = times[order]
    if times.size == union.size and bool(np.all(times == union)):
        return order, None
    return order, np.searchsorted(times, union, side="right") - 1
