"""The durable queue: the whole asyncio queue surface, built once on top of any backend Store.

A ``DurableQueue`` turns a ``Store`` (an SQLite file, a
Redis database) into a queue with the methods of ``asyncio.Queue``, shared by every
process that opens the same store, with at-least-once delivery.

How the pieces fit:

* **Puts share commits.**  Every ``put()`` appends its encoded item to a local list and
  waits; one writer task at a time hands everything waiting to ``Store.put`` in a single
  transaction (group commit).  ``put()`` returns once its item is committed.
* **Gets claim in batches, for the getters that wait.**  One claimer task leases, in one
  ``Store.claim``, as many items as this process's getters want (at least as many as were
  taken since the previous claim, plus one when more are known to wait) and wakes those
  getters; each takes its item from a small local buffer when it runs.  An item claimed
  for nobody (its getter was cancelled or timed out, or it is the extra one) goes to the
  next getter or ``get_nowait()``, or back to the store after at most
  ``min(0.5 s, lease_timeout / 4)`` and on ``aclose()``: nothing is lost, duplicated or
  kept from other processes for long.  At most 64 items are claimed at once.
* **Acknowledgements are batched too.**  ``task_done()`` is synchronous: it picks the
  delivery to acknowledge at once and schedules the write (several share one, or ride
  along with the next claim); ``join()``, ``flush()`` and ``aclose()`` wait for them.
* **The nowait forms do no I/O.**  ``put_nowait()`` decides on the last known size and
  hands the item to the background writer (durable after ``flush()``, which raises if the
  write failed); ``get_nowait()`` serves items already in this process (claimed, put with
  ``put_nowait()`` and not yet committed, or committed by this process and, as far as it
  knows, still the oldest waiting: handed out at once and leased in the background) and
  otherwise raises ``QueueEmpty`` after starting a background claim (even when the view
  says empty: another process may have put since).
* **Waiting never polls hard.**  Blocked getters, putters and ``join()`` wake on this
  process's own changes at once and on other processes' through ``Store.wait_changed``,
  with a slow safety re-check (at most every second) for the rare missed notification and
  for leases that expire in a crashed process.

The synchronous methods (``qsize()``, ``empty()``, ``full()``, ``statistics()``) cannot do
I/O, so they report a local view: the shared counters as last read, updated after each of
this process's own operations.  With no other process writing, the view is exact after
every awaited operation; ``DurableQueue.refresh()`` and ``DurableQueue.aqsize()`` read
the shared state exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from ._abc import AsyncQueue, check_max_items, check_maxsize, check_timeout
from ._compat import QueueTimeoutError, add_note
from ._exceptions import (
    LeaseExpiredError,
    QueueEmpty,
    QueueFull,
    QueueShutDown,
    SerializationError,
)
from ._serializers import Serializer, resolve_serializer
from ._statistics import QueueStatistics
from .backends._base import Delivery, Store

__all__ = ["DeadItem", "DurableQueue", "Receipt"]

T = TypeVar("T")

_log = logging.getLogger("conveyor")
_monotonic = time.monotonic

# Most items one commit or one claim carries: large enough to amortise a transaction,
# small enough that one commit never holds the database lock for long.
_PUT_BATCH = 512
_CLAIM_BATCH = 64


@dataclasses.dataclass(frozen=True)
class Receipt(Generic[T]):
    """One delivery of an item, as ``DurableQueue.get_with_receipt()`` returns it.

    Pass it to ``ack()``, ``retry()``,
    ``fail()`` or ``extend()``.  It names this delivery
    only: once its lease expired and the item was delivered again, it acknowledges nothing.
    Its token names the queue and the incarnation of the store too: another queue refuses
    it (``ForeignReceiptError``, nothing changed), and once the store was
    wiped or replaced (a Redis ``FLUSHALL``, an SQLite file deleted) it acknowledges
    nothing, even though item ids start again from 1.

    Attributes:
        item: The item.
        item_id: The item's id in the store, the same across deliveries.
        attempts: Deliveries of this item so far, this one included.
        lease_deadline: Wall-clock time (``time.time()``) at which the lease expires.
        token: The backend's name for this delivery.
    """

    item: T
    item_id: str
    attempts: int
    lease_deadline: float
    token: str


@dataclasses.dataclass(frozen=True)
class DeadItem:
    """An item in the dead-letter list, as ``DurableQueue.dead_letters()`` returns it.

    Attributes:
        item_id: The item's id (pass it to ``DurableQueue.requeue_dead()``).
        item: The decoded item, or the raw ``bytes`` when they cannot be decoded.
        attempts: How many times it was delivered.
        error: Why it died.
        failed_at: Wall-clock time (``time.time()``) of death.
    """

    item_id: str
    item: Any
    attempts: int
    error: str
    failed_at: float


class _PutEntry:
    """Payloads waiting for the group-commit writer; ``future`` is None for put_nowait."""

    __slots__ = (
        "deadline",
        "discarded",
        "future",
        "handed",
        "ids",
        "payloads",
        "stored",
        "taken",
        "withdrawn",
    )

    def __init__(
        self,
        payloads: list[bytes],
        future: asyncio.Future[None] | None,
        deadline: float | None,
    ) -> None:
        self.payloads = payloads
        self.future = future
        self.deadline = deadline
        self.taken = False
        self.discarded = False
        self.stored = False
        # The stored items' ids, when the store names them: what a cancelled put retracts.
        self.ids: list[str] | None = None
        # get_nowait() handed one of its items out: a cancelled put must not retract them.
        self.handed = False
        # Its putter was cancelled: get_nowait() must not hand its items out.
        self.withdrawn = False


class _Getter:
    __slots__ = ("expired", "future", "want")

    def __init__(self, future: asyncio.Future[bool], want: int) -> None:
        self.future = future
        self.want = want
        self.expired = False


class _Held:
    """A delivery got by ``get()``, waiting for ``task_done()``; receipt None: never stored.

    ``pending``: handed out by ``get_nowait()`` before its lease came back from the store.
    """

    __slots__ = ("pending", "receipt", "task")

    def __init__(self, receipt: str | None, task: object, pending: bool = False) -> None:
        self.receipt = receipt
        self.task = task
        self.pending = pending


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


def _put_shut_down() -> QueueShutDown:
    return QueueShutDown("the queue is shut down: put() is refused (shut down by any process)")


def _get_shut_down(immediate: bool) -> QueueShutDown:
    if immediate:
        return QueueShutDown("the queue was shut down immediately: get() is refused")
    return QueueShutDown("the queue is shut down and empty: nothing left to get")


def _decode_error(exc: Exception) -> SerializationError:
    if isinstance(exc, SerializationError):
        return exc
    return SerializationError(f"stored item cannot be decoded: {type(exc).__name__}: {exc}")


def _current_task() -> object:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


class DurableQueue(AsyncQueue[T]):
    """A queue kept in a shared store: the asyncio queue surface, across processes.

    Get one with ``conveyor.open_queue()``.  Everything ``asyncio.Queue`` does works,
    with these differences, all coming from the queue living outside the process:

    * Delivery is at least once.  ``get()`` leases the item; ``task_done()`` acknowledges
      the oldest item the calling task got and has not acknowledged (when the calling task
      holds none, the oldest this process holds).  An item not acknowledged within
      ``lease_timeout`` seconds is delivered again, to any process.
    * ``maxsize``, ``qsize()``, ``join()`` and ``shutdown()`` are shared by every process.
      The bound is stored with the queue (``set_maxsize()`` changes it) and the store
      checks it on every put, so no process ever exceeds it.  A shutdown is stored too,
      and lasts until ``resume()`` (or ``conveyor resume URL NAME``) undoes it.
    * The synchronous methods report the last known state (see each docstring); the
      awaitable ``aqsize()``, ``aempty()``, ``afull()`` and ``refresh()`` read it.
    * Items are encoded by the serializer: JSON data by default, so tuples come back as
      lists.

    Args:
        store: The backend store (see ``conveyor.backends._base``).
        maxsize: The bound stored with the queue, as last read (``<= 0``: unbounded);
            only what ``maxsize`` and the local view start from, since the store
            checks its own on every put.
        lease_timeout: Seconds a delivery stays leased before it is delivered again.
        serializer: ``"json"``, ``"pickle"`` or a ``Serializer``.
        max_attempts: Deliveries after which an item goes to the dead-letter list instead
            of being delivered again; ``None`` (the default) retries forever.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: *lease_timeout* is not positive or *max_attempts* is less than 1.
    """

    def __init__(
        self,
        store: Store,
        *,
        maxsize: float = 0,
        lease_timeout: float = 30.0,
        serializer: str | Serializer = "json",
        max_attempts: int | None = None,
    ) -> None:
        check_maxsize(maxsize)
        if isinstance(lease_timeout, bool) or not isinstance(lease_timeout, (int, float)):
            raise TypeError(f"lease_timeout must be a number of seconds, not {lease_timeout!r}")
        if not 0 < lease_timeout < float("inf"):
            raise ValueError(f"lease_timeout must be a positive number, not {lease_timeout!r}")
        if max_attempts is not None:
            if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
                raise TypeError(f"max_attempts must be None or an int, not {max_attempts!r}")
            if max_attempts < 1:
                raise ValueError(f"max_attempts must be >= 1, not {max_attempts}")
        self._store = store
        self._serializer = resolve_serializer(serializer)
        self._maxsize = maxsize
        self._lease_timeout = float(lease_timeout)
        self._max_attempts = max_attempts
        # How long a blocked task trusts notifications before re-checking the store.
        self._poll = min(1.0, max(0.02, self._lease_timeout / 4))
        self._hold = min(0.5, self._lease_timeout / 4)
        self._loop: asyncio.AbstractEventLoop | None = None
        # The local view of the shared counters.
        self._v_ready = 0
        self._view_edits = 0  # changes of this process to the view (see refresh)
        self._exact_size = 0  # the shared size the last refresh() read (see aqsize)
        self._v_leased = 0
        self._v_dead = 0
        self._v_shutdown = False
        # Bumped by this process's shutdown()/resume() and set_maxsize(): a read of the
        # store that started before one of them must not undo it in the local view.
        self._shutdown_epoch = 0
        self._bound_epoch = 0
        self._shutdown_task: asyncio.Task[BaseException | None] | None = None
        self._recheck_task: asyncio.Task[None] | None = None
        self._as_of = _monotonic()
        self._peak = 0
        self._total_put = 0
        self._total_got = 0
        # Local state.
        self._immediate = False
        self._claim_said_shutdown = False
        self._closing = False
        self._closed = False
        self._buffer: deque[Delivery] = deque()
        self._getters: deque[_Getter] = deque()
        self._prefetch = 0
        self._claiming = False
        self._claim_in_store = False
        self._puts: deque[_PutEntry] = deque()
        self._nowait_pending = 0
        self._inflight = 0
        self._inflight_entries: list[_PutEntry] = []
        self._inflight_done: asyncio.Future[None] | None = None
        self._held: dict[int, _Held] = {}
        self._held_by_task: dict[object, deque[int]] = {}
        self._held_seq = 0
        self._taken_since_claim = 0
        self._last_claim: float | None = None
        self._acking = 0
        self._local_held = 0
        self._acks: list[str] = []
        self._version = 0
        self._change_waiters: list[asyncio.Future[None]] = []
        self._writer_task: asyncio.Task[None] | None = None
        self._claimer_task: asyncio.Task[None] | None = None
        self._acker_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._release_timer: asyncio.TimerHandle | None = None
        self._background_error: BaseException | None = None
        # Items this process committed and knows as ready and never claimed, oldest
        # first: what get_nowait() hands out at once (see _take_own).  Only while
        # _own_exact: no other item is known to be ready in the store (a quiet refresh
        # or a claim that found the store empty says so; whatever may make an item
        # ready behind this process's back says not).
        self._own: deque[tuple[str, bytes, _PutEntry]] = deque()
        # Committed entries whose items join _own once their putters have returned, so
        # that no consumer of this process sees an item before its put() is over.
        self._adopting: deque[_PutEntry] = deque()
        self._own_exact = False
        self._commits_done = 0
        self._claims_started = 0
        self._leasing: list[tuple[str, int]] = []
        self._pending_leases = 0
        self._owed: set[int] = set()
        self._leaser_task: asyncio.Task[None] | None = None
        # The first error a write of put_nowait() items met since flush() last raised.
        self._write_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._format()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._format()}>"

    def _format(self) -> str:
        # The items live in the store: show the last known counts instead of them.
        result = f"{self._store.backend} size~{self.qsize()}"
        waiting = sum(1 for g in self._getters if not g.future.done())
        if waiting:
            result += f" _getters[{waiting}]"
        putters = sum(1 for e in self._puts if e.future is not None)
        if putters:
            result += f" _putters[{putters}]"
        if self._unfinished():
            result += f" tasks~{self._unfinished()}"
        result += f" maxsize={self._maxsize!r}"
        return result + (" shutdown" if self._v_shutdown else "")

    # -- the local view ----------------------------------------------------------------

    @property
    def maxsize(self) -> float:
        """Number of items allowed in the shared queue, as last known; ``<= 0``: unbounded.

        The bound is stored with the queue: this is its value as of the last read of the
        store (opening, ``refresh()``, ``aqsize()``, ``join()``) or this process's
        ``set_maxsize()``.  Puts are always checked against the stored one.
        """
        return self._maxsize

    @property
    def lease_timeout(self) -> float:
        """Seconds a delivery stays leased before the item is delivered again."""
        return self._lease_timeout

    @property
    def max_attempts(self) -> int | None:
        """Deliveries after which an item goes dead; ``None`` for no limit."""
        return self._max_attempts

    def qsize(self) -> int:
        """Return the number of items waiting to be got, as last known.

        This does no I/O: it is the shared count as last read, updated after each of this
        process's own operations, so it is exact when no other process writes.  Use
        ``await aqsize()`` for the exact shared value.  It never exceeds a positive
        ``maxsize``.
        """
        size = max(0, self._v_ready) + len(self._buffer) + self._nowait_pending
        if 0 < self._maxsize < math.inf:
            # The store refuses any put beyond maxsize, so a larger sum is only ever a
            # stale view: a claim and a put of this process that finished in another
            # order than the store applied them, or an item claimed here for a getter
            # that has been woken and not yet run.
            return min(size, math.ceil(self._maxsize))
        return size

    def empty(self) -> bool:
        """Return ``True`` if no item waits to be got, as last known (see ``qsize()``)."""
        return self.qsize() == 0

    def full(self) -> bool:
        """Return ``True`` if ``maxsize`` items wait, as last known (see ``qsize()``)."""
        return 0 < self._maxsize <= self.qsize()

    def _unfinished(self) -> int:
        return (
            max(0, self._v_ready)
            + max(0, self._v_leased)
            + len(self._buffer)
            + self._nowait_pending
            + self._local_held
        )

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the local view and this process's counters, without I/O.

        The shared numbers are as last known (``as_of`` says when); ``await refresh()``
        reads them first.
        """
        return QueueStatistics(
            backend=self._store.backend,
            current_size=self.qsize(),
            max_size=self._maxsize if self._maxsize > 0 else 0,
            peak_size=self._peak,
            tasks_waiting_get=sum(1 for g in self._getters if not g.future.done()),
            tasks_waiting_put=sum(1 for e in self._puts if e.future is not None),
            unfinished_tasks=self._unfinished(),
            total_put=self._total_put,
            total_got=self._total_got,
            current_leased=max(0, self._v_leased) + len(self._buffer),
            current_dead=self._v_dead,
            is_shutdown=self._v_shutdown,
            as_of=self._as_of,
        )

    async def refresh(self) -> QueueStatistics:
        """Read the shared counters from the store, update the local view and return it.

        Returns:
            The same snapshot ``statistics()`` returns from now on.

        Raises:
            BackendError: The store failed.
        """
        self._bind_loop()
        shutdown_epoch, bound_epoch = self._shutdown_epoch, self._bound_epoch
        marks = self._activity()
        edits = self._view_edits
        counts = await self._store.counts()
        # Whether this process changed the view while the counts were on their way: then
        # they may predate its own change (a claim, a commit, a retract), and the view,
        # which has that change, is kept rather than overwritten with a stale count.
        quiet = marks is not None and marks == self._activity() and edits == self._view_edits
        # Items get_nowait() handed out are ready in the store until their lease comes
        # back; the view counts them as got (and done, once task_done() was called).
        pending = self._pending_leases
        adopting = sum(len(entry.payloads) for entry in self._adopting)
        others = counts.ready - pending - len(self._own) - adopting
        if others < 0:
            self._forget_own()  # another process took some of them: which, nobody knows
        elif marks is not None and marks == self._activity():
            # Nothing of this process touched the store during the read: the counts
            # say whether the items it put are all that waits.
            if others == 0 and counts.delayed == 0:
                self._own_exact = True
            else:
                self._forget_own()
        shared_ready = counts.ready + counts.delayed - pending
        self._exact_size = max(0, shared_ready) + len(self._buffer) + self._nowait_pending
        if quiet:
            self._v_ready = shared_ready
            # Our undelivered buffer is leased in the store; the view counts it as
            # waiting.  Acknowledgements on their way are done already, for the view.
            self._v_leased = (
                counts.leased
                - len(self._buffer)
                - len(self._acks)
                - self._acking
                + pending
                - len(self._owed)
            )
        self._v_dead = counts.dead
        if shutdown_epoch == self._shutdown_epoch:
            if counts.is_shutdown:
                self._v_shutdown = True
            elif self._v_shutdown and self._shutdown_task is None:
                # Resumed by some process since this one saw the shutdown.
                self._v_shutdown = self._immediate = self._claim_said_shutdown = False
        if bound_epoch == self._bound_epoch:
            self._maxsize = counts.maxsize
        self._as_of = _monotonic()
        self._note_size()
        return self.statistics()

    async def aqsize(self) -> int:
        """Return the exact number of items waiting in the shared queue.

        Raises:
            BackendError: The store failed.
        """
        await self.refresh()
        if 0 < self._maxsize < math.inf:
            return min(self._exact_size, math.ceil(self._maxsize))
        return self._exact_size

    async def aempty(self) -> bool:
        """Return ``True`` if no item waits in the shared queue (read from the store).

        Raises:
            BackendError: The store failed.
        """
        return await self.aqsize() == 0

    async def afull(self) -> bool:
        """Return ``True`` if the shared queue holds ``maxsize`` items (read from the store).

        Raises:
            BackendError: The store failed.
        """
        return 0 < self._maxsize <= await self.aqsize()

    async def set_maxsize(self, maxsize: float) -> None:
        """Change the queue's bound, for every process, at once.

        The bound is stored with the queue: openers that give no ``maxsize`` use it, and
        one that gives another is refused.  Every put of every process is checked
        against the stored bound, so the new one holds from the next put on; putters
        blocked on the old one (in any process) re-check at once.  Items already beyond
        a lowered bound stay (``qsize()`` reports at most the bound meanwhile), and puts
        wait until the queue is below it.  The command
        ``conveyor maxsize URL NAME N`` does the same.

        Args:
            maxsize: The new bound; ``<= 0`` means unbounded.

        Raises:
            TypeError: *maxsize* is not a number.
            ValueError: *maxsize* is NaN.
            BackendError: The store failed; the bound is unchanged, unless the message
                says that it may have been stored.
        """
        check_maxsize(maxsize)
        self._bind_loop()
        await self._store.set_maxsize(maxsize)
        self._bound_epoch += 1
        self._maxsize = maxsize
        self._changed()  # this process's blocked putters re-check against the new bound

    async def _still_shut_down(self) -> bool:
        # Before refusing on a shutdown seen earlier: resume() in any process may have
        # undone it since.  Only failing calls pay this round trip.
        if self._shutdown_task is None:
            await self.refresh()
        return self._v_shutdown

    def _recheck_later(self) -> None:
        # The nowait forms do no I/O: they refuse on the last known state and have it
        # read in the background, so that a later call sees a resume().  One read at a
        # time, however fast a caller polls.
        if self._shutdown_task is None and self._recheck_task is None and not self._closing:
            self._recheck_task = self._spawn(self._recheck())

    async def _recheck(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:
            self._background_error = exc
            _log.error("conveyor: could not read the queue's state: %r", exc)
        finally:
            self._recheck_task = None

    def _activity(self) -> tuple[int, int] | None:
        # None while a commit, a claim or a lease of this process is under way.
        if self._inflight or self._claim_in_store or self._leaser_task is not None:
            return None
        return self._commits_done, self._claims_started

    def _forget_own(self) -> None:
        self._view_edits += 1
        # An item may be ready that this process does not know of (or does not know
        # whether it still is): get_nowait() hands nothing out unseen until a claim or a
        # quiet refresh tells again.
        self._own.clear()
        self._adopting.clear()
        self._own_exact = False

    def _adopt(self, upto: _PutEntry | None = None) -> None:
        # Move committed entries into _own, in commit order: through *upto* (whose
        # putter just returned), then the put_nowait() ones that follow (nobody awaits
        # them).  An awaited entry first in line waits for its own putter.
        adopting = self._adopting
        if upto is not None and upto not in adopting:
            return  # forgotten meanwhile
        while adopting and (upto is not None or adopting[0].future is None):
            entry = adopting.popleft()
            assert entry.ids is not None
            self._own.extend(zip(entry.ids, entry.payloads, [entry] * len(entry.ids), strict=True))
            if entry is upto:
                upto = None

    def _note_size(self) -> None:
        size = self.qsize()
        if size > self._peak:
            self._peak = size

    # -- plumbing ----------------------------------------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(f"{self!r} is bound to a different event loop")
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        return loop

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _changed(self) -> None:
        # Something this process did may unblock another of its tasks.
        self._version += 1
        waiters, self._change_waiters = self._change_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait_for_change(self, version: int, timeout: float | None) -> None:
        # Return when this process changed the queue since *version*, when the store
        # reports a change by anyone, or after at most the safety interval.
        if self._version != version:
            return
        loop = asyncio.get_running_loop()
        local: asyncio.Future[None] = loop.create_future()
        self._change_waiters.append(local)
        poll = self._poll if timeout is None else max(0.0, min(timeout, self._poll))
        remote = asyncio.ensure_future(self._store.wait_changed(poll))
        try:
            await asyncio.wait((local, remote), return_when=asyncio.FIRST_COMPLETED)
        finally:
            local.cancel()
            with contextlib.suppress(ValueError):
                self._change_waiters.remove(local)
            if not remote.done():
                remote.cancel()
            else:
                with contextlib.suppress(BaseException):
                    remote.result()

    def _encode(self, item: Any) -> bytes:
        return self._serializer.dumps(item)

    # -- put -------------------------------------------------------------------------

    def put_nowait(self, item: T) -> None:
        """Put an item without blocking; it is committed by a background write.

        The decision uses the last known size (see ``qsize()``).  The item is written
        to the store in the next group commit, within milliseconds; until then it lives
        only in this process (``join()``, ``aclose()`` and ``await flush()`` wait for the
        write, and raise its error if it failed).  Use ``await put()`` when the item must
        be durable before going on.

        Raises:
            QueueFull: The queue is full, as last known.
            QueueShutDown: The queue is shut down, as last known.
            SerializationError: The serializer cannot encode *item*; nothing is put.
        """
        self._bind_loop()
        if self._v_shutdown:
            self._recheck_later()
            raise _put_shut_down()
        if 0 < self._maxsize <= self.qsize():
            raise QueueFull
        payload = self._encode(item)
        self._puts.append(_PutEntry([payload], None, None))
        self._nowait_pending += 1
        self._total_put += 1
        self._note_size()
        self._ensure_writer()

    async def put(self, item: T, timeout: float | None = None) -> None:
        """Put an item into the shared queue, waiting while it is full.

        Returns once the item is committed to the store.  Concurrent ``put()`` calls of
        this process share one commit.

        Cancelled (or timed out by ``asyncio.timeout()``/``wait_for()``), it always
        raises ``CancelledError``, as ``asyncio.Queue.put`` does.  Cancelled while
        waiting for room, nothing is put.  Cancelled while its commit is already in the
        store's hands, it waits for that commit (one store round trip) and, if the item
        was stored, asks the store to retract it (one more round trip): an item still
        waiting, never delivered, is deleted.  When it cannot be taken back (a consumer
        already claimed it, or the store failed), the ``CancelledError`` says so in a
        note (``__notes__``): the item is stored and will be delivered, and putting it
        again may deliver it twice.

        Args:
            item: The item to add.
            timeout: Seconds to wait for room; ``None`` waits forever.

        Raises:
            TimeoutError: No room within *timeout*; the item was not put.
            QueueShutDown: The queue is shut down (before or while waiting).
            SerializationError: The serializer cannot encode *item*; nothing is put.
            BackendError: The store failed; the item was not put, unless the message
                says it may have been (the store lost touch with a commit under way).
        """
        timeout = check_timeout(timeout)
        loop = self._bind_loop()
        if self._v_shutdown and await self._still_shut_down():
            raise _put_shut_down()
        payload = self._serializer.dumps(item)
        deadline = None if timeout is None else _monotonic() + timeout
        future: asyncio.Future[None] = loop.create_future()
        entry = _PutEntry([payload], future, deadline)
        self._puts.append(entry)
        if self._writer_task is None:
            self._ensure_writer()
        try:
            await future
        except asyncio.CancelledError as exc:
            await self._settle_cancelled([entry], exc)
            raise
        except BaseException:
            self._withdraw([entry])
            raise
        self._adopt(entry)

    async def put_many(self, items: Iterable[T], timeout: float | None = None) -> None:
        """Put every item of *items*, in order.

        On an unbounded queue they are committed in one transaction: all or none, even
        if the process is killed meanwhile.  On a bounded queue each item waits for room
        as ``put()`` does, and the items before one that timed out stay put.

        Cancelled, it puts nothing and raises ``CancelledError``, as ``put()`` does:
        the items already stored are taken back.  Those a consumer claimed meanwhile
        (only ever the first ones, on a bounded queue) cannot be, and a note on the
        ``CancelledError`` says how many stay put and will be delivered.

        Args:
            items: The items to add.
            timeout: Seconds to wait for room in all; ``None`` waits forever.

        Raises:
            TimeoutError: Not all items found room in time.
            QueueShutDown: The queue is shut down.
            SerializationError: An item cannot be encoded; nothing is put.
            BackendError: The store failed.
        """
        timeout = check_timeout(timeout)
        loop = self._bind_loop()
        if self._v_shutdown and await self._still_shut_down():
            raise _put_shut_down()
        payloads = [self._encode(item) for item in items]
        if not payloads:
            return
        deadline = None if timeout is None else _monotonic() + timeout
        if self._maxsize <= 0:
            entries = [_PutEntry(payloads, loop.create_future(), deadline)]
        else:
            entries = [_PutEntry([p], loop.create_future(), deadline) for p in payloads]
        await self._submit(loop, entries)

    async def _submit(self, loop: asyncio.AbstractEventLoop, entries: list[_PutEntry]) -> None:
        self._puts.extend(entries)
        self._ensure_writer()
        try:
            for entry in entries:
                assert entry.future is not None
                await entry.future
        except asyncio.CancelledError as exc:
            await self._settle_cancelled(entries, exc)
            raise
        except BaseException:
            self._withdraw(entries)
            raise
        self._adopt(entries[-1])

    async def _settle_cancelled(
        self, entries: list[_PutEntry], cancelled: asyncio.CancelledError
    ) -> None:
        # A putter cancelled (or timed out by asyncio.timeout/wait_for) while its items
        # are in the store's hands cannot stop that commit: it waits for it (one round
        # trip), withdraws what was not sent, and asks the store to retract what was
        # stored.  The cancellation always propagates, since a task group or a timeout
        # that sees a cancelled put return keeps running; what stays stored is told in
        # a note on *cancelled*, for the caller to decide whether to put again.
        for entry in entries:
            entry.withdrawn = True
        mine = {id(entry) for entry in entries}
        if any(id(e) in mine for e in self._adopting) or any(id(o[2]) in mine for o in self._own):
            # get_nowait() must not hand out what may be retracted now, and what stays
            # of them is ready yet not in _own.
            self._forget_own()
        while self._inflight_done is not None and any(
            entry.taken and not entry.stored for entry in entries
        ):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._inflight_done)
        self._withdraw(entries)
        # Items an immediate shutdown deleted right after their commit are gone already.
        stored = [entry for entry in entries if entry.stored and not entry.discarded]
        if not stored:
            return
        retracting = asyncio.ensure_future(self._retract(stored))
        while not retracting.done():
            # Another cancellation must not leave the store's answer unknown.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(retracting)
        if retracting.cancelled():  # the loop is going away
            kept = sum(len(entry.payloads) for entry in stored)
            error: BaseException | None = RuntimeError("the event loop stopped first")
        else:
            kept, error = retracting.result()
        if not kept and error is None:
            return
        total = sum(len(entry.payloads) for entry in entries)
        what = "the item was" if total == 1 else f"{kept} of the {total} items were"
        them, they = ("it", "it") if kept == 1 else ("them", "they")
        if error is not None and getattr(error, "outcome_unknown", False):
            how = f"; taking {them} back may or may not have worked ({error}): if not,"
        elif error is not None:
            how = f" and could not be taken back ({error}):"
        else:
            how = f" and a consumer already claimed {them}:"
        add_note(
            cancelled,
            f"conveyor: {what} stored before the cancellation{how} {they} will be "
            f"delivered, and putting {them} again may deliver {them} twice (at-least-once)",
        )

    async def _retract(self, entries: list[_PutEntry]) -> tuple[int, BaseException | None]:
        # Take back the stored items of a cancelled put, each entry all or none (a
        # put_many's items claimed meanwhile, the first ones, stay).  Returns how many
        # items stay stored (or may have: see the error) and the store's error if any.
        async def one(entry: _PutEntry) -> bool:
            if entry.handed:
                return False  # get_nowait() of this process claimed one of them
            if entry.ids is None:  # the store did not name them: it cannot retract them
                raise NotImplementedError(f"the {self._store.backend} store cannot retract")
            return all(await self._store.retract(entry.ids))

        results = await asyncio.gather(*(one(entry) for entry in entries), return_exceptions=True)
        kept = 0
        error: BaseException | None = None
        count = 0
        for entry, result in zip(entries, results, strict=True):
            if result is True:
                count += len(entry.payloads)
                continue
            kept += len(entry.payloads)
            if isinstance(result, BaseException) and error is None:
                error = result
        if error is not None:
            _log.warning("conveyor: could not retract a cancelled put: %r", error)
        if count:
            self._view_edits += 1
            self._total_put -= count
            self._v_ready = max(0, self._v_ready - count)
            self._changed()
        return kept, error

    def _withdraw(self, entries: list[_PutEntry]) -> None:
        # Entries not handed to the store yet are withdrawn; one in flight may still be
        # committed (the store decides), exactly as if the put had just finished.
        for entry in entries:
            if not entry.taken and entry.future is not None and not entry.future.done():
                entry.future.cancel()
                with contextlib.suppress(ValueError):
                    self._puts.remove(entry)

    async def flush(self) -> None:
        """Wait until every item this process put (``put_nowait`` included) is committed.

        Returns normally only when every item given to ``put_nowait()`` so far was
        stored.  Otherwise it raises the error that the background write met (the first
        one, once): the items of that write were not stored, unless the error says that
        they may have been (``outcome_unknown``: the store lost touch with the commit).

        Raises:
            BackendError: A write of ``put_nowait()`` items failed.
            QueueShutDown: The store refused ``put_nowait()`` items: another process had
                shut the queue down.
            RuntimeError: The queue was closed while ``put_nowait()`` items waited for
                room; they were not stored.
        """
        self._bind_loop()
        await self._drain_writes()
        self._raise_write_error()

    async def _drain_writes(self) -> None:
        while self._writer_task is not None:
            await asyncio.shield(self._writer_task)

    def _raise_write_error(self) -> None:
        exc, self._write_error = self._write_error, None
        if exc is not None:
            raise exc

    def _ensure_writer(self) -> None:
        if self._writer_task is None and self._puts:
            self._writer_task = self._spawn(self._write())

    def _take_batch(self, limit: int) -> list[_PutEntry]:
        batch: list[_PutEntry] = []
        count = 0
        puts = self._puts
        while puts and count < limit:
            entry = puts[0]
            if entry.future is not None and entry.future.done():
                puts.popleft()  # withdrawn by a cancelled or timed-out putter
                continue
            if batch and count + len(entry.payloads) > limit:
                break
            puts.popleft()
            entry.taken = True
            batch.append(entry)
            count += len(entry.payloads)
        return batch

    def _fail_entries(self, entries: Iterable[_PutEntry], exc: BaseException) -> None:
        lost = 0
        for entry in entries:
            if entry.future is None:
                if entry.discarded:
                    continue  # an immediate shutdown counted it done already
                self._nowait_pending -= len(entry.payloads)
                self._total_put -= len(entry.payloads)
                lost += len(entry.payloads)
            elif not entry.future.done():
                entry.future.set_exception(exc)
        if lost:
            # Nobody awaits these items: flush(), join() or aclose() raises the error, so
            # that "durable after flush()" holds; the log is for who never calls them.
            if self._write_error is None:
                self._write_error = exc
            if getattr(exc, "outcome_unknown", False):
                outcome = "may or may not have been stored"
            else:
                outcome = "were not stored"
            _log.error("conveyor: %d items put with put_nowait() %s: %r", lost, outcome, exc)

    async def _write(self) -> None:
        limit = _PUT_BATCH
        try:
            while self._puts:
                batch = self._take_batch(limit)
                if not batch:
                    break
                payloads = [p for entry in batch for p in entry.payloads]
                version = self._version
                self._inflight += len(payloads)
                self._inflight_entries = batch
                self._inflight_done = asyncio.get_running_loop().create_future()
                claims_mark, claim_busy = self._claims_started, self._claim_in_store
                try:
                    if self._store.claims_by_id or any(e.future is not None for e in batch):
                        stored, ids = await self._store.put_returning_ids(payloads)
                    else:  # put_nowait() items only: nobody can cancel them, no ids needed
                        stored, ids = await self._store.put(payloads), None
                    offset = 0
                    for entry in batch:
                        entry.stored = stored
                        n = len(entry.payloads)
                        if ids is not None and len(ids) == len(payloads):
                            entry.ids = ids[offset : offset + n]
                        offset += n
                except QueueShutDown:
                    self._v_shutdown = True
                    pending = list(self._puts)
                    self._puts.clear()
                    self._fail_entries(batch + pending, _put_shut_down())
                    self._changed()
                    break
                except Exception as exc:
                    self._fail_entries(batch, exc)
                    self._forget_own()  # the items may be stored all the same
                    continue
                finally:
                    self._commits_done += 1
                    self._inflight -= len(payloads)
                    self._inflight_entries = []
                    done, self._inflight_done = self._inflight_done, None
                    for entry in batch:
                        entry.taken = entry.stored
                    if done is not None and not done.done():
                        done.set_result(None)
                if stored:
                    limit = _PUT_BATCH
                    if (
                        claim_busy
                        or self._claim_in_store
                        or claims_mark != self._claims_started
                        or any(e.withdrawn or e.ids is None for e in batch)
                    ):
                        # A claim of this process ran with this commit (it may have taken
                        # these items, or left older ones ready), or items of this commit
                        # are ready and cannot join _own.
                        self._forget_own()
                    elif self._own_exact:
                        self._adopting.extend(e for e in batch if not e.discarded)
                        self._adopt()
                    for entry in batch:
                        n = len(entry.payloads)
                        if entry.future is not None:
                            self._total_put += n
                            if not entry.future.done():
                                entry.future.set_result(None)
                        if entry.discarded:
                            continue  # an immediate shutdown deletes it right after
                        if entry.future is None:
                            self._nowait_pending -= n
                        self._v_ready += n
                    self._note_size()
                    self._changed()
                    # The putters just woken may put again at once: one loop turn lets
                    # them, so that the next commit carries all of them, and this task
                    # lives on instead of being started again for each commit.
                    await asyncio.sleep(0)
                    continue
                # No room for the whole batch: put it back and try fewer, then wait.
                self._puts.extendleft(reversed(batch))
                for entry in batch:
                    entry.taken = False
                if len(payloads) > 1 and len(batch) > 1:
                    limit = max(1, len(payloads) // 2)
                    continue
                limit = 1
                # No room by the stored bound, which another process may have changed
                # since this one read it: read the bound and the size again, so that
                # maxsize, qsize() and full() tell what the putters wait for.
                try:
                    await self.refresh()
                except Exception:  # the next put meets the failure and reports it
                    if self._maxsize > 0:
                        self._v_ready = max(self._v_ready, math.ceil(self._maxsize))
                if self._v_shutdown or self._closing:
                    pending = list(self._puts)
                    self._puts.clear()
                    self._fail_entries(
                        pending,
                        _put_shut_down()
                        if self._v_shutdown
                        else RuntimeError(
                            "the queue was closed while items waited for room: not stored"
                        ),
                    )
                    break
                await self._wait_for_change(version, self._nearest_put_deadline())
                self._expire_puts()
        finally:
            self._writer_task = None
            if self._puts and not self._closed:
                self._ensure_writer()

    def _nearest_put_deadline(self) -> float | None:
        deadlines = [e.deadline for e in self._puts if e.deadline is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - _monotonic())

    def _expire_puts(self) -> None:
        now = _monotonic()
        kept: deque[_PutEntry] = deque()
        for entry in self._puts:
            if entry.deadline is not None and entry.deadline <= now and entry.future is not None:
                if not entry.future.done():
                    entry.future.set_exception(QueueTimeoutError())
            else:
                kept.append(entry)
        self._puts = kept

    # -- get -------------------------------------------------------------------------

    def get_nowait(self) -> T:
        """Return an item already in this process, without I/O.

        That is an item claimed from the store for a getter that left; one put here
        with ``put_nowait()`` and not yet committed while the shared queue is otherwise
        empty; or one this process committed (``put``, ``put_many``, ``put_nowait``)
        while every item it knows as waiting is its own, as right after ``await
        put(x)``: that one is handed out at once and leased in the background, and
        ``task_done()`` acknowledges it once the lease is in.  If a consumer in another
        process claimed it in the meantime, both get it (at-least-once; a warning is
        logged).  When there is none, it raises ``QueueEmpty`` and starts claiming one
        in the background (another process may have put since this one last looked),
        so that a later ``get_nowait()`` can succeed.  ``await get(timeout=...)`` reads
        the store itself.

        Raises:
            QueueEmpty: No item is at hand.
            QueueShutDown: The queue is shut down and empty, as last known.
        """
        self._bind_loop()
        if self._buffer or self._handoff_possible():
            taken = self._take_now(1)
            if taken:
                return self._accept_held(taken)[0]
        if (
            self._own
            and self._own_exact
            and not self._buffer
            and not self._claim_in_store
            and self._v_ready <= len(self._own)
        ):
            try:
                return self._take_own()
            except SerializationError:
                self._forget_own()  # a claim fetches it, and the decode failure buries it
        if self._v_shutdown and (self._immediate or self.qsize() == 0):
            self._recheck_later()
            raise _get_shut_down(self._immediate)
        if not self._getters:
            # Even when the view says empty: other processes put without telling this
            # one, and a caller polling with get_nowait() alone must see their items.
            self._prefetch = 1
            self._ensure_claimer()
        raise QueueEmpty

    def _take_own(self) -> T:
        # The oldest item this process knows as ready is one it committed itself, so
        # it has the payload and the id: hand it out now and lease it in the background
        # (one round trip, shared by the get_nowait() calls meanwhile).  Nothing else of
        # this process takes it first: no claim is under way (each clears _own), and
        # the next one waits for the lease.  Another process may have claimed it since
        # the commit; the lease then finds it gone and the item was delivered twice,
        # which at-least-once allows.
        name, payload, entry = self._own[0]
        item: T = self._serializer.loads(payload)
        self._own.popleft()
        entry.handed = True
        self._v_ready -= 1
        self._v_leased += 1
        self._total_got += 1
        task = _current_task()
        tokens = self._held_by_task.get(task)
        if tokens is None:
            tokens = self._held_by_task[task] = deque()
        self._held_seq += 1
        self._held[self._held_seq] = _Held(None, task, pending=True)
        tokens.append(self._held_seq)
        self._leasing.append((name, self._held_seq))
        self._pending_leases += 1
        if self._leaser_task is None:
            self._leaser_task = self._spawn(self._lease_own())
        return item

    async def _lease_own(self) -> None:
        try:
            while self._leasing:
                batch, self._leasing = self._leasing, []
                error: Exception | None = None
                try:
                    results = await self._store.claim_ids(
                        [name for name, _ in batch], self._lease_timeout
                    )
                except Exception as exc:
                    # Unleased, the items are delivered again: the next get() or join()
                    # says why (the items themselves are in the caller's hands).
                    error = exc
                    results = [None] * len(batch)
                lost = 0
                for (_, token), delivery in zip(batch, results, strict=True):
                    self._pending_leases -= 1
                    held = self._held.get(token)
                    if delivery is None:
                        lost += 1
                        self._owed.discard(token)
                        if held is not None:  # task_done() has nothing to acknowledge
                            held.pending = False
                            self._v_leased -= 1
                            self._local_held += 1
                    elif held is not None:
                        held.pending = False
                        held.receipt = delivery.receipt
                    elif token in self._owed:  # task_done() came first
                        self._owed.discard(token)
                        self._acks.append(delivery.receipt)
                if self._acks and self._acker_task is None:
                    self._acker_task = self._spawn(self._ack_pending())
                if error is not None:
                    self._background_error = error
                    _log.error(
                        "conveyor: %d items handed out by get_nowait() were not leased and "
                        "will be delivered again: %r",
                        len(batch),
                        error,
                    )
                elif lost:
                    _log.warning(
                        "conveyor: %d items handed out by get_nowait() had been claimed by "
                        "another process meanwhile: delivered twice (at-least-once)",
                        lost,
                    )
                self._changed()
        finally:
            self._leaser_task = None

    async def get(self, timeout: float | None = None) -> T:
        """Remove and return an item, leasing it until ``task_done()`` acknowledges it.

        Args:
            timeout: Seconds to wait for an item; ``None`` waits forever.

        Raises:
            TimeoutError: No item within *timeout*; nothing was removed.
            QueueShutDown: The queue is shut down and empty, or shut down immediately.
            SerializationError: The stored item cannot be decoded; it was moved to the
                dead-letter list.
            BackendError: The store failed.
        """
        return self._accept_held(await self._take(1, timeout))[0]

    async def get_many(self, max_items: int, timeout: float | None = None) -> list[T]:
        """Remove and return between 1 and *max_items* items, waiting for the first.

        Each item is leased and needs its own ``task_done()``.

        Args:
            max_items: The most items to return (``>= 1``).
            timeout: Seconds to wait for the first item; ``None`` waits forever.

        Raises:
            TimeoutError: No item within *timeout*.
            QueueShutDown: The queue is shut down and empty.
            ValueError: *max_items* is less than 1.
            SerializationError: The first item cannot be decoded (it went dead).
            BackendError: The store failed.
        """
        max_items = check_max_items(max_items)
        return self._accept_held(await self._take(max_items, timeout))

    async def get_with_receipt(self, timeout: float | None = None) -> Receipt[T]:
        """Remove and return an item with the receipt of its delivery.

        The item is not tracked for ``task_done()``: settle it with ``ack()``,
        ``retry()`` or ``fail()`` before its lease expires (or ``extend()`` it).

        Args:
            timeout: Seconds to wait for an item; ``None`` waits forever.

        Raises:
            TimeoutError: No item within *timeout*; nothing was removed.
            QueueShutDown: The queue is shut down and empty.
            SerializationError: The stored item cannot be decoded (it went dead).
            BackendError: The store failed.
        """
        # Only items from the store: an uncommitted put_nowait() item has no lease.
        (item, delivery), *_ = await self._take(1, timeout, handoff=False)
        assert delivery is not None
        self._total_got += 1
        return Receipt(
            item, delivery.item_id, delivery.attempts, delivery.lease_deadline, delivery.receipt
        )

    def _handoff_possible(self) -> bool:
        # An uncommitted put_nowait() item may go straight to a getter of this process
        # only when nothing older exists anywhere this process knows of.
        if self._v_ready > 0 or self._inflight or not self._puts:
            return False
        head = self._puts[0]
        return head.future is None and not head.taken

    def _take_now(self, n: int, handoff: bool = True) -> list[tuple[Any, Delivery | None]]:
        taken: list[tuple[Any, Delivery | None]] = []
        buffer = self._buffer
        while buffer and len(taken) < n:
            delivery = buffer.popleft()
            if delivery.lease_deadline <= time.time():
                # Its lease ran out while it waited here: it may be someone else's now.
                self._v_ready += 1
                self._forget_own()
                continue
            try:
                item = self._serializer.loads(delivery.payload)
            except Exception as exc:
                # Whatever a serializer raises, the item can never be read here: to the
                # dead letters at once, not redelivered forever.
                error = _decode_error(exc)
                self._v_leased += 1
                self._spawn(self._bury(delivery, error))
                if taken:
                    break
                if error is exc:
                    raise
                raise error from exc
            self._v_leased += 1
            taken.append((item, delivery))
        self._taken_since_claim += len(taken)
        while handoff and not taken and len(taken) < n and self._handoff_possible():
            entry = self._puts.popleft()
            self._nowait_pending -= 1
            taken.append((self._serializer.loads(entry.payloads[0]), None))
        if not buffer and self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        return taken

    async def _bury(self, delivery: Delivery, exc: SerializationError) -> None:
        with contextlib.suppress(Exception):
            if await self._store.fail(delivery.receipt, f"cannot decode: {exc}"):
                self._v_dead += 1
        self._v_leased -= 1
        self._changed()

    def _accept_held(self, taken: list[tuple[Any, Delivery | None]]) -> list[T]:
        task = _current_task()
        tokens = self._held_by_task.get(task)
        if tokens is None:
            tokens = self._held_by_task[task] = deque()
        items: list[T] = []
        for item, delivery in taken:
            self._held_seq += 1
            self._held[self._held_seq] = _Held(None if delivery is None else delivery.receipt, task)
            tokens.append(self._held_seq)
            if delivery is None:
                self._local_held += 1
            items.append(item)
        self._total_got += len(items)
        return items

    async def _take(
        self, n: int, timeout: float | None, handoff: bool = True
    ) -> list[tuple[Any, Delivery | None]]:
        timeout = check_timeout(timeout)
        loop = self._bind_loop()
        if (self._buffer and (len(self._buffer) >= n or self._v_ready <= 0)) or (
            handoff and not self._buffer and self._handoff_possible()
        ):
            taken = self._take_now(n, handoff)
            if taken:
                return taken
        if self._v_shutdown and self._immediate and await self._still_shut_down():
            raise _get_shut_down(self._immediate)
        getter = _Getter(loop.create_future(), n)
        self._getters.append(getter)
        self._ensure_claimer()
        timer = None if timeout is None else loop.call_later(timeout, self._time_out, getter)
        try:
            while True:
                woken = await getter.future
                if self._buffer or (handoff and self._handoff_possible()):
                    taken = self._take_now(n, handoff)
                    if taken:
                        return taken
                if self._v_shutdown and (self._immediate or self._claim_said_shutdown):
                    raise _get_shut_down(self._immediate)
                if self._background_error is not None and woken:
                    exc, self._background_error = self._background_error, None
                    raise exc
                if not woken:
                    raise QueueTimeoutError
                getter.future = loop.create_future()
                self._getters.append(getter)
                self._ensure_claimer()
        finally:
            if timer is not None:
                timer.cancel()
            if not getter.future.done():
                getter.future.cancel()
            with contextlib.suppress(ValueError):
                self._getters.remove(getter)
            self._pass_on()

    def _time_out(self, getter: _Getter) -> None:
        # A claim already on its way may bring the item: a getter whose time ran out
        # meanwhile still takes it (so get(timeout=0) finds what the store holds).
        getter.expired = True
        if not self._claiming:
            _expire(getter.future)

    def _expire_getters(self) -> None:
        for getter in self._getters:
            if getter.expired:
                _expire(getter.future)

    def _wanted(self) -> int:
        want = self._prefetch
        for getter in self._getters:
            if not getter.future.done() and not getter.expired:
                want += getter.want
        return want - len(self._buffer)

    def _wake_getters(self) -> None:
        available = len(self._buffer)
        if self._handoff_possible():
            available += 1
        for getter in list(self._getters):
            if available <= 0:
                break
            if not getter.future.done():
                getter.future.set_result(True)
                available -= getter.want
            self._getters.remove(getter)

    def _wake_all_getters(self) -> None:
        getters, self._getters = self._getters, deque()
        for getter in getters:
            if not getter.future.done():
                getter.future.set_result(True)

    def _pass_on(self) -> None:
        # A getter left: what it would have taken goes to the next one, or back to the
        # store after a short hold so that other processes are not kept waiting.
        if not self._buffer:
            return
        if any(not g.future.done() for g in self._getters):
            self._wake_getters()
            return
        if self._release_timer is None and self._loop is not None:
            self._release_timer = self._loop.call_later(self._hold, self._release_idle)

    def _release_idle(self) -> None:
        self._release_timer = None
        if self._buffer and not any(not g.future.done() for g in self._getters):
            self._spawn(self._release_buffer())

    async def _release_buffer(self) -> None:
        deliveries = list(self._buffer)
        self._buffer.clear()
        if not deliveries:
            return
        self._v_ready += len(deliveries)
        self._forget_own()  # older than this process's own items, ready again
        try:
            await self._store.release([d.receipt for d in deliveries])
        except Exception as exc:  # the leases expire and the items come back anyway
            _log.warning("conveyor: could not release %d leased items: %r", len(deliveries), exc)
        self._changed()

    def _ensure_claimer(self) -> None:
        if self._claimer_task is None and not self._closed:
            self._claiming = True
            self._claimer_task = self._spawn(self._claim())

    async def _claim(self) -> None:
        try:
            while True:
                if self._leaser_task is not None:
                    # Items get_nowait() handed out are still ready in the store until
                    # their leases land: a claim now would take them a second time.
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._leaser_task)
                    continue
                want = self._wanted()
                if want <= 0 or self._closing:
                    break
                version = self._version
                # While consumers keep up (the last claim was used up within the hold
                # time), claim as many as were taken since then, plus one when more are
                # known to wait: consumers that come back one by one are then served by
                # one claim, not one each, and ``await get(); get_nowait()`` works.  Slow
                # consumers get exactly what they wait for, so that nothing sits leased
                # here while other processes could work on it.
                now = _monotonic()
                asked = want
                # A bounded queue claims only what its getters wait for: an item claimed
                # ahead would leave its slot in the store free for another put while it
                # still waits here, and the queue would hold more than maxsize.
                if self._maxsize <= 0 and (
                    self._last_claim is None or now - self._last_claim <= self._hold
                ):
                    asked = max(want, self._taken_since_claim)
                    if self._v_ready > asked:
                        asked += 1
                asked = min(asked, _CLAIM_BATCH)
                self._last_claim = now
                self._taken_since_claim = 0
                acks, self._acks = self._acks, []
                self._acking += len(acks)
                commits_mark, commit_busy = self._commits_done, self._inflight > 0
                self._claims_started += 1
                self._claim_in_store = True
                try:
                    if acks:
                        results, deliveries = await self._store.ack_and_claim(
                            acks, asked, self._lease_timeout, self._max_attempts
                        )
                        self._acking -= len(acks)
                        acks = []
                        self._acked(results)
                    else:
                        deliveries = await self._store.claim(
                            asked, self._lease_timeout, self._max_attempts
                        )
                except QueueShutDown:
                    self._acking -= len(acks)
                    self._v_shutdown = True
                    self._claim_said_shutdown = True
                    self._v_ready = 0
                    self._prefetch = 0
                    self._wake_all_getters()
                    break
                except asyncio.CancelledError:
                    self._acking -= len(acks)  # the store still writes them
                    raise
                except Exception as exc:
                    # Nothing was written: the acknowledgements wait for the next write.
                    self._acking -= len(acks)
                    self._acks[:0] = acks
                    if acks and self._acker_task is None and not self._closing:
                        self._acker_task = self._spawn(self._ack_pending())
                    self._background_error = exc
                    self._prefetch = 0
                    self._wake_all_getters()
                    break
                finally:
                    self._claim_in_store = False
                    # A claim takes the oldest ready items, which may be ours: they are
                    # no longer known as ready (and none was handed out meanwhile).
                    self._forget_own()
                # The store answered without a shutdown-and-empty: whatever an earlier
                # claim said (a resume() may have come since) no longer holds.
                self._claim_said_shutdown = False
                if (
                    len(deliveries) < asked
                    and not commit_busy
                    and not self._inflight
                    and commits_mark == self._commits_done
                ):
                    self._own_exact = True  # nothing else waited in the store
                self._prefetch = 0
                if deliveries:
                    if self._v_shutdown and self._immediate:
                        self._spawn(self._store.ack([d.receipt for d in deliveries]))
                        continue
                    self._buffer.extend(deliveries)
                    self._v_ready = (
                        0 if len(deliveries) < asked else self._v_ready - len(deliveries)
                    )
                    self._wake_getters()
                    self._expire_getters()
                    self._pass_on()
                    continue
                self._v_ready = 0
                self._as_of = _monotonic()
                if self._handoff_possible():
                    self._wake_getters()
                    continue
                self._expire_getters()
                if self._closing:
                    break
                self._claiming = False
                await self._wait_for_change(version, None)
                self._claiming = True
        finally:
            self._claimer_task = None
            self._claiming = False
            self._expire_getters()

    # -- acknowledgement ---------------------------------------------------------------

    def task_done(self) -> None:
        """Acknowledge the oldest item the calling task got and has not acknowledged.

        When the calling task holds none, the oldest item this process got is
        acknowledged instead.  The acknowledgement is written in the background (several
        share one write); ``join()``, ``flush()`` and ``aclose()`` wait for it.

        Raises:
            ValueError: This process holds no item got with ``get()`` and not yet done.
        """
        if not self._held:
            raise ValueError(
                "task_done() called too many times: this process holds no item got with get() "
                "and not yet marked done"
            )
        task = _current_task()
        tokens = self._held_by_task.get(task)
        token = None
        while tokens:
            candidate = tokens.popleft()
            if candidate in self._held:
                token = candidate
                break
        if tokens is not None and not tokens:
            del self._held_by_task[task]
        if token is None:
            token = next(iter(self._held))
        held = self._held.pop(token)
        if held.task is not task:
            owner = self._held_by_task.get(held.task)
            if owner is not None:
                with contextlib.suppress(ValueError):
                    owner.remove(token)
                if not owner:
                    del self._held_by_task[held.task]
        if held.pending:
            # Handed out by get_nowait(): acknowledged once its lease comes back.
            self._v_leased -= 1
            self._owed.add(token)
            self._changed()
            return
        if held.receipt is None:
            self._local_held -= 1
            self._changed()
            return
        self._v_leased -= 1
        self._acks.append(held.receipt)
        if self._acker_task is None:
            self._acker_task = self._spawn(self._ack_pending())

    async def _ack_pending(self) -> None:
        try:
            while self._acks:
                receipts, self._acks = self._acks, []
                self._acking += len(receipts)
                try:
                    results = await self._store.ack(receipts)
                except Exception as exc:
                    self._background_error = exc
                    _log.error("conveyor: could not acknowledge %d items: %r", len(receipts), exc)
                    self._v_leased += len(receipts)
                    continue
                finally:
                    self._acking -= len(receipts)
                self._acked(results)
        finally:
            self._acker_task = None

    def _acked(self, results: list[bool]) -> None:
        lost = results.count(False)
        if lost:
            # Their leases expired and the items were delivered again elsewhere.
            _log.warning("conveyor: %d acknowledgements came after the lease expired", lost)
        self._changed()

    async def _flush_acks(self) -> None:
        # Leases of get_nowait() items first: an early task_done() acknowledges after.
        while self._leaser_task is not None or self._acker_task is not None:
            task = self._leaser_task or self._acker_task
            assert task is not None
            await asyncio.shield(task)

    async def join(self, timeout: float | None = None) -> None:
        """Wait until every item put by any process has been acknowledged (or went dead).

        This process's pending writes and acknowledgements are flushed first.

        Args:
            timeout: Seconds to wait; ``None`` waits forever.

        Raises:
            TimeoutError: Items were still unfinished after *timeout* seconds.
            BackendError: The store failed.
        """
        timeout = check_timeout(timeout)
        self._bind_loop()
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            await self.flush()
            await self._flush_acks()
            if self._background_error is not None:
                exc, self._background_error = self._background_error, None
                raise exc
            version = self._version
            await self.refresh()
            if self._unfinished() == 0:
                return
            remaining = None if deadline is None else deadline - _monotonic()
            if remaining is not None and remaining <= 0:
                raise QueueTimeoutError
            await self._wait_for_change(version, remaining)

    # -- receipts ----------------------------------------------------------------------

    async def ack(self, receipt: Receipt[T]) -> None:
        """Acknowledge a delivery: the item is done and removed.

        Args:
            receipt: From ``get_with_receipt()``.

        Raises:
            LeaseExpiredError: The lease expired and the item was delivered again (or it
                was already settled, or the store was wiped since); this receipt
                acknowledges nothing.
            ForeignReceiptError: The receipt is another queue's; nothing was changed.
            BackendError: The store failed.
        """
        self._bind_loop()
        if not receipt.token:
            self._changed()
            return
        (ok,) = await self._store.ack([receipt.token])
        self._settled(ok, receipt)
        self._changed()

    async def retry(self, receipt: Receipt[T], delay: float = 0.0) -> None:
        """Give an item back, to be delivered again after *delay* seconds.

        When the item already had ``max_attempts`` deliveries it goes to the dead-letter
        list instead.

        Args:
            receipt: From ``get_with_receipt()``.
            delay: Seconds before the item may be delivered again.

        Raises:
            LeaseExpiredError: The receipt no longer names the item's current lease.
            ForeignReceiptError: The receipt is another queue's; nothing was changed.
            BackendError: The store failed.
        """
        checked = check_timeout(delay)
        if checked is None:
            raise ValueError("delay must be a finite number of seconds")
        delay = checked
        self._bind_loop()
        if not receipt.token:
            raise LeaseExpiredError("an item handed over before its commit cannot be retried")
        if self._max_attempts is not None and receipt.attempts >= self._max_attempts:
            ok = await self._store.fail(receipt.token, f"gave up after {receipt.attempts} attempts")
            self._settled(ok, receipt)
            self._v_dead += 1
        else:
            ok = await self._store.retry(receipt.token, delay)
            self._settled(ok, receipt)
            self._forget_own()
            self._v_ready += 1
            self._note_size()
        self._changed()

    async def fail(self, receipt: Receipt[T], error: str | BaseException = "failed") -> None:
        """Move an item to the dead-letter list, with *error* as the reason.

        Args:
            receipt: From ``get_with_receipt()``.
            error: Why it failed (an exception is stored as its ``repr``).

        Raises:
            LeaseExpiredError: The receipt no longer names the item's current lease.
            ForeignReceiptError: The receipt is another queue's; nothing was changed.
            BackendError: The store failed.
        """
        self._bind_loop()
        if not receipt.token:
            raise LeaseExpiredError("an item handed over before its commit cannot be failed")
        text = error if isinstance(error, str) else repr(error)
        ok = await self._store.fail(receipt.token, text)
        self._settled(ok, receipt)
        self._v_dead += 1
        self._changed()

    async def extend(self, receipt: Receipt[T], seconds: float | None = None) -> Receipt[T]:
        """Push a lease's deadline to *seconds* from now, for work that takes long.

        Args:
            receipt: From ``get_with_receipt()``.
            seconds: The new lease length; ``None`` means ``lease_timeout``.

        Returns:
            The receipt with its new ``lease_deadline`` (the old one stays valid).

        Raises:
            LeaseExpiredError: The receipt no longer names the item's current lease.
            ForeignReceiptError: The receipt is another queue's; nothing was changed.
            BackendError: The store failed.
        """
        self._bind_loop()
        if seconds is None:
            length = self._lease_timeout
        else:
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise TypeError(f"seconds must be a number, not {seconds!r}")
            if not 0 < seconds < float("inf"):
                raise ValueError(f"seconds must be a positive number, not {seconds!r}")
            length = float(seconds)
        if not receipt.token:
            return receipt
        deadline = await self._store.extend(receipt.token, length)
        if deadline is None:
            raise LeaseExpiredError(
                f"the lease of item {receipt.item_id} expired and it was delivered again"
            )
        return dataclasses.replace(receipt, lease_deadline=deadline)

    def _settled(self, ok: bool, receipt: Receipt[T]) -> None:
        if not ok:
            raise LeaseExpiredError(
                f"the lease of item {receipt.item_id} expired and it was delivered again, "
                "or it was already settled; this receipt no longer names it"
            )
        self._v_leased -= 1

    async def dead_letters(self, limit: int = 100) -> list[DeadItem]:
        """Return up to *limit* items of the dead-letter list, oldest first.

        Args:
            limit: The most items to return (``>= 1``).

        Raises:
            ValueError: *limit* is less than 1.
            BackendError: The store failed.
        """
        limit = check_max_items(limit)
        self._bind_loop()
        result = []
        for dead in await self._store.dead_letters(limit):
            try:
                item: Any = self._serializer.loads(dead.payload)
            except Exception:  # e.g. the very item that died of it: shown raw
                item = dead.payload
            result.append(DeadItem(dead.item_id, item, dead.attempts, dead.error, dead.failed_at))
        return result

    async def requeue_dead(self, ids: Sequence[str] | None = None) -> int:
        """Make dead items ready again, with their attempts reset.

        Args:
            ids: The ``item_id`` of each item to requeue; ``None`` requeues them all.

        Returns:
            How many items were requeued.

        Raises:
            BackendError: The store failed.
        """
        self._bind_loop()
        count = await self._store.requeue_dead(None if ids is None else list(ids))
        if count:
            self._forget_own()
        self._v_ready += count
        self._v_dead = max(0, self._v_dead - count)
        self._note_size()
        self._changed()
        return count

    # -- shutdown and close ------------------------------------------------------------

    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down for every process; the write happens in the background.

        Locally it takes effect at once: blocked putters of this process raise
        ``QueueShutDown``; with *immediate* the items waiting in the shared queue are
        deleted (they count as done) and blocked getters raise ``QueueShutDown``.
        ``put_nowait()`` items given before the call are still committed first.  Other
        processes see the shutdown on their next store access.

        The shutdown is stored with the queue and outlives every process: it is what a
        fleet of workers needs to drain a queue and stop (each one's ``get()`` raises
        ``QueueShutDown`` once the queue is empty, and ``async for`` ends), and it also
        means that a program opening the queue again is refused at its first ``put()``.
        ``resume()`` (or ``conveyor resume URL NAME``) undoes it.  ``ashutdown()``
        waits for the write and raises if it failed.

        Args:
            immediate: Also delete the items waiting in the shared queue.
        """
        if self._v_shutdown and (self._immediate or not immediate):
            return
        self._shutdown_epoch += 1
        self._v_shutdown = True
        self._immediate = self._immediate or immediate
        # Blocked putters go; put_nowait() items were accepted already and stay.
        kept: deque[_PutEntry] = deque()
        for entry in self._puts:
            if entry.future is None:
                if immediate:  # accepted, then emptied out with the rest: done
                    self._nowait_pending -= len(entry.payloads)
                else:
                    kept.append(entry)
            elif not entry.future.done():
                entry.future.set_exception(_put_shut_down())
        self._puts = kept
        if immediate:
            for entry in self._inflight_entries:
                if not entry.discarded and entry.future is None:
                    self._nowait_pending -= len(entry.payloads)
                entry.discarded = True
        buffered: list[Delivery] = []
        if immediate:
            self._forget_own()
            buffered = list(self._buffer)
            self._buffer.clear()
            self._v_ready = 0
            self._wake_all_getters()
        if self._loop is not None and not self._loop.is_closed():
            self._shutdown_task = self._spawn(self._shutdown_store(immediate, buffered))
        self._changed()

    async def _shutdown_store(
        self, immediate: bool, buffered: list[Delivery]
    ) -> BaseException | None:
        # Returns the failure (also kept for the next awaited call) for ashutdown().
        error: BaseException | None = None
        try:
            await self._drain_writes()  # a write's error stays for the user's flush()
            await self._store.shutdown(immediate)
            if buffered:
                await self._store.ack([d.receipt for d in buffered])
        except Exception as exc:
            error = self._background_error = exc
            _log.error("conveyor: could not shut the queue down in the store: %r", exc)
        finally:
            if self._shutdown_task is asyncio.current_task():
                self._shutdown_task = None
        self._changed()
        return error

    async def ashutdown(self, immediate: bool = False) -> None:
        """Shut the queue down for every process, and wait until the store has it.

        As ``shutdown()``, which acts locally at once and writes in the background;
        this one returns once the shutdown is stored, and raises if it could not be.

        Args:
            immediate: Also delete the items waiting in the shared queue.

        Raises:
            BackendError: The store failed; the shutdown may not be stored.
        """
        self._bind_loop()
        before = self._shutdown_task
        self.shutdown(immediate)
        task = self._shutdown_task
        if task is None or task is before:
            # The local view said shut down already; it may be stale (a resume() in
            # another process), so the store is told again, which changes nothing if so.
            await self._drain_writes()  # a write's error stays for the user's flush()
            await self._store.shutdown(immediate)
            self._changed()
            return
        error = await asyncio.shield(task)
        if error is not None:
            if self._background_error is error:
                self._background_error = None
            raise error

    async def resume(self) -> None:
        """Undo a shutdown, for every process: the queue takes items again.

        The shutdown mark stored with the queue is cleared.  This process's view is
        cleared at once; every other process's as soon as it next reads the store:
        ``put()`` and ``get()`` read it before refusing on a shutdown seen earlier, so
        they work again without reopening the queue (``put_nowait()`` and
        ``get_nowait()``, which do no I/O, refuse once more and have it read in the
        background).  Calls that already raised ``QueueShutDown`` stay raised.  Items
        deleted by an immediate shutdown do not come back.  The command
        ``conveyor resume URL NAME`` does the same.  Only durable queues have it: an
        in-memory queue's shutdown ends with its program, so a rerun starts afresh.

        Raises:
            BackendError: The store failed; the queue stays shut down, unless the
                message says that the resume may have been stored.
        """
        self._bind_loop()
        pending = self._shutdown_task
        if pending is not None:
            await asyncio.shield(pending)  # a shutdown written after this would win
        await self._store.resume()
        self._shutdown_epoch += 1
        self._v_shutdown = self._immediate = self._claim_said_shutdown = False
        self._changed()

    async def aclose(self) -> None:
        """Write what is pending, give back undelivered leases and release the store.

        Items got and not acknowledged are not given back: their leases expire and they
        are delivered again.  Idempotent.

        Raises:
            BackendError: As ``flush()`` does, once everything is released: a write of
                ``put_nowait()`` items failed (also ``QueueShutDown``, ``RuntimeError``).
        """
        if self._closed:
            return
        self._closing = True
        self._changed()
        if self._loop is not None and self._loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await self._drain_writes()
            with contextlib.suppress(Exception):
                await self._flush_acks()
            if self._release_timer is not None:
                self._release_timer.cancel()
                self._release_timer = None
            self._prefetch = 0
            for task in list(self._tasks):
                if task is not self._claimer_task:
                    with contextlib.suppress(BaseException):
                        await asyncio.shield(task)
            claimer = self._claimer_task
            if claimer is not None:
                # A claim in the store's hands is let finish (it stops after it): cancelled,
                # its acknowledgements might not be written and its leases would strand
                # their items until they expire; what it brings is released below.
                if not self._claim_in_store:
                    claimer.cancel()
                with contextlib.suppress(BaseException):
                    await claimer
            with contextlib.suppress(Exception):
                await self._release_buffer()
        self._closed = True
        for getter in self._getters:
            if not getter.future.done():
                getter.future.set_exception(RuntimeError("the queue was closed"))
        self._getters.clear()
        await self._store.aclose()
        self._raise_write_error()

    async def __aenter__(self) -> DurableQueue[T]:
        return self
