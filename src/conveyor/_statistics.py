"""The frozen snapshot returned by every queue's ``statistics()``."""

from __future__ import annotations

import dataclasses

__all__ = ["QueueStatistics"]


@dataclasses.dataclass(frozen=True, slots=True)
class QueueStatistics:
    """A point-in-time view of a queue, taken without any I/O.

    For durable backends the shared counters (``current_size``, ``unfinished_tasks``,
    ``current_leased``, ``current_dead``) are the last values this process saw;
    ``as_of`` says when (``time.monotonic()``), and is ``None`` for in-memory queues,
    whose numbers are always exact.

    Attributes:
        backend: The backend's name: ``"memory"``, ``"thread"``, ``"sqlite"``, ``"redis"``.
        current_size: Items waiting to be got (``qsize()``).
        max_size: ``maxsize``; ``0`` means unbounded.
        peak_size: The largest ``current_size`` this process observed.
        tasks_waiting_get: Tasks (and threads) of this process blocked in a get.
        tasks_waiting_put: Tasks (and threads) of this process blocked in a put.
        unfinished_tasks: Items put and not yet marked done (what ``join()`` waits for).
        total_put: Items this process put since the queue object was created.
        total_got: Items this process got since the queue object was created.
        current_leased: Items delivered and not yet acknowledged (durable backends).
        current_dead: Items in the dead-letter list (durable backends).
        is_shutdown: Whether ``shutdown()`` has been called (by any process).
        total_deduplicated: Puts of this process that stored nothing because an
            unfinished item held their ``key`` (durable backends; see ``put()``).
        as_of: ``time.monotonic()`` of the shared counters, or ``None`` when exact.
    """

    backend: str
    current_size: int
    max_size: float
    peak_size: int
    tasks_waiting_get: int
    tasks_waiting_put: int
    unfinished_tasks: int
    total_put: int
    total_got: int
    current_leased: int = 0
    current_dead: int = 0
    is_shutdown: bool = False
    as_of: float | None = None
    total_deduplicated: int = 0
