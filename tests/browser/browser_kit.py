"""What the dashboard's browser tests share with their fixtures: the service's token and the
watch over a page's console (a module of its own: test files cannot import ``conftest``
reliably, since another folder's ``conftest`` may be imported under that name first)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from playwright.sync_api import ConsoleMessage

TOKEN = "browser-test-token-0123456789"
ANSWER_NOTE = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class ConsoleWatch:
    """What a page said on its console and what it threw; which answers a test expects."""

    expected_statuses: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        note = ANSWER_NOTE.search(message.text)
        if note is not None and int(note.group(1)) in self.expected_statuses:
            return
        self.errors.append(f"console: {message.text} at {message.location}")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"page error: {error}")
