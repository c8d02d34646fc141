"""The ``thread`` conformance backend: the async face of ``conveyor.ThreadQueue``."""

from __future__ import annotations

from typing import Any

import pytest

import conveyor
from tests.backend_registry import Backend, register


async def make(request: pytest.FixtureRequest, maxsize: float, kind: str) -> Any:
    """Return the async face of a new ``ThreadQueue`` (FIFO only)."""
    if kind != "fifo":
        raise ValueError(f"ThreadQueue is FIFO only, not {kind!r}")
    return conveyor.ThreadQueue(maxsize).async_q


register(
    Backend(
        "thread",
        make,
        differences={
            "lifo": "ThreadQueue is FIFO only (as janus and culsans are by default)",
            "priority": "ThreadQueue is FIFO only (as janus and culsans are by default)",
            "same_loop_only": "ThreadQueue serves any number of event loops at once, by design",
        },
    )
)
