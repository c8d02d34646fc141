"""Reaching a store to operate it: its queues, and one queue opened without creating it.

The operating commands (``conveyor queues|stats|peek|dead|requeue|purge|watch``), the
metrics exporter and the dashboard work on any backend through the ``Store`` interface
(``backends/_base.py``), reached from a URL here, as ``open_queue()`` reaches it: the
backend module is picked by scheme and imported on demand.  Unlike ``open_queue()``,
nothing here creates a store or a queue.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from ._exceptions import InvalidURLError
from ._open import _ACCEPTED, _BACKENDS, _import_backend, _parse
from ._urls import redacted
from .backends._base import Store, StoreCounts, StoreTotals

__all__ = ["QueueSnapshot", "list_queues", "open_existing_store", "read_snapshot"]


def _backend(url: str) -> tuple[ModuleType, Any]:
    parts = _parse(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        raise InvalidURLError(
            f"{redacted(url)} is an in-memory queue, which lives inside one program: give"
            " the URL of a durable one (sqlite:///file.db, redis://host:6379/0)"
        )
    if scheme not in _BACKENDS:
        raise InvalidURLError(
            f"unknown queue URL scheme {parts.scheme!r} in {redacted(url)!r}; accepted:"
            f" {_ACCEPTED.removeprefix('memory://, ')}"
        )
    module = _import_backend(scheme)
    return module, parts


async def list_queues(url: str, **options: Any) -> list[str]:
    """Return the names of the queues in the store at *url*, sorted; create nothing.

    Args:
        url: A durable store's URL (``sqlite:///jobs.db``, ``redis://host:6379/0``).
        **options: The backend's options, as ``open_queue()`` takes them.

    Raises:
        InvalidURLError: The URL is malformed, in-memory or of an unknown scheme.
        MissingDependencyError: The backend's driver is not installed.
        QueueNotFoundError: The store does not exist (e.g. no such SQLite file).
        BackendError: The store cannot be read.
    """
    module, parts = _backend(url)
    names: list[str] = await module.list_queues(parts, **options)
    return names


@asynccontextmanager
async def open_existing_store(url: str, name: str, **options: Any) -> AsyncIterator[Store]:
    """Open the store of queue *name* at *url*, if both exist; close it on the way out.

    ``async with open_existing_store(url, name) as store:``.  Nothing is created: a
    missing store or queue raises ``QueueNotFoundError``.

    Args:
        url: A durable store's URL.
        name: The queue's name.
        **options: The backend's options, as ``open_queue()`` takes them.

    Raises:
        InvalidURLError: The URL is malformed, in-memory or of an unknown scheme.
        MissingDependencyError: The backend's driver is not installed.
        QueueNotFoundError: The store or the queue does not exist.
        IncompatibleStoreError: The store is not a conveyor store, or a newer one.
        BackendError: The store cannot be opened.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, not {name!r}")
    module, parts = _backend(url)
    store: Store = await module.open_existing_store(parts, name, **options)
    try:
        yield store
    finally:
        await store.aclose()


@dataclasses.dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """What the operating tools show of one queue, read from its store.

    Attributes:
        name: The queue's name.
        backend: The store's backend (``"sqlite"``, ``"redis"``).
        counts: The shared counters, read in one atomic step.
        oldest_ready_age: Seconds since the oldest ready item was put; ``None`` when the
            store does not record it.
        totals: The lifetime counters the store keeps, and its rates in and out over the
            last minute (``None`` fields where it keeps or knows none).
        read_at: ``time.time()`` when the read finished.
    """

    name: str
    backend: str
    counts: StoreCounts
    oldest_ready_age: float | None
    totals: StoreTotals
    read_at: float

    def as_json(self) -> dict[str, Any]:
        """Return the snapshot as the ``--json`` output and the dashboard give it."""
        counts = self.counts
        maxsize = counts.maxsize
        return {
            "queue": self.name,
            "backend": self.backend,
            "ready": counts.ready,
            "delayed": counts.delayed,
            "leased": counts.leased,
            "dead": counts.dead,
            "unfinished": counts.unfinished,
            "maxsize": 0 if maxsize <= 0 or math.isinf(maxsize) else maxsize,
            "shutdown": counts.is_shutdown,
            "oldest_ready_age": self.oldest_ready_age,
            "put_total": self.totals.put,
            "delivered_total": self.totals.delivered,
            "finished_total": self.totals.finished,
            "put_per_minute": _rounded(self.totals.put_per_minute),
            "finished_per_minute": _rounded(self.totals.finished_per_minute),
            "rate_span": _rounded(self.totals.rate_span),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def read_snapshot(store: Store, name: str) -> QueueSnapshot:
    """Read what the operating tools show of the queue of *store*: three store reads.

    Raises:
        BackendError: The store failed.
    """
    counts = await store.counts()
    age = await store.oldest_ready_age()
    totals = await store.totals()
    return QueueSnapshot(name, store.backend, counts, age, totals, time.time())
