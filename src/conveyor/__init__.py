"""conveyor: asyncio.Queue, drop-in and faster, from one event loop to many machines.

One queue API at four scales; the rest of your code does not change:

    queue = conveyor.Queue(maxsize=100)              # coroutines in one event loop
    queue = conveyor.ThreadQueue(maxsize=100)        # threads and many event loops:
                                                     #   .sync_q and .async_q
    queue = await conveyor.open_queue("sqlite:///jobs.db", name="jobs")   # processes
    queue = await conveyor.open_queue("redis://host:6379/0", name="jobs")  # machines

Every queue has asyncio.Queue's methods, with its semantics (Python 3.13's shutdown()
included, on every Python from 3.10): put, get, put_nowait, get_nowait, task_done, join,
qsize, empty, full, shutdown; and what asyncio users keep asking for: get(timeout=...),
put(item, timeout=...), get_many, put_many, ``async for item in queue``, join(timeout=...)
and statistics().

The public names, in the order you need them:

Queues
    Queue, LifoQueue, PriorityQueue   in memory, one event loop
    ThreadQueue                       in memory, shared by threads and event loops
    LifoThreadQueue, PriorityThreadQueue   the same, last in first out / lowest first
    open_queue(url, name=...)         a durable queue: SQLite file or Redis server
    AsyncQueue                        what every asyncio-facing queue implements
    DurableQueue                      what open_queue() returns for sqlite:// and redis://
    Receipt, DeadItem                 exact acknowledgements, dead letters (durable)
    QueueStatistics                   the frozen snapshot statistics() returns

Workers
    work(queue, handler, concurrency=8)   run a handler over a queue's items: retries,
                                      dead letters, a graceful stop
    WorkStats                         what work() did

Exceptions
    QueueEmpty, QueueFull, QueueShutDown   asyncio's (or subclasses of them)
    SyncQueueShutDown, QueueTimeoutError   what the blocking face (.sync_q) raises
    ConveyorError                          the base of conveyor's own errors:
        InvalidURLError, MissingDependencyError, MaxsizeConflictError,
        SerializationError, LeaseExpiredError, ForeignReceiptError,
        QueueNotFoundError (conveyor's commands: no such store or queue),
        BackendError (BackendUnavailableError, IncompatibleStoreError, StoreResetError)

Serializers (durable queues)
    JSONSerializer (the default), PickleSerializer (opt in), Serializer (the protocol)

README.md says what each scale promises, and what it does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._abc import AsyncQueue
from ._durable import DeadItem, DurableQueue, Receipt
from ._exceptions import (
    BackendError,
    BackendUnavailableError,
    ConveyorError,
    ForeignReceiptError,
    IncompatibleStoreError,
    InvalidURLError,
    LeaseExpiredError,
    MaxsizeConflictError,
    MissingDependencyError,
    QueueEmpty,
    QueueFull,
    QueueNotFoundError,
    QueueShutDown,
    QueueTimeoutError,
    SerializationError,
    StoreResetError,
    SyncQueueShutDown,
)
from ._open import open_queue
from ._queue import LifoQueue, PriorityQueue, Queue
from ._serializers import JSONSerializer, PickleSerializer, Serializer
from ._statistics import QueueStatistics
from ._thread import LifoThreadQueue, PriorityThreadQueue, ThreadQueue

if TYPE_CHECKING:
    from ._work import WorkStats, work

__all__ = [
    "AsyncQueue",
    "BackendError",
    "BackendUnavailableError",
    "ConveyorError",
    "DeadItem",
    "DurableQueue",
    "ForeignReceiptError",
    "IncompatibleStoreError",
    "InvalidURLError",
    "JSONSerializer",
    "LeaseExpiredError",
    "LifoQueue",
    "MaxsizeConflictError",
    "LifoThreadQueue",
    "MissingDependencyError",
    "PickleSerializer",
    "PriorityQueue",
    "PriorityThreadQueue",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "QueueNotFoundError",
    "QueueShutDown",
    "QueueStatistics",
    "QueueTimeoutError",
    "Receipt",
    "SerializationError",
    "Serializer",
    "StoreResetError",
    "SyncQueueShutDown",
    "ThreadQueue",
    "WorkStats",
    "open_queue",
    "work",
]

__version__ = "0.1.0"


def _publish() -> None:
    # Show the names users import, not the private modules that define them, in reprs,
    # tracebacks and help(): conveyor.Queue, not conveyor._queue.Queue.
    for name in __all__:
        if name in _LAZY:
            continue
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith(f"{__name__}._"):
            try:
                obj.__module__ = __name__
            except (AttributeError, TypeError):  # a type defined in C keeps its own
                continue


# The job runner is loaded on first use: it and what it imports (signal, traceback,
# random, dataclasses) were 5 ms of `import conveyor`'s 94 (python -X importtime).
_LAZY = ("WorkStats", "work")


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from . import _work

        for lazy in _LAZY:
            obj = getattr(_work, lazy)
            obj.__module__ = __name__
            globals()[lazy] = obj
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_publish()
