"""``bootstrap``: the mode decides the exchange; live mode needs every safety setting; it is
the only place in the package that builds a ``SharedContainer``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import tradekit
from tradekit.containers.shared import SharedContainer
from tradekit.errors import ConfigError, StorageError
from tradekit.runtime import RunMode, Runtime, bootstrap
from tradekit.runtime.live_guard import mask_secret
from tradekit.services.exchange import CcxtExchange, PaperExchange
from tradekit.services.journal.store import SqlJournal
from tradekit.services.market.clock import ManualClock
from tradekit.testing import FakeExchange, settings_from_dict

SRC = Path(tradekit.__file__).parent
ARMED: dict[str, Any] = {
    "exchange": {
        "kind": "ccxt",
        "ccxt": {"api_key": "key-0123456789", "api_secret": "secret-0123456789"},
    },
    "live_orders_enabled": True,
}
NOT_LIVE = [RunMode.BACKTEST, RunMode.PAPER, RunMode.VALIDATE, RunMode.TEST]


@pytest.fixture
def runtimes() -> Iterator[list[Runtime]]:
    """Runtimes a test built; closed at teardown."""
    built: list[Runtime] = []
    yield built
    for runtime in built:
        runtime.close()


class TestTheModeDecidesTheExchange:
    @pytest.mark.parametrize("mode", NOT_LIVE)
    def test_every_mode_but_live_trades_on_paper_whatever_the_settings_say(
        self, mode: RunMode, runtimes: list[Runtime]
    ) -> None:
        runtime = bootstrap(settings_from_dict(ARMED), mode=mode)
        runtimes.append(runtime)
        assert isinstance(runtime.shared.exchange(), PaperExchange)
        assert runtime.settings.exchange.kind == "paper"
        assert runtime.settings.live_orders_enabled is False
        assert runtime.mode is mode

    @pytest.mark.parametrize("mode", [RunMode.PAPER, RunMode.TEST])
    def test_paper_and_test_runs_take_a_fake_exchange(
        self, mode: RunMode, runtimes: list[Runtime]
    ) -> None:
        fake = FakeExchange()
        runtime = bootstrap(settings_from_dict({}), mode=mode, exchange=fake)
        runtimes.append(runtime)
        assert runtime.shared.exchange() is fake

    @pytest.mark.parametrize("mode", [RunMode.BACKTEST, RunMode.VALIDATE])
    def test_backtest_and_validation_refuse_another_exchange(self, mode: RunMode) -> None:
        with pytest.raises(ValueError, match="always uses the paper exchange"):
            bootstrap(settings_from_dict({}), mode=mode, exchange=FakeExchange())

    def test_a_paper_run_refuses_a_ccxt_exchange(self) -> None:
        settings = settings_from_dict(ARMED)
        live = CcxtExchange(settings.exchange, live_orders_enabled=True)
        with pytest.raises(ValueError, match="never sends real orders"):
            bootstrap(settings, mode=RunMode.PAPER, exchange=live)

    def test_live_mode_builds_the_ccxt_exchange_with_live_orders_on(
        self, runtimes: list[Runtime]
    ) -> None:
        runtime = bootstrap(settings_from_dict(ARMED), mode=RunMode.LIVE)
        runtimes.append(runtime)
        exchange = runtime.shared.exchange()
        assert isinstance(exchange, CcxtExchange)
        assert exchange.live_orders_enabled is True

    def test_a_container_built_directly_never_picks_ccxt_from_settings(self) -> None:
        shared = SharedContainer(settings=settings_from_dict(ARMED))
        assert isinstance(shared.exchange(), PaperExchange)


class TestLiveModeRequirements:
    def test_every_missing_requirement_is_listed(self) -> None:
        with pytest.raises(ConfigError) as caught:
            bootstrap(settings_from_dict({}), mode=RunMode.LIVE)
        paths = {problem.path for problem in caught.value.problems}
        assert paths == {
            "exchange.kind",
            "live_orders_enabled",
            "exchange.ccxt.api_key",
            "exchange.ccxt.api_secret",
        }
        message = str(caught.value)
        assert "TRADEKIT_LIVE_ORDERS_ENABLED" in message
        assert "TRADEKIT_EXCHANGE__CCXT__API_KEY" in message

    @pytest.mark.parametrize(
        ("change", "path"),
        [
            ({"live_orders_enabled": False}, "live_orders_enabled"),
            ({"exchange": {"kind": "paper", "ccxt": ARMED["exchange"]["ccxt"]}}, "exchange.kind"),
            (
                {"exchange": {"kind": "ccxt", "ccxt": {"api_secret": "secret"}}},
                "exchange.ccxt.api_key",
            ),
            (
                {"exchange": {"kind": "ccxt", "ccxt": {"api_key": "key", "api_secret": ""}}},
                "exchange.ccxt.api_secret",
            ),
        ],
    )
    def test_one_missing_requirement_refuses_live_mode(
        self, change: dict[str, Any], path: str
    ) -> None:
        with pytest.raises(ConfigError) as caught:
            bootstrap(settings_from_dict({**ARMED, **change}), mode=RunMode.LIVE)
        assert [problem.path for problem in caught.value.problems] == [path]


class TestPluggedParts:
    def test_clock_and_journal_are_used(self, tmp_path: Path) -> None:
        clock = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
        with SqlJournal(f"sqlite:///{tmp_path / 'j.db'}") as journal:
            runtime = bootstrap(
                settings_from_dict({}), mode=RunMode.TEST, clock=clock, journal=journal
            )
            assert runtime.shared.clock() is clock
            assert runtime.journal is journal
            runtime.close()
            assert journal.strategies() == []  # still open: the caller owns it

    def test_persist_opens_the_settings_database_and_close_closes_it(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'persisted.db'}"
        runtime = bootstrap(
            settings_from_dict({"storage": {"database_url": url}}), mode=RunMode.PAPER, persist=True
        )
        journal = runtime.journal
        assert isinstance(journal, SqlJournal)
        assert journal.url == url
        runtime.close()
        with pytest.raises(StorageError, match="closed"):
            journal.strategies()

    def test_without_a_journal_nothing_is_journaled(self, runtimes: list[Runtime]) -> None:
        runtime = bootstrap(settings_from_dict({}), mode=RunMode.BACKTEST)
        runtimes.append(runtime)
        assert runtime.journal is None


def test_public_names() -> None:
    assert tradekit.bootstrap is bootstrap
    assert tradekit.RunMode is RunMode
    assert tradekit.Runtime is Runtime
    assert {"bootstrap", "RunMode", "Runtime"} <= set(tradekit.__all__)


def test_api_keys_are_masked_but_for_their_last_four_characters() -> None:
    from pydantic import SecretStr

    assert mask_secret(SecretStr("abcdefghijkl1234")) == "****1234"
    assert mask_secret(SecretStr("short")) == "****"
    assert mask_secret(None) == "(none)"


def test_bootstrap_is_the_only_place_that_builds_a_shared_container() -> None:
    builders = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name == "SharedContainer":
                    builders.append(path.relative_to(SRC).as_posix())
    assert builders == ["runtime/bootstrap.py"]
