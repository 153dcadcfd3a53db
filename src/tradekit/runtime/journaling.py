"""``EngineJournal``: writes what the engine does to the journal, and resumes from it.

Every event is recorded as it is published; after each candle the strategies
that changed are snapshotted and everything is committed in one transaction. On
load, a strategy with a snapshot resumes from it: its positions, pending orders,
risk day and next ``seq`` come back, and candles up to the snapshot are only
replayed into its higher-timeframe gate. A failed commit stops new entries
everywhere (nothing already journaled is lost; the journal keeps the batch and
retries on the next candle).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from tradekit.config.strategy import StrategyConfig
from tradekit.containers.factory import Container
from tradekit.domain import Candle, Fill, Order
from tradekit.errors import StorageError
from tradekit.events import Event, OrderFilled
from tradekit.logs import log
from tradekit.protocols import Journal


class EngineJournal:
    """Connects one engine to one journal; one per engine."""

    def __init__(self, journal: Journal, halt_entries: Callable[[str], None]) -> None:
        self.journal = journal
        self._halt_entries = halt_entries
        self._touched: set[str] = set()
        self.failed_commits = 0

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
        kind = config.analyzers[0].type if config.analyzers else "custom"
        self.journal.register_strategy(
            config.strategy_id, config.name, kind, json.dumps(config.model_dump(mode="json"))
        )

    def resume(self, container: Container) -> bool:
        """Restore the strategy from its latest snapshot; False when it has none."""
        strategy_id: str = container.strategy_id()
        stored = self.journal.latest_snapshot(strategy_id)
        if stored is None:
            return False
        container.trading_orchestrator().restore(stored.state)
        next_seq = max(stored.seq, self.journal.last_seq(strategy_id)) + 1
        container.publisher().resume_from(next_seq)
        log.bind(strategy_id=strategy_id).info("resumed from the journal at seq {}", next_seq)
        return True

    def after_candle(self, candle: Candle, containers: Sequence[tuple[str, Container]]) -> None:
        """Snapshot the strategies this candle changed, then commit the batch."""
        for strategy_id, container in containers:
            orchestrator = container.trading_orchestrator()
            positions = container.position_lifecycle()
            if strategy_id not in self._touched and not positions.open_count():
                continue
            state: dict[str, Any] = orchestrator.snapshot()
            self.journal.save_snapshot(
                strategy_id, container.publisher().next_seq - 1, candle.close_ts, state
            )
            self.journal.upsert_positions(strategy_id, positions.open_positions())
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
        self._touched.clear()
        return True
