"""``SQLiteStore``: the ``Store`` interface over one queue of an SQLite file.

Where the work happens: each store owns one connection (``_connection.py``) and one worker
thread (``.._worker``); every statement runs on that thread and the event loop only awaits
futures, so no disk I/O ever blocks the loop.  Each method sends one operation of
``_operations.py`` to the thread, to run in one transaction.  Waiting for a change is
``_wakeups.py``'s.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..._exceptions import BackendError, QueueShutDown
from .._base import (
    PURGEABLE,
    DeadLetter,
    Delivery,
    PeekedItem,
    Purgeable,
    PutOptions,
    Store,
    StoreCounts,
    StoreTotals,
)
from .._worker import ThreadWorker
from . import _operations as ops
from ._connection import SQLiteConnection
from ._wakeups import WATCH_INTERVAL, Waiters

__all__ = ["SQLiteStore"]

R = TypeVar("R")


class SQLiteStore(Store):
    """One named queue in one SQLite file, worked on by a private thread.

    Get one with ``open_store()`` (through ``conveyor.open_queue()``).
    """

    def __init__(self, path: str, name: str, synchronous: str, busy_timeout: float) -> None:
        self._path = path
        self._name = name
        self._waiters = Waiters(path, lambda: self._db.qid)
        self._db = SQLiteConnection(
            path, name, synchronous, busy_timeout, on_commit=self._waiters.committed
        )
        # Put tokens: random per store, then counted, so no syscall per put.
        self._token_prefix = secrets.token_hex(8)
        self._token_count = itertools.count()
        self._closed = False
        self._snapshot_due = 0.0
        # When the first delayed item becomes ready, as the last claim that found
        # nothing read it (time.time()); None: none known.
        self._due: float | None = None
        self._worker = ThreadWorker(
            f"conveyor-sqlite:{name}",
            check=self._check_data_version,
            interval=WATCH_INTERVAL,
            finish=self._finish,
            idle=self._db.give_back_space,
        )

    @property
    def backend(self) -> str:
        """``"sqlite"``."""
        return "sqlite"

    def __repr__(self) -> str:
        return f"<SQLiteStore {self._path!r} queue={self._name!r}>"

    async def _start(self) -> None:
        self._worker.start()
        await self._worker.call(self._db.open)
        self._waiters.join()

    # -- the worker thread -------------------------------------------------------------

    def _finish(self) -> None:
        self._db.close()
        self._waiters.channel.close()

    def _check_data_version(self) -> None:
        # On the worker thread, between jobs, while someone waits for a change.
        if self._db.changed():
            self._waiters.changed()

    async def _run(
        self,
        work: Callable[[sqlite3.Connection], R],
        write: bool = True,
        orphan: Callable[[R], None] | None = None,
    ) -> R:
        # Each operation: one transaction, in one hand-off to the worker thread.
        if self._closed:
            raise BackendError(f"{self!r} is closed")
        if write:
            now = time.time()
            if now >= self._snapshot_due:
                # The rates' snapshot rides on a change that runs anyway, at most every
                # SNAPSHOT_EVERY seconds per store: no statement of its own on other calls.
                self._snapshot_due = now + ops.SNAPSHOT_EVERY
                work = _with_snapshot(work, self._db, now)
        return await self._worker.call(self._db.transaction, work, write, orphan=orphan)

    def _release_orphans(self, deliveries: list[Delivery]) -> None:
        if deliveries and not self._closed:
            receipts = [d.receipt for d in deliveries]
            db = self._db
            self._worker.submit(db.transaction, lambda c: ops.release(c, db.receipts, receipts))

    # -- the Store interface -----------------------------------------------------------

    async def put(self, payloads: Sequence[bytes]) -> bool:
        """Append *payloads* as ready items, all or none, if the queue has room for all.

        Room is judged against the queue's stored bound, read in the put's transaction.

        Args:
            payloads: Serialized items, in order; never empty.

        Returns:
            ``True`` if stored; ``False`` if there was no room and nothing was stored.

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: The store failed; nothing was stored.
        """
        # The queue id is read on the worker thread, as every operation's is: a file
        # replaced meanwhile has its own (the worker re-opens it first).
        db, stored = self._db, [bytes(p) for p in payloads]
        return await self._run(lambda c: ops.put(c, db.qid, stored))

    async def put_returning_ids(self, payloads: Sequence[bytes]) -> tuple[bool, list[str] | None]:
        """Append *payloads* as ``put()`` does, and name the items it stored.

        Each name is ``"<item id>:<token of this put>"``: the token shows that the item
        was never claimed since.  It waits in the item's ``lease_token``, which every
        claim replaces.

        Args:
            payloads: Serialized items, in order; never empty.

        Returns:
            Whether the items were stored, and their names in the order of *payloads*
            (``None`` when nothing was stored).

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: The store failed; nothing was stored.
        """
        token = f"{self._token_prefix}{next(self._token_count):x}"
        db, stored = self._db, [bytes(p) for p in payloads]
        ids = await self._run(lambda c: ops.put_ids(c, db.qid, stored, token))
        if ids is None:
            return False, None
        return True, [f"{item_id}:{token}" for item_id in ids] if ids else None

    async def put_jobs(
        self, payloads: Sequence[bytes], options: Sequence[PutOptions]
    ) -> list[str | None] | None:
        """Store *payloads* with per-item job options (see ``Store.put_jobs``).

        One transaction: the partial unique index on the unfinished items' keys makes a
        duplicate atomic across processes.  Names are ``put_returning_ids()``'s.

        Args:
            payloads: Serialized items, in order; never empty.
            options: One ``PutOptions`` per payload.

        Returns:
            ``None`` when there was no room; else per payload its name, or ``None``
            where a duplicate key skipped it.

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: The store failed; nothing was stored.
        """
        token = f"{self._token_prefix}{next(self._token_count):x}"
        db, stored, wanted = self._db, [bytes(p) for p in payloads], list(options)
        ids = await self._run(lambda c: ops.put_jobs(c, db.qid, stored, wanted, token))
        if ids is None:
            return None
        return [None if item_id is None else f"{item_id}:{token}" for item_id in ids]

    async def retract(self, item_ids: Sequence[str]) -> list[bool]:
        """Delete items just put, all or none, if every one is still ready and unclaimed.

        Args:
            item_ids: Names from ``put_returning_ids()``.

        Returns:
            For each name, ``True`` if its item was deleted: all ``True`` or all ``False``.

        Raises:
            BackendError: The store failed; nothing was retracted.
        """
        items: list[tuple[int, str]] = []
        for name in item_ids:
            item_id, _, token = name.partition(":")
            try:
                items.append((int(item_id), token))
            except ValueError:
                return [False] * len(item_ids)
        if not items or any(not token for _, token in items):
            return [False] * len(items)
        db = self._db
        return await self._run(lambda c: ops.retract(c, db.qid, items))

    claims_by_id = True
    # A get_many(n) of a few hundred is one claim: the claim's cost is mostly per
    # transaction, not per item.
    max_claim = 1000

    async def claim_ids(
        self, item_ids: Sequence[str], lease_timeout: float
    ) -> list[Delivery | None]:
        """Lease the items named, each one if it is still ready and was never claimed.

        Args:
            item_ids: Names from ``put_returning_ids()``.
            lease_timeout: Seconds until each lease expires unless acknowledged.

        Returns:
            For each name, the delivery of its item, or ``None`` if it was not leased.

        Raises:
            BackendError: The store failed; nothing was leased.
        """
        items: list[tuple[int, str] | None] = []
        for name in item_ids:
            item_id, _, token = name.partition(":")
            items.append((int(item_id), token) if item_id.isdigit() and token else None)
        db = self._db
        return await self._run(
            lambda c: ops.claim_ids(c, db.qid, db.receipts, items, lease_timeout),
            orphan=lambda found: self._release_orphans([d for d in found if d is not None]),
        )

    async def claim(
        self, max_items: int, lease_timeout: float, max_attempts: int | None
    ) -> list[Delivery]:
        """Lease up to *max_items* of the oldest ready items, in FIFO order.

        Expired leases are made ready again first (dead when the item already had
        *max_attempts* deliveries).

        Args:
            max_items: The most items to lease, ``>= 1``.
            lease_timeout: Seconds until each lease expires unless acknowledged.
            max_attempts: Deliveries before an item goes dead; ``None`` for no limit.

        Returns:
            The leased items, oldest first; empty when none is ready.

        Raises:
            QueueShutDown: The queue is shut down and no item is ready.
            BackendError: The store failed; nothing was leased.
        """
        db = self._db

        def work(conn: sqlite3.Connection) -> list[Delivery]:
            claimed = ops.claim(conn, db.qid, db.receipts, max_items, lease_timeout, max_attempts)
            if not claimed:
                self._due = ops.next_due(conn, db.qid)
            return claimed

        return await self._run(work, orphan=self._release_orphans)

    async def ack_and_claim(
        self,
        receipts: Sequence[str],
        max_items: int,
        lease_timeout: float,
        max_attempts: int | None,
    ) -> tuple[list[bool], list[Delivery]]:
        """Acknowledge *receipts*, then lease items as ``claim()`` does, in one transaction.

        Returns:
            The acknowledgement results and the leased items.

        Raises:
            QueueShutDown: The queue is shut down and no item is ready (the receipts
                were acknowledged).
            BackendError: The store failed; nothing was acknowledged or leased.
        """
        receipts = list(receipts)
        db = self._db

        def work(conn: sqlite3.Connection) -> tuple[list[bool], list[Delivery] | None]:
            acked = ops.ack(conn, db.receipts, receipts)
            try:
                claimed = ops.claim(
                    conn, db.qid, db.receipts, max_items, lease_timeout, max_attempts
                )
            except QueueShutDown:
                return acked, None  # commit the acknowledgements, then raise
            if not claimed:
                self._due = ops.next_due(conn, db.qid)
            return acked, claimed

        acked, deliveries = await self._run(
            work, orphan=lambda r: self._release_orphans(r[1] or [])
        )
        if deliveries is None:
            raise QueueShutDown
        return acked, deliveries

    async def ack(self, receipts: Sequence[str]) -> list[bool]:
        """Acknowledge deliveries: their items are done and removed.

        A receipt acknowledges as long as its item was not delivered again, even when
        its deadline passed meanwhile.

        Returns:
            For each receipt, whether it named the current lease of its item.

        Raises:
            BackendError: The store failed; nothing was acknowledged.
        """
        receipts = list(receipts)
        db = self._db
        return await self._run(lambda c: ops.ack(c, db.receipts, receipts))

    async def retry(self, receipt: str, delay: float) -> bool:
        """Release a lease so the item is delivered again after *delay* seconds.

        Returns:
            ``False`` if the receipt no longer names the current lease.

        Raises:
            BackendError: The store failed.
        """
        available = time.time() + delay if delay > 0 else 0.0
        db = self._db
        return await self._run(lambda c: ops.retry(c, db.receipts, receipt, available))

    async def release(self, receipts: Sequence[str]) -> list[bool]:
        """Give back undelivered leases, ready at once, without counting the attempt.

        Returns:
            For each receipt, ``False`` if it no longer names the current lease.

        Raises:
            BackendError: The store failed.
        """
        receipts = list(receipts)
        db = self._db
        return await self._run(lambda c: ops.release(c, db.receipts, receipts))

    async def fail(self, receipt: str, error: str) -> bool:
        """Move a leased item to the dead-letter list with *error* as the reason.

        Returns:
            ``False`` if the receipt no longer names the current lease.

        Raises:
            BackendError: The store failed.
        """
        now = time.time()
        db = self._db
        return await self._run(lambda c: ops.fail(c, db.receipts, receipt, error, now))

    async def extend(self, receipt: str, lease_timeout: float) -> float | None:
        """Push a lease's deadline to *lease_timeout* seconds from now.

        Returns:
            The new deadline, or ``None`` if the receipt no longer names the current lease.

        Raises:
            BackendError: The store failed.
        """
        deadline = time.time() + lease_timeout
        db = self._db
        ok = await self._run(lambda c: ops.extend(c, db.receipts, receipt, deadline))
        return deadline if ok else None

    async def extend_many(
        self, receipts: Sequence[str], lease_timeout: float
    ) -> list[float | None]:
        """Push the deadline of every lease *receipts* name, in one transaction.

        Returns:
            For each receipt, the new deadline, or ``None`` if it no longer names the
            current lease.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            BackendError: The store failed; nothing was extended.
        """
        receipts = list(receipts)
        if not receipts:
            return []
        deadline = time.time() + lease_timeout
        db = self._db
        flags = await self._run(lambda c: ops.extend_many(c, db.receipts, receipts, deadline))
        return [deadline if ok else None for ok in flags]

    async def counts(self) -> StoreCounts:
        """Read the shared counters in one atomic step.

        Raises:
            BackendError: The store failed.
        """
        db = self._db

        def read(conn: sqlite3.Connection) -> StoreCounts:
            db.last_counts = ops.counts(conn, db.qid)
            return db.last_counts

        return await self._run(read, False)

    async def shutdown(self, immediate: bool) -> int:
        """Mark the queue shut down for every process; with *immediate*, empty it.

        Returns:
            How many items were deleted.

        Raises:
            BackendError: The store failed.
        """
        return await self._run(lambda c: ops.shutdown(c, self._db.qid, immediate))

    async def resume(self) -> None:
        """Clear the queue's shutdown mark for every process.

        Raises:
            BackendError: The store failed; the mark is unchanged.
        """
        await self._run(lambda c: ops.resume(c, self._db.qid))

    async def bind_maxsize(self, maxsize: float | None) -> float | None:
        """Fill ``queues.maxsize`` if it is NULL, then read it (see ``Store.bind_maxsize()``)."""
        return await self._run(
            lambda c: ops.bind_maxsize(c, self._db.qid, maxsize), maxsize is not None
        )

    async def set_maxsize(self, maxsize: float) -> None:
        """Overwrite ``queues.maxsize`` (see ``Store.set_maxsize()``)."""
        await self._run(lambda c: ops.set_maxsize(c, self._db.qid, maxsize))

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Return up to *limit* dead items, oldest first.

        Raises:
            BackendError: The store failed.
        """
        return await self._run(lambda c: ops.dead_letters(c, self._db.qid, limit), False)

    async def requeue_dead(self, item_ids: Sequence[str] | None) -> int:
        """Make dead items ready again, with their attempts reset; ``None`` means all.

        Returns:
            How many items were requeued.

        Raises:
            BackendError: The store failed.
        """
        ids = None
        if item_ids is not None:
            ids = []
            for item_id in item_ids:
                with contextlib.suppress(ValueError):
                    ids.append(int(item_id))
        return await self._run(lambda c: ops.requeue_dead(c, self._db.qid, ids))

    async def peek(self, limit: int) -> list[PeekedItem]:
        """Return up to *limit* ready items in claim order, changing nothing.

        Raises:
            BackendError: The store failed.
        """
        return await self._run(lambda c: ops.peek(c, self._db.qid, limit), False)

    async def purge(self, which: Purgeable) -> int:
        """Delete the waiting items (``"ready"``), dead letters (``"dead"``) or both.

        One transaction; leased items stay.  Waiters here are woken at the commit, other
        processes' when they next look (``PRAGMA data_version``).

        Returns:
            How many items were deleted.

        Raises:
            ValueError: *which* is not ``"ready"``, ``"dead"`` or ``"all"``.
            BackendError: The store failed; nothing was deleted.
        """
        if which not in PURGEABLE:
            raise ValueError(f"purge takes one of {', '.join(PURGEABLE)}, not {which!r}")
        return await self._run(lambda c: ops.purge(c, self._db.qid, which))

    async def oldest_ready_age(self) -> float | None:
        """Return how many seconds ago the ready item a claim would take first was put.

        Exact (``items.put_at``, this machine's clock at the put), in one read
        transaction of two index lookups, whatever the backlog.

        Returns:
            The age; ``0.0`` when no item is ready; ``None`` when that item was put
            before the file recorded put times (schema 4, see ``_schema``).

        Raises:
            BackendError: The store failed.
        """
        return await self._run(lambda c: ops.oldest_ready_age(c, self._db.qid), False)

    async def totals(self) -> StoreTotals:
        """Return the queue's totals and its rates in and out over the last minute.

        The totals are the ``counters`` table's, kept by triggers since the file reached
        schema 4; the rates come from the newest snapshot of them at least a minute old
        (puts, claims and acks take one at most every 15 seconds).  One read transaction.

        Raises:
            BackendError: The store failed.
        """
        return await self._run(lambda c: ops.totals(c, self._db.qid), False)

    async def wait_changed(self, timeout: float) -> None:
        """Return once this queue may have changed in any process, or after *timeout*.

        Changes through this process's stores wake at once; other processes' on this
        machine through a datagram socket each store that waits binds next to the file
        (see ``_wakeups``), and any other within about 20 ms (the worker thread checks
        ``PRAGMA data_version`` while someone waits).
        """
        if not self._closed:
            due = self._due
            if due is not None:
                # A delayed item (a retry, a put with a delay) becomes ready then: the
                # getters that found nothing claim again at that time, not a poll later.
                # Once past, it wakes nobody again (the next empty claim reads the next).
                left = due - time.time()
                if left <= 0:
                    self._due = None
                timeout = min(timeout, max(0.0, left))
            await self._waiters.wait(self._worker, timeout)

    async def aclose(self) -> None:
        """Close the connection and stop the worker thread.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._waiters.leave()
        await self._worker.stop()


def _with_snapshot(
    work: Callable[[sqlite3.Connection], R], db: SQLiteConnection, now: float
) -> Callable[[sqlite3.Connection], R]:
    def both(conn: sqlite3.Connection) -> R:
        ops.take_snapshot(conn, db.qid, now)
        return work(conn)

    return both
