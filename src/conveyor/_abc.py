"""The one queue interface every backend implements, and the argument checks they share."""

from __future__ import annotations

import abc
import math
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Generic, TypeVar

from ._exceptions import QueueShutDown
from ._statistics import QueueStatistics

__all__ = ["AsyncQueue", "check_max_items", "check_maxsize", "check_timeout"]

T = TypeVar("T")


def check_maxsize(maxsize: object) -> None:
    """Reject a ``maxsize`` that is not a real number, as early as the constructor.

    Raises:
        TypeError: *maxsize* is not an ``int`` or ``float`` (``bool`` included).
        ValueError: *maxsize* is NaN.
    """
    if isinstance(maxsize, bool) or not isinstance(maxsize, (int, float)):
        raise TypeError(f"maxsize must be an int or float (<= 0 means unbounded), not {maxsize!r}")
    if maxsize != maxsize:
        raise ValueError("maxsize must be a number, not NaN")


def check_timeout(timeout: object) -> float | None:
    """Return *timeout* as seconds, or ``None`` for "wait forever".

    Raises:
        TypeError: *timeout* is not ``None``, an ``int`` or a ``float``.
        ValueError: *timeout* is negative or NaN.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be None or a number of seconds, not {timeout!r}")
    if not timeout >= 0:
        raise ValueError(f"timeout must be a non-negative number of seconds, not {timeout!r}")
    return None if math.isinf(timeout) else float(timeout)


def check_max_items(max_items: object) -> int:
    """Return *max_items* for ``get_many()`` after checking it.

    Raises:
        TypeError: *max_items* is not an ``int``.
        ValueError: *max_items* is less than 1.
    """
    if isinstance(max_items, bool) or not isinstance(max_items, int):
        raise TypeError(f"max_items must be an int >= 1, not {max_items!r}")
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, not {max_items}")
    return max_items


class AsyncQueue(abc.ABC, Generic[T]):
    """The asyncio queue surface shared by every conveyor queue.

    Semantics are those of ``asyncio.Queue`` in Python 3.13, ``shutdown`` included,
    plus timeouts, batches, ``async for`` and ``statistics()``.  A cancelled or timed-out
    ``get``/``put`` never loses nor duplicates an item.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def maxsize(self) -> float:
        """Number of items allowed in the queue; ``<= 0`` means unbounded."""

    @abc.abstractmethod
    def qsize(self) -> int:
        """Return the number of items waiting in the queue."""

    @abc.abstractmethod
    def empty(self) -> bool:
        """Return ``True`` if the queue holds no items waiting to be got."""

    @abc.abstractmethod
    def full(self) -> bool:
        """Return ``True`` if there are ``maxsize`` items in the queue (never when unbounded)."""

    @abc.abstractmethod
    async def put(self, item: T, timeout: float | None = None) -> bool | None:
        """Put an item into the queue, waiting while it is full.

        Args:
            item: The item to add.
            timeout: Seconds to wait for room; ``None`` waits forever.

        Returns:
            ``None`` for the in-memory queues, as asyncio's; a durable queue returns
            whether the item was stored (``False``: its dedup ``key`` was taken).

        Raises:
            TimeoutError: No room within *timeout*; the item was not put.
            QueueShutDown: The queue is shut down (before or while waiting).
        """

    @abc.abstractmethod
    def put_nowait(self, item: T) -> None:
        """Put an item into the queue without blocking.

        Raises:
            QueueFull: There is no free slot.
            QueueShutDown: The queue is shut down.
        """

    @abc.abstractmethod
    async def put_many(self, items: Iterable[T], timeout: float | None = None) -> list[bool] | None:
        """Put every item of *items*, in order, waiting for room as ``put()`` does.

        Args:
            items: The items to add.
            timeout: Seconds to wait in all; ``None`` waits forever.

        Returns:
            ``None`` for the in-memory queues; a durable queue returns, per item,
            whether it was stored (``False``: its dedup key was taken).

        Raises:
            TimeoutError: Not all items found room in time.  The items before the one
                that timed out were put; the exception's ``args`` do not say how many,
                ``statistics()`` does.
            QueueShutDown: The queue is shut down.
        """

    @abc.abstractmethod
    async def get(self, timeout: float | None = None) -> T:
        """Remove and return an item, waiting until one is available.

        Args:
            timeout: Seconds to wait for an item; ``None`` waits forever.

        Raises:
            TimeoutError: No item within *timeout*; nothing was removed.
            QueueShutDown: The queue is shut down and empty, or shut down immediately.
        """

    @abc.abstractmethod
    def get_nowait(self) -> T:
        """Remove and return an item if one is immediately available.

        Raises:
            QueueEmpty: The queue is empty.
            QueueShutDown: The queue is shut down and empty.
        """

    @abc.abstractmethod
    async def get_many(self, max_items: int, timeout: float | None = None) -> list[T]:
        """Remove and return between 1 and *max_items* items, waiting for the first.

        Args:
            max_items: The most items to return (``>= 1``).
            timeout: Seconds to wait for the first item; ``None`` waits forever.

        Raises:
            TimeoutError: No item within *timeout*.
            QueueShutDown: The queue is shut down and empty.
            ValueError: *max_items* is less than 1.
        """

    @abc.abstractmethod
    def task_done(self) -> None:
        """Indicate that a formerly got item is fully processed.

        Raises:
            ValueError: Called more times than there were items.
        """

    @abc.abstractmethod
    async def join(self, timeout: float | None = None) -> None:
        """Wait until every item put into the queue has been got and marked done.

        Raises:
            TimeoutError: Items were still unfinished after *timeout* seconds.
        """

    @abc.abstractmethod
    def shutdown(self, immediate: bool = False) -> None:
        """Shut down the queue: ``put`` raises ``QueueShutDown`` from now on.

        Blocked putters are woken with ``QueueShutDown``.  With ``immediate=False``
        the items already queued can still be got; once the queue is empty, blocked and
        new getters raise ``QueueShutDown``.  With ``immediate=True`` the queue is
        emptied at once, each removed item counts as done for ``join()``, and every
        blocked getter raises ``QueueShutDown``.
        """

    @abc.abstractmethod
    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the queue's counters, without I/O."""

    async def aclose(self) -> None:
        """Release the connections and files the queue holds (nothing, in memory)."""

    async def __aenter__(self) -> AsyncQueue[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        get = self.get
        while True:
            try:
                item = await get()
            except QueueShutDown:
                return
            yield item
