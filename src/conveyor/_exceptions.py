"""Every exception conveyor raises.

The queue exceptions are the asyncio ones (or subclasses of them), so code written for
``asyncio.Queue`` keeps catching what it caught before.  Errors of conveyor's own derive
from ``ConveyorError``, and say whether *you* did something wrong (``ValueError`` and
friends) or the backend broke (``BackendError``).

Every class here says ``__module__ = "conveyor"``: tracebacks and reprs then show the name
a user imports (``conveyor.SerializationError``), not this private module.
"""

from __future__ import annotations

import asyncio
import queue

from . import _compat

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConveyorError",
    "ForeignReceiptError",
    "IncompatibleStoreError",
    "InvalidURLError",
    "LeaseExpiredError",
    "MaxsizeConflictError",
    "MissingDependencyError",
    "QueueEmpty",
    "QueueFull",
    "QueueNotFoundError",
    "QueueShutDown",
    "QueueTimeoutError",
    "SerializationError",
    "StoreResetError",
    "SyncQueueShutDown",
]


class QueueEmpty(asyncio.QueueEmpty, queue.Empty):
    """Raised when ``get_nowait()`` is called on an empty queue.

    It is both an ``asyncio.QueueEmpty`` and a ``queue.Empty``, so either
    ``except`` clause catches it.
    """

    __module__ = "conveyor"


class QueueFull(asyncio.QueueFull, queue.Full):
    """Raised when ``put_nowait()`` is called on a full queue.

    It is both an ``asyncio.QueueFull`` and a ``queue.Full``.
    """

    __module__ = "conveyor"


QueueShutDown = _compat.AsyncQueueShutDown
"""Raised when putting on to or getting from a queue that has been shut down.

On Python 3.13 and later this *is* ``asyncio.QueueShutDown``.
"""

SyncQueueShutDown = _compat.SyncQueueShutDown
"""Raised by the blocking face of a ``ThreadQueue`` once it is shut down.

On Python 3.13 and later this *is* ``queue.ShutDown``.
"""

QueueTimeoutError = _compat.QueueTimeoutError
"""Raised by ``get``/``put``/``join`` with a timeout that runs out.

On Python 3.11 and later this *is* the builtin ``TimeoutError``; on 3.10 it is both
that and ``asyncio.TimeoutError``.
"""


class ConveyorError(Exception):
    """Base class of the errors that are conveyor's own (not the asyncio queue ones)."""

    __module__ = "conveyor"


class InvalidURLError(ConveyorError, ValueError):
    """Raised by ``open_queue()`` for a URL it cannot use: unknown scheme or malformed."""

    __module__ = "conveyor"


class MissingDependencyError(ConveyorError, ImportError):
    """Raised by ``open_queue()`` when the backend needs an extra that is not installed."""

    __module__ = "conveyor"


class MaxsizeConflictError(ConveyorError, ValueError):
    """Raised by ``open_queue()`` when its ``maxsize`` differs from the one stored with the queue.

    The bound belongs to the queue, shared by every process: open it without ``maxsize``
    to use the stored one, or change it with ``await queue.set_maxsize(n)`` or
    ``conveyor maxsize URL NAME N``.
    """

    __module__ = "conveyor"


class SerializationError(ConveyorError, ValueError):
    """Raised when an item cannot be encoded (by ``put``) or decoded (by ``get``).

    When ``put()`` raises it, nothing was stored.
    """

    __module__ = "conveyor"


class LeaseExpiredError(ConveyorError):
    """Raised when a receipt is used after its lease expired and the item was redelivered."""

    __module__ = "conveyor"


class ForeignReceiptError(ConveyorError, ValueError):
    """Raised by ``ack``/``retry``/``fail``/``extend`` given a receipt of another queue.

    A receipt names the queue (and the incarnation of its store) that delivered it; any
    other queue refuses it and changes nothing.
    """


class QueueNotFoundError(ConveyorError, LookupError):
    """Raised when a store or queue that must exist does not (nothing was created).

    ``open_queue()`` creates what it opens; the operating commands (``conveyor stats``,
    ``peek``, ``purge``...) and the metrics exporter refuse to, and raise this instead.
    """

    __module__ = "conveyor"


class BackendError(ConveyorError):
    """Raised when the storage behind a durable queue fails (it broke, not you)."""

    __module__ = "conveyor"


class StoreResetError(BackendError):
    """Raised when a durable queue's store was wiped or replaced while the queue was open.

    E.g. a Redis ``FLUSHALL`` or a restart without persistence, or an SQLite file deleted
    and created again.  The items the store held are lost, and receipts of deliveries made
    before cannot acknowledge anything.  The call that raises it changed nothing; the queue
    goes on, empty, in the new store, and raises this once per process and store.
    """


class BackendUnavailableError(BackendError, ConnectionError):
    """Raised when the backend cannot be reached within the configured retry budget.

    Attributes:
        outcome_unknown: ``True`` when a change was sent and its reply never came: it may
            or may not have been applied.
    """

    __module__ = "conveyor"
    outcome_unknown: bool = False


class IncompatibleStoreError(BackendError):
    """Raised when a database is not a conveyor store, or was written by a newer version.

    The store is left untouched.
    """

    __module__ = "conveyor"
