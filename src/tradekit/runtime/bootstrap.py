"""``bootstrap``: the one place that assembles a runtime (shared container, factory, engine).

The run's mode decides the exchange, never the settings: every mode but
``LIVE`` trades on the paper exchange (or on the fake a paper run or a test
passes in), whatever ``exchange.kind`` and ``live_orders_enabled`` say, so a
backtest or a validation can never reach a live venue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from dependency_injector import providers

from tradekit.config.settings import TradekitSettings
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.shared import SharedContainer
from tradekit.protocols import Exchange, Journal
from tradekit.runtime.engine import Engine
from tradekit.runtime.live_guard import check_live_settings
from tradekit.services.exchange import CcxtExchange


class RunMode(StrEnum):
    """What a runtime is built for; the only thing that can put real orders in reach."""

    BACKTEST = "backtest"
    PAPER = "paper"
    LIVE = "live"
    VALIDATE = "validate"
    TEST = "test"


class Clock(Protocol):
    """Anything that tells the current time as an aware datetime."""

    def now(self) -> datetime: ...


_MODES_TAKING_AN_EXCHANGE = frozenset({RunMode.PAPER, RunMode.TEST, RunMode.LIVE})

LIVE_EQUITY_POINTS = 1_000
"""Equity points each strategy keeps in memory in a paper or live run: its memory stays flat."""
LIVE_TRADES_KEPT = 20
"""Closed trades each strategy keeps in memory in a paper or live run: the journal has them all,
and a run reads only their count; a few recent ones stay for inspection."""

_MODES_WITH_BOUNDED_HISTORY = frozenset({RunMode.PAPER, RunMode.LIVE})


@dataclass
class Runtime:
    """Everything one run needs, as ``bootstrap`` assembled it; one per run.

    ``journal`` is the journal the engine writes to, if any. ``close`` shuts the
    engine down (flushing and unloading every strategy) and closes the journal
    when the runtime opened it itself.
    """

    mode: RunMode
    shared: SharedContainer
    factory: TradingOrchestratorFactory
    engine: Engine
    journal: Journal | None = None
    _owns_journal: bool = field(default=False, repr=False)

    @property
    def settings(self) -> TradekitSettings:
        """The settings the runtime runs with (on paper: exchange kind ``paper``, live off)."""
        settings: TradekitSettings = self.shared.settings()
        return settings

    def close(self) -> None:
        """Shut the engine down, then close the journal the runtime opened."""
        self.engine.shutdown()
        if self._owns_journal and self.journal is not None:
            self.journal.close()


def paper_settings(settings: TradekitSettings) -> TradekitSettings:
    """``settings`` as a paper run sees them: the paper exchange, live orders off."""
    exchange = settings.exchange.model_copy(update={"kind": "paper"})
    return settings.model_copy(update={"exchange": exchange, "live_orders_enabled": False})


def bootstrap(
    settings: TradekitSettings,
    *,
    mode: RunMode,
    exchange: Exchange | None = None,
    clock: Clock | None = None,
    journal: Journal | None = None,
    persist: bool = False,
) -> Runtime:
    """Build the runtime of one ``mode``: shared container, strategy factory and engine.

    ``exchange`` replaces the mode's exchange (paper, test and live runs only; a
    test passes a fake). In ``LIVE`` mode the settings must name a ccxt venue,
    enable live orders and carry credentials (``ConfigError`` lists what is
    missing); the caller checks that its market data is real (see ``run_live``).
    ``clock`` replaces the wall clock (replays). The engine journals into
    ``journal``, or with ``persist`` into the settings' database, which the
    runtime then opens and ``Runtime.close`` closes.
    """
    mode = RunMode(mode)
    if exchange is not None and mode not in _MODES_TAKING_AN_EXCHANGE:
        raise ValueError(f"a {mode} run always uses the paper exchange; do not pass exchange=")
    if mode is RunMode.LIVE:
        check_live_settings(settings)
        if exchange is None:
            exchange = CcxtExchange(settings.exchange, settings.live_orders_enabled)
    else:
        if isinstance(exchange, CcxtExchange):
            raise ValueError(f"a {mode} run never sends real orders; pass a paper or fake exchange")
        settings = paper_settings(settings)
    shared = SharedContainer(settings=settings)
    if exchange is not None:
        shared.exchange.override(providers.Object(exchange))
    if clock is not None:
        shared.clock.override(providers.Object(clock))
    if journal is not None:
        shared.journal.override(providers.Object(journal))
    active_journal: Journal | None = shared.journal() if journal is not None or persist else None
    if active_journal is not None:
        # One writer per database: a second runtime writing it is refused, naming the holder.
        try:
            active_journal.acquire_writer()
        except BaseException:
            if journal is None:
                active_journal.close()
            raise
    if mode in _MODES_WITH_BOUNDED_HISTORY:
        # A run of days keeps recent history only; a backtest keeps all of it for its statistics.
        factory = TradingOrchestratorFactory(
            shared, max_equity_points=LIVE_EQUITY_POINTS, max_trades_kept=LIVE_TRADES_KEPT
        )
    else:
        factory = TradingOrchestratorFactory(shared)
    engine = Engine(factory, journal=active_journal)
    return Runtime(mode, shared, factory, engine, active_journal, journal is None and persist)


__all__ = [
    "LIVE_EQUITY_POINTS",
    "LIVE_TRADES_KEPT",
    "Clock",
    "RunMode",
    "Runtime",
    "bootstrap",
    "paper_settings",
]
