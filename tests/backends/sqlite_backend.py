"""Registers the SQLite durable queue with the conformance suite, and what it does differently."""

from __future__ import annotations

from typing import Any

import pytest

import conveyor
from tests.backend_registry import Backend, register


async def _make_sqlite(request: pytest.FixtureRequest, maxsize: float, kind: str) -> Any:
    if kind != "fifo":
        raise ValueError(f"sqlite queues are FIFO only, not {kind!r}")
    tmp_path = request.getfixturevalue("tmp_path_factory").mktemp("sqlite")
    return await conveyor.open_queue(f"sqlite:///{tmp_path / 'queue.db'}", maxsize=maxsize)


register(
    Backend(
        "sqlite",
        _make_sqlite,
        differences={
            "lifo": "durable queues are FIFO only: the store hands out the oldest item first",
            "priority": "durable queues are FIFO only: the store hands out the oldest item first",
            "any_item": "items are encoded as JSON by default (tuples come back as lists, "
            "objects are refused); pickle is opt-in",
            "asyncio_repr": "the items live in the file: repr() shows the last known size "
            "and counts, not the items",
            "none_maxsize_refused": "the bound is stored with the queue: open_queue(maxsize=None),"
            " the default, uses the stored one",
            "exact_sync_view": "the shared state lives in the file: qsize()/empty()/full() and "
            "put_nowait()/get_nowait() use the last known state (exact in one process after "
            "each awaited operation); await aqsize() reads it",
        },
    )
)
