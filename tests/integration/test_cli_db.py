"""``tradekit report`` and ``tradekit strategies``, against real SQLite journal files."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradekit.cli import EXIT_CONFIG_ERROR, app
from tradekit.config import StrategyConfig, load_settings, load_strategy
from tradekit.domain import Position, Side
from tradekit.events import PositionClosed, PositionOpened, StrategyLoaded
from tradekit.services.journal.store import SqlJournal, StrategyStatus

REPO = Path(__file__).parent.parent.parent
RSI_FILE = REPO / "strategies" / "rsi-btc-1h.json"
T0 = datetime(2024, 3, 1, tzinfo=UTC)
BTC, ETH = "BTC/USDT", "ETH/USDT"


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def journal_table(output: str) -> list[str]:
    """The lines of the first table (per-strategy journal figures) and the open positions."""
    return output.split("\n\n")[0].splitlines()


def opened(seq: int, symbol: str) -> PositionOpened:
    return PositionOpened(
        ts=T0 + timedelta(hours=seq),
        strategy_id="rsi",
        seq=seq,
        position_id=f"rsi-pos-{seq}",
        symbol=symbol,
        side=Side.LONG,
        quantity=1.0,
        price=100.0,
        fee=0.1,
        stop_loss=None,
        take_profit=None,
    )


def closed(seq: int, pnl: float, fees: float) -> PositionClosed:
    return PositionClosed(
        ts=T0 + timedelta(hours=seq),
        strategy_id="rsi",
        seq=seq,
        position_id=f"rsi-pos-{seq - 1}",
        symbol=BTC,
        side=Side.LONG,
        quantity=1.0,
        avg_entry_price=100.0,
        exit_price=100.0 + pnl,
        fees=fees,
        realized_pnl=pnl,
        reason="take_profit",
        bars_held=1,
    )


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    """'rsi' (registered): a win, a loss, one position still open; 'orphan': events only."""
    path = tmp_path / "journal.db"
    with SqlJournal(url_of(path)) as journal:
        journal.register_strategy("rsi", "rsi", "threshold", "{}")
        journal.record(
            [
                opened(1, BTC),
                closed(2, 50.0, 2.0),
                opened(3, BTC),
                closed(4, -20.0, 1.5),
                opened(5, ETH),
            ]
        )
        journal.upsert_positions(
            "rsi",
            [Position("rsi-pos-5", "rsi", ETH, Side.LONG, 2.0, 100.0, T0)],
        )
        journal.record(
            [
                StrategyLoaded(
                    ts=T0, strategy_id="orphan", seq=1, name="o", symbols=(BTC,), timeframe="1h"
                )
            ]
        )
        journal.commit()
    return path


class TestReport:
    def test_sums_up_each_strategy(
        self, journal_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        code, output = invoke(["report", "--db", url_of(journal_file)], tmp_path, monkeypatch)
        assert code == 0, output
        [rsi] = [line.split() for line in journal_table(output) if line.startswith("rsi ")]
        # strategy, name, status, events, last seq, closed, wins, losses, P&L, fees, open;
        # the fees include the entry fee the open position already paid (0.10)
        assert rsi == ["rsi", "rsi", "active", "5", "5", "2", "1", "1", "30.00", "3.60", "1"]
        assert "open  rsi  ETH/USDT long 2" in output

    def test_strategy_with_events_but_no_registry_entry_is_listed(
        self, journal_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, output = invoke(["report", "--db", url_of(journal_file)], tmp_path, monkeypatch)
        [orphan] = [line for line in journal_table(output) if line.startswith("orphan ")]
        assert "not registered" in orphan
        [total] = [line.split() for line in journal_table(output) if line.startswith("all ")]
        assert total == ["all", "6", "2", "1", "1", "30.00", "3.60", "1"]

    def test_database_comes_from_the_config_by_default(
        self, journal_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = {"storage": {"database_url": url_of(journal_file)}}
        (tmp_path / "config.json").write_text(json.dumps(config))
        code, output = invoke(["report"], tmp_path, monkeypatch)
        assert code == 0, output
        assert url_of(journal_file) in output

    def test_missing_database_exits_2_and_creates_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        absent = tmp_path / "absent.db"
        code, output = invoke(["report", "--db", url_of(absent)], tmp_path, monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "no database file at" in output
        assert "absent.db" in output
        assert not absent.exists()

    def test_file_that_is_no_database_exits_2(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        garbage = tmp_path / "garbage.db"
        garbage.write_text("this is not a database, just text that is long enough " * 20)
        code, output = invoke(["report", "--db", url_of(garbage)], tmp_path, monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "cannot open journal" in output
        assert "Traceback" not in output

    def test_empty_journal_says_so(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        path = tmp_path / "empty.db"
        SqlJournal(url_of(path)).close()
        code, output = invoke(["report", "--db", url_of(path)], tmp_path, monkeypatch)
        assert code == 0
        assert "holds no strategies yet" in output


class TestStrategiesRegistry:
    def test_add_validates_registers_and_stores_the_merged_config(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = url_of(tmp_path / "registry.db")
        args = ["strategies", "add", str(RSI_FILE), "--db", url, "--config"]
        code, output = invoke([*args, str(REPO / "config.json")], tmp_path, monkeypatch)
        assert code == 0, output
        assert "added rsi-btc-1h" in output
        assert ", active," in output
        with SqlJournal(url) as journal:
            [info] = journal.strategies()
        assert (info.strategy_id, info.kind, info.status) == (
            "rsi-btc-1h",
            "threshold",
            StrategyStatus.ACTIVE,
        )
        settings = load_settings(REPO / "config.json")
        expected = load_strategy(RSI_FILE, settings).config
        assert StrategyConfig.model_validate_json(info.config_json) == expected

    def test_adding_a_registered_id_is_refused_with_a_pointer_to_update(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = url_of(tmp_path / "registry.db")
        invoke(["strategies", "add", str(RSI_FILE), "--db", url], tmp_path, monkeypatch)
        code, output = invoke(
            ["strategies", "add", str(RSI_FILE), "--db", url], tmp_path, monkeypatch
        )
        assert code == EXIT_CONFIG_ERROR
        assert "already registered" in output
        assert "tradekit strategies update" in output

    def test_update_replaces_the_config_and_keeps_the_status(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = url_of(tmp_path / "registry.db")
        invoke(["strategies", "add", str(RSI_FILE), "--db", url], tmp_path, monkeypatch)
        invoke(["strategies", "disable", "rsi-btc-1h", "--db", url], tmp_path, monkeypatch)
        changed = tmp_path / "rsi.json"
        changed.write_text(json.dumps({**json.loads(RSI_FILE.read_text()), "name": "renamed"}))
        code, output = invoke(
            ["strategies", "update", str(changed), "--db", url], tmp_path, monkeypatch
        )
        assert code == 0, output
        assert "updated rsi-btc-1h (renamed), disabled" in output
        with SqlJournal(url) as journal:
            assert journal.registered("rsi-btc-1h").name == "renamed"
            assert [c.action for c in journal.registry_changes()] == ["add", "disable", "update"]

    def test_remove_is_refused_while_the_strategy_holds_positions(
        self, journal_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = url_of(journal_file)
        code, output = invoke(
            ["strategies", "remove", "rsi", "--db", url], journal_file.parent, monkeypatch
        )
        assert code == EXIT_CONFIG_ERROR
        assert "holds 1 open position(s) (ETH/USDT long 2)" in output
        assert "--close" in output
        with SqlJournal(url) as journal:
            assert journal.registered("rsi").status is StrategyStatus.ACTIVE
            assert journal.registry_changes() == []

    def test_remove_with_close_is_left_to_the_run_that_trades(
        self, journal_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = url_of(journal_file)
        code, output = invoke(
            ["strategies", "remove", "rsi", "--close", "--db", url],
            journal_file.parent,
            monkeypatch,
        )
        assert code == 0, output
        assert "the run closes 1 open position(s)" in output
        with SqlJournal(url) as journal:
            assert journal.registered("rsi").status is StrategyStatus.ACTIVE
            [change] = journal.registry_changes()
        assert (change.action, change.close_positions, change.applied_at) == ("remove", True, None)
        assert "@" in change.by

    def test_list_shows_symbols_timeframe_positions_pnl_and_the_last_change(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = url_of(tmp_path / "registry.db")
        invoke(["strategies", "add", str(RSI_FILE), "--db", url], tmp_path, monkeypatch)
        invoke(["strategies", "disable", "rsi-btc-1h", "--db", url], tmp_path, monkeypatch)
        code, output = invoke(["strategies", "list", "--db", url], tmp_path, monkeypatch)
        assert code == 0, output
        [line] = [line for line in output.splitlines() if line.startswith("rsi-btc-1h ")]
        for shown in ("BTC/USDT", "1h", "disabled", "0.00", "#2 disable by", "pending"):
            assert shown in line

    def test_resume_only_lifts_a_quarantine(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = url_of(tmp_path / "registry.db")
        invoke(["strategies", "add", str(RSI_FILE), "--db", url], tmp_path, monkeypatch)
        code, output = invoke(
            ["strategies", "resume", "rsi-btc-1h", "--db", url], tmp_path, monkeypatch
        )
        assert code == EXIT_CONFIG_ERROR
        assert "active, not quarantined" in output
        with SqlJournal(url) as journal:
            journal.set_status("rsi-btc-1h", StrategyStatus.QUARANTINED)
        code, output = invoke(
            ["strategies", "resume", "rsi-btc-1h", "--db", url], tmp_path, monkeypatch
        )
        assert code == 0, output
        with SqlJournal(url) as journal:
            assert journal.registered("rsi-btc-1h").status is StrategyStatus.ACTIVE

    def test_status_changes_show_in_the_list(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = url_of(tmp_path / "registry.db")
        invoke(["strategies", "add", str(RSI_FILE), "--db", url], tmp_path, monkeypatch)

        def listed_status() -> str:
            code, output = invoke(["strategies", "list", "--db", url], tmp_path, monkeypatch)
            assert code == 0, output
            [line] = [line for line in output.splitlines() if line.startswith("rsi-btc-1h ")]
            return next(s.value for s in StrategyStatus if f" {s.value} " in line)

        assert listed_status() == "active"
        for command, status in (
            ("disable", "disabled"),
            ("enable", "active"),
            ("remove", "removed"),
        ):
            code, output = invoke(
                ["strategies", command, "rsi-btc-1h", "--db", url], tmp_path, monkeypatch
            )
            assert code == 0, output
            assert f"rsi-btc-1h: {status}" in output
            assert listed_status() == status

    def test_file_marked_disabled_is_registered_disabled(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = json.loads(RSI_FILE.read_text())
        off = tmp_path / "off.json"
        off.write_text(json.dumps({**data, "enabled": False}))
        url = url_of(tmp_path / "registry.db")
        code, output = invoke(["strategies", "add", str(off), "--db", url], tmp_path, monkeypatch)
        assert code == 0, output
        assert ", disabled," in output

    @pytest.mark.parametrize("command", ["enable", "disable", "remove"])
    def test_unknown_id_exits_2_with_a_suggestion(
        self, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = url_of(tmp_path / "registry.db")
        invoke(["strategies", "add", str(RSI_FILE), "--db", url], tmp_path, monkeypatch)
        code, output = invoke(
            ["strategies", command, "rsi-btc-1", "--db", url], tmp_path, monkeypatch
        )
        assert code == EXIT_CONFIG_ERROR
        assert "unknown strategy 'rsi-btc-1'" in output
        assert "did you mean 'rsi-btc-1h'?" in output

    def test_invalid_file_exits_2_and_registers_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        bad = tmp_path / "bad.json"
        bad.write_text(
            json.dumps(
                {
                    "strategy_id": "bad",
                    "symbols": [BTC],
                    "timeframe": "1h",
                    "indicators": [{"name": "rsii", "params": {"length": 14}}],
                    "analyzers": [{"type": "threshold", "params": {"source": "rsii"}}],
                }
            )
        )
        url = url_of(tmp_path / "registry.db")
        code, output = invoke(["strategies", "add", str(bad), "--db", url], tmp_path, monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "bad.json" in output
        assert "unknown indicator 'rsii'" in output
        assert not (tmp_path / "registry.db").exists()

    def test_list_of_missing_database_exits_2(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = url_of(tmp_path / "none.db")
        code, output = invoke(["strategies", "list", "--db", url], tmp_path, monkeypatch)
        assert code == EXIT_CONFIG_ERROR
        assert "no database file at" in output

    def test_empty_registry_says_so(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        path = tmp_path / "empty.db"
        SqlJournal(url_of(path)).close()
        code, output = invoke(["strategies", "list", "--db", url_of(path)], tmp_path, monkeypatch)
        assert code == 0
        assert "no strategies registered" in output


@pytest.fixture
def valued_journal(tmp_path: Path) -> Path:
    """Two registered bots (capital 1,000) on BTC: 'a' won 100, lost 150, holds 2 BTC bought
    at 100 with a snapshot marking BTC at 110; 'b' holds 1 BTC short at 120. Cap: 500."""
    path = tmp_path / "valued.db"
    with SqlJournal(url_of(path)) as journal:
        for bot in ("a", "b"):
            config = {"strategy_id": bot, "capital": 1000.0, "symbols": [BTC, ETH]}
            journal.register_strategy(bot, bot, "ticker", json.dumps(config))
        events = [
            opened(1, BTC),
            closed(2, 100.0, 0.2),
            opened(3, BTC),
            closed(4, -150.0, 0.2),
            opened(5, BTC),
        ]
        journal.record([dataclasses.replace(event, strategy_id="a") for event in events])
        journal.upsert_positions("a", [Position("a-pos-5", "a", BTC, Side.LONG, 2.0, 100.0, T0)])
        journal.save_snapshot("a", 5, T0, {"positions": {"last_prices": {BTC: 110.0}}})
        journal.record(
            [dataclasses.replace(opened(1, BTC), strategy_id="b", side=Side.SHORT, price=120.0)]
        )
        journal.upsert_positions("b", [Position("b-pos-1", "b", BTC, Side.SHORT, 1.0, 120.0, T0)])
        journal.save_snapshot("b", 1, T0, {"positions": {"last_prices": {BTC: 110.0}}})
        journal.commit()
    (tmp_path / "config.json").write_text(json.dumps({"risk": {"max_exposure_per_symbol": 500}}))
    return path


class TestReportValuesOpenPositions:
    def test_json_has_unrealized_pnl_at_the_snapshot_last_price_return_and_drawdown(
        self, valued_journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        code, output = invoke(
            ["report", "--json", "--db", url_of(valued_journal)], tmp_path, monkeypatch
        )
        assert code == 0, output
        document = json.loads(output)
        bots = {item["strategy_id"]: item for item in document["strategies"]}
        a, b = bots["a"], bots["b"]
        assert a["open_positions"] == [
            {
                "symbol": BTC,
                "side": "long",
                "quantity": 2.0,
                "avg_entry_price": 100.0,
                "last_price": 110.0,
                "unrealized_pnl": 20.0,
                "notional": 220.0,
            }
        ]
        assert (a["realized_pnl"], a["unrealized_pnl"], a["equity"]) == (-50.0, 20.0, 970.0)
        assert a["return_pct"] == pytest.approx(-3.0)
        # Realized line 1000 -> 1100 -> 950, then today's equity 970: 150 below the 1100 peak.
        assert a["max_drawdown_pct"] == pytest.approx(150 / 1100 * 100)
        assert b["unrealized_pnl"] == 10.0  # short from 120, marked at 110
        assert b["max_drawdown_pct"] == 0.0
        assert document["symbols"] == [
            {
                "symbol": BTC,
                "strategies": ["a", "b"],
                "exposure": 330.0,
                "cap": 500.0,
                "cap_used_pct": 66.0,
            },
            {
                "symbol": ETH,
                "strategies": ["a", "b"],
                "exposure": 0.0,
                "cap": 500.0,
                "cap_used_pct": 0.0,
            },
        ]

    def test_tables_show_the_same_figures(
        self, valued_journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        code, output = invoke(["report", "--db", url_of(valued_journal)], tmp_path, monkeypatch)
        assert code == 0, output
        assert "open  a  BTC/USDT long 2 @ 100 last 110 unrealized 20.00" in output
        lines = [line.split() for line in output.splitlines()]
        assert ["a", "1,000.00", "-50.00", "20.00", "970.00", "-3.00", "13.64"] in lines
        assert ["BTC/USDT", "a,", "b", "330.00", "500.00", "66.0"] in lines
