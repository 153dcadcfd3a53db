"""``live_feeds`` reads ``exchange.ccxt.poll_interval_seconds`` for venues without websockets."""

from __future__ import annotations

import pytest

from tradekit.config.settings import CcxtSettings
from tradekit.data import default_poll_seconds
from tradekit.runtime.live_feeds import live_feeds
from tradekit.testing import strategy_config_from_dict

STRATEGIES = [
    strategy_config_from_dict(
        {
            "strategy_id": f"bot-{timeframe}",
            "symbols": ["BTC/USDT"],
            "timeframe": timeframe,
            "analyzers": [{"type": "time_interval", "params": {"every_bars": 2}}],
        }
    )
    for timeframe in ("1m", "1h")
]


class TestPollingInterval:
    def test_the_configured_interval_spaces_the_polls_of_every_feed(self) -> None:
        feeds = live_feeds(CcxtSettings(poll_interval_seconds=2.5), STRATEGIES)
        assert [feeds.poll_seconds(timeframe) for _, timeframe in feeds.symbols()] == [2.5, 2.5]

    def test_unset_each_feed_polls_at_its_timeframes_default(self) -> None:
        feeds = live_feeds(CcxtSettings(), STRATEGIES)
        assert [feeds.poll_seconds(timeframe) for _, timeframe in feeds.symbols()] == [
            default_poll_seconds("1h"),
            default_poll_seconds("1m"),
        ]
        assert default_poll_seconds("1m") < default_poll_seconds("1h")

    def test_a_polling_interval_not_above_zero_is_refused_by_the_settings(self) -> None:
        with pytest.raises(ValueError, match="poll_interval_seconds"):
            CcxtSettings(poll_interval_seconds=0)
