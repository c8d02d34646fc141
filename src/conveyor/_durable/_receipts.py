"""Receipts and dead letters: items settled one by one instead of by ``task_done()``.

``get_with_receipt()`` hands out an item with the receipt of its delivery, which
``ack()``, ``retry()``, ``fail()`` and ``extend()`` settle; items that failed too often
wait in the dead-letter list for ``dead_letters()`` and ``requeue_dead()``.  These are
the durable queue's own methods (``asyncio.Queue`` has none of them): ``ReceiptMethods``
gives them to ``DurableQueue``, over the shared state and the claimer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from .._abc import check_max_items, check_timeout
from .._exceptions import LeaseExpiredError
from ._claimer import Claimer
from ._renewer import Renewer
from ._state import QueueState

T = TypeVar("T")


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
        lease_deadline: Wall-clock time (``time.time()``) at which the lease expired as
            delivered; renewal (and ``extend()``) push it later in the store.
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


class ReceiptMethods(Generic[T]):
    """The receipt and dead-letter methods of ``DurableQueue``."""

    _state: QueueState
    _claimer: Claimer[T]
    _renewer: Renewer

    async def get_with_receipt(self, timeout: float | None = None) -> Receipt[T]:
        """Remove and return an item with the receipt of its delivery.

        The item is not tracked for ``task_done()``: settle it with ``ack()``,
        ``retry()``, ``fail()`` or ``release()``.  Until then its lease is renewed while
        this process lives (unless the queue was opened with ``renew_leases=False``:
        then settle it before its lease expires, or ``extend()`` it), and for at most
        ``processing_timeout`` seconds when one is set.

        Args:
            timeout: Seconds to wait for an item; ``None`` waits forever.

        Raises:
            TimeoutError: No item within *timeout*; nothing was removed.
            QueueShutDown: The queue is shut down and empty.
            SerializationError: The stored item cannot be decoded (it went dead).
            BackendError: The store failed.
        """
        # Only items from the store: an uncommitted put_nowait() item has no lease.
        (item, delivery), *_ = await self._claimer.take(1, timeout, handoff=False)
        assert delivery is not None
        self._state.total_got += 1
        self._renewer.track(delivery.receipt, delivery.item_id, by_receipt=True)
        return Receipt(
            item, delivery.item_id, delivery.attempts, delivery.lease_deadline, delivery.receipt
        )

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
        self._state.bind_loop()
        if not receipt.token:
            self._state.changed()
            return
        self._renewer.forget(receipt.token)
        (ok,) = await self._state.store.ack([receipt.token])
        self._settled(ok, receipt)
        self._state.changed()

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
        self._state.bind_loop()
        if not receipt.token:
            raise LeaseExpiredError("an item handed over before its commit cannot be retried")
        self._renewer.forget(receipt.token)
        if self._state.max_attempts is not None and receipt.attempts >= self._state.max_attempts:
            ok = await self._state.store.fail(
                receipt.token, f"gave up after {receipt.attempts} attempts"
            )
            self._settled(ok, receipt)
            self._state.dead += 1
        else:
            ok = await self._state.store.retry(receipt.token, delay)
            self._settled(ok, receipt)
            self._state.forget_own()
            self._state.ready += 1
            self._state.note_size()
        self._state.changed()

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
        self._state.bind_loop()
        if not receipt.token:
            raise LeaseExpiredError("an item handed over before its commit cannot be failed")
        text = error if isinstance(error, str) else repr(error)
        self._renewer.forget(receipt.token)
        ok = await self._state.store.fail(receipt.token, text)
        self._settled(ok, receipt)
        self._state.dead += 1
        self._state.changed()

    async def release(self, receipt: Receipt[T]) -> None:
        """Give an item back untried: ready again at once, its delivery not counted.

        For a holder that stops before working on the item (a worker shutting down):
        unlike ``retry()``, the attempt does not count towards ``max_attempts``.

        Args:
            receipt: From ``get_with_receipt()``.

        Raises:
            LeaseExpiredError: The receipt no longer names the item's current lease.
            ForeignReceiptError: The receipt is another queue's; nothing was changed.
            BackendError: The store failed.
        """
        self._state.bind_loop()
        if not receipt.token:
            raise LeaseExpiredError("an item handed over before its commit cannot be released")
        self._renewer.forget(receipt.token)
        (ok,) = await self._state.store.release([receipt.token])
        self._settled(ok, receipt)
        self._state.forget_own()
        self._state.ready += 1
        self._state.note_size()
        self._state.changed()

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
        self._state.bind_loop()
        if seconds is None:
            length = self._state.lease_timeout
        else:
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise TypeError(f"seconds must be a number, not {seconds!r}")
            if not 0 < seconds < float("inf"):
                raise ValueError(f"seconds must be a positive number, not {seconds!r}")
            length = float(seconds)
        if not receipt.token:
            return receipt
        deadline = await self._state.store.extend(receipt.token, length)
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
        self._state.leased -= 1

    async def dead_letters(self, limit: int = 100) -> list[DeadItem]:
        """Return up to *limit* items of the dead-letter list, oldest first.

        Args:
            limit: The most items to return (``>= 1``).

        Raises:
            ValueError: *limit* is less than 1.
            BackendError: The store failed.
        """
        limit = check_max_items(limit)
        self._state.bind_loop()
        result = []
        for dead in await self._state.store.dead_letters(limit):
            try:
                item: Any = self._state.serializer.loads(dead.payload)
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
        self._state.bind_loop()
        count = await self._state.store.requeue_dead(None if ids is None else list(ids))
        if count:
            self._state.forget_own()
        self._state.ready += count
        self._state.dead = max(0, self._state.dead - count)
        self._state.note_size()
        self._state.changed()
        return count
