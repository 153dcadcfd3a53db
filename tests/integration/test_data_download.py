"""Downloading history into Parquet files: paginated, incremental, closed candles only,
rate limits waited out, venue errors named; then backtests read the files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from history_venue import START, START_MS, HistoryVenue
from ticker_strategies import ticker_data
from typer.testing import CliRunner

from tradekit.cli import app, data_commands
from tradekit.cli.data_commands import DownloadVenue
from tradekit.config.settings import CcxtSettings
from tradekit.data import load_candles, synthetic_frame
from tradekit.data.download import HistoryDownloader
from tradekit.errors import ConfigError, DataError, ExchangeError

HOUR_MS = 3_600_000
BTC = "BTC/USDT"


def at_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def downloader(venue: HistoryVenue, sleeps: list[float] | None = None) -> HistoryDownloader:
    waits = [] if sleeps is None else sleeps
    return HistoryDownloader(
        venue,
        "fakex",
        page_limit=venue.limit,
        sleep=waits.append,
        now=lambda: at_ms(venue.now_ms),
    )


def closed_candles(hours: int) -> pd.DataFrame:
    """The first ``hours`` candles of a 400-candle venue, as load_candles reads them."""
    frame = synthetic_frame(BTC, "1h", 400, seed=11, start=START).iloc[:hours]
    return frame[["open", "high", "low", "close", "volume"]].rename_axis("ts")


def held(path: Path) -> pd.DataFrame:
    return load_candles(path).frames()[(BTC, "1h")]


class TestFirstDownload:
    def test_pages_through_the_venue_and_writes_only_closed_candles(self, tmp_path: Path) -> None:
        # 250 closed candles and one forming 30 minutes into hour 250.
        venue = HistoryVenue(bars=400, now_ms=START_MS + 250 * HOUR_MS + HOUR_MS // 2)
        result = downloader(venue).download(BTC, "1h", START, None, tmp_path)
        assert result.path == tmp_path / "BTC-USDT_1h.parquet"
        assert (result.added, result.total) == (250, 250)
        assert [since for *_, since, _ in venue.calls] == [
            START_MS,
            START_MS + 100 * HOUR_MS,
            START_MS + 200 * HOUR_MS,
        ]
        assert all(limit == 100 for *_, limit in venue.calls)
        pd.testing.assert_frame_equal(held(result.path), closed_candles(250), check_freq=False)

    def test_to_keeps_the_candles_closing_by_it(self, tmp_path: Path) -> None:
        venue = HistoryVenue(bars=400, now_ms=START_MS + 300 * HOUR_MS)
        end = START + timedelta(hours=50, minutes=30)
        result = downloader(venue).download(BTC, "1h", START, end, tmp_path)
        assert result.total == 50
        assert len(venue.calls) == 1

    def test_a_rate_limit_is_waited_out_with_growing_pauses(self, tmp_path: Path) -> None:
        venue = HistoryVenue(bars=50, now_ms=START_MS + 50 * HOUR_MS, rate_limited=2)
        sleeps: list[float] = []
        result = downloader(venue, sleeps).download(BTC, "1h", START, None, tmp_path)
        assert sleeps == [1.0, 2.0]
        assert result.total == 50

    def test_a_rate_limit_that_lasts_names_the_venue_series_and_retries(
        self, tmp_path: Path
    ) -> None:
        venue = HistoryVenue(bars=50, now_ms=START_MS + 50 * HOUR_MS, rate_limited=99)
        with pytest.raises(ExchangeError, match=r"fakex BTC/USDT 1h: .*429.*after 5 retries"):
            downloader(venue).download(BTC, "1h", START, None, tmp_path)
        assert not (tmp_path / "BTC-USDT_1h.parquet").exists()

    def test_an_unknown_symbol_says_what_to_check(self, tmp_path: Path) -> None:
        venue = HistoryVenue(bars=50, now_ms=START_MS + 50 * HOUR_MS)
        with pytest.raises(ExchangeError, match=r"BadSymbol.*check --symbols"):
            downloader(venue).download("NOPE/USDT", "1h", START, None, tmp_path)

    def test_a_malformed_row_is_named(self, tmp_path: Path) -> None:
        class Garbled(HistoryVenue):
            def fetch_ohlcv(self, *args: object, **kwargs: object) -> list[list[object]]:
                return [["yesterday", 1, 2, 0.5, 1, 3]]

        venue = Garbled(bars=5, now_ms=START_MS + 5 * HOUR_MS)
        with pytest.raises(DataError, match=r"malformed row \['yesterday'"):
            downloader(venue).download(BTC, "1h", START, None, tmp_path)


class TestIncrementalDownload:
    def test_a_second_download_fetches_only_the_candles_after_the_last(
        self, tmp_path: Path
    ) -> None:
        venue = HistoryVenue(bars=400, now_ms=START_MS + 120 * HOUR_MS + 5)
        downloader(venue).download(BTC, "1h", START, None, tmp_path)
        venue.now_ms = START_MS + 180 * HOUR_MS
        venue.calls.clear()
        result = downloader(venue).download(BTC, "1h", START, None, tmp_path)
        assert [since for *_, since, _ in venue.calls] == [START_MS + 120 * HOUR_MS]
        assert (result.added, result.total) == (60, 180)
        pd.testing.assert_frame_equal(held(result.path), closed_candles(180), check_freq=False)

    def test_an_up_to_date_file_is_left_alone(self, tmp_path: Path) -> None:
        venue = HistoryVenue(bars=400, now_ms=START_MS + 30 * HOUR_MS)
        first = downloader(venue).download(BTC, "1h", START, None, tmp_path)
        written = first.path.stat().st_mtime_ns
        venue.calls.clear()
        again = downloader(venue).download(BTC, "1h", START, None, tmp_path)
        assert venue.calls == []
        assert (again.added, again.total) == (0, 30)
        assert first.path.stat().st_mtime_ns == written

    def test_an_earlier_from_fetches_only_the_front(self, tmp_path: Path) -> None:
        venue = HistoryVenue(bars=400, now_ms=START_MS + 80 * HOUR_MS)
        later = START + timedelta(hours=40)
        downloader(venue).download(BTC, "1h", later, None, tmp_path)
        venue.calls.clear()
        result = downloader(venue).download(BTC, "1h", START, None, tmp_path)
        assert [since for *_, since, _ in venue.calls] == [START_MS]
        assert (result.added, result.total) == (40, 80)
        pd.testing.assert_frame_equal(held(result.path), closed_candles(80), check_freq=False)

    def test_a_venue_repeating_rows_never_duplicates_or_reorders_them(self, tmp_path: Path) -> None:
        class Overlapping(HistoryVenue):
            """Answers from 3 candles before ``since``, newest first."""

            def fetch_ohlcv(
                self,
                symbol: str,
                timeframe: str,
                since: int | None = None,
                limit: int | None = None,
            ) -> list[list[object]]:
                start = None if since is None else since - 3 * HOUR_MS
                return list(reversed(super().fetch_ohlcv(symbol, timeframe, start, limit)))

        venue = Overlapping(bars=400, now_ms=START_MS + 60 * HOUR_MS, limit=25)
        downloader(venue).download(BTC, "1h", START, None, tmp_path)
        venue.now_ms = START_MS + 100 * HOUR_MS
        result = downloader(venue).download(BTC, "1h", START, None, tmp_path)
        pd.testing.assert_frame_equal(held(result.path), closed_candles(100), check_freq=False)


class TestDownloadThenBacktest:
    """``tradekit data download`` then ``tradekit backtest --data-dir``, as a user runs them."""

    @pytest.fixture
    def workspace(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        for name in [name for name in os.environ if name.startswith("TRADEKIT_")]:
            monkeypatch.delenv(name)
        (tmp_path / "strategies").mkdir()
        strategy = ticker_data("ticker", symbols=[BTC, "ETH/USDT"])
        (tmp_path / "strategies" / "ticker.json").write_text(json.dumps(strategy))
        monkeypatch.chdir(tmp_path)
        return tmp_path

    @pytest.fixture
    def venue(self, monkeypatch: pytest.MonkeyPatch) -> tuple[HistoryVenue, list[CcxtSettings]]:
        """The fake venue the command reaches, and the ccxt settings it was built from."""
        venue = HistoryVenue(bars=400, now_ms=START_MS + 300 * HOUR_MS, rate_limited=1)
        built: list[CcxtSettings] = []

        def build(settings: CcxtSettings) -> DownloadVenue:
            built.append(settings)
            return DownloadVenue(venue, settings.exchange_id, page_limit=100)

        monkeypatch.setattr(data_commands, "build_download_venue", build)
        monkeypatch.setattr(data_commands.time, "sleep", lambda seconds: None)
        return venue, built

    def download(self, *extra: str) -> tuple[int, str]:
        args = ["data", "download", "--exchange", "binance", "--symbols", "BTC/USDT,ETH/USDT"]
        args += ["--timeframes", "1h", "--from", "2024-01-01", "--to", "2024-01-11", *extra]
        result = CliRunner().invoke(app, args)
        return result.exit_code, result.output

    def test_gives_the_same_trades_as_a_backtest_on_the_same_candles_in_a_csv(
        self, workspace: Path, venue: tuple[HistoryVenue, list[CcxtSettings]]
    ) -> None:
        fake, built = venue
        code, output = self.download("--dir", "data", "--sandbox")
        assert code == 0, output
        assert [(s.exchange_id, s.sandbox) for s in built] == [("binance", True)]
        assert "data/BTC-USDT_1h.parquet: 240 new candle(s), 240 in all" in output
        rows = [
            [at_ms(row[0]).isoformat(), symbol, *row[1:]]
            for symbol in (BTC, "ETH/USDT")
            for row in fake.rows(symbol, "1h")[:240]
        ]
        columns = ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
        pd.DataFrame(rows, columns=columns).to_csv("candles.csv", index=False)
        runner = CliRunner()
        from_dir = runner.invoke(app, ["backtest", "--data-dir", "data", "--out", "from-dir"])
        assert from_dir.exit_code == 0, from_dir.output
        from_csv = runner.invoke(app, ["backtest", "--data", "candles.csv", "--out", "from-csv"])
        assert from_csv.exit_code == 0, from_csv.output
        trades = (workspace / "from-dir" / "trades.csv").read_text()
        assert len(trades.splitlines()) > 10
        assert trades == (workspace / "from-csv" / "trades.csv").read_text()
        events = (workspace / "from-dir" / "events.jsonl").read_text()
        assert events == (workspace / "from-csv" / "events.jsonl").read_text()

    def test_a_second_download_adds_nothing_when_up_to_date(
        self, workspace: Path, venue: tuple[HistoryVenue, list[CcxtSettings]]
    ) -> None:
        assert self.download("--dir", "data")[0] == 0
        fake, _ = venue
        fake.calls.clear()
        code, output = self.download("--dir", "data")
        assert code == 0, output
        assert fake.calls == []
        assert "data/ETH-USDT_1h.parquet: 0 new candle(s), 240 in all" in output

    def test_backtest_names_the_series_and_file_the_folder_lacks(
        self, workspace: Path, venue: tuple[HistoryVenue, list[CcxtSettings]]
    ) -> None:
        assert self.download("--dir", "data")[0] == 0
        (workspace / "data" / "ETH-USDT_1h.parquet").unlink()
        result = CliRunner().invoke(app, ["backtest", "--data-dir", "data"])
        assert result.exit_code == 2
        message = " ".join(result.output.split())
        assert "data lacks candles the strategies need: ETH/USDT 1h for ticker" in message
        assert "(expected ETH-USDT_1h.parquet)" in message
        assert "tradekit data download" in message

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (["--timeframes", "1x"], "unknown timeframe '1x'"),
            (["--to", "2023-12-01"], "is not after --from"),
            (["--symbols", " , "], "expected a comma-separated list"),
        ],
    )
    def test_bad_options_are_named(
        self,
        workspace: Path,
        venue: tuple[HistoryVenue, list[CcxtSettings]],
        args: list[str],
        expected: str,
    ) -> None:
        code, output = self.download("--dir", "data", *args)
        assert code == 2
        assert expected in " ".join(output.split())


class TestBuildDownloadVenue:
    """The real ccxt client is built without reaching the network."""

    def test_takes_the_venues_own_page_limit(self) -> None:
        venue = data_commands.build_download_venue(
            CcxtSettings(exchange_id="binance", sandbox=False)
        )
        assert (venue.name, venue.page_limit) == ("binance", 1000)

    def test_an_unknown_exchange_id_is_named(self) -> None:
        with pytest.raises(
            ConfigError, match="'binanse' is not a ccxt exchange id; did you mean 'binance'"
        ):
            data_commands.build_download_venue(CcxtSettings(exchange_id="binanse"))
