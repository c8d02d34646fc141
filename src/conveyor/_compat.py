"""Version-dependent names, kept in one place so no other module checks versions."""

from __future__ import annotations

import asyncio
import queue
import sys

__all__ = ["AsyncQueueShutDown", "QueueTimeoutError", "SyncQueueShutDown"]

if sys.version_info >= (3, 13):
    AsyncQueueShutDown = asyncio.QueueShutDown

    class SyncQueueShutDown(queue.ShutDown, asyncio.QueueShutDown):
        """Raised by a shut-down ThreadQueue's blocking face: a :class:`queue.ShutDown`.

        It is an :class:`asyncio.QueueShutDown` too, so that one ``except`` clause
        catches the shutdown of both faces.
        """

        __module__ = "conveyor"

else:  # pragma: no cover - exercised on 3.10-3.12 only

    class AsyncQueueShutDown(Exception):  # noqa: N818 - the asyncio name
        """Raised when putting on to or getting from a queue that is shut down."""

    class SyncQueueShutDown(AsyncQueueShutDown):
        """Raised by a shut-down ThreadQueue's blocking face (``queue.ShutDown`` from 3.13).

        It is a :class:`conveyor.QueueShutDown` too, so that one ``except`` clause
        catches the shutdown of both faces.
        """

        __module__ = "conveyor"


if sys.version_info >= (3, 11):
    QueueTimeoutError = TimeoutError
else:  # pragma: no cover - exercised on 3.10 only

    class QueueTimeoutError(asyncio.TimeoutError, TimeoutError):
        """A timeout that both ``except TimeoutError`` and ``except asyncio.TimeoutError`` catch."""
