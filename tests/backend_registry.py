"""The backends the conformance suite runs against, and the differences each declares.

Every backend is a :class:`Backend`: a name, an async factory for a fresh, empty queue,
and the features it lacks or does differently, each with the reason.  A conformance test
that needs such a feature says so with ``@pytest.mark.needs("feature")`` and is skipped,
with the declared reason, on that backend.  Nothing here edits a test to make it pass.

Backends living in their own test modules register with :func:`register`; the modules are
listed in ``BACKEND_MODULES`` and imported by ``tests/conftest.py``.

Features tests can ask for:

* ``shutdown``: ``shutdown()``/``QueueShutDown`` (asyncio has them from 3.13).
* ``lifo`` / ``priority``: ``kind="lifo"`` / ``kind="priority"`` queues.
* ``any_item``: items that are not JSON data (tuples stay tuples, objects, ...).
* ``exact_sync_view``: ``qsize()``/``empty()``/``full()`` exact at every instant, and
  ``put_nowait``/``get_nowait`` deciding on the exact state (durable queues read shared
  state over I/O, so their sync methods report the last known value).
* ``same_loop_only``: the queue raises ``RuntimeError`` when used from a second loop.
* ``float_maxsize``: non-integer ``maxsize`` values behave as in asyncio.
* ``none_maxsize_refused``: ``maxsize=None`` is a ``TypeError``, as in asyncio (durable
  queues store their bound: ``open_queue(maxsize=None)`` uses the stored one).
* ``class_named_repr``: ``repr()``/``str()`` start with the queue's class name.
* ``asyncio_repr``: ``repr()``/``str()`` show asyncio's details (``_queue=[...]``,
  ``_getters[n]``, ``_putters[n]``, ``tasks=n``, ``shutdown``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import conveyor
from conveyor._queue import PurePythonQueue

Factory = Callable[[pytest.FixtureRequest, float, str], Awaitable[Any]]

BACKEND_MODULES = [
    "tests.backends.thread_backend",
    "tests.backends.sqlite_backend",
    "tests.backends.redis_backend",
    "tests.backends.sentinel_backend",
    "tests.backends.cluster_backend",
]


@dataclasses.dataclass(frozen=True)
class Backend:
    """One implementation of the queue surface under test.

    Attributes:
        name: Short name used in test ids.
        make: ``await make(request, maxsize, kind)`` returns a new, empty queue.
        differences: Feature name -> why this backend does not have it.
        extras: Whether it has conveyor's additions (timeouts, batches, statistics...).
        close: ``await close(queue)`` releases it; defaults to ``queue.aclose()``.
        reports: The name ``statistics().backend`` gives; defaults to *name* (a variant
            of a backend, such as "memory-py", reports the backend's name).
    """

    name: str
    make: Factory
    differences: dict[str, str] = dataclasses.field(default_factory=dict)
    extras: bool = True
    close: Callable[[Any], Awaitable[None]] | None = None
    reports: str = ""

    @property
    def statistics_name(self) -> str:
        """What ``statistics().backend`` says for this backend's queues."""
        return self.reports or self.name


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add *backend* to the conformance matrix."""
    BACKENDS[backend.name] = backend
    return backend


async def _make_asyncio(request: pytest.FixtureRequest, maxsize: float, kind: str) -> Any:
    cls = {"fifo": asyncio.Queue, "lifo": asyncio.LifoQueue, "priority": asyncio.PriorityQueue}
    return cls[kind](maxsize)  # type: ignore[arg-type]  # asyncio accepts floats at run time


async def _make_memory(request: pytest.FixtureRequest, maxsize: float, kind: str) -> Any:
    cls = {"fifo": conveyor.Queue, "lifo": conveyor.LifoQueue, "priority": conveyor.PriorityQueue}
    return cls[kind](maxsize)


async def _make_memory_py(request: pytest.FixtureRequest, maxsize: float, kind: str) -> Any:
    # LifoQueue and PriorityQueue run the same Python seam paths with or without C.
    cls = {"fifo": PurePythonQueue, "lifo": conveyor.LifoQueue, "priority": conveyor.PriorityQueue}
    return cls[kind](maxsize)


async def _no_close(queue: Any) -> None:
    return None


register(
    Backend(
        "asyncio",
        _make_asyncio,
        differences=(
            {}
            if sys.version_info >= (3, 13)
            else {"shutdown": "asyncio.Queue has shutdown() from Python 3.13"}
        ),
        extras=False,
        close=_no_close,
    )
)
register(Backend("memory", _make_memory))
# conveyor.Queue without its C accelerator: what runs where conveyor._speedups is not built.
register(Backend("memory-py", _make_memory_py, reports="memory"))
