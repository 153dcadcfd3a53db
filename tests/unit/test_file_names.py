"""Candle file names carry their series, and ``load_candles`` reads them back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradekit.data import load_candles, synthetic_frame
from tradekit.data.file_names import read_series_file_stem, series_file_stem
from tradekit.errors import DataError


class TestSeriesFileStem:
    @pytest.mark.parametrize(
        ("symbol", "timeframe", "stem"),
        [
            ("BTC/USDT", "1h", "BTC-USDT_1h"),
            ("ETH/BTC", "4h", "ETH-BTC_4h"),
            ("BTC/USDT:USDT", "15m", "BTC-USDT+USDT_15m"),
            ("SOL_X/USDT", "1d", "SOL_X-USDT_1d"),
        ],
    )
    def test_names_read_back_as_the_same_series(
        self, symbol: str, timeframe: str, stem: str
    ) -> None:
        assert series_file_stem(symbol, timeframe) == stem
        assert read_series_file_stem(stem) == (symbol, timeframe)

    @pytest.mark.parametrize("symbol", ["BTC-PERP", "A+B/USDT", "BTC/USDT*"])
    def test_a_symbol_that_would_not_read_back_is_refused(self, symbol: str) -> None:
        with pytest.raises(DataError, match="cannot name a candle file after"):
            series_file_stem(symbol, "1h")

    @pytest.mark.parametrize("stem", ["btc", "btc_1x", "_1h", "prices_2024"])
    def test_other_names_name_no_series(self, stem: str) -> None:
        assert read_series_file_stem(stem) is None


class TestLoadCandlesReadsTheName:
    def test_symbol_and_timeframe_come_from_the_name(self, tmp_path: Path) -> None:
        path = tmp_path / "ETH-USDT_4h.csv"
        synthetic_frame("ETH/USDT", "4h", 5).to_csv(path, index_label="timestamp")
        assert load_candles(path).symbols() == [("ETH/USDT", "4h")]

    def test_given_symbol_and_timeframe_win_over_the_name(self, tmp_path: Path) -> None:
        path = tmp_path / "ETH-USDT_4h.csv"
        synthetic_frame("ETH/USDT", "4h", 5).to_csv(path, index_label="timestamp")
        assert load_candles(path, "BTC/USDT").symbols() == [("BTC/USDT", "4h")]

    def test_any_other_name_is_the_symbol(self, tmp_path: Path) -> None:
        path = tmp_path / "prices.csv"
        synthetic_frame("X", "1h", 5).to_csv(path, index_label="timestamp")
        assert load_candles(path).symbols() == [("prices", "1h")]
