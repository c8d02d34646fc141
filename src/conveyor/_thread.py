"""``ThreadQueue``: one queue shared by threads and any number of event loops.

A ``ThreadQueue`` is one shared state object (a deque of items, counters, and the
queues of blocked waiters) behind one ``threading.Lock``, seen through two thin
faces: ``ThreadQueue.sync_q`` with the blocking API of ``queue.Queue``, and
``ThreadQueue.async_q`` with conveyor's asyncio surface.  Every face may be used from
any thread and any event loop at the same time; the queue belongs to no loop.

The lock only ever guards a short critical section, so taking it on an event loop's
thread never stalls the loop.  Nobody ever waits *on* it: a blocked thread waits on a
lock of its own (which the waker releases), and a blocked task on a future of its own
loop (which the waker resolves directly when it runs on that loop, and through
``loop.call_soon_threadsafe`` otherwise).  No one polls.

Cancellation safety follows asyncio's design: an item is never handed to a waiter.  It
goes into the deque and one waiter is *woken*; the waiter takes an item when it runs.
A waker removes the waiter from its waiting list, so a waiter that leaves (cancelled,
timed out, interrupted) can tell whether it had been woken: if it is no longer listed,
it was, and it passes the wake-up on to the next waiter, or the item (or free slot) it
was woken for could wait with nobody coming for it.

The kinds of queue (FIFO, LIFO, priority) differ only in the container of their items:
the fast paths put with ``append()`` and take with ``popleft()`` (where asyncio's queue
calls ``_put``/``_get``), a deque does both in FIFO order, and the LIFO and priority
containers in theirs.

Speed: the put/get fast paths are written out inline on each face (no helper calls),
take the lock with ``acquire()``/``try``/``finally`` (measured ~100 ns cheaper than
``with`` on 3.13), and fold "shut down" into the room check (``limit`` drops to -1).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import threading
import time
from asyncio.events import _get_running_loop  # "is a loop running here?", without raising
from collections import deque
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from ._abc import AsyncQueue, check_max_items, check_maxsize, check_timeout
from ._compat import QueueTimeoutError, SyncQueueShutDown
from ._exceptions import QueueEmpty, QueueFull, QueueShutDown
from ._statistics import QueueStatistics

__all__ = ["AsyncFace", "LifoThreadQueue", "PriorityThreadQueue", "SyncFace", "ThreadQueue"]

T = TypeVar("T")

_allocate_lock = threading.Lock
_LockType = type(threading.Lock())
_monotonic = time.monotonic

# A blocked thread waits on a lock of its own, a blocked task on a future of its loop.
_Waiter = Any


def _resolve(waiter: asyncio.Future[bool]) -> None:
    # Runs on the waiter's loop (scheduled with call_soon_threadsafe).
    if not waiter.done():
        waiter.set_result(True)


def _expire(waiter: asyncio.Future[bool]) -> None:
    # A future's result says why it woke: True for "woken", False for "timed out".
    if not waiter.done():
        waiter.set_result(False)


def _wake(waiter: _Waiter) -> bool:
    # Wake one waiter already removed from its list; False if it was gone already.
    if type(waiter) is _LockType:
        waiter.release()
        return True
    loop = waiter.get_loop()
    if loop is _get_running_loop():
        if waiter.done():
            return False
        waiter.set_result(True)
        return True
    try:
        loop.call_soon_threadsafe(_resolve, waiter)
    except RuntimeError:
        # The loop is closed: its task will never run again.
        return False
    return True


def _wake_one(waiters: deque[_Waiter]) -> None:
    while waiters:
        if _wake(waiters.popleft()):
            return


def _wake_all(waiters: deque[_Waiter]) -> None:
    while waiters:
        _wake(waiters.popleft())


def _discard(waiters: deque[_Waiter], waiter: _Waiter) -> bool:
    # Remove *waiter* if still listed; False means a waker removed it (it was woken).
    try:
        waiters.remove(waiter)
    except ValueError:
        return False
    return True


class _Stack(deque[T]):
    # A LIFO queue's items: popleft() takes the newest.
    __slots__ = ()

    popleft = deque.pop


class _Heap(list[Any]):
    # A priority queue's items, a heap: append() and popleft() keep its order.
    __slots__ = ()

    def append(self, item: Any) -> None:
        try:
            heapq.heappush(self, item)
        except BaseException:
            # heappush appends before it compares: an item that cannot be compared would
            # stay, uncounted, and make every later put and get raise.  Take it back.
            for index, queued in enumerate(self):
                if queued is item:
                    del self[index]
                    heapq.heapify(self)
                    break
            raise

    def popleft(self) -> Any:
        return heapq.heappop(self)


class _Items(Protocol[T]):
    # What a queue's items are kept in: the faces put with append() and take with
    # popleft(), so each kind of queue is the container that does both in its order.  A
    # plain deque (FIFO) keeps the fast paths' calls the cheap ones of a builtin type:
    # calling a stored callable instead measured ~10% slower.
    def append(self, item: T, /) -> None: ...
    def popleft(self) -> T: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[T]: ...


class _State(Generic[T]):
    # Everything both faces share.  Every field is read and written under *lock*, except
    # that unlocked reads of single values (qsize(), full(), ...) are allowed: they are
    # what queue.Queue's are, a snapshot that may be stale by the time it is used.
    __slots__ = (
        "done",
        "dropped",
        "getters",
        "is_shutdown",
        "items",
        "joiners",
        "limit",
        "lock",
        "maxsize",
        "name",
        "peak",
        "putters",
        "total_put",
    )

    def __init__(self, maxsize: float, items: _Items[T], name: str) -> None:
        self.lock = threading.Lock()
        # Empty; its type is the queue's order (see _Stack, _Heap).
        self.items = items
        # The asyncio class this kind of queue matches, for the async face's repr.
        self.name = name
        self.maxsize = maxsize
        # A put finds room when `len(items) < limit`: one comparison on the fast path,
        # which also refuses every put once shut down (limit -1).
        self.limit = maxsize if maxsize > 0 else math.inf
        self.getters: deque[_Waiter] = deque()
        self.putters: deque[_Waiter] = deque()
        self.joiners: deque[_Waiter] = deque()
        self.is_shutdown = False
        # unfinished tasks == total_put - done; total got == total_put - len(items) - dropped.
        # Two counters instead of four keep the put and get paths short.
        self.total_put = 0
        self.done = 0
        self.dropped = 0
        self.peak = 0

    def describe(self) -> str:
        # The fields asyncio.Queue shows in its repr, under the same names.
        with self.lock:
            result = f"maxsize={self.maxsize!r}"
            if self.items:
                result += f" _queue={list(self.items)!r}"
            if self.getters:
                result += f" _getters[{len(self.getters)}]"
            if self.putters:
                result += f" _putters[{len(self.putters)}]"
            if self.total_put != self.done:
                result += f" tasks={self.total_put - self.done}"
            if self.is_shutdown:
                result += " shutdown"
            return result

    def is_full(self) -> bool:
        return 0 < self.maxsize <= len(self.items)

    def push(self, item: T) -> None:
        # With the lock held and room checked: add *item* and wake one getter.  The fast
        # paths of the faces repeat this inline.
        items = self.items
        items.append(item)
        self.total_put += 1
        if len(items) > self.peak:
            self.peak = len(items)
        if self.getters:
            _wake_one(self.getters)

    def pop(self) -> T:
        # With the lock held and an item present: remove it and wake one putter.
        item = self.items.popleft()
        if self.putters:
            _wake_one(self.putters)
        return item

    def wait_thread(self, waiters: deque[_Waiter], deadline: float | None) -> bool:
        """Block the calling thread until woken; the lock is held on entry and on return.

        Returns ``True`` when woken, ``False`` when *deadline* passed first.
        """
        waiter = _allocate_lock()
        waiter.acquire()
        waiters.append(waiter)
        lock = self.lock
        lock.release()
        try:
            if deadline is None:
                woken = waiter.acquire()
            else:
                woken = waiter.acquire(True, max(0.0, deadline - _monotonic()))
        except BaseException:
            lock.acquire()
            if not _discard(waiters, waiter):
                _wake_one(waiters)
            raise
        lock.acquire()
        return woken or not _discard(waiters, waiter)

    def enlist(
        self,
        waiters: deque[_Waiter],
        loop: asyncio.AbstractEventLoop,
        deadline: float | None,
    ) -> asyncio.Future[bool]:
        """Add a new waiter of *loop* to *waiters*, for wait_task(); the lock is held.

        Raises:
            QueueTimeoutError: *deadline* has passed: there is nothing to wait for.
        """
        if deadline is not None and _monotonic() >= deadline:
            raise QueueTimeoutError
        waiter = loop.create_future()
        waiters.append(waiter)
        return waiter

    async def wait_task(
        self,
        waiters: deque[_Waiter],
        waiter: asyncio.Future[bool],
        deadline: float | None,
    ) -> bool:
        """Wait on *waiter*, already listed in *waiters*; called without the lock.

        Returns ``True`` when woken, ``False`` when *deadline* passed first.
        """
        timer = None
        if deadline is not None:
            loop = waiter.get_loop()
            timer = loop.call_at(loop.time() + max(0.0, deadline - _monotonic()), _expire, waiter)
        try:
            woken = await waiter
        except BaseException:
            with self.lock:
                if not _discard(waiters, waiter):
                    _wake_one(waiters)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if woken:
            return True
        with self.lock:
            return not _discard(waiters, waiter)

    def set_maxsize(self, maxsize: float) -> None:
        check_maxsize(maxsize)
        with self.lock:
            self.maxsize = maxsize
            if self.is_shutdown:
                return  # limit stays -1: no put may succeed again
            self.limit = maxsize if maxsize > 0 else math.inf
            # Wake as many putters as there are free slots now: a woken putter that finds
            # no room (a put from elsewhere took it) waits again, and one that leaves
            # passes its wake-up on, so none is stranded while there is room.
            room = self.limit - len(self.items)
            putters = self.putters
            while room > 0 and putters:
                if _wake(putters.popleft()):
                    room -= 1

    def task_done(self) -> None:
        with self.lock:
            if self.total_put - self.done <= 0:
                raise ValueError("task_done() called too many times")
            self.done += 1
            if self.done == self.total_put and self.joiners:
                _wake_all(self.joiners)

    def shutdown(self, immediate: bool) -> None:
        with self.lock:
            self.is_shutdown = True
            self.limit = -1
            if immediate:
                removed = len(self.items)
                self.items.clear()
                self.dropped += removed
                # Each dropped item counts as done, but never below zero unfinished tasks
                # (task_done() may already have been called for items still queued).
                self.done += min(removed, self.total_put - self.done)
                if self.done == self.total_put:
                    _wake_all(self.joiners)
            _wake_all(self.getters)
            _wake_all(self.putters)

    def statistics(self) -> QueueStatistics:
        with self.lock:
            return QueueStatistics(
                backend="thread",
                current_size=len(self.items),
                max_size=self.maxsize if self.maxsize > 0 else 0,
                peak_size=self.peak,
                tasks_waiting_get=len(self.getters),
                tasks_waiting_put=len(self.putters),
                unfinished_tasks=self.total_put - self.done,
                total_put=self.total_put,
                total_got=self.total_put - len(self.items) - self.dropped,
                is_shutdown=self.is_shutdown,
            )


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


class ThreadQueue(Generic[T]):
    """A FIFO queue shared by threads and any number of event loops, in one process.

    ``sync_q`` has the blocking API of ``queue.Queue``; ``async_q`` has
    conveyor's asyncio surface (``await get()``, timeouts, ``get_many``, ``async for``,
    ``join``, ``statistics()``).  Both faces see one stream of items; ``task_done()`` on
    either counts toward ``join()`` on both.  Creating one needs no event loop, and any
    number of loops in any threads may wait on it at once.

    Args:
        maxsize: Number of items allowed in the queue; ``<= 0`` means unbounded.

    Raises:
        TypeError: *maxsize* is not a number.
        ValueError: *maxsize* is NaN.
    """

    __slots__ = ("_async_q", "_state", "_sync_q")

    # Each kind's container (what asyncio's _init/_put/_get are), and the name of the
    # asyncio class whose order it has.
    _asyncio_name: ClassVar[str] = "Queue"

    @staticmethod
    def _items() -> _Items[Any]:
        return deque()

    def __init__(self, maxsize: float = 0) -> None:
        check_maxsize(maxsize)
        self._state: _State[T] = _State(maxsize, self._items(), self._asyncio_name)
        self._sync_q: SyncFace[T] = SyncFace(self._state)
        self._async_q: AsyncFace[T] = AsyncFace(self._state)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._state.describe()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._state.describe()}>"

    @property
    def sync_q(self) -> SyncFace[T]:
        """The blocking face, for threads: the API of ``queue.Queue`` (read-only)."""
        return self._sync_q

    @property
    def async_q(self) -> AsyncFace[T]:
        """The asyncio face, for coroutines of any event loop (read-only)."""
        return self._async_q

    @property
    def is_shutdown(self) -> bool:
        """Whether the queue has been shut down (by either face, or by closing it)."""
        return self._state.is_shutdown

    @property
    def unfinished_tasks(self) -> int:
        """Items put (on either face) and not yet marked done with ``task_done()``."""
        state = self._state
        return state.total_put - state.done

    @property
    def maxsize(self) -> float:
        """Number of items allowed in the queue; ``<= 0`` means unbounded.

        Assignable, from any thread or loop, as on either face: see
        ``SyncFace.maxsize``.
        """
        return self._state.maxsize

    @maxsize.setter
    def maxsize(self, maxsize: float) -> None:
        self._state.set_maxsize(maxsize)

    @property
    def closed(self) -> bool:
        """Whether the queue is closed: shut down, by ``close()`` or ``shutdown()``.

        As janus's and culsans's ``closed``: this is ``is_shutdown``.
        """
        return self._state.is_shutdown

    def shutdown(self, immediate: bool = False) -> None:
        """Shut down the queue for both faces, waking every blocked thread and task.

        From now on ``put`` raises the shutdown exception of its face:
        ``conveyor.SyncQueueShutDown`` on ``sync_q``, ``conveyor.QueueShutDown``
        on ``async_q``.  The first subclasses the second, so ``except
        conveyor.QueueShutDown`` catches both.  With
        ``immediate=False`` the items already queued can still be got; once the queue is
        empty, getters raise.  With ``immediate=True`` the queue is emptied at once, each
        removed item counts as done for ``join()``, and every getter raises.

        Args:
            immediate: Drop the queued items instead of letting them be got.
        """
        self._state.shutdown(immediate)

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the queue's counters (the same on both faces)."""
        return self._state.statistics()

    def close(self) -> None:
        """Close the queue: shut it down immediately, as janus's and culsans's ``close()``.

        The same as ``shutdown(immediate=True)``: the items still queued are dropped (each
        counts as done, so every ``join()`` returns), and every blocked getter and putter,
        thread or task, raises its face's shutdown exception.  Closing twice is harmless.
        To let consumers drain the queue first, call ``shutdown()`` instead.
        """
        self._state.shutdown(True)

    async def wait_closed(self) -> None:
        """Wait until the queue has finished closing, as janus's ``wait_closed()``.

        ``close()`` wakes every waiter before it returns and the queue starts no task
        of its own, so nothing is left to wait for: this yields to the event loop once,
        so the woken tasks of this loop run, and returns.

        Raises:
            RuntimeError: The queue is not closed (nor shut down).
        """
        if not self._state.is_shutdown:
            raise RuntimeError("wait_closed() needs a closed queue: call close() first")
        # Code moved from janus awaits this right after close(); it expects a checkpoint.
        await asyncio.sleep(0)

    async def aclose(self) -> None:
        """Close the queue (``close()``), then wait for it (``wait_closed()``)."""
        self.close()
        await self.wait_closed()

    def __enter__(self) -> ThreadQueue[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Leaving the block closes the queue, as close() does: what is left is dropped.
        self.close()

    async def __aenter__(self) -> ThreadQueue[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class LifoThreadQueue(ThreadQueue[T]):
    """A ``ThreadQueue`` that returns the most recently added item first.

    The counterpart of ``queue.LifoQueue`` and ``asyncio.LifoQueue`` (and of
    janus's and culsans's ``LifoQueue``), with the same two faces.

    Args:
        maxsize: Number of items allowed in the queue; ``<= 0`` means unbounded.

    Raises:
        TypeError: *maxsize* is not a number.
        ValueError: *maxsize* is NaN.
    """

    __slots__ = ()

    _asyncio_name = "LifoQueue"

    @staticmethod
    def _items() -> _Items[Any]:
        return _Stack()


class PriorityThreadQueue(ThreadQueue[T]):
    """A ``ThreadQueue`` that returns the lowest item first.

    The counterpart of ``queue.PriorityQueue`` and ``asyncio.PriorityQueue``
    (and of janus's and culsans's ``PriorityQueue``), with the same two faces.  Entries
    are often ``(priority, data)`` tuples; items must be comparable with each other, and
    a ``put`` whose item cannot be compared raises the comparison's ``TypeError``.

    Args:
        maxsize: Number of items allowed in the queue; ``<= 0`` means unbounded.

    Raises:
        TypeError: *maxsize* is not a number.
        ValueError: *maxsize* is NaN.
    """

    __slots__ = ()

    _asyncio_name = "PriorityQueue"

    @staticmethod
    def _items() -> _Items[Any]:
        return _Heap()
