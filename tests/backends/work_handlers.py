"""Handlers for the tests' ``conveyor worker`` processes: ``tests.backends.work_handlers:NAME``.

Each prints a line when it starts an item and when it is done with it, flushed at once,
so that a test knows exactly which handlers ran before it signalled or killed the
process.  ``WORK_SECONDS`` (environment) is how long ``sleep`` and ``blocking`` work.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _seconds() -> float:
    return float(os.environ.get("WORK_SECONDS", "0"))


async def sleep(item: object) -> None:
    """Work ``WORK_SECONDS`` on *item*."""
    _say(f"start {item}")
    await asyncio.sleep(_seconds())
    _say(f"done {item}")


def blocking(item: object) -> None:
    """Work ``WORK_SECONDS`` on *item*, blocking its thread (for ``--threads``)."""
    _say(f"start {item}")
    time.sleep(_seconds())
    _say(f"done {item}")


async def fail(item: object) -> None:
    """Fail on *item*, every time."""
    _say(f"start {item}")
    raise ValueError(f"cannot handle {item!r}")


not_callable = 42
