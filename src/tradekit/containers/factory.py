"""``TradingOrchestratorFactory``: builds, caches, unloads and reloads strategy containers.

Each strategy gets its own ``StrategyContainer`` over the one shared container,
built eagerly under a lock and cached by strategy id. Lifecycle calls may come
from other threads; each takes only the lock of the strategy it touches, so
swapping one strategy never blocks another. A strategy loaded again after an
unload continues its event numbering: ``seq`` is never reused within a process.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from dependency_injector import containers, providers

from tradekit.config.strategy import StrategyConfig
from tradekit.containers.handle import StrategyHandle
from tradekit.containers.shared import SharedContainer
from tradekit.containers.strategy import StrategyContainer, StrategyResource
from tradekit.domain import ClosePercent
from tradekit.errors import StrategyConflictError, StrategyNotFoundError
from tradekit.events import OrderCancelled, StrategyReloaded, StrategyUnloaded
from tradekit.exit_reasons import ExitReason
from tradekit.logs import log

Container = containers.DynamicContainer
"""Container instances are ``DynamicContainer``s, whatever class declared them."""

SHARED_PROVIDERS = (
    "settings",
    "logger",
    "clock",
    "event_bus",
    "candle_provider",
    "indicator_cache",
    "exchange",
    "exposure_guard",
)


UnloadListener = Callable[[StrategyHandle, StrategyUnloaded], None]
"""Called with a discarded strategy's handle and its last event once an unload is complete."""


class TradingOrchestratorFactory:
    """Owns every strategy container of the process; one per shared container.

    ``max_equity_points`` and ``max_trades_kept`` bound the history each strategy
    keeps in memory (a long-running live process); ``None`` keeps all of it, as a
    backtest's statistics need.
    """

    def __init__(
        self,
        shared: SharedContainer | Container,
        *,
        max_equity_points: int | None = None,
        max_trades_kept: int | None = None,
    ) -> None:
        self.shared = shared
        self._max_equity_points = max_equity_points
        self._max_trades_kept = max_trades_kept
        # Resolve the shared singletons now, on one thread, before any strategy is built.
        for name in SHARED_PROVIDERS:
            getattr(shared, name)()
        self._containers: dict[str, Container] = {}
        self._handles: dict[str, StrategyHandle] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._registry_lock = threading.Lock()
        self._routing_listeners: list[Callable[[str], None]] = []
        self._unload_listeners: list[UnloadListener] = []
        # The seq an unloaded strategy's next event gets, should it be loaded again.
        self._next_seqs: dict[str, int] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}

    # -- building -------------------------------------------------------------------------

    def _build(
        self, config: StrategyConfig, overrides: dict[str, object] | None = None
    ) -> tuple[Container, StrategyHandle]:
        # Declarative containers build DynamicContainer instances at run time.
        container = cast(
            Container, StrategyContainer(shared=self.shared, config=providers.Object(config))
        )
        for name, value in (overrides or {}).items():
            _provider(container, name).override(value)
        container.check_dependencies()
        try:
            # Resolving the root builds the whole graph, strategy resources included.
            container.trading_orchestrator()
        except BaseException:
            container.shutdown_resources(StrategyResource)
            raise
        handle = StrategyHandle.of(container)
        if self._max_equity_points is not None or self._max_trades_kept is not None:
            handle.position_lifecycle.bound_history(self._max_equity_points, self._max_trades_kept)
        return container, handle

    def _add(self, strategy_id: str, container: Container, handle: StrategyHandle) -> None:
        """Cache a newly built container; it continues the seq of an earlier unloaded one."""
        next_seq = self._next_seqs.pop(strategy_id, None)
        if next_seq is not None:
            handle.publisher.resume_from(next_seq)
        self._containers[strategy_id] = container
        self._handles[strategy_id] = handle

    def lock(self, strategy_id: str) -> threading.RLock:
        """The lock that guards one strategy's container (created on first use)."""
        with self._registry_lock:
            lock = self._locks.get(strategy_id)
            if lock is None:
                lock = self._locks[strategy_id] = threading.RLock()
            return lock

    def create(self, config: StrategyConfig) -> Container:
        """Build and cache a container for a strategy id not loaded yet."""
        with self.lock(config.strategy_id):
            if config.strategy_id in self._containers:
                raise StrategyConflictError(
                    f"strategy '{config.strategy_id}' is already loaded; use reload() to change it"
                )
            container, handle = self._build(config)
            self._add(config.strategy_id, container, handle)
            return container

    def get_or_create(self, config: StrategyConfig) -> Container:
        """The cached container for ``config.strategy_id``, built on first call.

        A different config for an id already loaded is refused: use ``reload``.
        """
        with self.lock(config.strategy_id):
            container = self._containers.get(config.strategy_id)
            if container is None:
                return self.create(config)
            if self._handles[config.strategy_id].config != config:
                raise StrategyConflictError(
                    f"strategy '{config.strategy_id}' is loaded with a different config; "
                    "use reload(config) to replace it"
                )
            return container

    def get(self, strategy_id: str) -> Container:
        """The container of a loaded strategy; ``StrategyNotFoundError`` with a suggestion.

        For wiring (tests that override providers); the runtime works with ``handle``.
        """
        container = self._containers.get(strategy_id)
        if container is None:
            raise StrategyNotFoundError(self._not_found(strategy_id))
        return container

    def handle(self, strategy_id: str) -> StrategyHandle:
        """The typed handle of a loaded strategy; ``StrategyNotFoundError`` with a suggestion."""
        handle = self._handles.get(strategy_id)
        if handle is None:
            raise StrategyNotFoundError(self._not_found(strategy_id))
        return handle

    def find_handle(self, strategy_id: str) -> StrategyHandle | None:
        """The typed handle of a loaded strategy, or ``None``."""
        return self._handles.get(strategy_id)

    def _not_found(self, strategy_id: str) -> str:
        known = sorted(self._containers)
        close = difflib.get_close_matches(strategy_id, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"no strategy '{strategy_id}' is loaded{hint} (loaded: {', '.join(known) or 'none'})"

    def strategy_ids(self) -> list[str]:
        """Loaded strategy ids, in load order."""
        return list(self._containers)

    def __contains__(self, strategy_id: object) -> bool:
        return strategy_id in self._containers

    def __len__(self) -> int:
        return len(self._containers)

    def on_routing_stop(self, listener: Callable[[str], None]) -> None:
        """Register ``listener(strategy_id)``, called first when a strategy is unloaded."""
        self._routing_listeners.append(listener)

    def on_unloaded(self, listener: UnloadListener) -> None:
        """Register ``listener(handle, unloaded)``, called last when a strategy is unloaded.

        It sees the final state: pending orders cancelled, positions closed if asked,
        ``StrategyUnloaded`` published (a journal snapshots and commits it then).
        """
        self._unload_listeners.append(listener)

    # -- unload and reload ------------------------------------------------------------------

    def unload(self, strategy_id: str, close_positions: bool = False, reason: str = "") -> None:
        """Stop and discard a strategy; the shared providers and other strategies are untouched.

        In order: stop routing candles to it, snapshot its state, cancel its
        pending orders, optionally close its positions, flush its action queue,
        drop its indicator claims (entries another strategy uses stay), unsubscribe
        its listeners, forget the container, emit ``StrategyUnloaded``, remember
        its next seq, call the ``on_unloaded`` listeners.
        """
        with self.lock(strategy_id):
            container = self.get(strategy_id)
            handle = self._handles[strategy_id]
            for listener in self._routing_listeners:
                listener(strategy_id)
            positions = handle.position_lifecycle
            self.snapshots[strategy_id] = positions.snapshot()
            # The strategy's own exchange: an override may have replaced the shared one.
            _provider(container, "shared_exchange")().cancel_pending(strategy_id)
            # Before closing: a pending close order would otherwise claim what is to close.
            positions.cancel_intents()
            if close_positions:
                self._close_all(container, handle)
            container.shutdown_resources(StrategyResource)
            self.shared.event_bus().unsubscribe_strategy(strategy_id)
            del self._containers[strategy_id]
            del self._handles[strategy_id]
            publisher = handle.publisher
            unloaded = publisher.publish(
                StrategyUnloaded(ts=self.shared.clock().now(), reason=reason or "unloaded")
            )
            self._next_seqs[strategy_id] = publisher.next_seq
            for after_unload in self._unload_listeners:
                after_unload(handle, unloaded)
            log.bind(strategy_id=strategy_id).debug("strategy unloaded")

    def close_positions(self, strategy_id: str, reason: str = ExitReason.OPERATOR) -> int:
        """Close a loaded strategy's open positions at market now, at their symbol's last close.

        A close order the exchange still holds (the paper exchange fills market
        orders at the next candle's open) is cancelled and replaced, so the close
        happens now instead of up to a bar later; the price is the last closed
        candle's, not a venue ticker's, so a replay making the same close at the
        same candle journals the same trade. A venue holds no pending orders (its
        market orders fill when sent): there is nothing to replace and a close under
        way is left to fill.

        Returns how many positions have no close under way afterwards: their symbol
        has no candle yet to price the close.
        """
        with self.lock(strategy_id):
            container = self.get(strategy_id)
            handle = self._handles[strategy_id]
            positions = handle.position_lifecycle
            self._cancel_pending_closes(container, handle, reason)
            self._close_all(container, handle, reason)
            return sum(
                1
                for position in positions.open_positions()
                if positions.closable_quantity(position.symbol) > 0
            )

    def _cancel_pending_closes(
        self, container: Container, handle: StrategyHandle, reason: str
    ) -> None:
        """Cancel the close orders pending at the exchange of every position with a price now."""
        store = _provider(container, "shared_candle_provider")()
        exchange = _provider(container, "shared_exchange")()
        positions = handle.position_lifecycle
        for position in positions.open_positions():
            series = store.get(position.symbol, handle.config.timeframe)
            pending = positions.pending_close_orders(position.symbol)
            if series is None or len(series) == 0 or not pending:
                continue  # without a price, the pending close is still the quickest one
            # Stamped with the candle the replacing close is priced on, as its fill is.
            ts = series.candle_at(series.last_bar).close_ts
            cancelled = exchange.cancel_orders(
                handle.strategy_id, [order.order_id for order in pending]
            )
            for order in cancelled:
                positions.cancel_intent(order.order_id)
                handle.publisher.publish(
                    OrderCancelled(
                        ts=ts,
                        order_id=order.order_id,
                        symbol=order.symbol,
                        side=order.side,
                        quantity=order.quantity,
                        reason=f"replaced by a close at market ({reason})",
                    )
                )

    def _close_all(
        self, container: Container, handle: StrategyHandle, reason: str = ExitReason.UNLOAD
    ) -> None:
        """Close every open position at its symbol's last close, through the strategy's queue."""
        # The strategy's own candle provider: an override may have replaced the shared one.
        store = _provider(container, "shared_candle_provider")()
        queue = handle.action_queue
        positions = handle.position_lifecycle
        for position in positions.open_positions():
            if positions.closable_quantity(position.symbol) <= 0:
                continue  # a close is already under way
            series = store.get(position.symbol, handle.config.timeframe)
            if series is None or len(series) == 0:
                continue
            candle = series.candle_at(series.last_bar)
            queue.enqueue(ClosePercent(position.symbol, 100.0, reason, candle.close))
            queue.run(candle)

    def reload(self, config: StrategyConfig, reason: str = "") -> Container:
        """Replace a loaded strategy's container, carrying over its positions, state and seq.

        The new container is fully built before anything changes, so a bad new
        config leaves the running strategy as it was.
        """
        strategy_id = config.strategy_id
        with self.lock(strategy_id):
            old = self.get(strategy_id)
            old_handle = self._handles[strategy_id]
            new, handle = self._build(config)
            try:
                handle.position_lifecycle.restore(old_handle.position_lifecycle.snapshot())
            except BaseException:
                new.shutdown_resources(StrategyResource)
                raise
            # Shut the old one down first: flushing its queue may still publish events.
            old.shutdown_resources(StrategyResource)
            handle.publisher.resume_from(old_handle.publisher.next_seq)
            # The old risk manager gave back the strategy's exposure; the positions remain.
            risk = handle.risk_manager
            for position in handle.position_lifecycle.open_positions():
                risk.set_exposure(position.symbol, position.quantity * position.avg_entry_price)
            self._containers[strategy_id] = new
            self._handles[strategy_id] = handle
            handle.publisher.publish(
                StrategyReloaded(ts=self.shared.clock().now(), reason=reason or "reloaded")
            )
            return new

    def shutdown(self) -> None:
        """Unload every strategy, most recently loaded first."""
        for strategy_id in reversed(self.strategy_ids()):
            self.unload(strategy_id, reason="shutdown")

    @contextmanager
    def overriding(self, config: StrategyConfig, **overrides: object) -> Iterator[Container]:
        """Load a strategy with some providers swapped, for the length of a ``with`` block.

        Overrides apply before anything is resolved, so every service of the
        strategy sees them; they reach only this strategy's container. Name a
        shared provider ``shared_<name>`` (``shared_exchange=FakeExchange()``), a
        strategy provider by its name. The strategy is unloaded on exit.
        """
        with self.lock(config.strategy_id):
            if config.strategy_id in self._containers:
                raise StrategyConflictError(
                    f"strategy '{config.strategy_id}' is already loaded; unload it first"
                )
            container, handle = self._build(config, dict(overrides))
            self._add(config.strategy_id, container, handle)
        try:
            yield container
        finally:
            if config.strategy_id in self._containers:
                self.unload(config.strategy_id, reason="override ended")
            for name in overrides:
                _provider(container, name).reset_last_overriding()


def _provider(container: Container, name: str) -> providers.Provider[Any]:
    """A strategy provider by name, or a shared one as ``shared_<name>``."""
    if name.startswith("shared_"):
        provider = getattr(container.shared, name.removeprefix("shared_"), None)
    else:
        provider = container.providers.get(name)
    if not isinstance(provider, providers.Provider):
        shared = ", ".join(f"shared_{name}" for name in SHARED_PROVIDERS)
        raise StrategyConflictError(
            f"no provider named '{name}' to override; strategy providers: "
            f"{', '.join(sorted(container.providers))}; shared: {shared}"
        )
    return provider
