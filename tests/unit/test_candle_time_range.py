"""Candle times beyond what pandas can hold (after 2262) are a ``DataError`` naming the file,
row and value, never an ``OutOfBoundsDatetime`` traceback: in files, frames and candles."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradekit import Candle, DataError, StrategyConfig, TradekitSettings
from tradekit.data.files import load_candles
from tradekit.data.sources import FrameSource
from tradekit.runtime.backtest import backtest

FAR_FUTURE = datetime(2300, 1, 1, tzinfo=UTC)
HEADER = "timestamp,open,high,low,close,volume"
RANGE_TEXT = "is outside the supported range 1678-01-01 to 2262-01-01"


def hourly_frame(start: str, bars: int = 3) -> pd.DataFrame:
    index = pd.date_range(start, periods=bars, freq="h", tz="UTC", unit="us", name="ts")
    prices = np.linspace(100.0, 101.0, bars)
    return pd.DataFrame(
        {"open": prices, "high": prices + 1, "low": prices - 1, "close": prices, "volume": 1.0},
        index=index,
    )


class TestFiles:
    @pytest.mark.parametrize(
        "stamp", ["2300-01-01T00:00:00Z", str(int(FAR_FUTURE.timestamp())), "1600-01-01T00:00:00Z"]
    )
    def test_csv_time_out_of_range_names_line_column_and_value(
        self, tmp_path: Path, stamp: str
    ) -> None:
        path = tmp_path / "BTCUSDT.csv"
        path.write_text(
            f"{HEADER}\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n{stamp},1,2,0.5,1.5,10\n",
            encoding="utf-8",
        )

        with pytest.raises(DataError) as caught:
            load_candles(path, timeframe="1h")

        assert f"line 3, column 'timestamp': timestamp '{stamp}' {RANGE_TEXT}" in str(caught.value)

    def test_parquet_time_out_of_range_names_row_and_value(self, tmp_path: Path) -> None:
        path = tmp_path / "BTCUSDT.parquet"
        hourly_frame("2261-12-31T23:00:00").reset_index().to_parquet(path)

        with pytest.raises(DataError) as caught:
            load_candles(path, timeframe="1h")

        assert "row 2, column 'ts': timestamp '2262-01-01 00:00:00+00:00'" in str(caught.value)
        assert RANGE_TEXT in str(caught.value)


class TestFrames:
    def test_frame_source_refuses_times_out_of_range(self) -> None:
        with pytest.raises(DataError, match="series BTC/USDT 1h: row 0: open time 2300-01-01"):
            FrameSource({("BTC/USDT", "1h"): hourly_frame("2300-01-01")})

    def test_backtest_refuses_frames_out_of_range(self) -> None:
        config = StrategyConfig.model_validate(
            {
                "strategy_id": "far",
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "analyzers": [{"type": "threshold", "params": {"source": "close", "below": 1}}],
            }
        )
        frames = {("BTC/USDT", "1h"): hourly_frame("2300-01-01")}

        with pytest.raises(DataError, match=RANGE_TEXT):
            backtest(TradekitSettings(), [config], frames)


class TestCandle:
    @pytest.mark.parametrize("ts", [FAR_FUTURE, datetime(1600, 1, 1, tzinfo=UTC)])
    def test_candle_refuses_times_out_of_range(self, ts: datetime) -> None:
        with pytest.raises(DataError, match=re.escape(f"open time {ts.isoformat()} {RANGE_TEXT}")):
            Candle("BTC/USDT", "1h", ts, 1.0, 2.0, 0.5, 1.5, 10.0)

    def test_candle_just_inside_the_range_is_accepted(self) -> None:
        candle = Candle("BTC/USDT", "1h", datetime(2261, 12, 31, 23, tzinfo=UTC), 1, 2, 0.5, 1, 1)
        assert candle.close_ts == datetime(2262, 1, 1, tzinfo=UTC)
