"""Small tools the conformance bodies share: waiting on state, and reading task outcomes.

Every wait here is bounded by wall-clock time, not by a count of loop turns: a durable
backend needs real time (a thread, a socket) to move, an in-memory one needs a single
turn.  A wait that runs out fails the test with what it was waiting for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "KINDS",
    "ORDERED",
    "WAIT_LIMIT",
    "cancel_and_wait",
    "got",
    "kind_params",
    "outcome",
    "settle",
    "wait_until",
]

WAIT_LIMIT = 10.0
"""Seconds a test waits for a state before it fails (never reached when all is well)."""

KINDS = ("fifo", "lifo", "priority")

ORDERED = {"fifo": [1, 3, 2], "lifo": [2, 3, 1], "priority": [1, 2, 3]}
"""The order each kind returns the items ``1, 3, 2`` put in that order."""


def kind_params() -> list[Any]:
    """Return ``parametrize`` values for the three kinds, each marked with what it needs."""
    import pytest

    return [
        pytest.param("fifo", id="fifo"),
        pytest.param("lifo", id="lifo", marks=pytest.mark.needs("lifo")),
        pytest.param("priority", id="priority", marks=pytest.mark.needs("priority")),
    ]


async def wait_until(condition: Callable[[], bool], what: str, limit: float = WAIT_LIMIT) -> None:
    """Yield to the loop until *condition()* holds; fail after *limit* seconds.

    The first turns are bare ``sleep(0)`` (enough for in-memory queues); later ones
    sleep a millisecond so that a backend doing I/O in a thread is not starved of CPU.
    """
    deadline = time.monotonic() + limit
    turns = 0
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting until {what}")
        turns += 1
        await asyncio.sleep(0 if turns < 50 else 0.001)


async def settle(turns: int = 5) -> None:
    """Let every ready task run a few steps (a task blocked in the queue stays blocked)."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel *tasks* and wait until each has finished, whatever its outcome."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def outcome(task: asyncio.Task[Any]) -> tuple[str, Any]:
    """Describe a finished task: ``("ok", value)``, ``("cancelled", None)``, ``("error", exc)``."""
    if task.cancelled():
        return ("cancelled", None)
    exc = task.exception()
    if exc is not None:
        return ("error", exc)
    return ("ok", task.result())


def got(tasks: Iterable[asyncio.Task[Any]]) -> list[Any]:
    """Return the results of the finished *tasks* that returned one, cancelled ones left out.

    Raises:
        AssertionError: A task failed with an exception other than cancellation.
    """
    results = []
    for task in tasks:
        status, value = outcome(task)
        if status == "error":
            raise AssertionError(f"{task!r} failed") from value
        if status == "ok":
            results.append(value)
    return results
