"""The ccxt client factory: settings reach the real ccxt objects, sync and pro."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from tradekit.config.settings import CcxtSettings
from tradekit.errors import ExchangeError
from tradekit.services.exchange.ccxt_client import make_ccxt_client, merge_urls

pytest.importorskip("ccxt")

LOCAL = "http://127.0.0.1:9/api/v3"


class TestMakeCcxtClient:
    def test_settings_reach_the_sync_client(self) -> None:
        settings = CcxtSettings(
            sandbox=False,
            api_key=SecretStr("key"),
            api_secret=SecretStr("secret"),
            urls={"public": LOCAL, "ws": {"spot": "ws://127.0.0.1:9/stream/ws"}},
            timeout_ms=1500,
            rate_limit_ms=5,
            options={"fetchMarkets": {"types": ["spot"]}},
        )
        client = make_ccxt_client(settings)
        assert client.urls["api"]["public"] == LOCAL
        assert client.urls["api"]["private"] == "https://api.binance.com/api/v3"
        assert client.urls["api"]["ws"] == {"spot": "ws://127.0.0.1:9/stream/ws"}
        assert (client.timeout, client.rateLimit, client.enableRateLimit) == (1500, 5, True)
        assert client.options["fetchMarkets"]["types"] == ["spot"]
        assert (client.apiKey, client.secret) == ("key", "secret")

    def test_urls_apply_after_sandbox_mode(self) -> None:
        client = make_ccxt_client(CcxtSettings(sandbox=True, urls={"public": LOCAL}))
        assert client.urls["api"]["public"] == LOCAL
        assert "testnet" in client.urls["api"]["private"]

    def test_pro_client_merges_nested_websocket_urls(self) -> None:
        settings = CcxtSettings(sandbox=False, urls={"ws": {"spot": "ws://127.0.0.1:9/stream/ws"}})
        client = make_ccxt_client(settings, pro=True)
        assert client.urls["api"]["ws"]["spot"] == "ws://127.0.0.1:9/stream/ws"
        assert client.urls["api"]["ws"]["linear"].startswith("wss://fstream")
        assert callable(client.watch_ohlcv)

    def test_unknown_exchange_suggests_a_close_one(self) -> None:
        with pytest.raises(ExchangeError, match=r"'binanse' is not a ccxt.*did you mean"):
            make_ccxt_client(CcxtSettings(exchange_id="binanse"))


class TestCcxtSettings:
    @pytest.mark.parametrize(
        ("urls", "where"),
        [({"public": "ftp://x/api"}, "urls.public"), ({"ws": {"spot": 3}}, "urls.ws.spot")],
    )
    def test_a_url_that_is_not_one_is_named(self, urls: dict[str, object], where: str) -> None:
        with pytest.raises(ValidationError, match=where.replace(".", r"\.")):
            CcxtSettings(urls=urls)

    @pytest.mark.parametrize("field", ["timeout_ms", "rate_limit_ms"])
    def test_times_must_be_positive(self, field: str) -> None:
        with pytest.raises(ValidationError, match=field):
            CcxtSettings.model_validate({field: 0})


def test_merge_urls_keeps_what_is_not_overridden() -> None:
    assert merge_urls({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 9}}) == {
        "a": {"b": 9, "c": 2},
        "d": 3,
    }
