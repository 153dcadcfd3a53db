"""``recover_fills``: venue trades made while no run was going, against a bot resumed from
its journal; the venue is a list of trades."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ticker_strategies import ticker

from tradekit.domain import Fill, Order, OrderSide, Side
from tradekit.events import VenueFillRecovered
from tradekit.runtime import RunMode
from tradekit.runtime.bootstrap import Runtime, bootstrap
from tradekit.runtime.fill_recovery import FillRecovery, recover_fills
from tradekit.services.exchange.ccxt_exchange import VenueTrade
from tradekit.services.journal.store import SqlJournal
from tradekit.services.positions.state import CloseIntent, OpenIntent
from tradekit.testing import settings_from_dict

OPENED = datetime(2024, 1, 1, tzinfo=UTC)
OPENED_MS = int(OPENED.timestamp() * 1000)


class ListedTrades:
    """A venue whose account trades are ``trades``; records each ``since`` asked."""

    venue = "fakex"

    def __init__(self, trades: list[VenueTrade]) -> None:
        self.trades = trades
        self.asked: list[int] = []

    def trades_since(self, symbol: str, since_ms: int) -> list[VenueTrade]:
        self.asked.append(since_ms)
        return [t for t in self.trades if t.symbol == symbol and t.timestamp_ms >= since_ms]

    def order_trades(self, first: VenueTrade) -> list[VenueTrade]:
        return [t for t in self.trades if t.venue_order_id == first.venue_order_id]


def trade(
    n: int, side: str, quantity: float, client_order_id: str | None, order: int | None = None
) -> VenueTrade:
    return VenueTrade(
        trade_id=str(500 + n),
        venue_order_id=str(1000 + (n if order is None else order)),
        client_order_id=client_order_id,
        symbol="BTC/USDT",
        side=side,
        quantity=quantity,
        price=110.0,
        fee=0.0,
        timestamp_ms=OPENED_MS + n * 60_000,
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A journal where bot ``holder`` holds 0.5 BTC/USDT bought by its order ``holder-1``."""
    address = f"sqlite:///{tmp_path / 'journal.db'}"
    with SqlJournal(address) as journal:
        journal.acquire_writer()
        runtime = started(journal)
        handle = runtime.factory.handle("holder")
        lifecycle = handle.position_lifecycle
        order = Order(lifecycle.new_order_id(), "holder", "BTC/USDT", OrderSide.BUY, 0.5, OPENED)
        lifecycle.register_intent(order, OpenIntent(Side.LONG))
        lifecycle.apply_fills(
            [Fill(order.order_id, "holder", "BTC/USDT", OrderSide.BUY, 0.5, 100.0, 0.0, OPENED)]
        )
        runtime.engine.flush_journal()
        runtime.close()
    return address


def started(journal: SqlJournal) -> Runtime:
    runtime = bootstrap(settings_from_dict({}), mode=RunMode.PAPER, journal=journal)
    runtime.engine.load([ticker("holder")])
    return runtime


def recover(url: str, venue: ListedTrades) -> tuple[FillRecovery, float, list[VenueFillRecovered]]:
    """Resume ``holder`` and read ``venue`` back; the outcome, its position, its read-backs."""
    with SqlJournal(url) as journal:
        journal.acquire_writer()
        runtime = started(journal)
        try:
            result = recover_fills(runtime.engine, journal, venue, {"holder": ["BTC/USDT"]})
            position = runtime.factory.handle("holder").position_lifecycle.position("BTC/USDT")
            held = 0.0 if position is None else position.quantity
        finally:
            runtime.close()
        events = [e for e in journal.events("holder") if isinstance(e, VenueFillRecovered)]
    return result, held, events


class TestRecoverFills:
    def test_reads_from_a_minute_before_the_last_journaled_fill(self, url: str) -> None:
        venue = ListedTrades([])
        recover(url, venue)
        assert venue.asked == [int((OPENED - timedelta(minutes=1)).timestamp() * 1000)]

    def test_a_sell_made_while_down_closes_part_of_the_position_once(self, url: str) -> None:
        venue = ListedTrades([trade(1, "sell", 0.2, "TKholder-7")])
        result, held, events = recover(url, venue)
        assert held == pytest.approx(0.3)
        assert [fill.order_id for fill in result.applied] == ["holder-7"]
        assert [(event.trade_id, event.quantity) for event in events] == [("501", 0.2)]
        again, held_again, events_again = recover(url, venue)
        assert (again.applied, again.already_journaled) == ([], 1)
        assert held_again == pytest.approx(0.3)
        assert len(events_again) == 1

    def test_fills_of_other_programs_and_of_unknown_bots_are_reported_not_applied(
        self, url: str
    ) -> None:
        venue = ListedTrades([trade(1, "buy", 0.1, None), trade(2, "buy", 0.1, "TKgone-bot-3")])
        result, held, events = recover(url, venue)
        assert held == pytest.approx(0.5)
        assert events == []
        reasons = {fill.trade.trade_id: fill.reason for fill in result.unapplied}
        assert reasons == {
            "501": "not placed by tradekit",
            "502": "bot 'gone-bot' no longer exists",
        }
        assert "UNKNOWN fill: venue trade 502 (order 1002, client order id 'TKgone-bot-3')" in (
            "\n".join(result.lines())
        )

    def test_a_fill_the_book_cannot_take_is_reported_with_why(self, url: str) -> None:
        venue = ListedTrades([trade(1, "sell", 0.9, "TKholder-8")])
        result, held, events = recover(url, venue)
        assert held == pytest.approx(0.5)
        assert events == []
        (unapplied,) = result.unapplied
        assert "cannot close 0.9 BTC/USDT; only 0.5 is open" in unapplied.reason

    def test_an_order_number_read_back_is_never_handed_out_again(self, url: str) -> None:
        """A crash between sending an order and journaling it leaves the book's numbering
        behind the venue: the bot's next order must not reuse the number."""
        venue = ListedTrades([trade(1, "buy", 0.25, "TKholder-5")])
        with SqlJournal(url) as journal:
            journal.acquire_writer()
            runtime = started(journal)
            try:
                recover_fills(runtime.engine, journal, venue, {"holder": ["BTC/USDT"]})
                lifecycle = runtime.factory.handle("holder").position_lifecycle
                assert lifecycle.new_order_id() == "holder-6"
            finally:
                runtime.close()

    def test_an_order_partly_journaled_before_the_window_gets_only_its_rest(self, url: str) -> None:
        """The window starts at the symbol's last journaled fill, later than the order's
        first trade: what the journal covers is counted on all of the order's trades."""
        with SqlJournal(url) as journal:
            journal.acquire_writer()
            runtime = started(journal)
            lifecycle = runtime.factory.handle("holder").position_lifecycle
            later = OPENED + timedelta(hours=2)
            order = Order("holder-2", "holder", "BTC/USDT", OrderSide.SELL, 0.1, later)
            lifecycle.register_intent(order, CloseIntent(percent=20.0))
            lifecycle.apply_fills(
                [Fill("holder-2", "holder", "BTC/USDT", OrderSide.SELL, 0.1, 100.0, 0.0, later)]
            )
            runtime.engine.flush_journal()
            runtime.close()
        journaled_part = trade(0, "buy", 0.5, "TKholder-1", order=1)
        rest = replace(trade(0, "buy", 0.3, "TKholder-1", order=1), trade_id="599")
        rest = replace(rest, timestamp_ms=int((later + timedelta(hours=1)).timestamp() * 1000))
        result, held, events = recover(url, ListedTrades([journaled_part, rest]))
        assert [(fill.trade.trade_id, fill.quantity) for fill in result.applied] == [("599", 0.3)]
        assert held == pytest.approx(0.4 + 0.3)
        assert [event.order_id for event in events] == ["holder-1"]
