"""In-memory queues for coroutines of one event loop: ``Queue``, ``LifoQueue``, ``PriorityQueue``.

They behave exactly as ``asyncio.queues`` does in Python 3.13 (``shutdown`` included)
on every supported Python.  They are faster because the common paths are written out
instead of going through a chain of small methods, and nothing is counted on the way
in: the totals are derived from what leaves.

(Making ``put_nowait`` the buffer's own ``deque.append`` while no getter waits was
measured to be 20-30% faster still, and rejected: a ``put_nowait`` bound earlier, as in
``loop.call_soon(q.put_nowait, x)``, would then skip waking getters and the shutdown
check.)

Items are never handed straight to a waiting getter.  Like asyncio, a put leaves the
item in the buffer and only wakes the getter, which takes an item when it runs.  A
direct hand-off is faster for a bounded queue with one producer and one consumer, but
it is visible: until the getter runs, the item would not count in ``qsize()`` nor take
a slot, and a ``get()`` by another task could return a newer item before the woken
getter returns the older one.  A woken getter that is cancelled before it runs takes
nothing and passes its wake-up on, so no item is ever lost or duplicated.

``conveyor.Queue`` takes its hot paths (``put_nowait``, ``get_nowait``, and ``put``/``get``
without a timeout) from the C accelerator ``conveyor._speedups`` where it was built, and
from ``PurePythonQueue`` otherwise (or when ``CONVEYOR_PURE_PYTHON=1`` is set).  Both
behave the same; the test suite runs against each.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import heapq
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from types import GenericAlias
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from ._abc import AsyncQueue, check_max_items, check_maxsize, check_timeout
from ._compat import QueueTimeoutError
from ._exceptions import QueueEmpty, QueueFull, QueueShutDown
from ._statistics import QueueStatistics
from ._waiting import Waiters, Waiting, wake_all, wake_one

__all__ = ["LifoQueue", "PriorityQueue", "PurePythonQueue", "Queue"]

T = TypeVar("T")

_get_running_loop = asyncio.get_running_loop
_monotonic = time.monotonic
_INFINITY: Final = float("inf")
_PUT_AFTER_SHUTDOWN: Final = "the queue is shut down: it accepts no more items"
_GET_AFTER_SHUTDOWN: Final = "the queue is shut down and has no items left"


# The blocking methods built on put_nowait()/get_nowait(), as asyncio's are: what
# put()/get() with a timeout run, and what subclasses that override the storage seam get.


async def _seam_put(self: PurePythonQueue[Any], item: Any, timeout: float | None = None) -> None:
    await self._wait_while(self.full, self._putters, _PUT_AFTER_SHUTDOWN, check_timeout(timeout))
    self.put_nowait(item)


async def _seam_get(self: PurePythonQueue[Any], timeout: float | None = None) -> Any:
    await self._wait_while(self.empty, self._getters, _GET_AFTER_SHUTDOWN, check_timeout(timeout))
    return self.get_nowait()


class PurePythonQueue(Waiting, AsyncQueue[T]):
    """A first-in, first-out queue for coroutines of one event loop.

    A drop-in for ``asyncio.Queue``: same methods, same exceptions, same behaviour,
    including ``shutdown()`` on Pythons older than 3.13.  Extras: ``timeout=`` on
    ``get``/``put``/``join``, ``get_many``/``put_many``, ``async for``, ``statistics()``.

    Args:
        maxsize: Number of items allowed in the queue; ``<= 0`` means unbounded.  Floats
            are accepted, as by asyncio (``1.3`` lets two items in).

    Raises:
        TypeError: *maxsize* is not a number.
    """

    _queue: Any
    # Marks a class whose put/get paths inline the deque (see __init_subclass__).
    _fast_paths: ClassVar[bool] = True

    def __init__(self, maxsize: float = 0) -> None:
        check_maxsize(maxsize)
        self._maxsize = maxsize
        # put raises once len(buffer) reaches _limit: QueueFull, or QueueShutDown after
        # shutdown() sets it to -1 (one comparison on the fast path checks both).
        self._limit: float = maxsize if maxsize > 0 else _INFINITY
        self._getters = Waiters()
        self._putters = Waiters()
        self._join_waiters = Waiters()
        self._is_shutdown = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # Items leave the buffer through a get (_got) or an immediate shutdown
        # (_dropped): everything ever put is those plus what is still buffered.
        # _finished counts task_done() and the drops that asyncio counts as done.
        self._got = 0
        self._dropped = 0
        self._finished = 0
        # The FIFO put paths track the peak (they know the size already); the seam
        # versions track it just before each get, which sees the same maximum.
        self._peak = 0
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
        # The fast paths inline deque.append/popleft and the _nowait methods.  A
        # subclass that overrides the storage seam or a _nowait method gets versions of
        # them that go through _put/_get and put_nowait/get_nowait, as asyncio's do.
        if cls.__dict__.get("_fast_paths"):
            return
        base = next(c for c in cls.__mro__[1:] if c.__dict__.get("_fast_paths"))
        overrides = ("_init", "_put", "_get", "put_nowait", "get_nowait")
        if any(getattr(cls, name) is not getattr(base, name) for name in overrides):
            for name, method in _SEAM_METHODS.items():
                if name not in cls.__dict__ and getattr(cls, name) is getattr(base, name):
                    setattr(cls, name, method)

    __class_getitem__ = classmethod(GenericAlias)  # type: ignore[var-annotated]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._format()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._format()}>"

    def _format(self) -> str:
        result = f"maxsize={self._maxsize!r}"
        if getattr(self, "_queue", None):
            result += f" _queue={list(self._queue)!r}"
        if getters := self._getters.waiting():
            result += f" _getters[{getters}]"
        if putters := self._putters.waiting():
            result += f" _putters[{putters}]"
        if self._unfinished():
            result += f" tasks={self._unfinished()}"
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

    def _unfinished(self) -> int:
        return len(self._queue) + self._got + self._dropped - self._finished

    # -- put -------------------------------------------------------------------------

    def put_nowait(self, item: T) -> None:
        """Put an item into the queue without blocking.

        Raises:
            QueueFull: No free slot is immediately available.
            QueueShutDown: The queue has been shut down.
        """
        queue = self._queue
        size = len(queue)
        if size >= self._limit:
            if self._is_shutdown:
                raise QueueShutDown(_PUT_AFTER_SHUTDOWN)
            raise QueueFull
        queue.append(item)
        if size >= self._peak:
            self._peak = size + 1
        if self._getters:
            wake_one(self._getters)

    async def put(self, item: T, timeout: float | None = None) -> None:
        """Put an item into the queue, waiting for a free slot if it is full.

        Args:
            item: The item to add.
            timeout: Seconds to wait for a free slot; ``None`` (the default) waits forever.

        Raises:
            TimeoutError: No slot became free within *timeout*; the item was not put.
            QueueShutDown: The queue has been shut down, before or while waiting.
        """
        if timeout is not None:
            await self._put_timed(item, timeout)
            return
        queue = self._queue
        size = len(queue)
        if size >= self._limit:
            # _wait_while() and _park() written out for the commonest wait (no
            # timeout): a blocked put then resumes through one coroutine frame instead
            # of three, which measured 10-20% more ping-pong throughput.
            while 0 < self._maxsize <= len(queue):
                if self._is_shutdown:
                    raise QueueShutDown(_PUT_AFTER_SHUTDOWN)
                loop = _get_running_loop()
                if loop is not self._loop:
                    self._bind(loop)
                waiter = loop.create_future()
                putters = self._putters
                putters.append(waiter)
                try:
                    await waiter
                except BaseException:
                    self._abandon(putters, waiter, self.full)
                    raise
            if self._is_shutdown:
                raise QueueShutDown(_PUT_AFTER_SHUTDOWN)
            size = len(queue)
        queue.append(item)
        if size >= self._peak:
            self._peak = size + 1
        if self._getters:
            wake_one(self._getters)

    # put() and get() with a timeout (also the C accelerator's): the seam versions below.
    _put_timed = _seam_put

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
        put_nowait = self.put_nowait
        for item in items:
            if self.full() and not self._is_shutdown:
                await self._wait_while(
                    self.full,
                    self._putters,
                    _PUT_AFTER_SHUTDOWN,
                    None if deadline is None else max(0.0, deadline - _monotonic()),
                )
                put_nowait = self.put_nowait
            put_nowait(item)

    # -- get -------------------------------------------------------------------------

    def get_nowait(self) -> T:
        """Remove and return an item if one is immediately available.

        Raises:
            QueueEmpty: The queue is empty.
            QueueShutDown: The queue has been shut down and is empty.
        """
        queue = self._queue
        try:
            item = queue.popleft()
        except IndexError:
            if self._is_shutdown:
                raise QueueShutDown(_GET_AFTER_SHUTDOWN) from None
            raise QueueEmpty from None
        self._got += 1
        if self._putters:
            wake_one(self._putters)
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
        if timeout is not None:
            return await self._get_timed(timeout)  # type: ignore[no-any-return]
        queue = self._queue
        # Written out for the same reason as in put().
        while not queue:
            if self._is_shutdown:
                raise QueueShutDown(_GET_AFTER_SHUTDOWN)
            loop = _get_running_loop()
            if loop is not self._loop:
                self._bind(loop)
            waiter = loop.create_future()
            getters = self._getters
            getters.append(waiter)
            try:
                await waiter
            except BaseException:
                self._abandon(getters, waiter, self.empty)
                raise
        item = queue.popleft()
        self._got += 1
        if self._putters:
            wake_one(self._putters)
        return item  # type: ignore[no-any-return]

    _get_timed = _seam_get

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
        if self.empty():
            await self._wait_while(self.empty, self._getters, _GET_AFTER_SHUTDOWN, timeout)
        return self._take(max_items)

    def _take(self, max_items: int) -> list[T]:
        queue = self._queue
        size = len(queue)
        if size > self._peak:
            self._peak = size
        if max_items >= size and type(queue) is deque:
            items = list(queue)
            queue.clear()
        else:
            popleft = queue.popleft
            items = [popleft() for _ in range(min(max_items, size))]
        count = len(items)
        self._got += count
        putters = self._putters
        while putters and count:
            wake_one(putters)
            count -= 1
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
        unfinished = self._unfinished()
        if unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._finished += 1
        if unfinished == 1 and self._join_waiters:
            wake_all(self._join_waiters)

    async def join(self, timeout: float | None = None) -> None:
        """Wait until every item put into the queue has been got and marked done.

        Args:
            timeout: Seconds to wait; ``None`` (the default) waits forever.

        Raises:
            TimeoutError: Items were still unfinished after *timeout* seconds.
        """
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else _monotonic() + timeout
        while self._unfinished() > 0:
            if not await self._park(self._join_waiters, _always, deadline):
                raise QueueTimeoutError

    # -- shutdown ----------------------------------------------------------------------

    def shutdown(self, immediate: bool = False) -> None:
        """Shut down the queue, making ``put`` and ``get`` raise ``QueueShutDown``.

        By default, ``get`` raises only once the queue is empty; with ``immediate=True``
        the queue is emptied at once, each removed item is marked done (which may wake
        ``join()``), and ``get`` raises straight away.  Every blocked ``put`` and ``get``
        is woken to re-check.
        """
        self._is_shutdown = True
        self._limit = -1.0
        if immediate:
            size = self.qsize()
            if size > self._peak:
                self._peak = size
            # asyncio marks each removed item done while any task is unfinished.
            unfinished = self._unfinished()
            while not self.empty():
                self._get()
            self._dropped += size
            self._finished += min(size, unfinished)
            if self._unfinished() == 0:
                wake_all(self._join_waiters)
        wake_all(self._getters)
        wake_all(self._putters)

    # -- introspection -----------------------------------------------------------------

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the queue's counters."""
        size = self.qsize()
        return QueueStatistics(
            backend="memory",
            current_size=size,
            max_size=self._maxsize if self._maxsize > 0 else 0,
            peak_size=max(self._peak, size),
            tasks_waiting_get=self._getters.waiting(),
            tasks_waiting_put=self._putters.waiting(),
            unfinished_tasks=self._unfinished(),
            total_put=size + self._got + self._dropped,
            total_got=self._got,
            is_shutdown=self._is_shutdown,
        )


# Named "Queue": it is conveyor.Queue wherever the C accelerator is not built, and its
# repr() and str() say "<Queue ...>", as asyncio's do.
PurePythonQueue.__name__ = PurePythonQueue.__qualname__ = "Queue"


def _always() -> bool:
    return True


# Seam versions of the methods that inline deque operations, installed on subclasses
# that override _put/_get (LifoQueue, PriorityQueue and users' own).


def _seam_put_nowait(self: Queue[Any], item: Any) -> None:
    if self._is_shutdown:
        raise QueueShutDown(_PUT_AFTER_SHUTDOWN)
    if self.full():
        raise QueueFull
    self._put(item)
    if self._getters:
        wake_one(self._getters)


def _seam_get_nowait(self: Queue[Any]) -> Any:
    if self.empty():
        if self._is_shutdown:
            raise QueueShutDown(_GET_AFTER_SHUTDOWN)
        raise QueueEmpty
    size = self.qsize()
    if size > self._peak:
        self._peak = size
    item = self._get()
    self._got += 1
    if self._putters:
        wake_one(self._putters)
    return item


def _seam_take(self: Queue[Any], max_items: int) -> list[Any]:
    items = [self.get_nowait()]
    while len(items) < max_items and not self.empty():
        items.append(self.get_nowait())
    return items


_SEAM_METHODS: dict[str, Callable[..., Any]] = {
    "put_nowait": _seam_put_nowait,
    "put": _seam_put,
    "get_nowait": _seam_get_nowait,
    "get": _seam_get,
    "_take": _seam_take,
}
for _name, _method in _SEAM_METHODS.items():
    _method.__doc__ = getattr(PurePythonQueue, _name).__doc__
    _method.__name__ = _name
    _method.__qualname__ = f"Queue.{_name}"


class _Heap(list[Any]):
    # A priority queue's buffer: a heap whose append() and popleft() keep its order, so
    # that PriorityQueue runs the FIFO queue's fast paths (in C too) instead of the
    # slower seam versions.  Still a list, as asyncio's buffer is.  An item that cannot be
    # compared stays in it, as it does in asyncio's (heappush appends, then compares).
    __slots__ = ()

    def append(self, item: Any) -> None:
        heapq.heappush(self, item)

    def popleft(self) -> Any:
        return heapq.heappop(self)


class _Stack(list[Any]):
    # A LIFO queue's buffer: popleft() takes the newest item.  Still a list.
    __slots__ = ()

    popleft = list.pop


_speedups: Any = None
if not os.environ.get("CONVEYOR_PURE_PYTHON"):
    # Not built (no compiler at install time): the pure-Python queue serves.
    with contextlib.suppress(ImportError):
        from . import _speedups

if TYPE_CHECKING:

    class Queue(PurePythonQueue[T]):
        pass

elif _speedups is not None:
    _speedups._setup(
        QueueFull,
        QueueEmpty,
        QueueShutDown,
        _PUT_AFTER_SHUTDOWN,
        _GET_AFTER_SHUTDOWN,
        asyncio.get_running_loop,
        asyncio.Future,
        asyncio.BaseEventLoop,
        _Heap,
    )
    # put() and get() return this coroutine object: registered so that
    # asyncio.create_task(), ensure_future() and gather() take it as a coroutine.
    collections.abc.Coroutine.register(_speedups.QueueOperation)

    class Queue(_speedups.QueueCore, PurePythonQueue[T]):
        __doc__ = PurePythonQueue.__doc__
        _fast_paths = True

else:
    Queue = PurePythonQueue  # type: ignore[misc]

SPEEDUPS: Final = _speedups is not None
"""Whether ``Queue`` runs its hot paths in C (``conveyor._speedups``)."""


class PriorityQueue(Queue[T]):
    """A queue that returns the lowest item first (entries are often ``(priority, data)``)."""

    # The fast paths serve: its buffer's append() and popleft() keep the heap's order.
    _fast_paths = True

    def _init(self, maxsize: float) -> None:
        self._queue = _Heap()

    def _put(self, item: T) -> None:
        heapq.heappush(self._queue, item)

    def _get(self) -> T:
        return heapq.heappop(self._queue)  # type: ignore[no-any-return]


class LifoQueue(Queue[T]):
    """A queue that returns the most recently added item first."""

    # The fast paths serve: its buffer's popleft() takes the newest item.
    _fast_paths = True

    def _init(self, maxsize: float) -> None:
        self._queue = _Stack()

    def _put(self, item: T) -> None:
        self._queue.append(item)

    def _get(self) -> T:
        return self._queue.pop()  # type: ignore[no-any-return]
