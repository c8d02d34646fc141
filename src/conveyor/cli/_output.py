"""How the operating commands print: a table on a terminal, plain text otherwise, or JSON.

A table needs ``rich`` (the ``cli`` extra); without it, or off a terminal, the same rows
print as plain aligned text that scripts and ``grep`` can read.  ``--json`` prints one
JSON document (``watch``: one a line) and nothing else on standard output.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

__all__ = [
    "Printer",
    "age",
    "bound",
    "one_line",
    "payload_json",
    "payload_text",
    "per_minute",
    "when",
]

_PAYLOAD_WIDTH = 60


def one_line(exc: BaseException) -> str:
    """Return *exc*'s message on one line (the commands' errors are one line each)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def age(seconds: float | None) -> str:
    """Show an age: ``"-"`` when unknown, else ``"4.2s"``, ``"12m05s"``, ``"3h07m"``..."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def per_minute(rate: float | None) -> str:
    """Show a rate per minute: ``"-"`` when the store cannot tell, else ``"12"``, ``"0.5"``."""
    if rate is None:
        return "-"
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"


def bound(maxsize: float) -> str:
    """Show a stored bound: ``"unbounded"`` for ``<= 0`` or infinite."""
    if maxsize <= 0 or math.isinf(maxsize):
        return "unbounded"
    return f"{maxsize:g}"


def when(timestamp: float) -> str:
    """Show a wall-clock time (``time.time()``) in local time, to the second."""
    if timestamp <= 0:
        return "-"
    moment = datetime.datetime.fromtimestamp(timestamp).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def payload_text(payload: bytes, width: int = _PAYLOAD_WIDTH) -> str:
    """Show a stored payload: its text (JSON, the default serializer's), or its size.

    Payloads are never decoded by a serializer here: a pickled one would run code.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(payload)} bytes, not text>"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def payload_json(payload: bytes) -> dict[str, Any]:
    """Show a stored payload in ``--json`` output.

    Returns:
        ``{"payload": text}``, with ``"item"`` the value it holds when the text is JSON
        (the default serializer's); ``{"payload_base64": ...}`` when it is not text.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return {"payload_base64": base64.b64encode(payload).decode("ascii")}
    try:
        return {"payload": text, "item": json.loads(text)}
    except ValueError:
        return {"payload": text}


class Printer:
    """Print a command's result in the form its options and standard output call for.

    Args:
        as_json: ``--json`` was given.
        stream: Where to print (standard output by default).
    """

    def __init__(self, as_json: bool, stream: Any = None) -> None:
        self.as_json = as_json
        self.stream = stream if stream is not None else sys.stdout
        self.console: Any = None
        if not as_json and self.stream.isatty():
            try:
                from rich.console import Console
            except ImportError:
                pass
            else:
                self.console = Console(file=self.stream)

    def json(self, document: Any) -> None:
        """Print *document* as one line of JSON."""
        print(json.dumps(document, ensure_ascii=False), file=self.stream, flush=True)

    def line(self, text: str) -> None:
        """Print one line of text."""
        print(text, file=self.stream, flush=True)

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        title: str = "",
        right: Sequence[str] = (),
    ) -> None:
        """Print *rows* under *columns*: a rich table on a terminal, aligned text otherwise.

        Args:
            columns: The column headers.
            rows: The cells, as text.
            title: A line above the table.
            right: The columns aligned right (numbers).
        """
        if self.console is not None:
            from rich.table import Table

            table = Table(title=title or None, title_justify="left", header_style="bold")
            for column in columns:
                table.add_column(column, justify="right" if column in right else "left")
            for row in rows:
                table.add_row(*row)
            self.console.print(table)
            return
        if title:
            self.line(title)
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]

        def aligned(cells: Sequence[str]) -> str:
            parts = [
                cell.rjust(width) if column in right else cell.ljust(width)
                for cell, width, column in zip(cells, widths, columns, strict=True)
            ]
            return "  ".join(parts).rstrip()

        self.line(aligned(columns))
        for row in rows:
            self.line(aligned(row))

    def fields(self, pairs: Sequence[tuple[str, str]], *, title: str = "") -> None:
        """Print name/value pairs, one a line (a two-column table on a terminal)."""
        if self.console is not None:
            from rich.table import Table

            table = Table(title=title or None, title_justify="left", show_header=False)
            table.add_column(style="bold")
            table.add_column()
            for name, value in pairs:
                table.add_row(name, value)
            self.console.print(table)
            return
        if title:
            self.line(title)
        width = max(len(name) for name, _ in pairs)
        for name, value in pairs:
            self.line(f"{name + ':':<{width + 1}} {value}")
