"""``Engine``: routes every closed candle to every strategy on its symbol and timeframe.

Candles are processed in arrival order and strategies in load order on one
thread, so a run is repeatable. An exception inside one strategy, or an action
of it that fails (an order the exchange rejects), is logged with its id,
counted and published as ``StrategyFailed``; after
``engine.failures_before_quarantine`` consecutive failures the strategy is
quarantined. The others never notice.

Each strategy's state (``tradekit.strategy_state``) is kept here, and every
change of it (load, reload, ``disable``, ``enable``, ``resume``, quarantine,
``halt_entries``) goes through ``_apply``, which hands the strategy what the one
rule allows. A disabled or quarantined strategy keeps its protective exits and
processes nothing once flat. A strategy that may no longer open positions has
its entry orders still pending at the exchange cancelled at once (published as
``OrderCancelled``, with why), so none fills on the next candle; its pending
closes still fill.

A strategy loaded disabled is built only when the journal holds a snapshot of
it (it may hold positions, whose stops must keep being managed); otherwise it
stays dormant, tracked but not built, until ``enable`` or an enabled load.

Load, unload and reload may come from other threads. Each holds the lock of the
strategy it changes, and a candle runs through a strategy under that lock and
only if the strategy is still routed: one swapped out mid-candle is skipped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.handle import StrategyHandle
from tradekit.domain import Candle
from tradekit.errors import StrategyConflictError, StrategyError
from tradekit.events import StrategyFailed, StrategyLoaded, StrategyQuarantined, StrategyResumed
from tradekit.logs import log
from tradekit.orchestrators.trading import TradingOrchestrator
from tradekit.protocols import Journal
from tradekit.runtime.journaling import EngineJournal
from tradekit.strategy_state import (
    StrategyState,
    permissions,
    state_after_enable,
    state_after_resume,
    state_for_config,
)

LAST_ERRORS_KEPT = 5


@dataclass
class StrategyHealth:
    """What the engine tracks about one strategy; one per loaded strategy."""

    strategy_id: str
    state: StrategyState
    errors: int = 0
    consecutive_failures: int = 0
    last_errors: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_ERRORS_KEPT))


RouteKey = tuple[str, str]


class RouteEntry(NamedTuple):
    """One strategy on a route: its id, its trading orchestrator and its lock.

    The lock is the factory's lock of that strategy (one per id for the life of
    the factory), looked up once when the strategy is routed, not per candle.
    """

    strategy_id: str
    orchestrator: TradingOrchestrator
    lock: threading.RLock


class Engine:
    """Loads strategies through the factory and feeds them candles; one per process."""

    def __init__(self, factory: TradingOrchestratorFactory, journal: Journal | None = None) -> None:
        self.factory = factory
        self.entries_halted: str | None = None
        self.strategy_entries_halted: dict[str, str] = {}
        """Strategies whose entries are off, each with why (a reconciliation mismatch)."""
        self._journal: EngineJournal | None = None
        if journal is not None:
            self._journal = EngineJournal(journal, self.halt_entries)
            factory.shared.event_bus().subscribe(self._journal.record)
            factory.on_unloaded(self._journal.after_unload)
        settings: TradekitSettings = factory.shared.settings()
        self._max_strategies = settings.engine.max_concurrent_strategies
        self._quarantine_after = settings.engine.failures_before_quarantine
        self._store = factory.shared.candle_provider()
        # Route lists are replaced, never changed in place, so a reader's copy stays whole.
        self._routes: dict[RouteKey, list[RouteEntry]] = {}
        self._routed: dict[str, RouteEntry] = {}  # strategy id -> its entry in the routes
        self._routing_lock = threading.Lock()
        self._health: dict[str, StrategyHealth] = {}
        # Ids whose health counts consecutive failures: a success clears them, and the
        # common case (none) costs no health lookup per strategy and candle.
        self._failing: set[str] = set()
        self._dormant: dict[str, StrategyConfig] = {}  # disabled and not built: id -> config
        factory.on_routing_stop(self._forget)

    # -- loading ----------------------------------------------------------------------------

    def load(
        self,
        configs: Iterable[StrategyConfig],
        quarantined: Collection[str] = (),
    ) -> list[str]:
        """Load strategies in order; returns the ids built and started.

        A strategy already running with the same config is left as it is (and not
        announced again); one whose config differs only in ``enabled`` is reloaded
        with it (disabled, or active again unless quarantined); any other config
        for it is refused (use ``reload``). A disabled strategy is built only when
        the journal holds state of it; otherwise it stays dormant. The enabled
        strategies named in ``quarantined`` start quarantined (a quarantine the
        registry kept across a restart).
        """
        configs = list(configs)
        building = sum(1 for config in configs if self._builds(config))
        room = self._max_strategies - len(self.factory)
        if building > room:
            raise StrategyError(
                f"loading {building} strategies would exceed "
                f"engine.max_concurrent_strategies = {self._max_strategies} "
                f"({len(self.factory)} already loaded); raise the limit or disable some"
            )
        loaded = []
        for config in configs:
            strategy_id = config.strategy_id
            with self.factory.lock(strategy_id):
                if strategy_id in self._routed:
                    self._load_running(config)
                    continue
                if not self._builds(config):
                    self._dormant[strategy_id] = config
                    self._health[strategy_id] = StrategyHealth(strategy_id, StrategyState.DISABLED)
                    continue
                self.factory.get_or_create(config)
                self._dormant.pop(strategy_id, None)
                state = state_for_config(
                    StrategyState.QUARANTINED if strategy_id in quarantined else None,
                    config.enabled,
                )
                self._start(self.factory.handle(strategy_id), state)
            loaded.append(strategy_id)
        return loaded

    def _builds(self, config: StrategyConfig) -> bool:
        """True when loading ``config`` builds a strategy not running yet."""
        strategy_id = config.strategy_id
        if strategy_id in self._routed:
            return False
        if config.enabled or strategy_id in self.factory:
            return True
        # It may hold positions from an earlier run, whose stops must keep being managed.
        journal = self._journal
        return journal is not None and journal.journal.latest_snapshot(strategy_id) is not None

    def _load_running(self, config: StrategyConfig) -> None:
        running = self.factory.handle(config.strategy_id).config
        if running == config:
            return
        if running.model_copy(update={"enabled": config.enabled}) != config:
            raise StrategyConflictError(
                f"strategy '{config.strategy_id}' is loaded with a different config; "
                "use reload(config) to replace it"
            )
        self.reload(config, "enabled" if config.enabled else "disabled")

    def _start(self, handle: StrategyHandle, state: StrategyState) -> None:
        config = handle.config
        self._health[config.strategy_id] = StrategyHealth(config.strategy_id, state)
        orchestrator = handle.trading_orchestrator
        self._permit(config.strategy_id, orchestrator, state)
        self._route(config, orchestrator)
        if self._journal is not None:
            self._journal.register(config)
            if self._journal.resume(handle):
                # Its snapshot may bring back entry orders it may no longer send.
                self._permit(config.strategy_id, orchestrator, state)
                return  # a resumed strategy was loaded before: no second StrategyLoaded
        handle.publisher.publish(
            StrategyLoaded(
                ts=self.factory.shared.clock().now(),
                name=config.name,
                symbols=config.symbols,
                timeframe=config.timeframe,
            )
        )

    def reload(self, config: StrategyConfig, reason: str = "") -> None:
        """Swap in a new config for a loaded strategy, keeping its positions and state.

        ``enabled = false`` disables it; ``true`` makes it active unless it is
        quarantined (``resume`` lifts that). Halted entries stay halted. A dormant
        strategy is loaded with the new config instead.
        """
        strategy_id = config.strategy_id
        # Held across the swap, so no candle reaches the old services once they are shut down.
        with self.factory.lock(strategy_id):
            if strategy_id in self._dormant and strategy_id not in self.factory:
                self.load([config])
                return
            self.factory.reload(config, reason)
            self._stop_routing(strategy_id)
            orchestrator = self.factory.handle(strategy_id).trading_orchestrator
            health = self._health[strategy_id]
            health.state = state_for_config(health.state, config.enabled)
            self._permit(strategy_id, orchestrator, health.state, reason)
            self._route(config, orchestrator)

    # -- states -----------------------------------------------------------------------------

    def disable(self, strategy_id: str, reason: str = "") -> None:
        """No more signals or entries; its protective exits keep managing what it holds."""
        with self.factory.lock(strategy_id):
            self._tracked(strategy_id)
            self._apply(strategy_id, StrategyState.DISABLED, reason)
        log.bind(strategy_id=strategy_id).info("strategy disabled: {}", reason or "no reason given")

    def enable(self, strategy_id: str, reason: str = "") -> None:
        """Make a disabled strategy active again (a dormant one is built); see ``resume``."""
        with self.factory.lock(strategy_id):
            state = state_after_enable(strategy_id, self._tracked(strategy_id).state)
            dormant = self._dormant.get(strategy_id)
            if dormant is not None:
                self.load([dormant.model_copy(update={"enabled": True})])
            else:
                self._apply(strategy_id, state)
        log.bind(strategy_id=strategy_id).info("strategy enabled: {}", reason or "no reason given")

    def resume(self, strategy_id: str, *, by: str, reason: str) -> None:
        """Lift a quarantine: the strategy is active again with its failure streak cleared.

        ``by`` (who) and ``reason`` (why) are published as ``StrategyResumed``.
        """
        with self.factory.lock(strategy_id):
            health = self._tracked(strategy_id)
            state = state_after_resume(strategy_id, health.state)
            health.consecutive_failures = 0
            self._failing.discard(strategy_id)
            self._apply(strategy_id, state)
            self.factory.handle(strategy_id).publisher.publish(
                StrategyResumed(ts=self.factory.shared.clock().now(), by=by, reason=reason)
            )
        log.bind(strategy_id=strategy_id).warning("quarantine lifted by {}: {}", by, reason)

    def _tracked(self, strategy_id: str) -> StrategyHealth:
        health = self._health.get(strategy_id)
        if health is None:
            self.factory.handle(strategy_id)  # raises with a suggestion
            raise StrategyError(f"strategy '{strategy_id}' is not tracked by this engine")
        return health

    def _apply(self, strategy_id: str, state: StrategyState, why: str = "") -> None:
        """Put the strategy in ``state`` and hand it what that state allows."""
        self._health[strategy_id].state = state
        entry = self._routed.get(strategy_id)
        if entry is not None:
            self._permit(strategy_id, entry.orchestrator, state, why)

    def _permit(
        self,
        strategy_id: str,
        orchestrator: TradingOrchestrator,
        state: StrategyState,
        why: str = "",
    ) -> None:
        """Hand the strategy what ``state`` allows; without entries, cancel its pending ones.

        An entry order sent before the change would otherwise fill at the next
        open and open a position the strategy may no longer open. Call under the
        strategy's lock.
        """
        allowed = permissions(state, self._entries_off(strategy_id))
        orchestrator.permit(allowed)
        if allowed.entries:
            return
        if state is not StrategyState.ACTIVE:
            reason = f"strategy {state.value}" + (f": {why}" if why else "")
        else:
            halted = self.entries_halted or self.strategy_entries_halted.get(strategy_id, "")
            reason = f"new entries stopped: {halted}"
        cancelled = orchestrator.cancel_pending_entries(self.factory.shared.clock().now(), reason)
        if cancelled:
            log.bind(strategy_id=strategy_id).warning(
                "cancelled pending entry order(s) {} ({}); pending closes still fill",
                ", ".join(order.order_id for order in cancelled),
                reason,
            )

    def unload(self, strategy_id: str, close_positions: bool = False, reason: str = "") -> None:
        """Unload one strategy (the factory stops its routing and health tracking first)."""
        with self.factory.lock(strategy_id):
            if self._dormant.pop(strategy_id, None) is not None:
                del self._health[strategy_id]
                return
        self.factory.unload(strategy_id, close_positions=close_positions, reason=reason)

    def close_positions(self, strategy_id: str) -> int:
        """Close the strategy's open positions at market (its symbols' last close).

        A position whose close is already under way is left to it. Returns how many
        positions have no close under way: a symbol with no candle yet has no price.
        """
        with self.factory.lock(strategy_id):
            return self.factory.close_positions(strategy_id)

    def open_positions(self, strategy_id: str) -> int:
        """How many positions a loaded strategy holds; 0 for a dormant one."""
        handle = self.factory.find_handle(strategy_id)
        return 0 if handle is None else handle.position_lifecycle.open_count()

    @property
    def running(self) -> int:
        """How many strategies are built and tracked: what ``max_concurrent_strategies`` counts."""
        return len(self.factory)

    def flush_journal(self) -> None:
        """Snapshot the strategies that changed and commit, between candles (a control change)."""
        if self._journal is not None:
            self._journal.flush(self.factory.shared.clock().now(), self.factory)

    def _route(self, config: StrategyConfig, orchestrator: TradingOrchestrator) -> None:
        entry = RouteEntry(config.strategy_id, orchestrator, self.factory.lock(config.strategy_id))
        with self._routing_lock:
            self._routed[config.strategy_id] = entry
            for symbol in config.symbols:
                key = (symbol, config.timeframe)
                self._routes[key] = [*self._routes.get(key, ()), entry]

    def _stop_routing(self, strategy_id: str) -> None:
        with self._routing_lock:
            self._routed.pop(strategy_id, None)
            for key, route in list(self._routes.items()):
                kept = [entry for entry in route if entry.strategy_id != strategy_id]
                if kept:
                    self._routes[key] = kept
                else:
                    del self._routes[key]

    def _forget(self, strategy_id: str) -> None:
        """Called by the factory on unload, under the strategy's lock."""
        self._stop_routing(strategy_id)
        self._health.pop(strategy_id, None)
        self._failing.discard(strategy_id)

    # -- running ----------------------------------------------------------------------------

    def on_candle(self, candle: Candle) -> int:
        """Append ``candle`` to the shared history and run it through every strategy on it.

        Returns how many strategies processed it without failing.
        """
        route = self._routes.get((candle.symbol, candle.timeframe))
        bar = self._store.append(candle)
        if route is None:
            return 0
        processed = self.on_bar(candle, bar, route)
        if self._journal is not None:
            self._journal.after_candle(candle, self.factory)
        return processed

    def warm_up(self, candles: Iterable[Candle]) -> int:
        """Load history from before the run: each candle (in time order) joins the shared
        history, so indicators are ready at the first live candle, and the strategies'
        higher-timeframe gates see it; no strategy trades on it and nothing is journaled.
        Returns how many candles were taken."""
        taken = 0
        for candle in candles:
            self._store.append(candle)
            for entry in tuple(self._routes.get((candle.symbol, candle.timeframe), ())):
                with entry.lock:
                    entry.orchestrator.warm_up(candle)
            taken += 1
        return taken

    def halt_entries(self, reason: str) -> None:
        """Stop new entries in every strategy (exits keep running), saying why."""
        if self.entries_halted is None:
            log.error("engine: new entries stopped: {}", reason)
        self.entries_halted = reason
        for entry in list(self._routed.values()):
            with entry.lock:
                health = self._health.get(entry.strategy_id)
                if health is not None:
                    self._permit(entry.strategy_id, entry.orchestrator, health.state)

    def halt_strategy_entries(self, strategy_ids: Iterable[str], reason: str) -> None:
        """Stop new entries in these strategies only (exits keep running), saying why."""
        for strategy_id in strategy_ids:
            with self.factory.lock(strategy_id):
                self.strategy_entries_halted.setdefault(strategy_id, reason)
                health = self._health.get(strategy_id)
                if health is not None:
                    self._apply(strategy_id, health.state)
            log.bind(strategy_id=strategy_id).error("new entries stopped: {}", reason)

    def _entries_off(self, strategy_id: str) -> bool:
        return self.entries_halted is not None or strategy_id in self.strategy_entries_halted

    def route(self, symbol: str, timeframe: str) -> tuple[RouteEntry, ...]:
        """The strategies ``symbol``'s ``timeframe`` candles go to, in load order (a copy)."""
        return tuple(self._routes.get((symbol, timeframe), ()))

    def on_bar(self, candle: Candle, bar: int, route: list[RouteEntry] | None = None) -> int:
        """Run ``candle`` (already at ``bar`` of its shared series) through its strategies."""
        if route is None:
            route = self._routes.get((candle.symbol, candle.timeframe), [])
        step = self.step
        ok = 0
        for entry in tuple(route):
            if step(entry, candle, bar):
                ok += 1
        return ok

    def step(self, entry: RouteEntry, candle: Candle, bar: int) -> bool:
        """Run ``candle`` through the one strategy of ``entry``, isolating its failure.

        Under the strategy's lock, and only while ``entry`` is still how it is
        routed. A failure is counted, published and may quarantine the strategy;
        a success clears the consecutive failures. True when it ran and did not fail (a
        disabled or quarantined strategy with nothing open does not run).
        """
        strategy_id, orchestrator, lock = entry
        with lock:
            if self._routed.get(strategy_id) is not entry:
                return False  # unloaded or reloaded on another thread since the route was read
            if not orchestrator.signals_enabled and orchestrator.idle():
                return False  # disabled or quarantined, and flat: nothing to process
            try:
                failed_actions = orchestrator.on_bar(candle, bar)
            except Exception as exc:  # one strategy's failure must not reach the others
                self._raised(strategy_id, candle, exc)
                return False
            if failed_actions:
                error = "; ".join(failure.describe() for failure in failed_actions)
                log.bind(strategy_id=strategy_id).error(
                    "actions failed on {} {} {}: {}",
                    candle.symbol,
                    candle.timeframe,
                    candle.ts,
                    error,
                )
                self._failed(strategy_id, candle, "ActionFailed", error)
                return False
            if self._failing and strategy_id in self._failing:
                self._failing.discard(strategy_id)
                health = self._health.get(strategy_id)
                if health is not None:
                    health.consecutive_failures = 0
        return True

    def step_signals(
        self, entry: RouteEntry, candle: Candle, bar: int, catch_up: Callable[[], None]
    ) -> bool:
        """``step`` for a candle of a backtest on which the strategy's signals cannot act:
        its analyzers are asked and their signals published, nothing more (see
        ``TradingOrchestrator.publish_signals``); a failure is handled as ``step`` does.

        True when it did not fail. The bookkeeping of the candle is left to the caller,
        which passes over it later; ``catch_up`` does it for the candles before this one
        should an analyzer raise.
        """
        strategy_id = entry.strategy_id
        with entry.lock:
            if self._routed.get(strategy_id) is not entry:
                return False
            try:
                entry.orchestrator.publish_signals(candle, bar, catch_up)
            except Exception as exc:
                self._raised(strategy_id, candle, exc)
                return False
        return True

    def _raised(self, strategy_id: str, candle: Candle, exc: Exception) -> None:
        log.bind(strategy_id=strategy_id).opt(exception=exc).error(
            "strategy failed on {} {} {}: {}: {}",
            candle.symbol,
            candle.timeframe,
            candle.ts,
            type(exc).__name__,
            exc,
        )
        self._failed(strategy_id, candle, type(exc).__name__, str(exc))

    def _failed(self, strategy_id: str, candle: Candle, error_type: str, error: str) -> None:
        health = self._health[strategy_id]
        health.errors += 1
        health.consecutive_failures += 1
        self._failing.add(strategy_id)
        message = f"{error_type}: {error}"
        health.last_errors.append(message)
        publisher = self.factory.handle(strategy_id).publisher
        publisher.publish(
            StrategyFailed(
                ts=candle.close_ts,
                error_type=error_type,
                error=error,
                consecutive_failures=health.consecutive_failures,
            )
        )
        if (
            health.state is StrategyState.ACTIVE
            and health.consecutive_failures >= self._quarantine_after
        ):
            self._apply(strategy_id, StrategyState.QUARANTINED, message)
            publisher.publish(
                StrategyQuarantined(
                    ts=candle.close_ts, failures=health.consecutive_failures, last_error=message
                )
            )
            log.bind(strategy_id=strategy_id).warning(
                "strategy quarantined after {} consecutive failures: no signals, no new "
                "entries, open positions still managed",
                health.consecutive_failures,
            )

    # -- reporting --------------------------------------------------------------------------

    def tracks(self, strategy_id: str) -> bool:
        """True for a strategy loaded here, running or dormant."""
        return strategy_id in self._health

    def state(self, strategy_id: str) -> StrategyState:
        """The state of a loaded or dormant strategy."""
        return self._tracked(strategy_id).state

    def errors(self, strategy_id: str) -> int:
        """How many times a loaded or dormant strategy has failed since it was loaded."""
        return self._tracked(strategy_id).errors

    def tracked_config(self, strategy_id: str) -> StrategyConfig | None:
        """The config a loaded or dormant strategy runs with; ``None`` when not tracked."""
        handle = self.factory.find_handle(strategy_id)
        return handle.config if handle is not None else self._dormant.get(strategy_id)

    def health(self) -> dict[str, dict[str, Any]]:
        """Per strategy: state, error counts and last errors, candles processed, positions, P&L."""
        report: dict[str, dict[str, Any]] = {}
        for strategy_id, health in list(self._health.items()):
            entry: dict[str, Any] = {
                "state": health.state.value,
                "errors": health.errors,
                "consecutive_failures": health.consecutive_failures,
                "last_errors": list(health.last_errors),
                "candles_processed": 0,
                "open_positions": 0,
                "realized_pnl": 0.0,
                "unrealized_pnl": 0.0,
            }
            handle = self.factory.find_handle(strategy_id)
            if handle is not None:
                positions = handle.position_lifecycle
                entry["candles_processed"] = handle.trading_orchestrator.candles_processed
                entry["open_positions"] = positions.open_count()
                entry["realized_pnl"] = positions.realized_pnl
                entry["unrealized_pnl"] = positions.unrealized_pnl()
            report[strategy_id] = entry
        return report

    def report(self) -> dict[str, dict[str, Any]]:
        """``health()`` plus equity, fees and trade count per strategy."""
        report = self.health()
        for strategy_id, entry in report.items():
            handle = self.factory.find_handle(strategy_id)
            if handle is not None:
                positions = handle.position_lifecycle
                entry["equity"] = positions.equity()
                entry["fees_paid"] = positions.fees_paid
                entry["trades"] = positions.trade_count
        return report

    def shutdown(self) -> None:
        """Flush and unload every strategy, most recently loaded first."""
        if self._journal is None:
            self.factory.shutdown()
        else:
            with self._journal.one_commit():
                self.factory.shutdown()
        with self._routing_lock:
            self._routes.clear()
            self._routed.clear()
        self._health.clear()
        self._failing.clear()
        self._dormant.clear()
