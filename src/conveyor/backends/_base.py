"""The storage interface behind every durable queue.

A ``Store`` is one named queue in one database (an SQLite file, a Redis database).
It moves opaque payloads and knows nothing of items, tasks or event loops: the shared
layer in ``conveyor._durable`` builds the whole asyncio queue surface on top of it, once,
for every backend.  A backend module exposes a single coroutine function::

    async def open_store(url: urllib.parse.SplitResult, name: str, **options) -> Store

which ``conveyor.open_queue`` imports lazily by URL scheme.  For operating queues from
outside (``conveyor queues|stats|peek|...``, metrics), the module also exposes::

    async def open_existing_store(url, name, **options) -> Store
    async def list_queues(url, **options) -> list[str]

``open_existing_store`` opens a queue as ``open_store`` does, but never creates one: a
store (file, database) or a queue that does not exist raises ``QueueNotFoundError`` and
nothing is written.  ``list_queues`` returns the names of the queues the store holds,
sorted, and raises ``QueueNotFoundError`` for a store that does not exist.

Every method is a coroutine and must never block the event loop on disk or network I/O.
Every multi-step change is atomic: a process killed at any instant leaves each item
either fully in one state or fully in the next.  Driver errors are translated at this
boundary into ``conveyor._exceptions`` errors, chained with ``raise ... from exc``.

Item states::

    put ──► ready ──claim──► leased ──ack──► (deleted)
              ▲                 │
              └──retry/expiry───┤──fail / too many attempts──► dead ──requeue──► ready
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "DEFAULT_PUT",
    "DeadLetter",
    "Delivery",
    "PURGEABLE",
    "PeekedItem",
    "PutOptions",
    "Purgeable",
    "Store",
    "StoreCounts",
    "StoreTotals",
]

Purgeable = Literal["ready", "dead", "all"]
"""What ``Store.purge()`` removes: the waiting items, the dead letters, or both."""

PURGEABLE: tuple[Purgeable, ...] = ("ready", "dead", "all")


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """One leased item, as ``Store.claim()`` hands it out.

    Attributes:
        item_id: The item's id, stable across deliveries.
        payload: The serialized item.
        receipt: Opaque token naming *this* delivery, of this queue, in this incarnation of
            its store; a later delivery of the same item gets a different one, so a receipt
            from an expired lease acknowledges nothing.  A store refuses another queue's
            receipt with ``ForeignReceiptError`` (changing nothing), and one
            from before its storage was wiped or replaced acknowledges nothing.
        attempts: Deliveries of this item so far, this one included.
        lease_deadline: Wall-clock time (``time.time()``) at which the lease expires.
    """

    item_id: str
    payload: bytes
    receipt: str
    attempts: int
    lease_deadline: float


@dataclasses.dataclass(frozen=True, slots=True)
class PutOptions:
    """What a put asks of one item beyond being queued: the job options.

    The defaults mean a plain put; ``Store.put_jobs()`` takes one of these per payload.

    Attributes:
        delay: Seconds, by the store's clock, before the item becomes ready; until then
            it is delayed (counted in ``StoreCounts.delayed``, bounded by ``maxsize``).
        priority: Among ready items, lower is claimed first; FIFO within one priority.
            Kept by retries, releases and expired leases; a requeued dead letter keeps it.
        key: A deduplication key: while an unfinished item (ready, delayed, leased) of the
            queue holds it, a put with the same key stores nothing.  Acknowledged or dead,
            the item frees it (a requeued dead letter does not take it back).
        ttl: Seconds, by the store's clock, within which the item must be claimed; one
            still waiting after that goes dead with the error "expired".
    """

    delay: float = 0.0
    priority: int = 0
    key: str | None = None
    ttl: float | None = None


DEFAULT_PUT = PutOptions()
"""The options of a plain put."""


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """An item that failed for good.

    Attributes:
        item_id: The item's id.
        payload: The serialized item.
        attempts: How many times it was delivered.
        error: Why it died (the text given to ``Store.fail()``, or "lease expired").
        failed_at: Wall-clock time of death.
    """

    item_id: str
    payload: bytes
    attempts: int
    error: str
    failed_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class StoreCounts:
    """The shared counters of one queue, read in one atomic step.

    Attributes:
        ready: Items waiting to be claimed now (what ``qsize()`` reports and what
            ``maxsize`` bounds).
        delayed: Items waiting for a retry delay to pass.
        leased: Items claimed and not yet acknowledged.
        dead: Items in the dead-letter list.
        is_shutdown: Whether any process shut the queue down (and none resumed it since).
        maxsize: The queue's stored bound (``<= 0`` or infinite: unbounded); ``0`` when
            none is stored.
    """

    ready: int
    delayed: int
    leased: int
    dead: int
    is_shutdown: bool
    maxsize: float = 0

    @property
    def unfinished(self) -> int:
        """Items put and neither acknowledged nor dead: what ``join()`` waits for."""
        return self.ready + self.delayed + self.leased


@dataclasses.dataclass(frozen=True, slots=True)
class PeekedItem:
    """A ready item, as ``Store.peek()`` shows it: nothing claimed, nothing changed.

    Attributes:
        item_id: The item's id, stable across deliveries.
        payload: The serialized item.
        attempts: Deliveries of this item so far (``0``: never delivered, or requeued).
    """

    item_id: str
    payload: bytes
    attempts: int


@dataclasses.dataclass(frozen=True, slots=True)
class StoreTotals:
    """What a queue did over its life, and over the last minute, as far as its store counts.

    Counters only grow, except when the store's data is wiped (they start again, as a
    Prometheus counter does after a restart).  ``None`` where the store keeps no count:
    never a made-up zero.

    Attributes:
        put: Items ever put into the queue.
        delivered: Deliveries ever made (a redelivered item counts again).
        finished: Items ever acknowledged or made dead (a requeued dead letter that
            finishes again counts again).
        put_per_minute: Items put per minute over the last minute or so (see
            *rate_span*); ``None`` until the store has kept its totals that long.
        finished_per_minute: Items finished per minute over the same span.
        rate_span: The seconds the two rates cover: from the store's newest snapshot of its
            totals at least a minute old until the read (60 to 75 s on a queue in use;
            longer when nothing put or claimed for a while, which took no snapshot).
    """

    put: int | None = None
    delivered: int | None = None
    finished: int | None = None
    put_per_minute: float | None = None
    finished_per_minute: float | None = None
    rate_span: float | None = None


def last_seen(counts: StoreCounts | None) -> str:
    """Describe *counts* (the last a store read) for a message about items lost."""
    if counts is None:
        return "never counted here"
    return (
        f"at last count {counts.ready} ready, {counts.delayed} delayed,"
        f" {counts.leased} leased, {counts.dead} dead"
    )


class Store(abc.ABC):
    """One durable, shared, named queue of opaque payloads."""

    @property
    @abc.abstractmethod
    def backend(self) -> str:
        """The backend's name, e.g. ``"sqlite"``, as shown by ``statistics()``."""

    @abc.abstractmethod
    async def put(self, payloads: Sequence[bytes]) -> bool:
        """Append *payloads* as ready items, all or none, if the queue has room for all.

        Room is judged against the bound stored with the queue (see ``bind_maxsize()``),
        read in the same atomic step as the put: never a value cached by the caller, so
        that a bound changed by another process holds at once.

        Args:
            payloads: Serialized items, in order; never empty.

        Returns:
            ``True`` if every payload was stored; ``False`` if there was no room and
            nothing was stored (the caller waits with ``wait_changed()`` and retries).

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: The store failed; nothing was stored, unless the message says the
                put may have been stored (it reached a server that then stopped answering).
        """

    async def put_returning_ids(self, payloads: Sequence[bytes]) -> tuple[bool, list[str] | None]:
        """Append *payloads* as ``put()`` does, and name the items it stored.

        The shared layer needs the ids to ``retract()`` the items of a cancelled put.
        This default calls ``put()`` and names none; a backend that overrides
        ``retract()`` should override this too.

        Args:
            payloads: Serialized items, in order; never empty.

        Returns:
            What ``put()`` returns, and the stored items' ids in the order of
            *payloads* (``None`` when nothing was stored or the backend cannot name them).

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: As for ``put()``.
        """
        return await self.put(payloads), None

    async def put_jobs(
        self, payloads: Sequence[bytes], options: Sequence[PutOptions]
    ) -> list[str | None] | None:
        """Store *payloads* with per-item job options, all or none, if there is room.

        One atomic step: the items whose ``key`` an unfinished item of the queue holds
        (or an earlier payload of this call) are skipped; room for the others is judged
        as ``put()`` does (delayed items count); then all of those are stored, or none.
        A skipped item needs no room: a put whose key is taken returns at once, even
        when the queue is full.

        Args:
            payloads: Serialized items, in order; never empty.
            options: One ``PutOptions`` per payload (``DEFAULT_PUT`` for a plain one).

        Returns:
            ``None`` when there was no room and nothing was stored; otherwise, for each
            payload, the name of its stored item (as ``put_returning_ids()`` names it,
            for ``retract()``), or ``None`` if it was skipped as a duplicate.

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            NotImplementedError: The backend has no job options (this default).
            BackendError: As for ``put()``.
        """
        raise NotImplementedError(
            f"the {self.backend} store does not support delay, priority, key or ttl"
        )

    async def retract(self, item_ids: Sequence[str]) -> list[bool]:
        """Delete items just put, if they are still waiting and were never delivered.

        The compensation for a put whose caller was cancelled while its commit ran.  It
        retracts all or none, atomically: the items of one put were stored all or none,
        so taking them back must not leave part of them.  This default retracts nothing,
        for backends that cannot.

        Args:
            item_ids: Ids from ``put_returning_ids()`` or ``put_jobs()``; a delayed item
                is retracted too, and frees its dedup key.

        Returns:
            For each id, ``True`` if the item was deleted; ``False`` if it could not be
            (claimed, delivered or settled already, or the backend cannot retract).

        Raises:
            BackendError: The store failed; nothing was retracted.
        """
        return [False] * len(item_ids)

    max_claim = 64
    """Most items the shared layer asks one ``claim()`` for."""

    put_depth = 1
    """How many ``put()`` calls the shared layer may have under way at once.

    Above 1 only for a store that applies concurrent calls in the order they were
    made, and that refuses (no room) a call made while an older one is under way once
    the older one was refused, so that no put overtakes another.
    """

    claims_by_id = False
    """Whether ``claim_ids()`` can lease the items ``put_returning_ids()`` names."""

    async def claim_ids(
        self, item_ids: Sequence[str], lease_timeout: float
    ) -> list[Delivery | None]:
        """Lease the items named, each one if it is still ready and was never claimed.

        The shared layer hands an item this process just put to ``get_nowait()`` at
        once, without I/O, and leases it with this right after; an item another
        process claimed meanwhile was delivered twice (at-least-once).  This default
        leases nothing, for backends that cannot (``claims_by_id`` is then ``False``,
        and the shared layer never hands items out that way).

        Args:
            item_ids: Ids from ``put_returning_ids()``.
            lease_timeout: Seconds until each lease expires unless acknowledged.

        Returns:
            For each id, the delivery of its item, or ``None`` if it was not leased
            (claimed, settled or retracted already).

        Raises:
            BackendError: The store failed; nothing was leased, unless the message says
                that the claim may have run.
        """
        return [None] * len(item_ids)

    @abc.abstractmethod
    async def claim(
        self, max_items: int, lease_timeout: float, max_attempts: int | None
    ) -> list[Delivery]:
        """Lease up to *max_items* ready items: lowest priority first, FIFO within one.

        Leases that expired are made ready again first (or dead, when the item already
        had *max_attempts* deliveries); delayed items whose delay passed become ready;
        waiting items whose ttl passed go dead with the error "expired".  Finding the
        items costs O(log n) at any backlog (an index or a sorted set, no scan).

        Args:
            max_items: The most items to lease, ``>= 1``.
            lease_timeout: Seconds until each lease expires unless acknowledged.
            max_attempts: Deliveries before an item goes dead; ``None`` for no limit.

        Returns:
            The leased items, in claim order; empty when none is ready.

        Raises:
            QueueShutDown: The queue is shut down and no item is ready.
            BackendError: The store failed; nothing was leased.
        """

    async def ack_and_claim(
        self,
        receipts: Sequence[str],
        max_items: int,
        lease_timeout: float,
        max_attempts: int | None,
    ) -> tuple[list[bool], list[Delivery]]:
        """Acknowledge *receipts*, then lease items as ``claim()`` does.

        Busy consumers acknowledge and claim in turns; a backend that can do both in one
        round trip (or one transaction) should override this.  The acknowledgements hold
        even when the claim then raises.

        Returns:
            What ``ack()`` returns for *receipts*, and what ``claim()`` returns.

        Raises:
            QueueShutDown: The queue is shut down and no item is ready (the receipts
                were acknowledged).
            BackendError: The store failed.
        """
        acked = await self.ack(receipts) if receipts else []
        return acked, await self.claim(max_items, lease_timeout, max_attempts)

    @abc.abstractmethod
    async def ack(self, receipts: Sequence[str]) -> list[bool]:
        """Acknowledge deliveries: their items are done and removed.

        Returns:
            For each receipt, ``True`` if it named the current lease of its item;
            ``False`` if the lease expired (and the item may be redelivered) or the
            item is already gone.
        """

    @abc.abstractmethod
    async def retry(self, receipt: str, delay: float) -> bool:
        """Release a lease so the item is delivered again after *delay* seconds.

        Returns:
            ``False`` if the receipt no longer names the current lease.
        """

    async def release(self, receipts: Sequence[str]) -> list[bool]:
        """Give back leases whose items were never handed to a user, ready at once.

        The shared layer claims in batches; an item claimed for a getter that left
        (cancelled, timed out) goes back with this.  A backend should undo the attempt
        the claim counted; this default, built on ``retry()``, leaves it counted.

        Returns:
            For each receipt, ``False`` if it no longer names the current lease.
        """
        return [await self.retry(receipt, 0.0) for receipt in receipts]

    @abc.abstractmethod
    async def fail(self, receipt: str, error: str) -> bool:
        """Move a leased item to the dead-letter list with *error* as the reason.

        Returns:
            ``False`` if the receipt no longer names the current lease.
        """

    @abc.abstractmethod
    async def extend(self, receipt: str, lease_timeout: float) -> float | None:
        """Push a lease's deadline to *lease_timeout* seconds from now.

        Returns:
            The new deadline (``time.time()`` based), or ``None`` if the receipt no longer
            names the current lease.
        """

    async def extend_many(
        self, receipts: Sequence[str], lease_timeout: float
    ) -> list[float | None]:
        """Push the deadline of every lease *receipts* name to *lease_timeout* from now.

        What a process holding many items renews them with, in one call a round.  This
        default calls ``extend()`` for each receipt; a backend that can extend many
        leases in one round trip (or one transaction) should override it.

        Args:
            receipts: Receipts of current leases; may be empty.
            lease_timeout: Seconds from now until each lease expires.

        Returns:
            For each receipt, the new deadline (``time.time()`` based), or ``None`` if it
            no longer names the current lease (it expired and the item may have been
            delivered again, or the item was settled).

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            BackendError: The store failed; leases may or may not have been extended.
        """
        return [await self.extend(receipt, lease_timeout) for receipt in receipts]

    @abc.abstractmethod
    async def counts(self) -> StoreCounts:
        """Read the shared counters in one atomic step."""

    @abc.abstractmethod
    async def shutdown(self, immediate: bool) -> int:
        """Mark the queue shut down for every process.

        With *immediate*, also delete every ready and delayed item (they count as done).

        Returns:
            How many items were deleted.
        """

    @abc.abstractmethod
    async def resume(self) -> None:
        """Clear the queue's shutdown mark for every process: puts are taken again.

        Processes blocked on this queue are told of the change (as by any change).

        Raises:
            BackendError: The store failed; the mark is unchanged.
        """

    @abc.abstractmethod
    async def bind_maxsize(self, maxsize: float | None) -> float | None:
        """Record *maxsize* as the queue's bound unless one is stored; return the stored one.

        The check and the write are one atomic step, so that of two processes opening a
        new queue with different bounds, exactly one records its own and the other is
        told the first one's.

        Args:
            maxsize: The bound an opener asks for (``<= 0`` or infinite: unbounded, and
                recorded too); ``None`` records nothing and only reads.

        Returns:
            The bound stored after the call, as it was given, or ``None`` when the
            queue has none stored (it is unbounded until one is).

        Raises:
            BackendError: The store failed.
        """

    @abc.abstractmethod
    async def set_maxsize(self, maxsize: float) -> None:
        """Store *maxsize* as the queue's bound, replacing any, for every process.

        Processes blocked on a full queue are told of the change.  Items already
        beyond a lowered bound stay; puts wait until the queue is below it.

        Args:
            maxsize: The new bound; ``<= 0`` or infinite for unbounded.

        Raises:
            BackendError: The store failed; the bound is unchanged.
        """

    @abc.abstractmethod
    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Return up to *limit* dead items, oldest first."""

    @abc.abstractmethod
    async def requeue_dead(self, item_ids: Sequence[str] | None) -> int:
        """Make dead items ready again, with their attempts reset; ``None`` means all.

        They keep their priority and lose their dedup key and ttl.

        Returns:
            How many items were requeued.
        """

    @abc.abstractmethod
    async def peek(self, limit: int) -> list[PeekedItem]:
        """Return up to *limit* ready items in the order claims would take them (priority).

        Nothing is claimed, leased or changed; an item whose retry delay has passed
        counts as ready, as in ``counts()``.

        Args:
            limit: The most items to return; ``<= 0`` returns none.

        Raises:
            BackendError: The store failed.
        """

    @abc.abstractmethod
    async def purge(self, which: Purgeable) -> int:
        """Delete items of the queue, in one atomic step, and tell waiting processes.

        Leased items are never deleted: the consumers that hold them settle them.

        Args:
            which: ``"ready"``: the items waiting (ready and delayed); ``"dead"``: the
                dead letters; ``"all"``: both.

        Returns:
            How many items were deleted.

        Raises:
            ValueError: *which* is none of those.
            BackendError: The store failed; nothing was deleted, unless the message
                says that the purge may have run.
        """

    @abc.abstractmethod
    async def oldest_ready_age(self) -> float | None:
        """Return how many seconds ago the ready item a claim would take first was put.

        That is the oldest ready item (an item back from a lease or from the dead
        letters keeps the age of its first put).  It grows while the item waits and
        goes to the next one's once a claim takes it.  A store answers in one read whose
        cost does not grow with the backlog.

        Returns:
            The age in seconds, with the resolution the store's docstring states;
            ``0.0`` when no item is ready; ``None`` when the store does not know when that
            item was put (it records no put times, or that item was put before it did).

        Raises:
            BackendError: The store failed.
        """

    @abc.abstractmethod
    async def totals(self) -> StoreTotals:
        """Return the queue's lifetime counters and its rates over the last minute.

        In one read: the store keeps the counters in the transaction of each change, and
        a snapshot of them taken at most every few seconds by operations that run anyway
        (puts, claims), from which the rates come.

        Returns:
            The totals, ``None`` for each figure the store does not keep or cannot tell yet.

        Raises:
            BackendError: The store failed.
        """

    @abc.abstractmethod
    async def wait_changed(self, timeout: float) -> None:
        """Return once this queue may have changed in any process, or after *timeout*.

        Used by blocked ``get``/``put``/``join`` to learn of other processes' work.  It
        must not burn CPU while nothing happens (no tight polling), and it may return
        early without a change: callers re-check the state.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections, files and threads.  Idempotent."""
