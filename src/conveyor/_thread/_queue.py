"""``ThreadQueue`` and its LIFO and priority kinds: a shared ``_State`` and its two faces."""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar

from .._abc import check_maxsize
from .._statistics import QueueStatistics
from ._faces import AsyncFace, SyncFace
from ._state import _Heap, _Items, _Stack, _State

T = TypeVar("T")


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
