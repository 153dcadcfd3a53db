"""What the API knows of the bots: the registry, with the running engine's latest view, or
the journal when no engine runs; and changes asked through ``tradekit.runtime.bot_requests``.

Reads never touch engine objects: a running bot's state, positions and P&L come
from the newest ``EngineView``; a bot the engine does not hold (none runs, or it
is removed) is summed up from its journal. The registry is read through
``SqlJournal.registry``, which reads it again only when its version moved, so a
listing costs one small query while nothing changes; each bot's summary is built
once per (registry entry, last change, engine view of the bot), and the list's
JSON once per (registry, engine view); a running bot's statistics once per
(registry entry, engine view), from what its journal added since they were last asked
for. A change is written to the registry, then the answer waits (at most
``change_timeout`` seconds) until the running engine has settled its row.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel, TypeAdapter

from tradekit.config.strategy import StrategyConfig
from tradekit.errors import ConfigError
from tradekit.events import PositionClosed
from tradekit.insights import BotStats, StatsTracker, bot_stats
from tradekit.insights.holdings import strategy_report
from tradekit.runtime.bot_requests import ChangeAsked, registered_bot
from tradekit.runtime.control import APPLIED, TAKEN_IN_AT_START, registered_config
from tradekit.runtime.engine_view import BotView, EngineView
from tradekit.service.models import (
    BotDetail,
    BotOut,
    ChangeOut,
    ChangeState,
    ControlOut,
    EventOut,
    EventPage,
    PositionOut,
    TradeOut,
)
from tradekit.services.journal.store import (
    Registry,
    RegistryChange,
    SqlJournal,
    StrategyInfo,
    StrategyStatus,
)

DEFAULT_CHANGE_TIMEOUT = 5.0
"""How long a control route waits for the running engine to apply its change."""

SETTLED_AS_APPLIED = frozenset({APPLIED, TAKEN_IN_AT_START})

CONFIGS_KEPT = 4096
"""Validated configs kept: a registry row (id, config text, state, times) is their key."""


BOT_LIST = TypeAdapter(list[BotOut])


class _Summary(NamedTuple):
    """A running bot's summary and what it was built from (compared by identity)."""

    info: StrategyInfo
    change: RegistryChange | None
    running: BotView
    summary: BotOut


class _Listing(NamedTuple):
    """The JSON of the bots list and what it was built from (compared by identity)."""

    registry: Registry
    view: EngineView | None
    body: bytes


class _Common(NamedTuple):
    """The registry's part of a bot's summary and what it was built from (by identity)."""

    info: StrategyInfo
    change: RegistryChange | None
    fields: dict[str, Any]


class _Stats(NamedTuple):
    """A running bot's statistics and what they were computed from (compared by identity)."""

    info: StrategyInfo
    view: EngineView
    since: datetime | None
    stats: BotStats


class _ViewBody(NamedTuple):
    """The JSON answered about one engine view (compared by identity)."""

    view: EngineView | None
    body: bytes


class EngineLink(Protocol):
    """What the API may do with the engine of its process (a fake in tests)."""

    def view(self) -> EngineView | None:
        """The newest view; ``None`` before the engine started."""

    @property
    def polls(self) -> int:
        """How many times the engine has looked at the registry."""

    def ask_poll(self) -> None:
        """Have it look at the registry before its next candle (a change was just asked)."""

    def wait_for_poll(self, after: int, timeout: float) -> bool:
        """Wait until it looked more than ``after`` times (or stopped); False on timeout."""

    def stop(self) -> None:
        """Ask the engine (and the service) to stop, as SIGTERM does."""


def change_out(change: RegistryChange) -> ChangeOut:
    if change.applied_at is None:
        state = ChangeState.PENDING
    elif change.outcome in SETTLED_AS_APPLIED:
        state = ChangeState.APPLIED
    else:
        state = ChangeState.REFUSED
    return ChangeOut(
        change_id=change.change_id,
        strategy_id=change.strategy_id,
        action=change.action,
        close_positions=change.close_positions,
        by=change.by,
        requested_at=change.requested_at,
        applied_at=change.applied_at,
        state=state,
        outcome=change.outcome,
    )


def _position_from_view(bot: BotView) -> list[PositionOut]:
    return [
        PositionOut(
            symbol=position.symbol,
            side=position.side,
            quantity=position.quantity,
            avg_entry_price=position.avg_entry_price,
            opened_at=position.opened_at,
            last_price=position.last_price,
            unrealized_pnl=position.unrealized_pnl,
            stop_loss=position.stop_loss,
            take_profit=position.take_profit,
        )
        for position in bot.open_positions
    ]


class BotDirectory:
    """The bots as the API shows them; one per app, safe to use from the server's threads."""

    def __init__(
        self,
        journal: SqlJournal,
        engine: EngineLink | None = None,
        change_timeout: float = DEFAULT_CHANGE_TIMEOUT,
        template_ids: frozenset[str] = frozenset(),
    ) -> None:
        self.journal = journal
        self.engine = engine
        self.change_timeout = change_timeout
        self.template_ids = template_ids
        """The templates' ids: a bot whose registry kind is one was made from that template."""
        self._summaries: dict[str, _Summary] = {}
        self._listing: _Listing | None = None
        self._view_body: _ViewBody | None = None
        self._stats: dict[str, _Stats] = {}
        self._trackers: dict[str, StatsTracker] = {}
        self._trackers_lock = threading.Lock()
        self._commons: dict[str, _Common] = {}

    def view(self) -> EngineView | None:
        return None if self.engine is None else self.engine.view()

    def view_json(self, render: Callable[[EngineView | None], BaseModel]) -> bytes:
        """``render`` of the newest view as JSON, serialized once per view."""
        view = self.view()
        held = self._view_body
        if held is not None and held.view is view:
            return held.body
        body = render(view).model_dump_json().encode()
        self._view_body = _ViewBody(view, body)
        return body

    # -- reading ----------------------------------------------------------------------------

    def registered(self, strategy_id: str) -> StrategyInfo:
        """The registry entry of ``strategy_id``; ``StrategyNotFoundError`` with a suggestion."""
        info = self.journal.registry().by_id.get(strategy_id)
        return registered_bot(self.journal, strategy_id) if info is None else info

    def bots(self) -> list[BotOut]:
        """Every bot not removed, by id."""
        return self._bots(self.journal.registry(), self.view())[0]

    def bots_json(self) -> bytes:
        """``bots()`` as the JSON the API answers, serialized once per registry and view."""
        registry, view = self.journal.registry(), self.view()
        listing = self._listing
        if listing is not None and listing.registry is registry and listing.view is view:
            return listing.body
        bots, all_from_view = self._bots(registry, view)
        body = BOT_LIST.dump_json(bots)
        # A bot summed up from its journal may change without the registry or the view.
        if all_from_view and registry.version is not None:
            self._listing = _Listing(registry, view, body)
        return body

    def _bots(self, registry: Registry, view: EngineView | None) -> tuple[list[BotOut], bool]:
        """The bots not removed, and whether each came from ``view`` (none from the journal)."""
        bots, all_from_view = [], True
        for info in registry.strategies:
            if info.status is StrategyStatus.REMOVED:
                continue
            change = registry.latest_changes.get(info.strategy_id)
            running = None if view is None or not view.running else view.bots.get(info.strategy_id)
            if running is None:
                all_from_view = False
                bots.append(self._summary(info, view, change))
                continue
            held = self._summaries.get(info.strategy_id)
            if (
                held is not None
                and held.info is info
                and held.change is change
                and held.running is running
            ):
                bots.append(held.summary)
                continue
            summary = self._summary(info, view, change)
            self._summaries[info.strategy_id] = _Summary(info, change, running, summary)
            bots.append(summary)
        return bots, all_from_view

    def bot(self, strategy_id: str) -> BotDetail:
        info = self.registered(strategy_id)
        running = self._running(strategy_id)
        summary = self._summary(info, self.view(), self._last_change(strategy_id))
        positions = (
            _position_from_view(running) if running is not None else self._journal_positions(info)
        )
        return BotDetail(**summary.model_dump(), positions=positions, config=_config_data(info))

    def positions(self, strategy_id: str) -> list[PositionOut]:
        return self.held(self.registered(strategy_id))

    def held(self, info: StrategyInfo, view: EngineView | None = None) -> list[PositionOut]:
        """The open positions of a registered bot: from ``view`` (default: the newest) when
        the engine holds it, else from its journal."""
        view = self.view() if view is None else view
        running = None if view is None or not view.running else view.bots.get(info.strategy_id)
        return (
            _position_from_view(running) if running is not None else self._journal_positions(info)
        )

    def stats(self, strategy_id: str, since: datetime | None = None) -> BotStats:
        """The statistics of a registered bot from its journal (``tradekit.insights.bot_stats``).

        For a bot the engine runs, a ``StatsTracker`` kept while it runs reads only what its
        journal added since the last call, and what it answers is kept per engine view: the
        engine commits a candle's journal (the bot's events and its series' price marks)
        before it publishes the view of that candle, and nothing else writes a running
        bot's journal, so while the view stays the same so do the statistics. The view is
        taken before the journal is read, so what is kept is at least as new as the view it
        is kept under.
        """
        info = self.registered(strategy_id)
        view = self.view()
        running = view is not None and view.running and strategy_id in view.bots
        if not running or view is None:
            with self._trackers_lock:
                self._trackers.pop(strategy_id, None)  # it may run again after a change
            return bot_stats(self.journal, strategy_id, since=since)
        held = self._stats.get(strategy_id)
        if held is not None and held.info is info and held.view is view and held.since == since:
            return held.stats
        with self._trackers_lock:
            tracker = self._trackers.get(strategy_id)
            if tracker is None:
                tracker = self._trackers[strategy_id] = StatsTracker(self.journal, strategy_id)
        stats = tracker.stats(info, since=since)
        self._stats[strategy_id] = _Stats(info, view, since, stats)
        return stats

    def trades(self, strategy_id: str) -> list[TradeOut]:
        self.registered(strategy_id)
        return [
            TradeOut(
                seq=event.seq,
                position_id=event.position_id,
                symbol=event.symbol,
                side=event.side,
                quantity=event.quantity,
                avg_entry_price=event.avg_entry_price,
                exit_price=event.exit_price,
                fees=event.fees,
                realized_pnl=event.realized_pnl,
                reason=event.reason,
                bars_held=event.bars_held,
                closed_at=event.ts,
            )
            for event in self.journal.events(strategy_id, types=[PositionClosed])
            if isinstance(event, PositionClosed)
        ]

    def events(self, strategy_id: str, after_seq: int, limit: int) -> EventPage:
        self.registered(strategy_id)
        # One more than asked says whether another page follows.
        found = self.journal.events(strategy_id, after_seq, limit=limit + 1)
        page = found[:limit]
        events = []
        for event in page:
            data = event.to_dict()
            for key in ("event_type", "strategy_id", "seq", "ts"):
                data.pop(key, None)
            events.append(EventOut(seq=event.seq, ts=event.ts, type=event.event_type, data=data))
        return EventPage(
            events=events,
            next_after_seq=page[-1].seq if page else after_seq,
            more=len(found) > limit,
        )

    def _running(self, strategy_id: str) -> BotView | None:
        view = self.view()
        return None if view is None or not view.running else view.bots.get(strategy_id)

    def _last_change(self, strategy_id: str) -> RegistryChange | None:
        return self.journal.registry().latest_changes.get(strategy_id)

    def _summary(
        self, info: StrategyInfo, view: EngineView | None, change: RegistryChange | None
    ) -> BotOut:
        common = self._common(info, change)
        running = None if view is None or not view.running else view.bots.get(info.strategy_id)
        if running is not None:
            return BotOut(
                **common,
                state=running.state,
                open_positions=len(running.open_positions),
                realized_pnl=running.realized_pnl,
                unrealized_pnl=running.unrealized_pnl,
                last_candle=running.last_candle,
            )
        report = strategy_report(self.journal, info.strategy_id, info)
        return BotOut(
            **common,
            state=info.status,
            open_positions=len(report.open_positions),
            realized_pnl=report.realized_pnl,
            unrealized_pnl=report.unrealized_pnl,
            last_candle=None,
        )

    def _common(self, info: StrategyInfo, change: RegistryChange | None) -> dict[str, Any]:
        """What a bot's summary takes from its registry entry and last change; built once
        per (entry, change), as the engine's figures change far more often."""
        held = self._commons.get(info.strategy_id)
        if held is not None and held.info is info and held.change is change:
            return held.fields
        config = config_of(info)
        fields: dict[str, Any] = {
            "id": info.strategy_id,
            "name": info.name,
            "kind": info.kind,
            "template": info.kind if info.kind in self.template_ids else None,
            "symbols": list(config.symbols) if config else [],
            "timeframe": config.timeframe if config else "",
            "last_change": None if change is None else change_out(change),
        }
        self._commons[info.strategy_id] = _Common(info, change, fields)
        return fields

    def _journal_positions(self, info: StrategyInfo) -> list[PositionOut]:
        report = strategy_report(self.journal, info.strategy_id, info)
        opened = {p.symbol: p.opened_at for p in self.journal.open_positions(info.strategy_id)}
        return [
            PositionOut(
                symbol=position.symbol,
                side=position.side,
                quantity=position.quantity,
                avg_entry_price=position.avg_entry_price,
                opened_at=opened.get(position.symbol),
                last_price=position.last_price,
                unrealized_pnl=position.unrealized_pnl,
            )
            for position in report.open_positions
        ]

    # -- changing ---------------------------------------------------------------------------

    def control(
        self,
        strategy_id: str,
        ask: Callable[[SqlJournal], ChangeAsked],
        *,
        new: bool = False,
    ) -> tuple[ControlOut, bool]:
        """Ask for a change, wait for the running engine to settle it; the answer, and
        whether it was settled in time. ``new``: the change adds the bot (it need not be
        registered yet); any other change refuses an unknown bot itself."""
        # The change's row and the bot's entry, read together, not the whole registry: the
        # writes around them move its version, so reading it whole would read every bot again.
        engine = self.engine
        polls = 0 if engine is None else engine.polls
        asked = ask(self.journal)
        if engine is not None:
            engine.ask_poll()
        change, settled_info = self._settled(asked.change_id, polls)
        info = settled_info or registered_bot(self.journal, strategy_id)
        bot = self._summary(info, self.view(), change)
        answer = ControlOut(message=asked.told, change=change_out(change), bot=bot)
        return answer, change.applied_at is not None

    def _settled(self, change_id: int, polls: int) -> tuple[RegistryChange, StrategyInfo | None]:
        """The change's row once a running engine settled it, or as it stands at the deadline,
        and its bot's registry entry read with it.

        While an engine runs, its row is read once the engine has looked at the registry
        since ``polls`` (the count before the change was asked): no look before that can
        have settled it.
        """
        deadline = time.monotonic() + self.change_timeout
        while True:
            view = self.view()
            engine = self.engine
            left = deadline - time.monotonic()
            if engine is None or view is None or not view.running or left <= 0:
                return self._change_and_entry(change_id)
            engine.wait_for_poll(polls, left)
            polls = engine.polls
            read = self._change_and_entry(change_id)
            if read[0].applied_at is not None:
                return read

    def _change_and_entry(self, change_id: int) -> tuple[RegistryChange, StrategyInfo | None]:
        read = self.journal.registry_change_and_entry(change_id)
        assert read is not None  # asked for just before, and changes are never deleted
        return read


@functools.lru_cache(maxsize=CONFIGS_KEPT)
def config_of(info: StrategyInfo) -> StrategyConfig | None:
    """The registry's config of ``info`` (``None`` when it is broken: the bot is listed all
    the same, and the engine reports it); validated once per registry row, not per request."""
    try:
        return registered_config(info)
    except ConfigError:
        return None


def _config_data(info: StrategyInfo) -> dict[str, Any]:
    try:
        return registered_config(info).model_dump(mode="json")
    except ConfigError:
        return {}


__all__ = ["DEFAULT_CHANGE_TIMEOUT", "BotDirectory", "EngineLink", "change_out", "config_of"]
