"""The two faces of a ``ThreadQueue``: ``SyncFace`` (``queue.Queue``'s blocking API)
and ``AsyncFace`` (conveyor's asyncio API), thin views of one shared ``_State``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Generic, TypeVar

from .._abc import AsyncQueue, check_max_items, check_timeout
from .._compat import QueueTimeoutError, SyncQueueShutDown
from .._exceptions import QueueEmpty, QueueFull, QueueShutDown
from .._statistics import QueueStatistics
from ._state import _monotonic, _State, _wake_one

T = TypeVar("T")

_PUT_SHUT_DOWN = "the queue is shut down: it takes no more items"
_GET_SHUT_DOWN = "the queue is shut down and has no items left"


def _deadline(timeout: float | None) -> float | None:
    # queue.Queue's rules: None waits forever, a negative timeout is an error.  A NaN is
    # one too: queue.Queue would wait forever on it, which hides the bug that made it
    # (culsans and the async face refuse it too).
    if timeout is None:
        return None
    if not timeout >= 0:
        raise ValueError(f"'timeout' must be a non-negative number, not {timeout!r}")
    return _monotonic() + timeout


def _async_deadline(timeout: float | None) -> float | None:
    timeout = check_timeout(timeout)
    return None if timeout is None else _monotonic() + timeout


class _Face(Generic[T]):
    # What the two faces share: they are views of one _State, and differ only in how
    # they wait and in the ShutDown class they raise (the hot paths are written out in
    # each face, so that no call is added to them).

    __slots__ = ("_state",)

    def __init__(self, state: _State[T]) -> None:
        self._state = state

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._state.describe()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._state.describe()}>"

    @property
    def maxsize(self) -> float:
        """Number of items allowed in the queue; ``<= 0`` means unbounded.

        Assignable, as ``queue.Queue.maxsize`` is, from any thread or loop: the
        bound of the whole queue (both faces) changes at once.  Growing it wakes as many
        blocked putters as there are new free slots; shrinking it below the current size
        drops no item, and puts block until gets bring the size under the new bound.
        Assigning a value that is not a number raises ``TypeError`` (``ValueError`` for
        NaN).
        """
        return self._state.maxsize

    @maxsize.setter
    def maxsize(self, maxsize: float) -> None:
        self._state.set_maxsize(maxsize)

    @property
    def is_shutdown(self) -> bool:
        """Whether the queue has been shut down (as ``queue.Queue.is_shutdown``)."""
        return self._state.is_shutdown

    @property
    def closed(self) -> bool:
        """Whether the queue is closed (shut down), as janus's and culsans's faces say."""
        return self._state.is_shutdown

    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done (as ``queue.Queue.unfinished_tasks``)."""
        state = self._state
        return state.total_put - state.done

    def task_done(self) -> None:
        """Indicate that a formerly got item is fully processed (on either face).

        Raises:
            ValueError: Called more times than there were items put.
        """
        self._state.task_done()

    def shutdown(self, immediate: bool = False) -> None:
        """Shut down the whole queue (both faces); see ``ThreadQueue.shutdown()``."""
        self._state.shutdown(immediate)


class SyncFace(_Face[T]):
    """The blocking face of a ``ThreadQueue``: the API of ``queue.Queue``.

    Use it from threads (or, for the non-blocking methods, from anywhere).  Once the
    queue is shut down it raises ``conveyor.SyncQueueShutDown``, on every Python: a
    ``queue.ShutDown`` (3.13+) that is also a ``conveyor.QueueShutDown``, so
    ``except conveyor.QueueShutDown`` catches the shutdown of either face.
    """

    __slots__ = ()

    def qsize(self) -> int:
        """Return the approximate number of items in the queue (exact at the instant read)."""
        return len(self._state.items)

    def empty(self) -> bool:
        """Return ``True`` if the queue is empty (a snapshot, as in ``queue``)."""
        return not self._state.items

    def full(self) -> bool:
        """Return ``True`` if the queue holds ``maxsize`` items (never when unbounded)."""
        return self._state.is_full()

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put an item into the queue, blocking while it is full.

        Args:
            item: The item to add.
            block: Whether to wait for a free slot; ``False`` raises at once instead.
            timeout: With *block*, seconds to wait; ``None`` waits forever.

        Raises:
            QueueFull: No free slot (at once, or within *timeout*).
            SyncQueueShutDown: The queue is shut down (before or while waiting).
            ValueError: *timeout* is negative or NaN (checked where queue.Queue checks one).
        """
        state = self._state
        lock = state.lock
        lock.acquire()
        try:
            if timeout is not None and block and state.maxsize > 0 and not state.is_shutdown:
                # queue.Queue rejects a negative timeout before looking for room.
                _deadline(timeout)
            items = state.items
            size = len(items)
            if size < state.limit:
                items.append(item)
                state.total_put += 1
                if size >= state.peak:
                    state.peak = size + 1
                if state.getters:
                    _wake_one(state.getters)
                return
            if state.is_shutdown:
                raise SyncQueueShutDown(_PUT_SHUT_DOWN)
            if not block:
                raise QueueFull
            deadline = _deadline(timeout)
            while True:
                if not state.wait_thread(state.putters, deadline):
                    raise QueueFull
                if state.is_shutdown:
                    raise SyncQueueShutDown(_PUT_SHUT_DOWN)
                if len(state.items) < state.limit:
                    state.push(item)
                    return
                if deadline is not None and _monotonic() >= deadline:
                    raise QueueFull
        finally:
            lock.release()

    def put_nowait(self, item: T) -> None:
        """Put an item into the queue without blocking.

        Raises:
            QueueFull: There is no free slot.
            SyncQueueShutDown: The queue is shut down.
        """
        state = self._state
        lock = state.lock
        lock.acquire()
        try:
            items = state.items
            size = len(items)
            if size < state.limit:
                items.append(item)
                state.total_put += 1
                if size >= state.peak:
                    state.peak = size + 1
                if state.getters:
                    _wake_one(state.getters)
                return
            if state.is_shutdown:
                raise SyncQueueShutDown(_PUT_SHUT_DOWN)
            raise QueueFull
        finally:
            lock.release()

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return an item, blocking until one is available.

        Args:
            block: Whether to wait for an item; ``False`` raises at once instead.
            timeout: With *block*, seconds to wait; ``None`` waits forever.

        Raises:
            QueueEmpty: No item (at once, or within *timeout*).
            SyncQueueShutDown: The queue is shut down and empty, or shut down immediately.
            ValueError: *timeout* is negative or NaN (checked where queue.Queue checks one).
        """
        state = self._state
        lock = state.lock
        lock.acquire()
        try:
            if timeout is not None and block and (state.items or not state.is_shutdown):
                # queue.Queue rejects a negative timeout before looking for an item.
                _deadline(timeout)
            items = state.items
            if items:
                item = items.popleft()
                if state.putters:
                    _wake_one(state.putters)
                return item
            if state.is_shutdown:
                raise SyncQueueShutDown(_GET_SHUT_DOWN)
            if not block:
                raise QueueEmpty
            deadline = _deadline(timeout)
            while True:
                if not state.wait_thread(state.getters, deadline):
                    raise QueueEmpty
                if state.items:
                    return state.pop()
                if state.is_shutdown:
                    raise SyncQueueShutDown(_GET_SHUT_DOWN)
                if deadline is not None and _monotonic() >= deadline:
                    raise QueueEmpty
        finally:
            lock.release()

    def get_nowait(self) -> T:
        """Remove and return an item if one is immediately available.

        Raises:
            QueueEmpty: The queue is empty.
            SyncQueueShutDown: The queue is shut down and empty.
        """
        state = self._state
        lock = state.lock
        lock.acquire()
        try:
            items = state.items
            if items:
                item = items.popleft()
                if state.putters:
                    _wake_one(state.putters)
                return item
            if state.is_shutdown:
                raise SyncQueueShutDown(_GET_SHUT_DOWN)
            raise QueueEmpty
        finally:
            lock.release()

    def join(self) -> None:
        """Block until every item put (on either face) has been got and marked done."""
        state = self._state
        with state.lock:
            while state.total_put != state.done:
                state.wait_thread(state.joiners, None)

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the queue's counters (the same on both faces)."""
        return self._state.statistics()


class AsyncFace(_Face[T], AsyncQueue[T]):
    """The asyncio face of a ``ThreadQueue``: conveyor's whole async surface.

    It may be used from any number of event loops, in any threads, at the same time.
    Its ``shutdown`` exception is ``conveyor.QueueShutDown`` (which *is*
    ``asyncio.QueueShutDown`` on 3.13+).  Its ``aclose()`` does nothing: the queue
    belongs to its ``ThreadQueue``, which ``ThreadQueue.close()`` closes.  Each
    method does what ``AsyncQueue`` documents (``help()`` and
    ``inspect.getdoc()`` show those docstrings).
    """

    __slots__ = ()

    # Shaped as asyncio's (<Queue at 0x... maxsize=0>), with the kind's asyncio name,
    # as code and logs written for asyncio.Queue expect.
    def __repr__(self) -> str:
        return f"<{self._state.name} at {id(self):#x} {self._state.describe()}>"

    def __str__(self) -> str:
        return f"<{self._state.name} {self._state.describe()}>"

    def qsize(self) -> int:
        return len(self._state.items)

    def empty(self) -> bool:
        return not self._state.items

    def full(self) -> bool:
        return self._state.is_full()

    # -- put -------------------------------------------------------------------------

    def put_nowait(self, item: T) -> None:
        state = self._state
        lock = state.lock
        lock.acquire()
        try:
            items = state.items
            size = len(items)
            if size < state.limit:
                items.append(item)
                state.total_put += 1
                if size >= state.peak:
                    state.peak = size + 1
                if state.getters:
                    _wake_one(state.getters)
                return
            if state.is_shutdown:
                raise QueueShutDown(_PUT_SHUT_DOWN)
            raise QueueFull
        finally:
            lock.release()

    async def put(self, item: T, timeout: float | None = None) -> None:
        deadline = None if timeout is None else _async_deadline(timeout)
        state = self._state
        lock = state.lock
        lock.acquire()
        try:
            items = state.items
            size = len(items)
            if size < state.limit:
                items.append(item)
                state.total_put += 1
                if size >= state.peak:
                    state.peak = size + 1
                if state.getters:
                    _wake_one(state.getters)
                return
        finally:
            lock.release()
        await self._put_waiting(item, deadline)

    async def _put_waiting(self, item: T, deadline: float | None) -> None:
        state = self._state
        loop = asyncio.get_running_loop()
        while True:
            with state.lock:
                if state.is_shutdown:
                    raise QueueShutDown(_PUT_SHUT_DOWN)
                if len(state.items) < state.limit:
                    state.push(item)
                    return
                waiter = state.enlist(state.putters, loop, deadline)
            if not await state.wait_task(state.putters, waiter, deadline):
                raise QueueTimeoutError

    async def put_many(self, items: Iterable[T], timeout: float | None = None) -> None:
        """Put every item of *items*, in order, waiting for room as ``put()`` does.

        Args:
            items: The items to add.
            timeout: Seconds to wait in all; ``None`` waits forever.

        Raises:
            TimeoutError: Not all items found room in time; those before it were put.
            QueueShutDown: The queue is shut down; those before it were put.
        """
        deadline = _async_deadline(timeout)
        state = self._state
        for item in items:
            with state.lock:
                if state.is_shutdown:
                    raise QueueShutDown(_PUT_SHUT_DOWN)
                if len(state.items) < state.limit:
                    state.push(item)
                    continue
            await self._put_waiting(item, deadline)

    # -- get -------------------------------------------------------------------------

    def get_nowait(self) -> T:
        state = self._state
        lock = state.lock
        lock.acquire()
        try:
            items = state.items
            if items:
                item = items.popleft()
                if state.putters:
                    _wake_one(state.putters)
                return item
            if state.is_shutdown:
                raise QueueShutDown(_GET_SHUT_DOWN)
            raise QueueEmpty
        finally:
            lock.release()

    async def get(self, timeout: float | None = None) -> T:
        deadline = None if timeout is None else _async_deadline(timeout)
        state = self._state
        lock = state.lock
        lock.acquire()
        try:
            items = state.items
            if items:
                item = items.popleft()
                if state.putters:
                    _wake_one(state.putters)
                return item
            if state.is_shutdown:
                raise QueueShutDown(_GET_SHUT_DOWN)
        finally:
            lock.release()
        return await self._get_waiting(deadline)

    async def _get_waiting(self, deadline: float | None) -> T:
        state = self._state
        loop = asyncio.get_running_loop()
        while True:
            with state.lock:
                if state.items:
                    return state.pop()
                if state.is_shutdown:
                    raise QueueShutDown(_GET_SHUT_DOWN)
                waiter = state.enlist(state.getters, loop, deadline)
            if not await state.wait_task(state.getters, waiter, deadline):
                raise QueueTimeoutError

    async def get_many(self, max_items: int, timeout: float | None = None) -> list[T]:
        """Remove and return between 1 and *max_items* items, waiting for the first.

        Args:
            max_items: The most items to return (``>= 1``).
            timeout: Seconds to wait for the first item; ``None`` waits forever.

        Raises:
            TimeoutError: No item within *timeout*.
            QueueShutDown: The queue is shut down and empty.
            TypeError: *max_items* is not an int.
            ValueError: *max_items* is less than 1.
        """
        check_max_items(max_items)
        deadline = _async_deadline(timeout)
        state = self._state
        loop = asyncio.get_running_loop()
        while True:
            with state.lock:
                items = state.items
                if items:
                    count = min(max_items, len(items))
                    popleft = items.popleft
                    batch = [popleft() for _ in range(count)]
                    putters = state.putters
                    for _ in range(count):
                        if not putters:
                            break
                        _wake_one(putters)
                    return batch
                if state.is_shutdown:
                    raise QueueShutDown(_GET_SHUT_DOWN)
                waiter = state.enlist(state.getters, loop, deadline)
            if not await state.wait_task(state.getters, waiter, deadline):
                raise QueueTimeoutError

    # -- task tracking -----------------------------------------------------------------

    async def join(self, timeout: float | None = None) -> None:
        """Wait until every item put (on either face) has been got and marked done.

        Args:
            timeout: Seconds to wait; ``None`` waits forever.

        Raises:
            TimeoutError: Items were still unfinished after *timeout* seconds.
        """
        deadline = _async_deadline(timeout)
        state = self._state
        loop = asyncio.get_running_loop()
        while True:
            with state.lock:
                if state.total_put == state.done:
                    return
                waiter = state.enlist(state.joiners, loop, deadline)
            if not await state.wait_task(state.joiners, waiter, deadline):
                raise QueueTimeoutError

    # -- shutdown and introspection ----------------------------------------------------

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the queue's counters (``backend="thread"``).

        ``tasks_waiting_get``/``tasks_waiting_put`` count blocked threads and tasks alike.
        """
        return self._state.statistics()
