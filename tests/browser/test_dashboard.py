"""The dashboard in real Chromium against a real ``tradekit serve``: logging in, making a bot
through the form (a value the browser refuses and one the server refuses, each shown next
to its field), watching it trade live on the replay, stopping, editing and deleting it.

Every wait is on a condition the page shows (Playwright's ``expect``), never a sleep.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from browser_kit import TOKEN, ConsoleWatch
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

LIVE_SECONDS = 30_000
"""How long (ms) a condition the replay brings about may take to show."""
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "dashboard.png"


def log_in(page: Page) -> None:
    page.goto("/")
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Bots", exact=True)).to_be_visible()


def after_seqs(url: str) -> list[int]:
    """The ``after_seq`` of a request for the browser-dca bot's events (none for others)."""
    parts = urlsplit(url)
    if parts.path != "/api/bots/browser-dca/events":
        return []
    return [int(value) for value in parse_qs(parts.query).get("after_seq", [])]


def bot_row(page: Page, bot_id: str) -> object:
    return page.locator(f'tr[data-bot="{bot_id}"]')


class TestLogin:
    def test_a_wrong_token_is_refused_and_the_right_one_kept_for_the_session(
        self, page: Page, console: ConsoleWatch
    ) -> None:
        console.expected_statuses.add(401)
        page.goto("/")
        page.get_by_label("API token").fill("not-the-token-at-all")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong token: the service refused it.")
        expect(page.get_by_label("API token")).to_have_attribute("aria-invalid", "true")

        page.get_by_label("API token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Bots", exact=True)).to_be_visible()
        # The seed bot is listed under its symbol, with its state.
        expect(page.get_by_role("heading", name="BTC/USDT")).to_be_visible()
        expect(page.locator('tr[data-bot="btc-ticker"]')).to_contain_text("active")

        page.reload()
        expect(page.get_by_role("heading", name="Bots", exact=True)).to_be_visible()
        expect(page.get_by_label("API token")).to_be_hidden()

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_label("API token")).to_be_visible()


class TestBotLifecycle:
    def test_make_watch_stop_edit_and_delete_a_bot(
        self, page: Page, console: ConsoleWatch, service: str, screenshots: Path
    ) -> None:
        console.expected_statuses.add(422)
        log_in(page)

        # The form, generated from the template's parameter definitions.
        page.get_by_role("link", name="New bot").click()
        expect(page.get_by_role("heading", name="New bot")).to_be_visible()
        page.get_by_label("Template").select_option("dca")
        every = page.locator("#param-every_bars")
        expect(every).to_have_attribute("min", "0")
        page.get_by_label("Name").fill("Browser DCA")
        page.get_by_label("Timeframe").select_option("1h")  # the series the replay plays
        every.fill("0")  # the browser refuses it: more than 0 bars
        page.locator("#param-take_profit_pct").fill("0.3")
        page.get_by_role("button", name="Create bot").click()
        expect(page.locator("#param-every_bars-error")).to_contain_text("greater than 0")
        expect(every).to_have_attribute("aria-invalid", "true")

        every.fill("2")
        page.get_by_label("Symbols").fill("BTCUSDT")  # the server refuses it
        page.get_by_role("button", name="Create bot").click()
        symbols_error = page.locator("#bot-symbols-error")
        expect(symbols_error).to_contain_text("expected a unified symbol such as 'BTC/USDT'")
        expect(page.get_by_label("Symbols")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#param-every_bars-error")).to_be_empty()
        page.screenshot(path=screenshots / "new-bot-form-error.png", full_page=True)

        events_read_after: list[int] = []
        page.on("request", lambda request: events_read_after.extend(after_seqs(request.url)))
        page.get_by_label("Symbols").fill("BTC/USDT")
        page.get_by_role("button", name="Create bot").click()
        expect(page.get_by_role("heading", name="Browser DCA")).to_be_visible()

        # It trades on the replay: its trades and events appear live on its page.
        trades = page.locator("section", has=page.get_by_role("heading", name="Trades"))
        expect(trades.locator("tbody tr").first).to_be_visible(timeout=LIVE_SECONDS)
        events = page.locator("section", has=page.get_by_role("heading", name="Recent events"))
        expect(events).to_contain_text("PositionClosed", timeout=LIVE_SECONDS)
        expect(page.get_by_role("img", name="equity curve of Browser DCA")).to_be_visible(
            timeout=LIVE_SECONDS
        )
        page.screenshot(path=screenshots / "bot-page.png", full_page=True)
        # Each live redraw read only the events after those it had, not the whole history.
        assert events_read_after == sorted(events_read_after)
        assert events_read_after[-1] > 0

        # The list, live: the new bot is on its symbol with the seed bot.
        page.get_by_role("link", name="Bots").click()
        row = page.locator('tr[data-bot="browser-dca"]')
        expect(row).to_contain_text("active")
        expect(row.get_by_role("img", name="equity of Browser DCA")).to_be_visible()
        page.screenshot(path=screenshots / "bots-list.png")
        if os.environ.get("TRADEKIT_DOCS_SCREENSHOT"):
            shutil.copyfile(screenshots / "bots-list.png", DOCS_SCREENSHOT)

        # Stop it.
        row.get_by_role("button", name="Stop Browser DCA").click()
        expect(row).to_contain_text("disabled")
        expect(row.get_by_role("button", name="Start Browser DCA")).to_be_visible()

        # Edit a parameter: the form comes back with the bot's values.
        row.get_by_role("link", name="Edit Browser DCA").click()
        expect(page.get_by_role("heading", name="Edit Browser DCA")).to_be_visible()
        take_profit = page.locator("#param-take_profit_pct")
        expect(take_profit).to_have_value("0.3")
        expect(page.locator("#param-every_bars")).to_have_value("2")
        take_profit.fill("0.7")
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("heading", name="Browser DCA")).to_be_visible()
        with httpx.Client(base_url=service, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            config = api.get("/api/bots/browser-dca").json()["config"]
        assert config["exit"]["take_profit_pct"] == 0.7

        # Delete it; the page asks first (and to close its positions when it holds some).
        page.get_by_role("link", name="Bots").click()
        row.get_by_role("button", name="Delete Browser DCA").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Delete Browser DCA?")
        dialog.locator("button.danger").click()
        expect(row).to_have_count(0, timeout=LIVE_SECONDS)
        expect(page.locator('tr[data-bot="btc-ticker"]')).to_be_visible()
