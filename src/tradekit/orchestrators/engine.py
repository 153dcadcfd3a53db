"""``Engine``: routes every closed candle to every active strategy on its symbol and timeframe.

Candles are processed in arrival order and strategies in load order on one
thread, so a run is repeatable. An exception inside one strategy is caught,
logged with its id, counted and published as ``StrategyFailed``; after
``engine.failures_before_quarantine`` consecutive failures the strategy is
quarantined (no new entries; its open positions keep being managed). The
others never notice.

Load, unload and reload may come from other threads. Each holds the lock of the
strategy it changes, and a candle runs through a strategy under that lock and
only if the strategy is still routed: one swapped out mid-candle is skipped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.containers.factory import Container, TradingOrchestratorFactory
from tradekit.domain import Candle
from tradekit.errors import StrategyError
from tradekit.events import StrategyFailed, StrategyLoaded, StrategyQuarantined
from tradekit.logs import log
from tradekit.orchestrators.journaling import EngineJournal
from tradekit.protocols import Journal

LAST_ERRORS_KEPT = 5


class StrategyState(StrEnum):
    """Where a strategy stands in the engine."""

    ACTIVE = "active"
    QUARANTINED = "quarantined"
    DISABLED = "disabled"


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
    orchestrator: Any
    lock: threading.RLock


class Engine:
    """Loads strategies through the factory and feeds them candles; one per process."""

    def __init__(self, factory: TradingOrchestratorFactory, journal: Journal | None = None) -> None:
        self.factory = factory
        self.entries_halted: str | None = None
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
        factory.on_routing_stop(self._forget)

    # -- loading ----------------------------------------------------------------------------

    def load(self, configs: Iterable[StrategyConfig]) -> list[str]:
        """Load strategies in order; disabled ones stay dormant. Returns the ids loaded.

        A strategy already running with the same config is left as it is (and not
        announced again); a different config for it is refused (use ``reload``).
        """
        configs = list(configs)
        active = sum(
            1 for config in configs if config.enabled and config.strategy_id not in self._routed
        )
        room = self._max_strategies - len(self.factory)
        if active > room:
            raise StrategyError(
                f"loading {active} enabled strategies would exceed "
                f"engine.max_concurrent_strategies = {self._max_strategies} "
                f"({len(self.factory)} already loaded); raise the limit or disable some"
            )
        loaded = []
        for config in configs:
            if not config.enabled:
                self._health[config.strategy_id] = StrategyHealth(
                    config.strategy_id, StrategyState.DISABLED
                )
                continue
            with self.factory.lock(config.strategy_id):
                container = self.factory.get_or_create(config)
                if config.strategy_id in self._routed:
                    continue
                self._start(container, config)
            loaded.append(config.strategy_id)
        return loaded

    def _start(self, container: Container, config: StrategyConfig) -> None:
        self._health[config.strategy_id] = StrategyHealth(config.strategy_id, StrategyState.ACTIVE)
        orchestrator = container.trading_orchestrator()
        self._route(config, orchestrator)
        if self.entries_halted is not None:
            orchestrator.entries_enabled = False
        if self._journal is not None:
            self._journal.register(config)
            if self._journal.resume(container):
                return  # a resumed strategy was loaded before: no second StrategyLoaded
        container.publisher().publish(
            StrategyLoaded(
                ts=self.factory.shared.clock().now(),
                name=config.name,
                symbols=config.symbols,
                timeframe=config.timeframe,
            )
        )

    def reload(self, config: StrategyConfig, reason: str = "") -> None:
        """Swap in a new config for a loaded strategy, keeping its positions and state."""
        # Held across the swap, so no candle reaches the old services once they are shut down.
        with self.factory.lock(config.strategy_id):
            container = self.factory.reload(config, reason)
            self._stop_routing(config.strategy_id)
            orchestrator = container.trading_orchestrator()
            health = self._health[config.strategy_id]
            orchestrator.entries_enabled = health.state is not StrategyState.QUARANTINED
            self._route(config, orchestrator)

    def unload(self, strategy_id: str, close_positions: bool = False) -> None:
        """Unload one strategy (the factory stops its routing and health tracking first)."""
        self.factory.unload(strategy_id, close_positions=close_positions)

    def _route(self, config: StrategyConfig, orchestrator: Any) -> None:
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

    def halt_entries(self, reason: str) -> None:
        """Stop new entries in every strategy (exits keep running), saying why."""
        if self.entries_halted is None:
            log.error("engine: new entries stopped: {}", reason)
        self.entries_halted = reason
        for entry in list(self._routed.values()):
            entry.orchestrator.entries_enabled = False

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
        a success clears the consecutive failures. True when it ran and did not fail.
        """
        strategy_id = entry.strategy_id
        with entry.lock:
            if self._routed.get(strategy_id) is not entry:
                return False  # unloaded or reloaded on another thread since the route was read
            try:
                entry.orchestrator.on_bar(candle, bar)
            except Exception as exc:  # one strategy's failure must not reach the others
                self._failed(strategy_id, candle, exc)
                return False
            health = self._health[strategy_id]
            if health.consecutive_failures:
                health.consecutive_failures = 0
        return True

    def _failed(self, strategy_id: str, candle: Candle, exc: Exception) -> None:
        health = self._health[strategy_id]
        health.errors += 1
        health.consecutive_failures += 1
        message = f"{type(exc).__name__}: {exc}"
        health.last_errors.append(message)
        log.bind(strategy_id=strategy_id).opt(exception=exc).error(
            "strategy failed on {} {} {}: {}", candle.symbol, candle.timeframe, candle.ts, message
        )
        container = self.factory.get(strategy_id)
        publisher = container.publisher()
        publisher.publish(
            StrategyFailed(
                ts=candle.close_ts,
                error_type=type(exc).__name__,
                error=str(exc),
                consecutive_failures=health.consecutive_failures,
            )
        )
        if (
            health.state is StrategyState.ACTIVE
            and health.consecutive_failures >= self._quarantine_after
        ):
            health.state = StrategyState.QUARANTINED
            container.trading_orchestrator().entries_enabled = False
            publisher.publish(
                StrategyQuarantined(
                    ts=candle.close_ts, failures=health.consecutive_failures, last_error=message
                )
            )
            log.bind(strategy_id=strategy_id).warning(
                "strategy quarantined after {} consecutive failures: no new entries, "
                "open positions still managed",
                health.consecutive_failures,
            )

    # -- reporting --------------------------------------------------------------------------

    def state(self, strategy_id: str) -> StrategyState:
        health = self._health.get(strategy_id)
        if health is None:
            self.factory.get(strategy_id)  # raises with a suggestion
            raise StrategyError(f"strategy '{strategy_id}' is not tracked by this engine")
        return health.state

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
            if strategy_id in self.factory:
                container = self.factory.get(strategy_id)
                positions = container.position_lifecycle()
                entry["candles_processed"] = container.trading_orchestrator().candles_processed
                entry["open_positions"] = positions.open_count()
                entry["realized_pnl"] = positions.realized_pnl
                entry["unrealized_pnl"] = positions.unrealized_pnl()
            report[strategy_id] = entry
        return report

    def report(self) -> dict[str, dict[str, Any]]:
        """``health()`` plus equity, fees and trade count per strategy."""
        report = self.health()
        for strategy_id, entry in report.items():
            if strategy_id in self.factory:
                positions = self.factory.get(strategy_id).position_lifecycle()
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
