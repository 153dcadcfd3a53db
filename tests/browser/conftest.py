"""The dashboard's browser tests: a real ``tradekit serve`` in a subprocess (a synthetic
replay paced so bots trade while a test watches, a temporary journal, 127.0.0.1 on a
free port) and Debian's Chromium driven by Playwright.

Each test fails on a page error and on any console error but the browser's own
note of an answer the test asked for (a 401 for a wrong token, a 422 for a
refused value). Screenshots go to ``test-artifacts/browser/`` (ignored by git).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_kit import TOKEN, ConsoleWatch
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
STARTUP_SECONDS = 60


def _environment() -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("TRADEKIT_")}
    return {**clean, "TRADEKIT_API_TOKEN": TOKEN}


def _seed_strategies(folder: Path) -> Path:
    """One bot already running on BTC/USDT 1h, so the replay has that series to play."""
    strategies = folder / "strategies"
    strategies.mkdir()
    seed = {
        "strategy_id": "btc-ticker",
        "name": "BTC ticker",
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "analyzers": [
            {"type": "time_interval", "params": {"every_bars": 5, "name": "buy"}},
            {
                "type": "time_interval",
                "params": {"every_bars": 5, "offset": 3, "direction": "exit", "name": "sell"},
            },
        ],
    }
    (strategies / "btc-ticker.json").write_text(json.dumps(seed), encoding="utf-8")
    return strategies


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a ``tradekit serve`` replaying 20 synthetic candles a second."""
    folder = tmp_path_factory.mktemp("serve")
    strategies = _seed_strategies(folder)
    # The log goes to a file: it logs every fill, and a pipe nobody reads would fill up
    # and stall the engine while the page watches it.
    log = (folder / "serve.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tradekit", "serve", "--host", "127.0.0.1", "--port", "0",
            "--speed", "20", "--bars", "50000", "--strategies", str(strategies),
            "--db", f"sqlite:///{folder / 'journal.db'}",
        ],
        cwd=folder,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        address = ""
        for line in process.stdout:
            if "API on " in line:
                address = line.split("API on ", 1)[1].split()[0]
                break
        assert address.startswith("http://127.0.0.1:"), (folder / "serve.log").read_text("utf-8")
        yield address
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=STARTUP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        log.close()


# Module-scoped: Playwright's sync API keeps an event loop running on the main thread
# while it is open, and later tests that call asyncio.run() must not find one.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def page(browser: Browser, service: str, console: ConsoleWatch) -> Iterator[Page]:
    context = browser.new_context(base_url=service, viewport={"width": 1200, "height": 760})
    opened = context.new_page()
    opened.on("console", console.on_console)
    opened.on("pageerror", console.on_page_error)
    yield opened
    context.close()
    assert console.errors == []


@pytest.fixture(scope="session")
def screenshots() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
