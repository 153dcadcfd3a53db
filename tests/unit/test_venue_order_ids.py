"""Client order ids sent to venues: within each venue's limits, and read back to the strategy."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradekit.config.settings import ExchangeSettings
from tradekit.domain import Candle, Order, OrderSide
from tradekit.ids import (
    DEFAULT_VENUE_ID_RULES,
    ClientOrderId,
    StrategyIdResolver,
    VenueIdRules,
    VenueOrderId,
    strategy_tag,
    venue_id_rules,
)
from tradekit.services.exchange.ccxt_exchange import CcxtExchange

# The strategy id pattern of StrategyConfig, up to its 64 characters.
STRATEGY_IDS = st.from_regex(r"\A[a-z0-9]{1,20}(?:[-_][a-z0-9]{1,20}){0,3}\Z").filter(
    lambda text: len(text) <= 64
)
NUMBERS = st.integers(min_value=1, max_value=10**12)
BINANCE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
CONSERVATIVE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
ALPHANUMERIC = re.compile(r"^[A-Za-z0-9]{1,32}$")
RULES = st.sampled_from([DEFAULT_VENUE_ID_RULES, venue_id_rules("binance"), venue_id_rules("okx")])


class TestEncoding:
    @given(strategy_id=STRATEGY_IDS, number=NUMBERS, rules=RULES)
    def test_every_id_maps_back_to_its_order_through_the_known_strategies(
        self, strategy_id: str, number: int, rules: VenueIdRules
    ) -> None:
        text = VenueOrderId.encode(ClientOrderId(strategy_id, number), rules)
        resolver = StrategyIdResolver([strategy_id, "other-bot", "x"])
        assert resolver.resolve(VenueOrderId.parse(text)) == (strategy_id, number)

    @given(strategy_id=STRATEGY_IDS, number=NUMBERS)
    def test_binance_ids_match_binance_pattern(self, strategy_id: str, number: int) -> None:
        text = VenueOrderId.encode(ClientOrderId(strategy_id, number), venue_id_rules("binance"))
        assert BINANCE.match(text)

    @given(strategy_id=STRATEGY_IDS, number=NUMBERS)
    def test_unknown_venues_get_32_letters_digits_dashes_or_underscores(
        self, strategy_id: str, number: int
    ) -> None:
        text = VenueOrderId.encode(ClientOrderId(strategy_id, number), venue_id_rules("kraken"))
        assert CONSERVATIVE.match(text)

    @given(strategy_id=STRATEGY_IDS, number=NUMBERS)
    def test_alphanumeric_venues_get_alphanumeric_ids(self, strategy_id: str, number: int) -> None:
        assert ALPHANUMERIC.match(
            VenueOrderId.encode(ClientOrderId(strategy_id, number), venue_id_rules("okx"))
        )

    def test_a_strategy_id_that_fits_is_readable_without_the_registry(self) -> None:
        text = VenueOrderId.encode(ClientOrderId("rsi-btc", 7), venue_id_rules("binance"))
        assert text == "TKrsi-btc-7"
        assert VenueOrderId.parse(text) == ("rsi-btc", 7, False)
        assert StrategyIdResolver([]).resolve(VenueOrderId.parse(text)) is None

    def test_a_long_strategy_id_becomes_its_tag(self) -> None:
        strategy_id = "momentum-breakout-btc-usdt-4h-v2"
        text = VenueOrderId.encode(ClientOrderId(strategy_id, 12), venue_id_rules("binance"))
        assert text == f"TH{strategy_tag(strategy_id)}N12"
        assert StrategyIdResolver([strategy_id]).resolve(VenueOrderId.parse(text)) == (
            strategy_id,
            12,
        )

    def test_a_strategy_keeps_one_form_over_its_first_hundred_million_orders(self) -> None:
        strategy_id = "a" * 25  # 2 + 25 + 1 + 8 = 36: just fits Binance
        rules = venue_id_rules("binance")
        texts = [VenueOrderId.encode(ClientOrderId(strategy_id, n), rules) for n in (1, 10**8 - 1)]
        assert all(text.startswith("TK") for text in texts)
        longer = VenueOrderId.encode(ClientOrderId(strategy_id + "b", 1), rules)
        assert longer.startswith("TH")

    @pytest.mark.parametrize(
        "text", ["", "x-1", "TK", "TK-1", "TKrsi", "TKrsi-0", "TKRSI-1", "THabc", "THzzzzzzzzzzN1"]
    )
    def test_ids_not_made_by_tradekit_are_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="not made by tradekit"):
            VenueOrderId.parse(text)

    def test_an_id_that_cannot_fit_says_so(self) -> None:
        with pytest.raises(ValueError, match="at most 8 characters"):
            VenueOrderId.encode(ClientOrderId("rsi", 1), VenueIdRules(8, "A-Za-z0-9"))

    def test_two_strategies_sharing_a_tag_are_refused(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("tradekit.ids.strategy_tag", lambda strategy_id: "0123456789")
        with pytest.raises(ValueError, match="share the order id tag"):
            StrategyIdResolver(["a", "b"])


class RecordingClient:
    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self.params.append(dict(params or {}))
        return {"id": "1", "filled": amount, "average": 100.0, "fee": None}


class TestCcxtExchangeSendsThem:
    def test_the_unified_client_order_id_param_carries_the_strategy(self) -> None:
        client = RecordingClient()
        exchange = CcxtExchange(ExchangeSettings(kind="ccxt"), True, client)
        ts = datetime(2024, 1, 1, tzinfo=UTC)
        candle = Candle("BTC/USDT", "1h", ts, 100.0, 101.0, 99.0, 100.0, 5.0)
        strategy_id = "a-very-long-strategy-id-for-binance-and-more"
        order = Order(f"{strategy_id}-3", strategy_id, "BTC/USDT", OrderSide.BUY, 0.1, ts)
        exchange.submit(order, candle)
        (params,) = client.params
        sent = params["clientOrderId"]
        assert BINANCE.match(sent)
        assert StrategyIdResolver([strategy_id]).resolve(VenueOrderId.parse(sent)) == (
            strategy_id,
            3,
        )
