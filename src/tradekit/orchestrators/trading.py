"""``TradingOrchestrator``: one strategy's root service, running its pipeline on each candle.

The order is fixed: fill orders left pending from the previous candle, mark
positions, update the higher-timeframe gate and risk day, score the candle,
manage exits and carry out their actions, and only then consider entries, whose
actions run last.

What runs also depends on the strategy's state (``tradekit.strategy_state``), which
the engine passes in as ``Permissions``: without signals the analyzers are not
asked (so no signal exits), without entries nothing is opened or added; stops,
targets, trailing and time stops always run. A strategy without signals and
without anything open or pending processes nothing at all.

A backtest may pass over the candles on which a strategy can only do its
bookkeeping (``signal_masks``, ``needs_next_bar``, ``pass_quiet_bars``), and only
publish the signals of those on which they cannot act (``signals_may_act``,
``publish_signals``).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Candle, Order, Signal
from tradekit.errors import DataError, StrategyError
from tradekit.events import OrderCancelled, SignalGenerated
from tradekit.orchestrators.entry import EntryOrchestrator
from tradekit.orchestrators.exit import ExitOrchestrator
from tradekit.orchestrators.mtf_gate import MTFSnapshotGate
from tradekit.protocols import Exchange
from tradekit.services.bus import StrategyPublisher
from tradekit.services.execution.actions import ActionQueue, FailedAction
from tradekit.services.indicators.cache import IndicatorRegistry
from tradekit.services.positions.lifecycle import PositionLifecycleService
from tradekit.services.risk.limits import StrategyRiskManager
from tradekit.services.signals.analyzers import NO_SCORES, AnalyzerRegistry
from tradekit.services.signals.fire_masks import (
    CLOSES_LONG,
    CLOSES_SHORT,
    OPENS,
    RegistryColumns,
    SignalMasks,
)
from tradekit.strategy_state import Permissions

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradekit.services.signals.fire_masks import BoolArray

SNAPSHOT_VERSION = 1
NO_FAILURES: tuple[FailedAction, ...] = ()
# How much a score bound is widened before it is compared with a minimum score: a bar
# whose bound falls short by float rounding alone still counts as one that could act.
_SCORE_MARGIN = 1e-9


class _CandleStore(Protocol):
    def append(self, candle: Candle) -> int: ...


class CandleView:
    """The read-only view of one symbol's current candle that analyzers and filters get.

    One instance per symbol is reused from candle to candle, so building it costs
    nothing on the hot path.
    """

    __slots__ = ("_bar", "_candle", "_registry", "_symbol")

    def __init__(self, symbol: str, registry: IndicatorRegistry) -> None:
        self._symbol = symbol
        self._registry = registry
        self._bar = -1
        self._candle: Candle | None = None

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def bar(self) -> int:
        return self._bar

    @property
    def candle(self) -> Candle:
        assert self._candle is not None, "no candle seen yet"
        return self._candle

    def value(self, ref: str, back: int = 0) -> float | None:
        return self._registry.value(self._symbol, ref, self._bar, back)

    def _move_to(self, candle: Candle, bar: int) -> None:
        self._candle = candle
        self._bar = bar


class TradingOrchestrator:
    """The per-strategy root: routes each closed candle through the strategy's services.

    One per strategy, discarded on unload. ``signals_enabled`` and
    ``entries_enabled`` follow the strategy's state (see ``permit``): exits and
    stops keep being managed whatever they say.
    """

    def __init__(
        self,
        config: StrategyConfig,
        publisher: StrategyPublisher,
        candle_store: _CandleStore,
        indicator_registry: IndicatorRegistry,
        analyzer_registry: AnalyzerRegistry,
        mtf_gate: MTFSnapshotGate,
        position_lifecycle: PositionLifecycleService,
        risk: StrategyRiskManager,
        exchange: Exchange,
        action_queue: ActionQueue,
        entry_orchestrator: EntryOrchestrator,
        exit_orchestrator: ExitOrchestrator,
    ) -> None:
        self.config = config
        self.strategy_id = config.strategy_id
        self._publisher = publisher
        self._store = candle_store
        self._analyzers = analyzer_registry
        self._gate = mtf_gate
        self._positions = position_lifecycle
        self._risk = risk
        self._exchange = exchange
        self._queue = action_queue
        self._entry = entry_orchestrator
        self._exit = exit_orchestrator
        self._registry = indicator_registry
        self._views = {symbol: CandleView(symbol, indicator_registry) for symbol in config.symbols}
        self._last_ts: dict[str, datetime] = {}
        self._timeframe = config.timeframe
        self._gate_active = mtf_gate.needs_every_bar
        # After ``restore``: per symbol, the last candle processed before the snapshot.
        # Candles up to it are replayed only into the higher-timeframe gate.
        self._resume_ts: dict[str, datetime] = {}
        self.signals_enabled = True
        self.entries_enabled = True
        self.candles_processed = 0
        self.orders_handled = 0
        """Times pending orders were filled or queued actions run. A change means the candle
        after may have bookkeeping to settle (exposure, reservations): it is never passed over."""

    def permit(self, permissions: Permissions) -> None:
        """Apply what the strategy's state allows from the next candle on."""
        self.signals_enabled = permissions.signals
        self.entries_enabled = permissions.entries

    def cancel_pending_entries(self, ts: datetime, reason: str) -> list[Order]:
        """Cancel the entry orders (opens and adds) still pending at the exchange; returns them.

        For a strategy that may no longer open positions: each cancelled order's
        intent and exposure reservation are released and ``OrderCancelled`` says
        why. Pending closes are left to fill: they protect what is open.
        """
        positions = self._positions
        entries = positions.pending_entry_orders()
        if not entries:
            return []
        cancelled = self._exchange.cancel_orders(
            self.strategy_id, [order.order_id for order in entries]
        )
        for order in cancelled:
            positions.cancel_intent(order.order_id)
            self._risk.release_reservation(order.symbol)
            self._publisher.publish(
                OrderCancelled(
                    ts=ts,
                    order_id=order.order_id,
                    symbol=order.symbol,
                    side=order.side,
                    quantity=order.quantity,
                    reason=reason,
                )
            )
        return cancelled

    def idle(self) -> bool:
        """True when the strategy takes no signals and has nothing open, opening or queued."""
        return (
            not self.signals_enabled
            and not self._positions.open_or_opening_count()
            and not self._queue.pending()
        )

    def on_candle(self, candle: Candle) -> tuple[FailedAction, ...]:
        """Process one closed candle: append it to the shared history, then run the pipeline."""
        self._check(candle)
        return self.on_bar(candle, self._store.append(candle))

    def warm_up(self, candle: Candle) -> None:
        """Take one candle of history from before the run (already in the shared history):
        only the higher-timeframe gate learns from it; nothing is traded or counted."""
        if (
            self._gate_active
            and candle.symbol in self._views
            and candle.timeframe == self._timeframe
        ):
            self._gate.update(candle)

    def on_bar(self, candle: Candle, bar: int) -> tuple[FailedAction, ...]:
        """Run the pipeline for ``candle``, already at index ``bar`` of its shared series.

        Returns the actions that failed on it (an order the exchange rejected, ...):
        a rejected protective close is sent again on the next candle.
        """
        symbol = candle.symbol
        view = self._views.get(symbol)
        if view is None or candle.timeframe != self._timeframe:
            self._check(candle)
            return NO_FAILURES
        if not self.signals_enabled and self.idle():
            return NO_FAILURES
        stamp = candle.ts
        if self._resume_ts and self._catching_up(candle, bar):
            return NO_FAILURES
        last = self._last_ts.get(symbol)
        if last is not None and stamp <= last:
            if stamp == last:
                return NO_FAILURES  # the same candle delivered twice: already processed
            raise DataError(
                f"strategy '{self.strategy_id}': candle {candle.symbol} {candle.ts.isoformat()} "
                "is older than the last one processed; candles must arrive in time order"
            )
        self._last_ts[symbol] = stamp
        positions = self._positions
        pending = positions.has_pending(symbol)
        if pending:
            self.orders_handled += 1
            positions.apply_fills(self._exchange.fill_pending(self.strategy_id, candle))
            pending = positions.has_pending(symbol)
        positions.mark(candle)
        self._risk.on_candle(candle)
        if self._gate_active:
            self._gate.update(candle)
        view._candle = candle  # (``_move_to``, without a call per strategy and candle)
        view._bar = bar
        queue = self._queue
        ran = False
        try:
            scores = self._analyzers.evaluate(view) if self.signals_enabled else NO_SCORES
        except Exception:
            # A failing analyzer must not leave positions unprotected: stops, targets and
            # time stops still run on this candle before the failure is reported.
            self._exit.evaluate(view, NO_SCORES)
            if queue.pending():
                self.orders_handled += 1
                queue.run(candle)
                self._settle_failures()
            raise
        if scores.signals:
            self._publish_signals(candle, scores.signals)
        elif not (pending or queue.pending() or self._follows_position(symbol)):
            # No signal and no rule that follows the position: neither side has anything to
            # decide (an entry needs a score above 0, a signal exit a signal).
            self.candles_processed += 1
            return NO_FAILURES
        self._exit.evaluate(view, scores)
        # Entries must see what the exits did: an add decided next to an exit still in the
        # queue would follow it into a closed position, or leave an orphan pending add.
        if queue.pending():
            self.orders_handled += 1
            queue.run(candle)
            ran = True
        if self.entries_enabled:
            self._entry.evaluate(view, scores)
            if queue.pending():
                self.orders_handled += 1
                queue.run(candle)
                ran = True
        self.candles_processed += 1
        return self._settle_failures() if ran else NO_FAILURES

    def _follows_position(self, symbol: str) -> bool:
        """``needs_next_bar`` of the exit and entry sides for ``symbol``; flat, only a rejected
        close waiting to be sent again counts (no rule of either side follows a flat symbol)."""
        if self._positions.position(symbol) is None:
            return self._exit.has_retries()
        return self._exit.needs_next_bar(symbol) or self._entry.needs_next_bar(symbol)

    def _settle_failures(self) -> tuple[FailedAction, ...]:
        """The actions that failed on this candle; the exit side retries its own."""
        failures = self._queue.take_failures()
        for failure in failures:
            self._exit.failed(failure.action)
        return failures

    # -- passing over quiet candles (backtests) ----------------------------------------------

    def signal_bars(self, first: int, stop: int) -> BoolArray | None:
        """Of bars ``first`` up to ``stop`` of this strategy's symbol, those an analyzer could
        fire on; ``None`` when this strategy must see every candle.

        On any other bar the candle is quiet (``pass_quiet_bars`` can stand in for
        it) unless ``needs_next_bar`` says otherwise. Every candle is needed with
        several symbols (the equity curve interleaves them), while resuming from a
        snapshot, when an analyzer cannot say where it fires, and when a service
        that follows every candle says so (the higher-timeframe gate, the risk
        manager's daily loss limit). (An entry score is always above 0, so no entry
        can happen without a signal.)
        """
        if not self._may_pass_over_candles():
            return None
        columns = RegistryColumns(self._registry, self.config.symbols[0], first, stop)
        return self._analyzers.could_fire(columns)

    def signal_masks(self, first: int, stop: int) -> SignalMasks | None:
        """``signal_bars`` as ``SignalMasks``: each bar an analyzer could fire on, and whether
        its signals could open a position (when flat, entries allowed) or close a long or a
        short one (signal exits); ``None`` when this strategy must see every candle.

        A candle on which they can do neither only publishes them (``publish_signals``).
        """
        if not self._may_pass_over_candles():
            return None
        columns = RegistryColumns(self._registry, self.config.symbols[0], first, stop)
        bounds = self._analyzers.score_bounds(columns)
        if bounds is None:
            return None
        entry, exit_rules = self.config.entry, self.config.exit
        opening = entry.min_score * (1 - _SCORE_MARGIN)
        flags = np.zeros(len(bounds.bars), dtype=np.uint8)
        if entry.side in ("long", "both"):
            flags[bounds.long >= opening] |= OPENS
        if entry.side in ("short", "both"):
            flags[bounds.short >= opening] |= OPENS
        if exit_rules.exit_on_opposite_signal:
            closing = exit_rules.opposite_signal_min_score * (1 - _SCORE_MARGIN)
            flags[bounds.exit + bounds.short >= closing] |= CLOSES_LONG
            flags[bounds.exit + bounds.long >= closing] |= CLOSES_SHORT
        return SignalMasks(array("q", bounds.bars.astype(np.int64).tobytes()), flags.tobytes())

    def signals_may_act(self, masks: SignalMasks, index: int) -> bool:
        """Whether the signals of ``masks.bars[index]`` could open or close a position now.

        Asked only when nothing is pending and no rule needs the candle (``needs_next_bar``
        is False), so the position and permissions stand as they will on that candle.
        """
        position = self._positions.position(self.config.symbols[0])
        side = None if position is None else position.side
        return masks.may_act(index, side, self.entries_enabled)

    def publish_signals(self, candle: Candle, bar: int, catch_up: Callable[[], None]) -> None:
        """Ask the analyzers about ``candle`` (at ``bar``) and publish their signals, and only
        that: for a candle whose signals cannot act (``signals_may_act`` is False).

        Its bookkeeping is left to ``pass_quiet_bars`` with the quiet candles around
        it. Should an analyzer raise, ``catch_up`` (which passes over the candles
        before this one) is called and this candle is marked before the error goes
        on, as ``on_bar`` marks a candle before asking the analyzers.
        """
        if not self.signals_enabled:
            return
        view = self._views[candle.symbol]
        view._move_to(candle, bar)
        try:
            scores = self._analyzers.evaluate(view)
        except Exception:
            catch_up()
            self._last_ts[candle.symbol] = candle.ts
            self._positions.mark(candle)
            self._risk.on_candle(candle)
            raise
        if scores.signals:
            self._publish_signals(candle, scores.signals)

    def _may_pass_over_candles(self) -> bool:
        return (
            len(self.config.symbols) == 1
            and not self._resume_ts
            and not self._gate.needs_every_bar
            and not self._risk.needs_every_bar
        )

    def needs_next_bar(self) -> bool:
        """True when the next candle needs the pipeline even if no analyzer fires on it.

        So while an order or action is pending, and whenever the exit side (stops,
        targets, trailing, time stops, partial take profits, retried closes) or
        the entry side (DCA adds) says a rule of theirs follows the next candle.
        """
        symbol = self.config.symbols[0]
        return bool(
            self._queue.pending()
            or self._positions.has_pending(symbol)
            or self._exit.needs_next_bar(symbol)
            or self._entry.needs_next_bar(symbol)
        )

    def pass_quiet_bars(
        self,
        times: npt.NDArray[np.int64],
        closes: Sequence[float],
        highs: Sequence[float],
        lows: Sequence[float],
    ) -> None:
        """Do for consecutive candles of this strategy's one symbol what ``on_bar`` does on a
        candle where no analyzer fires, nothing is pending and no position rule applies.

        ``times`` are the candles' open times in epoch seconds (equity points are
        kept as numbers, so the candles' datetimes are not needed).

        That is: mark the position (last price, bars held, best price) and add one
        equity point per candle, remember the last candle, count the candles. The
        risk manager's trading day is not rolled: only the daily loss limit reads
        it, and a strategy with one never passes over a candle (``signal_bars``).
        Refused for a strategy that needs the next candle (``needs_next_bar``).
        """
        if not len(times) or self.idle():
            return  # (an idle strategy processes nothing, see ``on_bar``)
        symbol = self.config.symbols[0]
        last = self._last_ts.get(symbol)
        if not self._may_pass_over_candles() or self.needs_next_bar():
            raise StrategyError(
                f"strategy '{self.strategy_id}' cannot pass over candles now: it needs every "
                "candle (see signal_bars), or an order, action or position rule needs the next"
            )
        first = datetime.fromtimestamp(int(times[0]), UTC)
        if last is not None and first <= last:
            raise DataError(
                f"strategy '{self.strategy_id}': candle {symbol} {first.isoformat()} is not "
                "newer than the last one processed; candles must arrive in time order"
            )
        self._positions.mark_quiet(symbol, times, closes, highs, lows)
        self._last_ts[symbol] = datetime.fromtimestamp(int(times[-1]), UTC)
        self.candles_processed += len(times)

    def _catching_up(self, candle: Candle, bar: int) -> bool:
        until = self._resume_ts.get(candle.symbol)
        if until is None:
            return False
        if candle.ts > until:
            del self._resume_ts[candle.symbol]
            return False
        if self._gate_active:
            self._gate.update(candle)
        # Live indicators are computed per candle from bounded windows; replaying them the
        # same way keeps every later value identical to an uninterrupted run.
        self._registry.compute_through(candle.symbol, bar)
        self._last_ts[candle.symbol] = candle.ts
        return True

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to resume this strategy exactly where it stands (JSON-ready)."""
        return {
            "version": SNAPSHOT_VERSION,
            "strategy_id": self.strategy_id,
            # While catching up, the point to resume from is still the restored one.
            "last_ts": {
                symbol: ts.isoformat()
                for symbol, ts in {**self._last_ts, **self._resume_ts}.items()
            },
            "candles_processed": self.candles_processed,
            "positions": self._positions.snapshot(),
            "risk": self._risk.snapshot(),
            "entry": self._entry.snapshot(),
            "exit": self._exit.snapshot(),
            "exchange_pending": self._exchange.export_pending(self.strategy_id),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from ``snapshot()``: candles up to the snapshot are then only replayed
        into the higher-timeframe gate, and trading picks up with the next one.
        """
        if state.get("version") != SNAPSHOT_VERSION or state.get("strategy_id") != self.strategy_id:
            raise StrategyError(
                f"strategy '{self.strategy_id}': cannot restore a snapshot of version "
                f"{state.get('version')!r} for {state.get('strategy_id')!r}"
            )
        self._positions.restore(state["positions"])
        self._risk.restore(state["risk"])
        self._entry.restore(state["entry"])
        self._exit.restore(state.get("exit", {}))
        pending = state.get("exchange_pending") or []
        if pending:
            self._exchange.import_pending(self.strategy_id, pending)
        for position in self._positions.open_positions():
            self._risk.set_exposure(position.symbol, position.quantity * position.avg_entry_price)
        self.candles_processed = int(state["candles_processed"])
        self._resume_ts = {
            symbol: datetime.fromisoformat(text) for symbol, text in state["last_ts"].items()
        }
        self._last_ts = {}

    def _check(self, candle: Candle) -> None:
        if candle.symbol not in self._views:
            raise DataError(
                f"strategy '{self.strategy_id}' does not trade {candle.symbol}; "
                f"it trades {', '.join(self.config.symbols)}"
            )
        if candle.timeframe != self.config.timeframe:
            raise DataError(
                f"strategy '{self.strategy_id}' runs on {self.config.timeframe} candles, "
                f"got a {candle.timeframe} candle for {candle.symbol}"
            )

    def _publish_signals(self, candle: Candle, signals: tuple[Signal, ...]) -> None:
        for signal in signals:
            self._publisher.publish(
                SignalGenerated(
                    ts=candle.close_ts,
                    symbol=candle.symbol,
                    direction=signal.direction,
                    strength=signal.strength,
                    reason=signal.reason,
                    source=signal.source,
                )
            )

    def flush(self, candle: Candle | None = None) -> None:
        """Drain the action queue (on shutdown)."""
        self._queue.flush(candle)
