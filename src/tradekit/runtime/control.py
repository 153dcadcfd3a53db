"""Control: the registry in the journal database says which strategies run, and in which state.

On a new database a run seeds the registry from its strategy files; afterwards
the registry wins: the files are not read again, removed strategies stay
removed, and the runner loads exactly what the registry holds, in its state.

``tradekit strategies add|update|enable|disable|remove|resume`` (another
process) write the registry row and append a ``registry_changes`` row saying
who asked for what. ``RegistryControl`` runs on the engine's thread: between
candles (at most every ``REGISTRY_POLL_SECONDS``, or at once when the run's own
process asked for a change), and while the run waits for one, it polls for new
change rows (one cheap query of the rows after the last one seen), applies each
through the engine, journals it as a ``StrategyControlled`` event of the
strategy, and settles the row with its outcome and the time it was applied. The
registry is then what the engine actually applied: a refused change writes the
real state back, a refused add or update of a running strategy puts back the
config it runs (its outcome says so), and a quarantine decided by the engine is
written to the registry, so it survives a restart.

What an update does to open positions: the strategy is rebuilt with the new
config and keeps its positions exactly as they are, stop, target and trailing
levels included; the new exit settings apply to positions opened afterwards.
Changing a level of a position already open is a decision about that position,
not about the strategy's config, so an update never moves it.

An add, update or enable that needs a series the run's candle source does not
deliver yet (a ``CandleRoutes`` that does not ``serves`` it) asks a source that
can follow new series (``FollowingRoutes``: the live ccxt feeds) to start it:
the source fetches the history the series' indicators need (the warm-up rule of
``tradekit.runtime.warmup``), the engine takes it in as at start (no trade, not
journaled) once the strategy is built, and the series' closed candles join the
run's stream. A feed that cannot start (a symbol the venue does not list,
network errors) refuses the change with the venue's answer and the run goes
on. A source fixed at start (a replay) refuses the change, naming the series.
Either way the registry never shows a bot as active that gets no candles.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import ValidationError

from tradekit.config.strategy import StrategyConfig
from tradekit.data.sources import candle_sort_key
from tradekit.domain import Candle
from tradekit.errors import ConfigError, StorageError, TradekitError
from tradekit.events import StrategyControlled, StrategyQuarantined
from tradekit.logs import log
from tradekit.runtime.engine import Engine
from tradekit.runtime.warmup import warmup_needs
from tradekit.services.journal.store import (
    RegistryChange,
    SqlJournal,
    StrategyInfo,
    StrategyStatus,
)

RUNNER = "tradekit run"
"""Who a change the runner itself decides is recorded as (a start refused at load)."""

CONTROL_POLL_SECONDS = 0.5
"""How long a run driven by the registry waits for a candle before it looks at the registry."""

REGISTRY_POLL_SECONDS = 0.25
"""How often at most a run looks at the registry between candles: often enough for a change
to reach it well within seconds, rarely enough that a fast feed does not pay a query per
candle. A change asked in the run's own process (the bot service) is looked at sooner."""

APPLIED = "applied"
TAKEN_IN_AT_START = "taken in at start"
CONFIG_RESTORED = "; the registry holds the config this run runs again"
"""Added to the outcome of a refused add or update whose config the registry had taken."""


class ControlAction(StrEnum):
    """What a registry change asks for."""

    ADD = "add"
    UPDATE = "update"
    ENABLE = "enable"
    DISABLE = "disable"
    REMOVE = "remove"
    RESUME = "resume"
    START = "start"
    """Recorded by the runner when it could not start a registered strategy."""


def requester() -> str:
    """Who is asking, as ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def strategy_kind(config: StrategyConfig) -> str:
    """The registry's ``kind`` of a strategy: its analyzer types, joined."""
    return "+".join(dict.fromkeys(analyzer.type for analyzer in config.analyzers)) or "custom"


def registered_config(info: StrategyInfo) -> StrategyConfig:
    """The validated config the registry holds for ``info``, enabled as its status says."""
    try:
        config = StrategyConfig.model_validate_json(info.config_json)
    except ValidationError as exc:
        raise ConfigError(
            f"strategy '{info.strategy_id}': the config stored in the registry is not a "
            f"valid strategy ({exc.error_count()} problem(s), first: "
            f"{exc.errors()[0]['msg']}); register it again with 'tradekit strategies update FILE'"
        ) from None
    enabled = info.status is not StrategyStatus.DISABLED
    return config if config.enabled == enabled else config.model_copy(update={"enabled": enabled})


def seed_registry(journal: SqlJournal, configs: Sequence[StrategyConfig]) -> bool:
    """Register ``configs`` when the registry is empty (a new database); True if it seeded."""
    if journal.strategies():
        return False
    for config in configs:
        journal.register_strategy(
            config.strategy_id, config.name, strategy_kind(config), config.model_dump_json()
        )
        if not config.enabled:
            journal.set_status(config.strategy_id, StrategyStatus.DISABLED)
    return True


@dataclass(frozen=True, slots=True)
class RunSelection:
    """Which registered strategies one run takes: ``--only`` ids and ``--symbols``.

    ``None`` takes all. With symbols, a strategy trading any of them runs on
    those of its symbols only.
    """

    only: frozenset[str] | None = None
    symbols: frozenset[str] | None = None

    def admits(self, config: StrategyConfig) -> bool:
        if self.only is not None and config.strategy_id not in self.only:
            return False
        return self.symbols is None or bool(self.symbols.intersection(config.symbols))

    def narrow(self, config: StrategyConfig) -> StrategyConfig:
        if self.symbols is None:
            return config
        kept = tuple(symbol for symbol in config.symbols if symbol in self.symbols)
        return config if kept == config.symbols else config.model_copy(update={"symbols": kept})


def planned_configs(
    journal: SqlJournal | None, seed: Sequence[StrategyConfig], selection: RunSelection
) -> list[StrategyConfig]:
    """What a run on ``journal`` will start with, as the selection narrows it, all enabled.

    For a source that must know the (symbol, timeframe) pairs before the run
    (a replay): the registry's strategies that are not removed, or ``seed`` when
    there is no registry yet.
    """
    registered = journal.strategies() if journal is not None else []
    configs = (
        [
            registered_config(info)
            for info in registered
            if info.status is not StrategyStatus.REMOVED
        ]
        if registered
        else list(seed)
    )
    return [
        selection.narrow(config).model_copy(update={"enabled": True})
        for config in configs
        if selection.admits(config)
    ]


OUTSIDE_SELECTION = "not applied: outside this run's --only/--symbols"


@runtime_checkable
class CandleRoutes(Protocol):
    """A run's candle source that says which (symbol, timeframe) series it delivers."""

    def serves(self, symbol: str, timeframe: str) -> bool: ...


@runtime_checkable
class FollowingRoutes(CandleRoutes, Protocol):
    """A candle source that can start delivering a series while the run goes."""

    def follow(self, symbol: str, timeframe: str, warmup_bars: int) -> list[Candle]:
        """Deliver the series from now on; its last ``warmup_bars`` closed candles, in
        order. ``TradekitError`` naming the series when it cannot, the other series going on."""
        ...


class RegistryControl:
    """Makes one engine follow the registry of its journal; one per run, on the engine's thread."""

    def __init__(
        self,
        journal: SqlJournal,
        engine: Engine,
        selection: RunSelection | None = None,
        routes: CandleRoutes | None = None,
    ) -> None:
        self.journal = journal
        self.engine = engine
        self.selection = selection or RunSelection()
        self.routes = routes
        self._seen = 0
        # The registry row each running strategy was built from: a refused update puts it back.
        self._running: dict[str, StrategyInfo] = {}
        # Changes that need something the run does not have yet (a price to close at).
        self._waiting: dict[int, RegistryChange] = {}
        self._waited: set[int] = set()  # said once in the log, not on every retry
        engine.factory.shared.event_bus().subscribe(self._quarantined, StrategyQuarantined)

    # -- start ------------------------------------------------------------------------------

    def start(self, seed: Sequence[StrategyConfig]) -> list[str]:
        """Seed a new registry from ``seed``, load what the registry says; the ids built.

        Changes asked while no run was going are already in the registry's rows and
        are settled as taken in, except closing positions, which only a run can do:
        those are applied once the strategies are loaded.
        """
        if seed_registry(self.journal, seed):
            log.info("registry seeded with {} strategies from the strategy files", len(seed))
        self._seen = self.journal.last_change_id()
        loaded: list[str] = []
        for info in self.journal.strategies():
            if info.status is StrategyStatus.REMOVED:
                continue
            config = registered_config(info)
            if not self.selection.admits(config):
                continue
            if self._load(config, info.status, None):
                loaded.append(config.strategy_id)
                self._running[config.strategy_id] = info
        for change in self.journal.registry_changes(pending_only=True):
            if change.close_positions:
                self._apply(change)
            else:
                self._settle(change, TAKEN_IN_AT_START)
        return loaded

    def _load(self, config: StrategyConfig, status: StrategyStatus, change_id: int | None) -> bool:
        """Load one strategy in ``status``; True when it was built.

        A refusal (``max_concurrent_strategies`` reached, a config that does not
        build) is logged and leaves the strategy disabled in the registry. For a
        change, ``_RefusedError`` carries the reason to its row; at start, the runner
        records a ``start`` change of its own with the reason.
        """
        strategy_id = config.strategy_id
        quarantined = (strategy_id,) if status is StrategyStatus.QUARANTINED else ()
        try:
            built = self.engine.load([self.selection.narrow(config)], quarantined)
        except TradekitError as exc:
            reason = f"refused: {exc}"
            log.bind(strategy_id=strategy_id).error("strategy not started: {}", exc)
            self.journal.set_status(strategy_id, StrategyStatus.DISABLED)
            if change_id is not None:
                raise _RefusedError(reason) from None
            own = self.journal.request_change(strategy_id, ControlAction.START, RUNNER)
            self._seen = max(self._seen, own)
            self._settle_id(own, reason)
            return False
        return bool(built)

    # -- polling ----------------------------------------------------------------------------

    def poll(self) -> list[str]:
        """Apply the changes asked since the last poll; the ids of the strategies they were
        about (applied or refused), in the order they were asked for.

        A database that cannot be read right now (another process writing) is
        logged and tried again on the next poll; the run goes on.
        """
        try:
            # One read finds the new changes: the newest id seen is the last one read.
            asked = self.journal.registry_changes(after_id=self._seen)
            if not asked and not self._waiting:
                return []
            changes = list(self._waiting.values())
            self._waiting.clear()
            if asked:
                self._seen = asked[-1].change_id
                changes += [change for change in asked if change.applied_at is None]
            for change in changes:
                self._apply(change)
        except StorageError as exc:
            log.warning("registry not read this time, trying again: {}", exc)
            return []
        self.engine.flush_journal()
        return list(dict.fromkeys(change.strategy_id for change in changes))

    # -- applying ---------------------------------------------------------------------------

    def _apply(self, change: RegistryChange) -> None:
        strategy_id = change.strategy_id
        info = self.journal.strategy_info(strategy_id)
        if info is None:
            self._settle(change, f"refused: strategy '{strategy_id}' is not in the registry")
            return
        config = registered_config(info)
        if not self.selection.admits(config) and not self.engine.tracks(strategy_id):
            self._settle(change, OUTSIDE_SELECTION)
            return
        try:
            outcome = self._outcome(change, info, config)
        except _RefusedError as refused:
            outcome = refused.reason
        except _WaitingError as waiting:
            if change.change_id not in self._waited:
                self._waited.add(change.change_id)
                log.bind(strategy_id=strategy_id).info("{} waits: {}", change.action, waiting)
            self._waiting[change.change_id] = change
            return
        except (TradekitError, ValueError) as exc:
            outcome = f"refused: {exc}"
        refused_config = outcome != APPLIED and change.action in _CONFIG_CHANGES
        if refused_config and self._restore_config(strategy_id):
            outcome += CONFIG_RESTORED
        if outcome == APPLIED:
            log.bind(strategy_id=strategy_id).info(
                "{} asked by {}: applied", change.action, change.by
            )
        else:
            log.bind(strategy_id=strategy_id).error(
                "{} asked by {}: {}", change.action, change.by, outcome
            )
        if change.action != ControlAction.REMOVE or outcome != APPLIED:
            self._journal_event(change, outcome)
            self._write_back(strategy_id)
        self._settle(change, outcome)

    def _outcome(self, change: RegistryChange, info: StrategyInfo, config: StrategyConfig) -> str:
        """Apply ``change`` through the engine; the outcome to record."""
        engine = self.engine
        strategy_id = change.strategy_id
        action = ControlAction(change.action)
        tracked = engine.tracks(strategy_id)
        reason = f"{action.value} asked by {change.by}"
        if action in (ControlAction.ADD, ControlAction.UPDATE):
            if info.status is StrategyStatus.REMOVED:
                return "refused: the strategy is removed; add it again"
            self._build(change, info, config, tracked)
            return APPLIED
        if not tracked:
            if action is ControlAction.ENABLE and info.status is StrategyStatus.ACTIVE:
                self._build(change, info, config, tracked)
                return APPLIED
            return f"refused: strategy '{strategy_id}' is not running in this run"
        if action is ControlAction.ENABLE:
            engine.enable(strategy_id, reason)
        elif action is ControlAction.RESUME:
            engine.resume(strategy_id, by=change.by, reason="resumed through the registry")
        elif action is ControlAction.DISABLE:
            engine.disable(strategy_id, reason)
            if change.close_positions:
                self._close(strategy_id)
        elif action is ControlAction.REMOVE:
            self._remove(change, reason)
        return APPLIED

    def _build(
        self, change: RegistryChange, info: StrategyInfo, config: StrategyConfig, tracked: bool
    ) -> None:
        """Load the strategy (reload it when ``tracked``) with the registry's config, once the
        run's source delivers its series; the history of series followed now warms it up."""
        history = self._candles_for(config, tracked)
        try:
            if tracked:
                self.engine.reload(
                    self.selection.narrow(config), f"{change.action} asked by {change.by}"
                )
            else:
                self._load(config, info.status, change.change_id)
        finally:
            # Taken in even when the build is refused: the series is delivered from now on.
            self.engine.warm_up(history)
        self._running[change.strategy_id] = info

    def _candles_for(self, config: StrategyConfig, tracked: bool) -> list[Candle]:
        """Have the run's source deliver every series of ``config``; the warm-up history of
        those it started following now, in order, for the engine to take in once the
        strategy is built (taken in: the series are followed from now on).

        ``_RefusedError`` when a series cannot be delivered: a strategy not running
        yet stays out, disabled in the registry; a running one keeps its current config.
        """
        routes = self.routes
        if routes is None:
            return []
        needs = warmup_needs([self.selection.narrow(config)])
        missing = [key for key in needs if not routes.serves(*key)]
        if not missing:
            return []
        history: list[Candle] = []
        problem: str | None = None
        if not isinstance(routes, FollowingRoutes):
            problem = (
                f"refused: no candles for {', '.join(map(' '.join, missing))} in this run: "
                "its candle source delivers only the series it started with; restart the "
                "run to trade them"
            )
        else:
            for symbol, timeframe in missing:
                try:
                    history += routes.follow(symbol, timeframe, needs[symbol, timeframe])
                except TradekitError as exc:
                    problem = f"refused: no candles for {symbol} {timeframe}: {exc}"
                    break
        history.sort(key=candle_sort_key)
        if problem is None:
            return history
        # A series followed before another one failed is delivered from now on: so is its
        # history, for the next strategy on it.
        self.engine.warm_up(history)
        if not tracked:
            self.journal.set_status(config.strategy_id, StrategyStatus.DISABLED)
        raise _RefusedError(problem)

    def _remove(self, change: RegistryChange, reason: str) -> None:
        """Unload the strategy and mark it removed; ``_RefusedError`` while it holds positions."""
        strategy_id = change.strategy_id
        held = self.engine.open_positions(strategy_id)
        if held and not change.close_positions:
            raise _RefusedError(
                f"refused: the strategy holds {held} open position(s); close them first "
                "or remove it with --close"
            )
        if held:
            self.engine.disable(strategy_id, reason)
            self._close(strategy_id)
            if self.engine.open_positions(strategy_id):
                # An unload would cancel the closing orders: wait for their fills.
                raise _WaitingError(f"closing {held} position(s) at market, waiting for the fills")
        # Journaled before the unload: the strategy's last events say who removed it.
        self._journal_event(change, APPLIED)
        self.engine.unload(strategy_id, reason=reason)
        self._running.pop(strategy_id, None)
        self.journal.set_status(strategy_id, StrategyStatus.REMOVED)

    def _close(self, strategy_id: str) -> None:
        unpriced = self.engine.close_positions(strategy_id)
        if unpriced:
            raise _WaitingError(f"{unpriced} position(s) have no price yet to close at")

    # -- recording --------------------------------------------------------------------------

    def _journal_event(self, change: RegistryChange, outcome: str) -> None:
        handle = self.engine.factory.find_handle(change.strategy_id)
        if handle is None:
            return  # not built (dormant, or refused): the change row holds the outcome
        handle.publisher.publish(
            StrategyControlled(
                ts=self.engine.factory.shared.clock().now(),
                action=change.action,
                by=change.by,
                change_id=change.change_id,
                outcome=outcome,
            )
        )

    def _write_back(self, strategy_id: str) -> None:
        """The registry's status becomes the state the engine holds the strategy in."""
        if not self.engine.tracks(strategy_id):
            return
        state = self.engine.state(strategy_id)
        info = self.journal.strategy_info(strategy_id)
        if info is not None and info.status is not state:
            self.journal.set_status(strategy_id, state)

    def _restore_config(self, strategy_id: str) -> bool:
        """The registry's config becomes the one the running strategy was built from again;
        True when it differed. A strategy that is not running keeps the config it was given:
        no config runs that the registry could disagree with."""
        running = self._running.get(strategy_id)
        if running is None or not self.engine.tracks(strategy_id):
            return False
        stored = self.journal.strategy_info(strategy_id)
        if stored is None or (stored.name, stored.kind, stored.config_json) == (
            running.name,
            running.kind,
            running.config_json,
        ):
            return False
        self.journal.register_strategy(strategy_id, running.name, running.kind, running.config_json)
        return True

    def _quarantined(self, event: StrategyQuarantined) -> None:
        try:
            self.journal.set_status(event.strategy_id, StrategyStatus.QUARANTINED)
        except StorageError as exc:
            log.bind(strategy_id=event.strategy_id).error(
                "quarantine not written to the registry: {}", exc
            )

    def _settle(self, change: RegistryChange, outcome: str) -> None:
        self._settle_id(change.change_id, outcome)

    def _settle_id(self, change_id: int, outcome: str) -> None:
        self.journal.settle_change(change_id, outcome, datetime.now(UTC))


_CONFIG_CHANGES = frozenset({ControlAction.ADD, ControlAction.UPDATE})
"""The changes whose command wrote a new config into the registry before the run saw them."""


class _RefusedError(Exception):
    """The engine refused the change; ``reason`` is the outcome recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _WaitingError(Exception):
    """The change needs something the run does not have yet; it is tried again next poll."""


__all__ = [
    "CONTROL_POLL_SECONDS",
    "REGISTRY_POLL_SECONDS",
    "CandleRoutes",
    "ControlAction",
    "FollowingRoutes",
    "RegistryControl",
    "RunSelection",
    "planned_configs",
    "registered_config",
    "requester",
    "seed_registry",
    "strategy_kind",
]
