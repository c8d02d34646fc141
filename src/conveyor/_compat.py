"""Version-dependent names, kept in one place so no other module checks versions.

Classes defined here are re-exported by ``conveyor`` and carry its module name, so a
traceback shows the name a user can import (``conveyor.QueueShutDown``), not this module.
"""

from __future__ import annotations

import asyncio
import queue
import sys
from typing import Any

__all__ = [
    "AsyncQueueShutDown",
    "QueueTimeoutError",
    "SyncQueueShutDown",
    "add_note",
    "int_max_str_digits",
]

if sys.version_info >= (3, 13):
    AsyncQueueShutDown = asyncio.QueueShutDown

    class SyncQueueShutDown(queue.ShutDown, asyncio.QueueShutDown):
        """Raised by a shut-down ThreadQueue's blocking face: a ``queue.ShutDown``.

        It is an ``asyncio.QueueShutDown`` too, so that one ``except`` clause
        catches the shutdown of both faces.
        """

        __module__ = "conveyor"

else:  # pragma: no cover - exercised on 3.10-3.12 only

    class QueueShutDown(Exception):  # noqa: N818 - the asyncio name
        """Raised when putting on to or getting from a queue that is shut down."""

        __module__ = "conveyor"

    class SyncQueueShutDown(QueueShutDown):
        """Raised by a shut-down ThreadQueue's blocking face (``queue.ShutDown`` from 3.13).

        It is a ``conveyor.QueueShutDown`` too, so that one ``except`` clause catches
        the shutdown of both faces.
        """

        __module__ = "conveyor"

    AsyncQueueShutDown = QueueShutDown


if sys.version_info >= (3, 11):
    QueueTimeoutError = TimeoutError
else:  # pragma: no cover - exercised on 3.10 only

    class QueueTimeoutError(asyncio.TimeoutError, TimeoutError):
        """A timeout that both ``except TimeoutError`` and ``except asyncio.TimeoutError`` catch."""

        __module__ = "conveyor"


def int_max_str_digits() -> int:
    """Return the most digits this process converts between int and text; 0: no limit."""
    # The limit came with 3.11 and 3.10.7: an older 3.10 has none.
    get: Any = getattr(sys, "get_int_max_str_digits", None)
    return int(get()) if get is not None else 0


if sys.version_info >= (3, 11):

    def add_note(exc: BaseException, note: str) -> None:
        """Add *note* to *exc*, shown under its traceback."""
        exc.add_note(note)

else:  # pragma: no cover - exercised on 3.10 only

    def add_note(exc: BaseException, note: str) -> None:
        """Add *note* to *exc* as 3.11 would: a traceback module that knows notes shows it.

        3.10 prints no notes, so the note goes into the exception's arguments as well,
        where ``str()`` and ``repr()`` show it.
        """
        notes = getattr(exc, "__notes__", None)
        if not isinstance(notes, list):
            notes = []
            exc.__notes__ = notes  # type: ignore[attr-defined]
        notes.append(note)
        exc.args = (*exc.args, note)
