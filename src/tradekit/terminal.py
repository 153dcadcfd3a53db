"""Text for a terminal: names from files escaped, figures formatted, tables that never cut.

Light on purpose (rich only): the launcher imports it to print anything, and its
start-up must not wait for pandas or the runtime.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

UNLIMITED_WIDTH = 10_000

# Characters that must not reach a terminal as they are: C0 and C1 control characters
# (ESC starts a terminal escape sequence) and lone surrogates (no encoding can write one).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UNPRINTABLE_BUT_NEWLINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def plain_text(value: object, *, keep_newlines: bool = False) -> str:
    """``value`` as text a terminal shows as it is: unprintable characters written escaped.

    ``"a\x1b[31m"`` becomes ``"a\\x1b[31m"`` and a lone surrogate ``"\\ud800"``, so
    names from files cannot colour, move or clear the terminal, nor crash the output.
    """
    pattern = _UNPRINTABLE_BUT_NEWLINES if keep_newlines else _UNPRINTABLE
    return pattern.sub(lambda match: ascii(match.group())[1:-1], str(value))


def markup_text(value: object, *, keep_newlines: bool = False) -> str:
    """``plain_text(value)`` with rich markup escaped, to interpolate into a markup string."""
    return escape(plain_text(value, keep_newlines=keep_newlines))


def format_optional(value: float | None, spec: str = ".2f", missing: str = "-") -> str:
    """``value`` formatted with ``spec``; ``missing`` for ``None``, ``inf`` for infinity."""
    if value is None or math.isnan(value):
        return missing
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(value, spec)


def results_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    text_columns: int = 1,
    footer: Sequence[str] | None = None,
) -> Table:
    """A compact table: text on the left, figures right-aligned; no word or figure is cut.

    The first ``text_columns`` columns hold text (the first never wraps, the others
    wrap between words); every column is at least as wide as its longest word, so
    a narrow terminal wraps headers and names rather than truncating numbers.
    ``footer`` is a bold totals line.
    """
    table = Table(
        title=Text(plain_text(title)),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 0),
    )
    # Cells are Text, never markup: a name such as "[/]" is shown, not parsed.
    rows = [[plain_text(cell) for cell in row] for row in rows]
    footer = None if footer is None else [plain_text(cell) for cell in footer]
    headers = [plain_text(header) for header in headers]
    lines = [*rows, *([footer] if footer is not None else [])]
    for index, header in enumerate(headers):
        words = [
            word for text in (header, *(line[index] for line in lines)) for word in text.split()
        ]
        widest = max((len(word) for word in words), default=1)
        if index < text_columns:
            table.add_column(Text(header), no_wrap=index == 0, min_width=widest)
        else:
            table.add_column(Text(header), justify="right", min_width=widest)
    for row in rows:
        table.add_row(*map(Text, row))
    if footer is not None:
        table.add_section()
        table.add_row(*map(Text, footer), style="bold")
    return table


def print_table(console: Console, table: Table) -> None:
    """Print ``table``; to a file or pipe at its natural width, since no screen limits it."""
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update(width=UNLIMITED_WIDTH), table)
    Console(file=console.file, width=natural.maximum, soft_wrap=True).print(table)


__all__ = [
    "format_optional",
    "markup_text",
    "plain_text",
    "print_table",
    "results_table",
]
