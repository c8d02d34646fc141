"""conveyor: ``asyncio.Queue``, drop-in and faster, from one event loop to many machines.

* :class:`Queue`, :class:`LifoQueue`, :class:`PriorityQueue`: coroutines in one event loop.
* :class:`ThreadQueue`, :class:`LifoThreadQueue`, :class:`PriorityThreadQueue`: threads and
  any number of event loops in one process.
* :func:`open_queue`: durable queues shared by processes (``sqlite:///``) and machines
  (``redis://``), with at-least-once delivery.
"""

from __future__ import annotations

from ._abc import AsyncQueue
from ._durable import DeadItem, DurableQueue, Receipt
from ._exceptions import (
    BackendError,
    BackendUnavailableError,
    ConveyorError,
    IncompatibleStoreError,
    InvalidURLError,
    LeaseExpiredError,
    MissingDependencyError,
    QueueEmpty,
    QueueFull,
    QueueShutDown,
    SerializationError,
    SyncQueueShutDown,
)
from ._open import open_queue
from ._queue import LifoQueue, PriorityQueue, Queue
from ._serializers import JSONSerializer, PickleSerializer, Serializer
from ._statistics import QueueStatistics
from ._thread import LifoThreadQueue, PriorityThreadQueue, ThreadQueue

__all__ = [
    "AsyncQueue",
    "BackendError",
    "BackendUnavailableError",
    "ConveyorError",
    "DeadItem",
    "DurableQueue",
    "IncompatibleStoreError",
    "InvalidURLError",
    "JSONSerializer",
    "LeaseExpiredError",
    "LifoQueue",
    "LifoThreadQueue",
    "MissingDependencyError",
    "PickleSerializer",
    "PriorityQueue",
    "PriorityThreadQueue",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "QueueShutDown",
    "QueueStatistics",
    "Receipt",
    "SerializationError",
    "Serializer",
    "SyncQueueShutDown",
    "ThreadQueue",
    "open_queue",
]

__version__ = "0.1.0"
