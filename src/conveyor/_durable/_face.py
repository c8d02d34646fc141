"""The durable queue's face: ``DurableQueue``, the asyncio queue surface over a Store.

``DurableQueue`` composes the parts (see the package docstring) and delegates to them:
the writer for puts, the claimer for gets, the acknowledger for ``task_done()`` and
``join()``, the lifecycle part for shutdown and close; the receipt and shared-state
methods come from ``ReceiptMethods`` and ``SharedStateMethods``.  All share one
``QueueState``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable
from typing import TypeVar

from .._abc import AsyncQueue, check_max_items, check_maxsize, check_timeout
from .._compat import QueueTimeoutError
from .._exceptions import QueueFull
from .._serializers import Serializer, resolve_serializer
from .._statistics import QueueStatistics
from ..backends._base import Store
from ._acknowledger import Acknowledger
from ._claimer import Claimer
from ._lifecycle import Lifecycle
from ._options import many_options, put_options
from ._receipts import ReceiptMethods
from ._renewer import Renewer, check_renewal
from ._shared_state import SharedStateMethods
from ._state import QueueState, monotonic
from ._view import ViewReader
from ._writer import PutEntry, Writer, put_shut_down

T = TypeVar("T")


class DurableQueue(ReceiptMethods[T], SharedStateMethods, AsyncQueue[T]):
    """A queue kept in a shared store: the asyncio queue surface, across processes.

    Get one with ``conveyor.open_queue()``.  Everything ``asyncio.Queue`` does works,
    with these differences, all coming from the queue living outside the process:

    * Delivery is at least once.  ``get()`` leases the item; ``task_done()`` acknowledges
      the oldest item the calling task got and has not acknowledged (when the calling task
      holds none, the oldest this process holds).  The leases of the items this process
      holds renew themselves while it lives (see *renew_leases*): an item whose holder
      died is delivered again, to any process, within ``lease_timeout`` seconds.
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
        renew_leases: Renew the leases of the items this process holds (got and not yet
            settled) every ``lease_timeout / 3`` while it lives (the default), so that
            ``lease_timeout`` only bounds how long a dead process's items stay away;
            ``False``: every lease ends ``lease_timeout`` after its delivery.
        processing_timeout: Seconds after its delivery that an item's lease stops being
            renewed, so that a live but hung holder loses it: the item is delivered again
            at most ``lease_timeout`` later, and the holder's acknowledgement then counts
            for nothing.  ``None`` (the default): no bound.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: *lease_timeout* or *processing_timeout* is not positive,
            *max_attempts* is less than 1, or *processing_timeout* comes with
            ``renew_leases=False``.
    """

    def __init__(
        self,
        store: Store,
        *,
        maxsize: float = 0,
        lease_timeout: float = 30.0,
        serializer: str | Serializer = "json",
        max_attempts: int | None = None,
        renew_leases: bool = True,
        processing_timeout: float | None = None,
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
        check_renewal(renew_leases, processing_timeout)
        self._state = state = QueueState(
            store,
            resolve_serializer(serializer),
            maxsize=maxsize,
            lease_timeout=float(lease_timeout),
            max_attempts=max_attempts,
            describe=self.__repr__,
        )
        self._renewer = Renewer(
            state, renew_leases, None if processing_timeout is None else float(processing_timeout)
        )
        self._acknowledger: Acknowledger[T] = Acknowledger(state, self._renewer)
        self._reader = ViewReader(state, self._acknowledger)
        self._writer = Writer(state, self._reader)
        self._claimer: Claimer[T] = Claimer(state, self._writer, self._acknowledger, self._reader)
        self._lifecycle = Lifecycle(state, self._writer, self._claimer, self._acknowledger)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._format()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._format()}>"

    def _format(self) -> str:
        # The items live in the store: show the last known counts instead of them.
        state = self._state
        result = f"{state.store.backend} size~{state.qsize()}"
        waiting = self._claimer.waiting()
        if waiting:
            result += f" _getters[{waiting}]"
        putters = self._writer.putters()
        if putters:
            result += f" _putters[{putters}]"
        if state.unfinished():
            result += f" tasks~{state.unfinished()}"
        result += f" maxsize={state.maxsize!r}"
        return result + (" shutdown" if state.is_shutdown else "")

    # What tests synchronise on: the store, and the commit or claim under way.
    @property
    def _store(self) -> Store:
        return self._state.store

    @property
    def _inflight_entries(self) -> list[PutEntry]:
        return self._writer.inflight_entries

    @property
    def _claim_in_store(self) -> bool:
        return self._state.claim_in_store

    @property
    def _inflight_done(self) -> asyncio.Future[None] | None:
        return self._writer.inflight_done

    # -- the local view -------------------------------------------------------------

    @property
    def maxsize(self) -> float:
        """Number of items allowed in the shared queue, as last known; ``<= 0``: unbounded.

        The bound is stored with the queue: this is its value as of the last read of the
        store (opening, ``refresh()``, ``aqsize()``, ``join()``) or this process's
        ``set_maxsize()``.  Puts are always checked against the stored one.
        """
        return self._state.maxsize

    @property
    def lease_timeout(self) -> float:
        """Seconds a delivery stays leased before the item is delivered again."""
        return self._state.lease_timeout

    @property
    def processing_timeout(self) -> float | None:
        """Seconds after a delivery that its lease stops being renewed; ``None``: never."""
        return self._renewer.processing_timeout

    @property
    def max_attempts(self) -> int | None:
        """Deliveries after which an item goes dead; ``None`` for no limit."""
        return self._state.max_attempts

    def qsize(self) -> int:
        """Return the number of items waiting to be got, as last known.

        This does no I/O: it is the shared count as last read, updated after each of this
        process's own operations, so it is exact when no other process writes.  Use
        ``await aqsize()`` for the exact shared value.  It never exceeds a positive
        ``maxsize``.
        """
        return self._state.qsize()

    def empty(self) -> bool:
        """Return ``True`` if no item waits to be got, as last known (see ``qsize()``)."""
        return self._state.qsize() == 0

    def full(self) -> bool:
        """Return ``True`` if ``maxsize`` items wait, as last known (see ``qsize()``)."""
        return 0 < self._state.maxsize <= self._state.qsize()

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the local view and this process's counters, without I/O.

        The shared numbers are as last known (``as_of`` says when); ``await refresh()``
        reads them first.
        """
        return self._state.statistics(self._claimer.waiting(), self._writer.putters())

    # -- put ------------------------------------------------------------------------

    def put_nowait(
        self,
        item: T,
        *,
        delay: float | None = None,
        priority: int | None = None,
        key: str | None = None,
        ttl: float | None = None,
    ) -> None:
        """Put an item without blocking; it is committed by a background write.

        The decision uses the last known size (see ``qsize()``).  The item is written
        to the store in the next group commit, within milliseconds; until then it lives
        only in this process (``join()``, ``aclose()`` and ``await flush()`` wait for the
        write, and raise its error if it failed).  Use ``await put()`` when the item must
        be durable before going on.

        The job options are ``put()``'s.  With a *key*, whether the item was stored is
        decided by the store at the write: this call cannot say, and returns ``None``;
        after ``await flush()``, ``statistics().total_deduplicated`` counts the skipped
        ones.  Use ``await put(..., key=...)`` to learn it per item.

        Raises:
            QueueFull: The queue is full, as last known.
            QueueShutDown: The queue is shut down, as last known.
            SerializationError: The serializer cannot encode *item*; nothing is put.
            TypeError: A job option has the wrong type.
            ValueError: A negative delay or ttl, or a priority out of range.
        """
        options = put_options(delay, priority, key, ttl)
        self._writer.check_options(options is not None)
        state = self._state
        state.bind_loop()
        if state.is_shutdown:
            self._reader.recheck_later()
            raise put_shut_down()
        if 0 < state.maxsize <= state.qsize():
            raise QueueFull
        self._writer.put_nowait(state.serializer.dumps(item), options)

    async def put(
        self,
        item: T,
        timeout: float | None = None,
        *,
        delay: float | None = None,
        priority: int | None = None,
        key: str | None = None,
        ttl: float | None = None,
    ) -> bool:
        """Put an item into the shared queue, waiting while it is full.

        Returns once the item is committed to the store.  Concurrent ``put()`` calls of
        this process share one commit.

        The job options (all default to a plain put; any mix may be given):

        * *delay*: seconds before the item becomes ready.  Until then it is delayed: it
          counts towards ``maxsize`` and ``join()`` waits for it, but no get takes it.
          It lives in the store, so it survives restarts; the time is the store's
          (the machine's clock for SQLite, the server's for Redis).
        * *priority*: an int; among ready items, lower is got first, FIFO within one
          priority (``asyncio.PriorityQueue``'s order); the default is 0.  A retried,
          released or requeued item keeps it.
        * *key*: a deduplication key.  While an unfinished item (waiting, delayed or
          got and not yet acknowledged) holds the same key, in any process, the put
          stores nothing and returns ``False`` at once, even when the queue is full
          (``statistics().total_deduplicated`` counts it).  Acknowledged or dead, the
          item frees the key.
        * *ttl*: seconds within which the item must be got; one still waiting after
          that goes to the dead letters with the error "expired" (never dropped
          silently).  Once got, the ttl no longer applies.

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
            delay: Seconds before the item is ready (``>= 0``).
            priority: Lower is got first (an int).
            key: A deduplication key (a str).
            ttl: Seconds within which it must be got, else it goes dead (``>= 0``).

        Returns:
            ``True`` if the item was stored; ``False`` if an unfinished item held its
            *key* and nothing was stored (always ``True`` without a key).

        Raises:
            TimeoutError: No room within *timeout*; the item was not put.
            QueueShutDown: The queue is shut down (before or while waiting).
            SerializationError: The serializer cannot encode *item*; nothing is put.
            TypeError: A job option has the wrong type (a priority that is not an int,
                a key that is not a str, a delay or ttl that is not a number).
            ValueError: A negative delay or ttl, or a priority beyond +-2**53.
            NotImplementedError: Job options given to a store that has none (a backend
                of another package); nothing is put.
            BackendError: The store failed; the item was not put, unless the message
                says it may have been (the store lost touch with a commit under way).
        """
        options = put_options(delay, priority, key, ttl)
        self._writer.check_options(options is not None)
        return await self._writer.put(item, timeout, options)

    async def put_many(
        self,
        items: Iterable[T],
        timeout: float | None = None,
        *,
        delay: float | None = None,
        priority: int | None = None,
        key: Callable[[T], str | None] | None = None,
        ttl: float | None = None,
    ) -> list[bool]:
        """Put every item of *items*, in order.

        The job options are ``put()``'s, for every item, except *key*: a function of
        the item returning its dedup key or ``None`` (as ``sorted()``'s key), since
        items of one batch rarely share one.  Two items of one batch with the same key
        store the first.

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
            delay: As for ``put()``.
            priority: As for ``put()``.
            key: A function of an item returning its dedup key (a str) or ``None``.
            ttl: As for ``put()``.

        Returns:
            Per item, in order, whether it was stored (``False``: its key was taken).

        Raises:
            TimeoutError: Not all items found room in time.
            QueueShutDown: The queue is shut down.
            SerializationError: An item cannot be encoded; nothing is put.
            TypeError: As for ``put()``; also a *key* that is not callable.
            ValueError: As for ``put()``.
            BackendError: The store failed.
        """
        if delay is None and priority is None and key is None and ttl is None:
            return await self._writer.put_many(items, timeout)
        batch = list(items)
        options = many_options(batch, delay, priority, key, ttl)
        self._writer.check_options(options is not None)
        return await self._writer.put_many(batch, timeout, options)

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
        self._state.bind_loop()
        await self._writer.drain()
        self._writer.raise_write_error()

    # -- get ------------------------------------------------------------------------

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
        return self._claimer.get_nowait()

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
        return self._acknowledger.hold(await self._claimer.take(1, timeout))[0]

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
        return self._acknowledger.hold(await self._claimer.take(max_items, timeout))

    # -- acknowledgement ------------------------------------------------------------

    def task_done(self) -> None:
        """Acknowledge the oldest item the calling task got and has not acknowledged.

        When the calling task holds none, the oldest item this process got is
        acknowledged instead.  The acknowledgement is written in the background (several
        share one write); ``join()``, ``flush()`` and ``aclose()`` wait for it.

        Raises:
            ValueError: This process holds no item got with ``get()`` and not yet done.
        """
        self._acknowledger.task_done()

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
        state = self._state
        state.bind_loop()
        deadline = None if timeout is None else monotonic() + timeout
        last_read = -math.inf
        while True:
            since = monotonic() - last_read
            if since < state.poll and (state.buffer or self._acknowledger.holding()):
                # Items this process holds keep the queue unfinished, unless their leases
                # expired: the store is read at most once a poll interval meanwhile, not
                # at each change (each read a round trip that the getters wait behind).
                pause = state.poll - since
                if deadline is not None:
                    if deadline <= monotonic():
                        raise QueueTimeoutError
                    pause = min(pause, deadline - monotonic())
                await state.wait_for_change(state.version, pause)
                continue
            last_read = monotonic()
            await self.flush()
            await self._acknowledger.flush()
            if state.background_error is not None:
                exc, state.background_error = state.background_error, None
                raise exc
            version = state.version
            await self._reader.refresh()
            if state.unfinished() == 0:
                return
            remaining = None if deadline is None else deadline - monotonic()
            if remaining is not None and remaining <= 0:
                raise QueueTimeoutError
            await state.wait_for_change(version, remaining)

    # -- shutdown and close ---------------------------------------------------------

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
        self._lifecycle.shutdown(immediate)

    async def aclose(self) -> None:
        """Write what is pending, give back undelivered leases and release the store.

        Items got and not acknowledged are not given back: their leases expire and they
        are delivered again.  Idempotent.

        Raises:
            BackendError: As ``flush()`` does, once everything is released: a write of
                ``put_nowait()`` items failed (also ``QueueShutDown``, ``RuntimeError``).
        """
        await self._lifecycle.aclose()

    async def __aenter__(self) -> DurableQueue[T]:
        return self
