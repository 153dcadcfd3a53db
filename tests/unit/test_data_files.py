"""Tests for loading candle files: column spellings, timestamps, validation, repairs and gaps."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from tradekit.data.files import FileSource, LoadedCandles, load_candles
from tradekit.errors import DataError
from tradekit.protocols import CandleSource

START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
START_S = int(START.timestamp())
HEADER = "timestamp,open,high,low,close,volume"


def hourly_rows(hours: int, start_hour: int = 0) -> list[str]:
    """``hours`` valid CSV rows of hourly candles, ISO timestamps without a zone."""
    rows = []
    for hour in range(start_hour, start_hour + hours):
        ts = (START + timedelta(hours=hour)).strftime("%Y-%m-%d %H:%M:%S")
        price = 100 + hour
        rows.append(f"{ts},{price},{price + 2},{price - 1},{price + 1},{10 + hour}")
    return rows


def write(tmp_path: Path, lines: list[str], name: str = "BTCUSDT.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def problems_of(path: Path, **kwargs: object) -> str:
    with pytest.raises(DataError) as caught:
        load_candles(path, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


class TestColumns:
    def test_standard_file_loads_one_series_named_after_the_file(self, tmp_path: Path) -> None:
        loaded = load_candles(write(tmp_path, [HEADER, *hourly_rows(3)]))
        assert loaded.symbols() == [("BTCUSDT", "1h")]
        frame = loaded.frames()[("BTCUSDT", "1h")]
        assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
        assert str(pd.DatetimeIndex(frame.index).tz) == "UTC"
        assert frame.index[0] == pd.Timestamp(START)
        assert frame["close"].tolist() == [101.0, 102.0, 103.0]
        assert loaded.repairs == []
        assert loaded.gaps == {}

    def test_short_and_mixed_case_spellings_are_accepted(self, tmp_path: Path) -> None:
        rows = [r.split(",", 1)[1] for r in hourly_rows(2)]
        lines = ["Open_Time,O,H,L,C,Vol"]
        lines += [f"{START_S + 3600 * i},{row}" for i, row in enumerate(rows)]
        loaded = load_candles(write(tmp_path, lines), symbol="BTC/USDT")
        assert loaded.symbols() == [("BTC/USDT", "1h")]
        assert loaded.frames()[("BTC/USDT", "1h")]["open"].tolist() == [100.0, 101.0]

    def test_separate_date_and_time_columns_are_combined(self, tmp_path: Path) -> None:
        lines = [
            "<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>",
            "2024-01-01,00:00:00,1,2,0.5,1.5,3",
            "2024-01-01,00:05:00,1.5,2,1,1.8,4",
        ]
        loaded = load_candles(write(tmp_path, lines))
        frame = loaded.frames()[("BTCUSDT", "5m")]
        assert frame.index[1] == pd.Timestamp(START + timedelta(minutes=5))

    def test_adjusted_close_is_used_only_without_close_and_reported(self, tmp_path: Path) -> None:
        lines = ["Date,Open,High,Low,Adj Close,Volume", "2024-01-01,1,2,0.5,1.5,3"]
        loaded = load_candles(write(tmp_path, lines), timeframe="1d")
        assert loaded.frames()[("BTCUSDT", "1d")]["close"].tolist() == [1.5]
        assert loaded.repairs == ["used column 'Adj Close' as close: the file has no close column"]
        both = ["Date,Open,High,Low,Close,Adj Close,Volume", "2024-01-01,1,2,0.5,1.5,1.2,3"]
        loaded = load_candles(write(tmp_path, both, "both.csv"), timeframe="1d")
        assert loaded.frames()[("both", "1d")]["close"].tolist() == [1.5]

    def test_missing_columns_list_what_was_found_and_expected(self, tmp_path: Path) -> None:
        path = write(tmp_path, ["Date,Open,High,Low", "2024-01-01,1,2,0.5"])
        message = problems_of(path)
        assert str(path) in message
        assert "missing required column(s): close (any of close, c, adj_close)" in message
        assert "volume (any of volume, vol, v)" in message
        assert "Found columns: 'Date', 'Open', 'High', 'Low'" in message


class TestTimestamps:
    def test_epoch_seconds_milliseconds_and_iso_give_the_same_candles(self, tmp_path: Path) -> None:
        values = [row.split(",", 1)[1] for row in hourly_rows(3)]
        stamps = {
            "s": [str(START_S + 3600 * i) for i in range(3)],
            "ms": [str((START_S + 3600 * i) * 1000) for i in range(3)],
            "iso": [(START + timedelta(hours=i)).isoformat() for i in range(3)],
            "zoned": [
                (START + timedelta(hours=i)).astimezone(timezone(timedelta(hours=2))).isoformat()
                for i in range(3)
            ],
        }
        frames = []
        for name, column in stamps.items():
            lines = [HEADER] + [f"{ts},{row}" for ts, row in zip(column, values, strict=True)]
            frames.append(load_candles(write(tmp_path, lines, f"{name}.csv"), symbol="X").frames())
        assert all(frame[("X", "1h")].equals(frames[0][("X", "1h")]) for frame in frames)

    def test_naive_iso_timestamps_are_utc(self, tmp_path: Path) -> None:
        loaded = load_candles(write(tmp_path, [HEADER, *hourly_rows(2)]))
        assert loaded.frames()[("BTCUSDT", "1h")].index[0] == pd.Timestamp("2024-01-01", tz="UTC")

    def test_unparseable_timestamp_names_line_and_column(self, tmp_path: Path) -> None:
        rows = hourly_rows(3)
        rows[1] = "yesterday" + rows[1][19:]
        message = problems_of(write(tmp_path, [HEADER, *rows]))
        assert "line 3, column 'timestamp': cannot read timestamp 'yesterday'" in message
        assert "the header is line 1, so the first data row is line 2" in message

    def test_a_millisecond_value_in_a_seconds_column_is_flagged(self, tmp_path: Path) -> None:
        values = [row.split(",", 1)[1] for row in hourly_rows(3)]
        stamps = [str(START_S), str((START_S + 3600) * 1000), str(START_S + 7200)]
        lines = ["time,open,high,low,close,volume"]
        lines += [f"{ts},{row}" for ts, row in zip(stamps, values, strict=True)]
        message = problems_of(write(tmp_path, lines), timeframe="1h")
        assert (
            f"line 3, column 'time': timestamp {(START_S + 3600) * 1000} looks like epoch "
            "milliseconds, but the column holds epoch seconds"
        ) in message

    def test_empty_timestamp_is_a_problem(self, tmp_path: Path) -> None:
        rows = hourly_rows(3)
        rows[2] = rows[2][19:]
        message = problems_of(write(tmp_path, [HEADER, *rows]))
        assert "line 4, column 'timestamp': the timestamp is empty" in message


class TestTimeframe:
    def test_inferred_from_median_spacing_despite_a_gap(self, tmp_path: Path) -> None:
        rows = hourly_rows(4) + hourly_rows(3, start_hour=10)
        loaded = load_candles(write(tmp_path, [HEADER, *rows]))
        assert loaded.symbols() == [("BTCUSDT", "1h")]

    def test_spacing_matching_no_timeframe_is_an_error(self, tmp_path: Path) -> None:
        lines = [HEADER] + [
            f"{START_S + 420 * i},1,2,0.5,1.5,3" for i in range(4)
        ]  # every 7 minutes
        message = problems_of(write(tmp_path, lines))
        assert "cannot infer the timeframe of BTCUSDT" in message
        assert "0:07:00 (420 s), which matches no supported timeframe" in message
        assert "pass timeframe=" in message

    def test_one_row_cannot_give_a_timeframe(self, tmp_path: Path) -> None:
        message = problems_of(write(tmp_path, [HEADER, *hourly_rows(1)]))
        assert "cannot infer the timeframe of BTCUSDT from 1 timestamp(s)" in message
        assert load_candles(write(tmp_path, [HEADER, *hourly_rows(1)]), timeframe="1h").symbols()

    def test_unknown_timeframe_argument_is_refused(self, tmp_path: Path) -> None:
        message = problems_of(write(tmp_path, [HEADER, *hourly_rows(2)]), timeframe="1hr")
        assert "unknown timeframe '1hr'" in message

    def test_timeframe_column_splits_series_and_unknown_values_are_flagged(
        self, tmp_path: Path
    ) -> None:
        lines = ["timestamp,timeframe,open,high,low,close,volume"]
        lines += [f"{START_S + 3600 * i},1h,1,2,0.5,1.5,3" for i in range(3)]
        lines += [f"{START_S + 14400 * i},4h,1,2,0.5,1.5,3" for i in range(2)]
        path = write(tmp_path, lines)
        assert load_candles(path, symbol="X").symbols() == [("X", "1h"), ("X", "4h")]
        assert load_candles(path, timeframe="4h").symbols() == [("BTCUSDT", "4h")]
        lines.append(f"{START_S + 14400 * 2},4hours,1,2,0.5,1.5,3")
        message = problems_of(write(tmp_path, lines))
        assert "line 7, column 'timeframe': unknown timeframe '4hours'" in message


class TestValidation:
    @pytest.mark.parametrize(
        ("field", "value", "column", "expected"),
        [
            ("close", "", "close", "close is empty"),
            ("close", "n/a", "close", "close 'n/a' is not a number"),
            ("open", "0", "open", "open must be a finite number > 0, got 0.0"),
            ("low", "-3", "low", "low must be a finite number > 0, got -3.0"),
            ("volume", "-1", "volume", "volume must be a finite number >= 0, got -1.0"),
            ("high", "101.5", "high", "high 101.5 is below max(open, close) = 102.0"),
            ("low", "101.5", "low", "low 101.5 is above min(open, close) = 101.0"),
        ],
    )
    def test_bad_value_names_file_line_and_column(
        self, tmp_path: Path, field: str, value: str, column: str, expected: str
    ) -> None:
        rows = hourly_rows(3)
        cells = rows[1].split(",")
        cells[["timestamp", "open", "high", "low", "close", "volume"].index(field)] = value
        rows[1] = ",".join(cells)
        path = write(tmp_path, [HEADER, *rows])
        message = problems_of(path)
        assert message.startswith(f"{path}: 1 problem(s)")
        assert f"line 3, column '{column}': {expected}" in message

    def test_misaligned_timestamp_is_reported_with_the_expected_open(self, tmp_path: Path) -> None:
        rows = hourly_rows(3)
        rows[2] = rows[2].replace("02:00:00", "02:30:00")
        message = problems_of(write(tmp_path, [HEADER, *rows]), timeframe="1h")
        assert (
            "line 4, column 'timestamp': timestamp 2024-01-01T02:30:00+00:00 is not aligned to "
            "the 1h timeframe of BTCUSDT; expected the open time of a 1h candle such as "
            "2024-01-01T02:00:00+00:00"
        ) in message

    def test_problems_are_collected_in_file_order_up_to_the_limit(self, tmp_path: Path) -> None:
        rows = [row.replace(",10", ",-10", 1) for row in hourly_rows(8)]
        message = problems_of(write(tmp_path, [HEADER, *rows]), max_problems=3)
        lines = message.splitlines()
        assert lines[0].endswith(
            "8 problem(s) in the candle data (the header is line 1, "
            "so the first data row is line 2):"
        )
        assert [line.split(",")[0] for line in lines[1:4]] == [
            "  - line 2",
            "  - line 3",
            "  - line 4",
        ]
        assert lines[4] == "  ... and 5 more"

    def test_blank_lines_do_not_shift_line_numbers(self, tmp_path: Path) -> None:
        rows = hourly_rows(3)
        rows[2] = rows[2].replace(",12", ",-12")
        message = problems_of(write(tmp_path, [HEADER, rows[0], "", rows[1], rows[2]]))
        assert "line 5, column 'volume'" in message


class TestRepairs:
    def test_unsorted_rows_are_sorted_and_reported(self, tmp_path: Path) -> None:
        rows = hourly_rows(4)
        loaded = load_candles(write(tmp_path, [HEADER, rows[2], rows[0], rows[3], rows[1]]))
        frame = loaded.frames()[("BTCUSDT", "1h")]
        assert frame.index.is_monotonic_increasing
        assert frame["close"].tolist() == [101.0, 102.0, 103.0, 104.0]
        assert loaded.repairs == ["BTCUSDT 1h: sorted 4 rows into time order"]

    def test_exact_duplicates_are_dropped_and_reported(self, tmp_path: Path) -> None:
        rows = hourly_rows(3)
        loaded = load_candles(write(tmp_path, [HEADER, rows[0], rows[1], rows[1], rows[2]]))
        assert len(loaded.frames()[("BTCUSDT", "1h")]) == 3
        assert loaded.repairs == ["BTCUSDT 1h: dropped 1 exact duplicate row(s) (line 4)"]

    def test_same_timestamp_with_other_values_names_both_rows(self, tmp_path: Path) -> None:
        rows = hourly_rows(3)
        changed = rows[1].rsplit(",", 1)[0] + ",99"
        message = problems_of(write(tmp_path, [HEADER, rows[0], rows[1], rows[2], changed]))
        assert "line 5, column 'timestamp': timestamp 2024-01-01T01:00:00+00:00" in message
        assert "is also on line 3, with different values" in message


class TestGaps:
    def test_gaps_are_counted_and_the_first_ones_listed(self, tmp_path: Path) -> None:
        rows = hourly_rows(2) + hourly_rows(1, start_hour=5) + hourly_rows(2, start_hour=7)
        loaded = load_candles(write(tmp_path, [HEADER, *rows]), timeframe="1h")
        gaps = loaded.gaps[("BTCUSDT", "1h")]
        assert (gaps.count, gaps.missing_bars) == (2, 4)
        assert gaps.first[0].after == START + timedelta(hours=1)
        assert gaps.first[0].resumes == START + timedelta(hours=5)
        assert [gap.missing for gap in gaps.first] == [3, 1]
        assert str(gaps).startswith("BTCUSDT 1h: 2 gap(s), 4 candle(s) missing")
        assert loaded.repairs == []


class TestSymbols:
    def test_symbol_column_gives_one_series_per_symbol(self, tmp_path: Path) -> None:
        lines = ["timestamp,symbol,open,high,low,close,volume"]
        for i in range(3):
            lines.append(f"{START_S + 3600 * i},ETH/USDT,1,2,0.5,1.5,3")
            lines.append(f"{START_S + 3600 * i},BTC/USDT,10,20,5,15,3")
        path = write(tmp_path, lines, "mixed.csv")
        loaded = load_candles(path)
        assert loaded.symbols() == [("BTC/USDT", "1h"), ("ETH/USDT", "1h")]
        assert load_candles(path, symbol="ETH/USDT").symbols() == [("ETH/USDT", "1h")]
        message = problems_of(path, symbol="SOL/USDT")
        assert "no rows for symbol 'SOL/USDT' in column 'symbol'" in message
        assert "BTC/USDT, ETH/USDT" in message

    def test_empty_symbol_is_a_problem(self, tmp_path: Path) -> None:
        lines = ["timestamp,symbol,open,high,low,close,volume"]
        lines += [f"{START_S + 3600 * i},BTC,1,2,0.5,1.5,3" for i in range(3)]
        lines.append(f"{START_S + 3 * 3600},,1,2,0.5,1.5,3")
        message = problems_of(write(tmp_path, lines))
        assert "line 5, column 'symbol': the value is empty" in message


class TestFileTypes:
    def test_parquet_with_a_datetime_index_loads(self, tmp_path: Path) -> None:
        index = pd.date_range(START, periods=3, freq="4h", tz="UTC", name="ts")
        frame = pd.DataFrame(
            {"open": 1.0, "high": 2.0, "low": 0.5, "close": [1.5, 1.6, 1.7], "volume": 3.0},
            index=index,
        )
        path = tmp_path / "eth.parquet"
        frame.to_parquet(path)
        loaded = load_candles(path, symbol="ETH/USDT")
        assert loaded.symbols() == [("ETH/USDT", "4h")]
        assert loaded.frames()[("ETH/USDT", "4h")]["close"].tolist() == [1.5, 1.6, 1.7]

    def test_parquet_problems_count_rows_from_one(self, tmp_path: Path) -> None:
        frame = pd.DataFrame(
            {
                "Time": [START_S * 1000 + 3_600_000 * i for i in range(3)],
                "Open": [1.0, 1.0, 1.0],
                "High": [2.0, 0.9, 2.0],
                "Low": [0.5, 0.5, 0.5],
                "Close": [1.5, 1.5, 1.5],
                "Volume": [3.0, 3.0, 3.0],
            }
        )
        path = tmp_path / "bad.parquet"
        frame.to_parquet(path)
        message = problems_of(path)
        assert "rows count from 1 at the first data row" in message
        assert "row 2, column 'High': high 0.9 is below max(open, close) = 1.5" in message

    @pytest.mark.parametrize(
        ("name", "content", "expected"),
        [
            ("prices.xlsx", "x", "unsupported file type"),
            ("empty.csv", "", "the file is empty"),
            ("header.csv", HEADER, "no candle rows below the header"),
        ],
    )
    def test_unreadable_files_are_explained(
        self, tmp_path: Path, name: str, content: str, expected: str
    ) -> None:
        path = tmp_path / name
        path.write_text(content)
        message = problems_of(path)
        assert str(path) in message
        assert expected in message

    def test_gzipped_csv_loads(self, tmp_path: Path) -> None:
        path = tmp_path / "BTC.csv.gz"
        with gzip.open(path, "wt") as handle:
            handle.write("\n".join([HEADER, *hourly_rows(2)]) + "\n")
        assert load_candles(path).symbols() == [("BTC", "1h")]

    def test_folder_without_candle_files_is_explained(self, tmp_path: Path) -> None:
        (tmp_path / "notes.txt").write_text("nothing here")
        with pytest.raises(DataError, match="no candle files in this folder"):
            FileSource(tmp_path)

    def test_missing_file_is_explained(self, tmp_path: Path) -> None:
        assert "no such file" in problems_of(tmp_path / "absent.csv")


class TestSources:
    def test_loaded_candles_is_a_candle_source_that_streams(self, tmp_path: Path) -> None:
        loaded = load_candles(write(tmp_path, [HEADER, *hourly_rows(3)]))
        assert isinstance(loaded, CandleSource)
        assert isinstance(loaded, LoadedCandles)
        candles = list(loaded.stream())
        assert [candle.close for candle in candles] == [101.0, 102.0, 103.0]
        assert candles[0].ts == START

    def test_file_source_reads_a_folder_and_reports_each_file(self, tmp_path: Path) -> None:
        rows = hourly_rows(3)
        write(tmp_path, [HEADER, rows[1], rows[0], rows[2]], "BTC.csv")
        write(tmp_path, [HEADER, *hourly_rows(2)], "ETH.csv")
        (tmp_path / "notes.txt").write_text("ignored")
        source = FileSource(tmp_path)
        assert source.symbols() == [("BTC", "1h"), ("ETH", "1h")]
        assert source.repairs == ["BTC.csv: BTC 1h: sorted 3 rows into time order"]
        assert [candle.symbol for candle in source.stream()][:2] == ["BTC", "ETH"]

    def test_file_source_raises_every_files_problems_together(self, tmp_path: Path) -> None:
        bad_a = write(tmp_path, [HEADER, "nope,1,2,0.5,1.5,3"], "a.csv")
        bad_b = write(tmp_path, [HEADER, *hourly_rows(2), "nope,1,2,0.5,1.5,3"], "b.csv")
        with pytest.raises(DataError) as caught:
            FileSource([bad_a, bad_b], timeframe="1h")
        assert f"{bad_a}: 1 problem(s)" in str(caught.value)
        assert f"{bad_b}: 1 problem(s)" in str(caught.value)

    def test_one_series_in_two_files_is_refused(self, tmp_path: Path) -> None:
        first = write(tmp_path, [HEADER, *hourly_rows(2)], "one.csv")
        second = write(tmp_path, [HEADER, *hourly_rows(2)], "two.csv")
        with pytest.raises(DataError, match="X 1h is in both"):
            FileSource([first, second], symbol="X")
