"""The state a ``ThreadQueue``'s two faces share, and how its waiters wait and wake.

``_State`` holds the items, the counters and the three lists of blocked waiters (getters,
putters, joiners) behind one ``threading.Lock``; the functions above it wake a waiter of
either kind (a thread's lock, a task's future on any loop).  The faces in ``_faces.py``
read and write it; nothing else does.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import threading
import time
from asyncio.events import _get_running_loop  # "is a loop running here?", without raising
from collections import deque
from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar

from .._abc import check_maxsize
from .._compat import QueueTimeoutError
from .._statistics import QueueStatistics

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
