"""The ``thread`` conformance backend: the async face of conveyor's thread queues."""

from __future__ import annotations

from typing import Any

import pytest

import conveyor
from tests.backend_registry import Backend, register

KINDS: dict[str, type[conveyor.ThreadQueue[Any]]] = {
    "fifo": conveyor.ThreadQueue,
    "lifo": conveyor.LifoThreadQueue,
    "priority": conveyor.PriorityThreadQueue,
}


async def make(request: pytest.FixtureRequest, maxsize: float, kind: str) -> Any:
    """Return the async face of a new thread queue of *kind*."""
    return KINDS[kind](maxsize).async_q


register(
    Backend(
        "thread",
        make,
        differences={
            "same_loop_only": "ThreadQueue serves any number of event loops at once, by design",
            "class_named_repr": (
                "the async face shows the asyncio class of its kind (<Queue at ...>), not"
                " AsyncFace, as code and logs written for asyncio.Queue expect"
            ),
        },
    )
)
