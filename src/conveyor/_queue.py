"""In-memory queues for coroutines of one event loop: ``Queue``, ``LifoQueue``, ``PriorityQueue``.

They behave exactly as :mod:`asyncio.queues` does in Python 3.13 (``shutdown`` included)
on every supported Python, and are faster because the common paths are written out
instead of going through a chain of small method calls.  The storage seam of asyncio
(``_init``/``_put``/``_get``) is kept: a subclass that overrides it gets methods that go
through the seam (see ``Queue.__init_subclass__``).

Cancellation safety follows asyncio's design: an item is never handed to a waiting task
directly.  It goes into the buffer and the waiter is only *woken*; the waiter takes the
item when it runs.  A waiter cancelled after being woken therefore takes nothing, and
passes its wake-up on to the next waiter.  Handing items over directly is faster on
paper, but an item handed to a task that is cancelled before it resumes must either be
lost or be put back out of order, and asyncio offers no way to make the hand-off and
the resumption one step.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque
from collections.abc import Iterable
from types import GenericAlias
from typing import Any, TypeVar

from ._abc import AsyncQueue, check_max_items, check_maxsize, check_timeout
from ._compat import QueueTimeoutError
from ._exceptions import QueueEmpty, QueueFull, QueueShutDown
from ._statistics import QueueStatistics

__all__ = ["LifoQueue", "PriorityQueue", "Queue"]

T = TypeVar("T")

_get_running_loop = asyncio.get_running_loop
_monotonic = time.monotonic


def _expire(waiter: asyncio.Future[bool]) -> None:
    # A waiter's result says why it woke: True for "state changed", False for "timed out".
    if not waiter.done():
        waiter.set_result(False)


def _wake_one(waiters: deque[asyncio.Future[bool]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(True)
            return


def _wake_all(waiters: deque[asyncio.Future[bool]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(True)


class Queue(AsyncQueue[T]):
    """A first-in, first-out queue for coroutines of one event loop.

    A drop-in for :class:`asyncio.Queue`: same methods, same exceptions, same behaviour,
    including ``shutdown()`` on Pythons older than 3.13.  Extras: ``timeout=`` on
    ``get``/``put``/``join``, ``get_many``/``put_many``, ``async for``, ``statistics()``.

    Args:
        maxsize: Number of items allowed in the queue; ``<= 0`` means unbounded.  Floats
            are accepted, as by asyncio (``1.3`` lets two items in).

    Raises:
        TypeError: *maxsize* is not a number.
    """

    __slots__ = (
        "__weakref__",
        "_getters",
        "_is_shutdown",
        "_join_waiters",
        "_loop",
        "_maxsize",
        "_peak",
        "_putters",
        "_queue",
        "_total_got",
        "_total_put",
        "_unfinished_tasks",
    )

    _queue: Any

    def __init__(self, maxsize: float = 0) -> None:
        check_maxsize(maxsize)
        self._maxsize = maxsize
        self._getters: deque[asyncio.Future[bool]] = deque()
        self._putters: deque[asyncio.Future[bool]] = deque()
        self._join_waiters: deque[asyncio.Future[bool]] = deque()
        self._unfinished_tasks = 0
        self._is_shutdown = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._peak = 0
        self._total_put = 0
        self._total_got = 0
        self._init(maxsize)

    # The storage seam, as in asyncio: override all three to change the order.

    def _init(self, maxsize: float) -> None:
        self._queue = deque()

    def _put(self, item: T) -> None:
        self._queue.append(item)

    def _get(self) -> T:
        return self._queue.popleft()  # type: ignore[no-any-return]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The fast paths below inline deque.append/popleft.  A subclass with its own
        # storage must go through _put/_get instead, so it gets the seam versions.
        if cls._put is not Queue._put or cls._get is not Queue._get:
            for name, method in _SEAM_METHODS.items():
                if cls.__dict__.get(name) is None and getattr(cls, name) is getattr(Queue, name):
                    setattr(cls, name, method)

    __class_getitem__ = classmethod(GenericAlias)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._format()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._format()}>"

    def _format(self) -> str:
        result = f"maxsize={self._maxsize!r}"
        if getattr(self, "_queue", None):
            result += f" _queue={list(self._queue)!r}"
        if self._getters:
            result += f" _getters[{len(self._getters)}]"
        if self._putters:
            result += f" _putters[{len(self._putters)}]"
        if self._unfinished_tasks:
            result += f" tasks={self._unfinished_tasks}"
        if self._is_shutdown:
            result += " shutdown"
        return result

    @property
    def maxsize(self) -> float:
        """Number of items allowed in the queue; ``<= 0`` means unbounded."""
        return self._maxsize

    def qsize(self) -> int:
        """Return the number of items in the queue."""
        return len(self._queue)

    def empty(self) -> bool:
        """Return ``True`` if the queue is empty, ``False`` otherwise."""
        return not self._queue

    def full(self) -> bool:
        """Return ``True`` if there are ``maxsize`` items in the queue.

        With ``maxsize <= 0`` (unbounded, the default) ``full()`` is never ``True``.
        """
        return 0 < self._maxsize <= len(self._queue)

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = _get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(f"{self!r} is bound to a different event loop")
        return loop

    # -- put -------------------------------------------------------------------------

    def put_nowait(self, item: T) -> None:
        """Put an item into the queue without blocking.

        Raises:
            QueueFull: No free slot is immediately available.
            QueueShutDown: The queue has been shut down.
        """
        if self._is_shutdown:
            raise QueueShutDown
        queue = self._queue
        if 0 < self._maxsize <= len(queue):
            raise QueueFull
        queue.append(item)
        self._unfinished_tasks += 1
        self._total_put += 1
        if len(queue) > self._peak:
            self._peak = len(queue)
        if self._getters:
            _wake_one(self._getters)

    async def put(self, item: T, timeout: float | None = None) -> None:
        """Put an item into the queue, waiting for a free slot if it is full.

        Args:
            item: The item to add.
            timeout: Seconds to wait for a free slot; ``None`` (the default) waits forever.

        Raises:
            TimeoutError: No slot became free within *timeout*; the item was not put.
            QueueShutDown: The queue has been shut down, before or while waiting.
        """
        queue = self._queue
        if not 0 < self._maxsize <= len(queue) and timeout is None and not self._is_shutdown:
            queue.append(item)
            self._unfinished_tasks += 1
            self._total_put += 1
            if len(queue) > self._peak:
                self._peak = len(queue)
            if self._getters:
                _wake_one(self._getters)
            return
        await self._wait_not_full(check_timeout(timeout))
        self.put_nowait(item)

    async def _wait_not_full(self, timeout: float | None) -> None:
        # Return once there is a free slot; raise QueueShutDown or TimeoutError instead.
        deadline = None
        while self.full():
            if self._is_shutdown:
                raise QueueShutDown
            if timeout is not None:
                if deadline is None:
                    deadline = _monotonic() + timeout
                elif _monotonic() >= deadline:
                    raise QueueTimeoutError
            if not await self._wait(self._putters, self.full, deadline):
                raise QueueTimeoutError

    async def _wait(
        self,
        waiters: deque[asyncio.Future[bool]],
        still_blocked: Any,
        deadline: float | None,
    ) -> bool:
        # Park on a fresh future in *waiters*; True when woken, False when the deadline
        # passed.  A waiter that was woken but is leaving (cancelled, timed out) passes the
        # wake-up on, or the item (or slot) it was woken for would have no taker.
        loop = self._bind_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        waiters.append(waiter)
        timer = None
        if deadline is not None:
            timer = loop.call_at(loop.time() + max(0.0, deadline - _monotonic()), _expire, waiter)
        try:
            woken = await waiter
        except BaseException:
            waiter.cancel()
            try:
                waiters.remove(waiter)
            except ValueError:
                pass
            if not still_blocked() and not waiter.cancelled() and waiter.result():
                _wake_one(waiters)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not woken:
            try:
                waiters.remove(waiter)
            except ValueError:
                pass
        return woken

    async def put_many(self, items: Iterable[T], timeout: float | None = None) -> None:
        """Put every item of *items* in order, waiting for free slots as ``put()`` does.

        Args:
            items: The items to add.
            timeout: Seconds to wait in all; ``None`` waits forever.

        Raises:
            TimeoutError: Not every item found a slot in time; those before it were put.
            QueueShutDown: The queue has been shut down; those before it were put.
        """
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else _monotonic() + timeout
        for item in items:
            if self.full() and not self._is_shutdown:
                await self._wait_not_full(
                    None if deadline is None else max(0.0, deadline - _monotonic())
                )
            self.put_nowait(item)

    # -- get -------------------------------------------------------------------------

    def get_nowait(self) -> T:
        """Remove and return an item if one is immediately available.

        Raises:
            QueueEmpty: The queue is empty.
            QueueShutDown: The queue has been shut down and is empty.
        """
        queue = self._queue
        if not queue:
            if self._is_shutdown:
                raise QueueShutDown
            raise QueueEmpty
        item = queue.popleft()
        self._total_got += 1
        if self._putters:
            _wake_one(self._putters)
        return item  # type: ignore[no-any-return]

    async def get(self, timeout: float | None = None) -> T:
        """Remove and return an item, waiting until one is available.

        Args:
            timeout: Seconds to wait for an item; ``None`` (the default) waits forever.

        Raises:
            TimeoutError: No item arrived within *timeout*; nothing was removed.
            QueueShutDown: The queue has been shut down and is empty, or shut down
                with ``immediate=True``.
        """
        queue = self._queue
        if queue and timeout is None:
            item = queue.popleft()
            self._total_got += 1
            if self._putters:
                _wake_one(self._putters)
            return item  # type: ignore[no-any-return]
        await self._wait_not_empty(check_timeout(timeout))
        return self.get_nowait()

    async def _wait_not_empty(self, timeout: float | None) -> None:
        deadline = None
        while self.empty():
            if self._is_shutdown:
                raise QueueShutDown
            if timeout is not None:
                if deadline is None:
                    deadline = _monotonic() + timeout
                elif _monotonic() >= deadline:
                    raise QueueTimeoutError
            if not await self._wait(self._getters, self.empty, deadline):
                raise QueueTimeoutError

    async def get_many(self, max_items: int, timeout: float | None = None) -> list[T]:
        """Remove and return between 1 and *max_items* items, waiting for the first.

        Args:
            max_items: The most items to return (``>= 1``).
            timeout: Seconds to wait for the first item; ``None`` waits forever.

        Raises:
            TimeoutError: No item arrived within *timeout*.
            QueueShutDown: The queue has been shut down and is empty.
            TypeError: *max_items* is not an int.
            ValueError: *max_items* is less than 1.
        """
        check_max_items(max_items)
        timeout = check_timeout(timeout)
        if not self._queue:
            await self._wait_not_empty(timeout)
        return self._take(max_items)

    def _take(self, max_items: int) -> list[T]:
        queue = self._queue
        count = min(max_items, len(queue))
        if count == len(queue):
            items = list(queue)
            queue.clear()
        else:
            popleft = queue.popleft
            items = [popleft() for _ in range(count)]
        self._total_got += count
        putters = self._putters
        for _ in range(count):
            if not putters:
                break
            _wake_one(putters)
        return items

    # -- task tracking -----------------------------------------------------------------

    def task_done(self) -> None:
        """Indicate that a formerly enqueued item is fully processed.

        For each ``get()`` used to fetch an item, a later ``task_done()`` tells the queue
        that the work on it is complete.  ``shutdown(immediate=True)`` calls it for each
        item it removes.

        Raises:
            ValueError: Called more times than there were items put into the queue.
        """
        if self._unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished_tasks -= 1
        if self._unfinished_tasks == 0 and self._join_waiters:
            _wake_all(self._join_waiters)

    async def join(self, timeout: float | None = None) -> None:
        """Wait until every item put into the queue has been got and marked done.

        Args:
            timeout: Seconds to wait; ``None`` (the default) waits forever.

        Raises:
            TimeoutError: Items were still unfinished after *timeout* seconds.
        """
        timeout = check_timeout(timeout)
        if self._unfinished_tasks <= 0:
            return
        deadline = None if timeout is None else _monotonic() + timeout
        while self._unfinished_tasks > 0:
            if not await self._wait(self._join_waiters, _never, deadline):
                raise QueueTimeoutError

    # -- shutdown ----------------------------------------------------------------------

    def shutdown(self, immediate: bool = False) -> None:
        """Shut down the queue, making ``put`` and ``get`` raise :class:`QueueShutDown`.

        By default, ``get`` raises only once the queue is empty; with ``immediate=True``
        the queue is emptied at once, each removed item is marked done (which may wake
        ``join()``), and ``get`` raises straight away.  Every blocked ``put`` and ``get``
        is woken to re-check.
        """
        self._is_shutdown = True
        if immediate:
            while not self.empty():
                self._get()
                if self._unfinished_tasks > 0:
                    self._unfinished_tasks -= 1
            if self._unfinished_tasks == 0:
                _wake_all(self._join_waiters)
        _wake_all(self._getters)
        _wake_all(self._putters)

    # -- introspection -----------------------------------------------------------------

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the queue's counters."""
        return QueueStatistics(
            backend="memory",
            current_size=len(self._queue),
            max_size=self._maxsize if self._maxsize > 0 else 0,
            peak_size=self._peak,
            tasks_waiting_get=sum(not w.done() for w in self._getters),
            tasks_waiting_put=sum(not w.done() for w in self._putters),
            unfinished_tasks=self._unfinished_tasks,
            total_put=self._total_put,
            total_got=self._total_got,
            is_shutdown=self._is_shutdown,
        )


def _never() -> bool:
    return True


# Seam versions of the methods that inline deque operations, installed on subclasses
# that override _put/_get (LifoQueue, PriorityQueue and users' own).


def _seam_put_nowait(self: Queue[Any], item: Any) -> None:
    if self._is_shutdown:
        raise QueueShutDown
    if self.full():
        raise QueueFull
    self._put(item)
    self._unfinished_tasks += 1
    self._total_put += 1
    size = self.qsize()
    if size > self._peak:
        self._peak = size
    if self._getters:
        _wake_one(self._getters)


async def _seam_put(self: Queue[Any], item: Any, timeout: float | None = None) -> None:
    await self._wait_not_full(check_timeout(timeout))
    self.put_nowait(item)


def _seam_get_nowait(self: Queue[Any]) -> Any:
    if self.empty():
        if self._is_shutdown:
            raise QueueShutDown
        raise QueueEmpty
    item = self._get()
    self._total_got += 1
    if self._putters:
        _wake_one(self._putters)
    return item


async def _seam_get(self: Queue[Any], timeout: float | None = None) -> Any:
    timeout = check_timeout(timeout)
    if self.empty():
        await self._wait_not_empty(timeout)
    return self.get_nowait()


def _seam_take(self: Queue[Any], max_items: int) -> list[Any]:
    items = []
    while len(items) < max_items and not self.empty():
        items.append(self._get())
    self._total_got += len(items)
    for _ in range(len(items)):
        if not self._putters:
            break
        _wake_one(self._putters)
    return items


_SEAM_METHODS: dict[str, Any] = {
    "put_nowait": _seam_put_nowait,
    "put": _seam_put,
    "get_nowait": _seam_get_nowait,
    "get": _seam_get,
    "_take": _seam_take,
}
for _name, _method in _SEAM_METHODS.items():
    _method.__doc__ = getattr(Queue, _name).__doc__
    _method.__name__ = _name
    _method.__qualname__ = f"Queue.{_name}"


class PriorityQueue(Queue[T]):
    """A queue that returns the lowest item first (entries are often ``(priority, data)``)."""

    __slots__ = ()

    def _init(self, maxsize: float) -> None:
        self._queue = []

    def _put(self, item: T) -> None:
        heapq.heappush(self._queue, item)

    def _get(self) -> T:
        return heapq.heappop(self._queue)  # type: ignore[no-any-return]


class LifoQueue(Queue[T]):
    """A queue that returns the most recently added item first."""

    __slots__ = ()

    def _init(self, maxsize: float) -> None:
        self._queue = []

    def _put(self, item: T) -> None:
        self._queue.append(item)

    def _get(self) -> T:
        return self._queue.pop()  # type: ignore[no-any-return]
