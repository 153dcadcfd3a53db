"""``EngineJournal``: writes what the engine does to the journal, and resumes from it.

Every event is recorded as it is published; after each candle the strategies
that published since their last snapshot are snapshotted, and everything is
committed in one transaction. A snapshot holds state, so a strategy that only
marks its open positions to market is not snapshotted again: on resume, the
candles after its snapshot (which the source delivers again) run through it once
more and rebuild what they changed (bars held, best price, last prices) exactly
as the first time. The positions table is written with the snapshot, so those
mark-to-market fields there are as of the strategy's last event. An unload
snapshots the strategy's final state (positions it closed are gone) and commits.

Equity history is not snapshotted; instead the close of the first candle of each
series in every ``PRICE_MARK_SECONDS`` window is journaled as a price mark. With the
fills, that values any strategy's equity over its whole life
(``tradekit.insights.equity``) at one row per series per window, however many
strategies trade the series.

On load, a strategy with a journal resumes: its positions, pending orders, risk
day come back from the snapshot, and its ``seq`` continues after the last event
stored, snapshot or not. One whose last session ended with ``StrategyUnloaded``
is loaded anew (it announces ``StrategyLoaded``); one that was interrupted
continues silently, so its journal reads as if it never stopped. A failed commit
stops new entries everywhere (nothing already journaled is lost; the journal
keeps the batch and retries on the next candle).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from tradekit.config.strategy import StrategyConfig
from tradekit.containers.factory import TradingOrchestratorFactory
from tradekit.containers.handle import StrategyHandle
from tradekit.domain import Candle, Fill, Order
from tradekit.errors import StorageError
from tradekit.events import Event, OrderFilled, StrategyUnloaded
from tradekit.logs import log
from tradekit.protocols import Journal

PRICE_MARK_SECONDS = 15 * 60
"""One price mark per series per this many seconds: 96 a day, enough for a curve over days."""


class EngineJournal:
    """Connects one engine to one journal; one per engine."""

    def __init__(self, journal: Journal, halt_entries: Callable[[str], None]) -> None:
        self.journal = journal
        self._halt_entries = halt_entries
        # Strategies that published since their last snapshot.
        self._touched: set[str] = set()
        # Strategies unloaded in this process: their session ended cleanly.
        self._unloaded: set[str] = set()
        self._batching = False
        self.failed_commits = 0
        # (symbol, timeframe) -> the PRICE_MARK_SECONDS window of its last mark.
        self._marked_window: dict[tuple[str, str], int] = {}

    def record(self, event: Event) -> None:
        """Bus subscriber: buffer ``event`` (and the fill it reports) for the next commit."""
        self.journal.record([event])
        self._touched.add(event.strategy_id)
        if isinstance(event, OrderFilled):
            order = Order(
                order_id=event.order_id,
                strategy_id=event.strategy_id,
                symbol=event.symbol,
                side=event.side,
                quantity=event.quantity,
                created_at=event.ts,
            )
            fill = Fill(
                event.order_id,
                event.strategy_id,
                event.symbol,
                event.side,
                event.quantity,
                event.price,
                event.fee,
                event.ts,
            )
            self.journal.record_fill(order, fill)

    def register(self, config: StrategyConfig) -> None:
        """Register a strategy new to the registry; what the registry says of a known one stays."""
        kind = config.analyzers[0].type if config.analyzers else "custom"
        self.journal.register_if_new(
            config.strategy_id, config.name, kind, json.dumps(config.model_dump(mode="json"))
        )

    def resume(self, handle: StrategyHandle) -> bool:
        """Continue the strategy from its journal; True when it resumes an interrupted session.

        Its ``seq`` always continues after the last one stored (or published in this
        process). False for a strategy new to the journal, and for one whose last
        session ended with ``StrategyUnloaded``: such a load is announced again.
        """
        strategy_id = handle.strategy_id
        publisher = handle.publisher
        last_seq = self.journal.last_seq(strategy_id)
        stored = self.journal.latest_snapshot(strategy_id)
        next_seq = max(publisher.next_seq, last_seq + 1)
        if stored is not None:
            handle.trading_orchestrator.restore(stored.state)
            next_seq = max(next_seq, stored.seq + 1)
        publisher.resume_from(next_seq)
        if stored is None and last_seq == 0:
            return False
        log.bind(strategy_id=strategy_id).info("resumed from the journal at seq {}", next_seq)
        return not self._ended_cleanly(strategy_id, last_seq)

    def _ended_cleanly(self, strategy_id: str, last_seq: int) -> bool:
        if strategy_id in self._unloaded:
            return True
        if last_seq == 0:
            return False
        last = self.journal.events(strategy_id, after_seq=last_seq - 1)
        return bool(last) and isinstance(last[-1], StrategyUnloaded)

    def after_candle(self, candle: Candle, factory: TradingOrchestratorFactory) -> None:
        """Mark the candle's price if due, snapshot the strategies that published since their
        last snapshot, and commit."""
        window = int(candle.ts.timestamp()) // PRICE_MARK_SECONDS
        series = (candle.symbol, candle.timeframe)
        if self._marked_window.get(series) != window:
            self._marked_window[series] = window
            self.journal.record_price_mark(candle.symbol, candle.timeframe, candle.ts, candle.close)
        self.flush(candle.close_ts, factory)

    def flush(self, ts: datetime, factory: TradingOrchestratorFactory) -> None:
        """Snapshot, as of ``ts``, the strategies that published since their last one; commit."""
        # Swapped, not cleared after: a lifecycle call on another thread may publish meanwhile.
        touched, self._touched = self._touched, set()
        for strategy_id in touched:
            with factory.lock(strategy_id):
                handle = factory.find_handle(strategy_id)
                if handle is not None:
                    self._save(handle, ts)
        self.commit()

    def after_unload(self, handle: StrategyHandle, unloaded: StrategyUnloaded) -> None:
        """Factory listener: journal the unloaded strategy's final state and commit it.

        Positions closed by the unload leave the positions table and the snapshot
        together with the events that closed them.
        """
        strategy_id = unloaded.strategy_id
        self._touched.discard(strategy_id)
        self._unloaded.add(strategy_id)
        self._save(handle, unloaded.ts)
        if not self._batching:
            self.commit()

    def _save(self, handle: StrategyHandle, ts: datetime) -> None:
        strategy_id = handle.strategy_id
        state = handle.trading_orchestrator.snapshot()
        self.journal.save_snapshot(strategy_id, handle.publisher.next_seq - 1, ts, state)
        self.journal.upsert_positions(strategy_id, handle.position_lifecycle.open_positions())

    @contextmanager
    def one_commit(self) -> Iterator[None]:
        """Unloads inside the block (a shutdown) commit once, together, when it ends."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self.commit()

    def commit(self) -> bool:
        try:
            self.journal.commit()
        except StorageError as exc:
            self.failed_commits += 1
            reason = f"journal commit failed, new entries stopped: {exc}"
            log.error(reason)
            self._halt_entries(reason)
            return False
        return True
