"""Leasing a Redis queue's items and acknowledging them, in merged batches.

Concurrent claims (of the same lease and attempt limits) and concurrent acks of one store
each go in one round trip.  A receipt names the epoch of the claim that made it; an ack
checks it against the current one without a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..._exceptions import BackendError, QueueShutDown
from .._base import Delivery
from ._connection import _Coalescer
from ._replies import read_deliveries
from ._runner import OperationContext
from ._scripts import _ACK, _CLAIM, _CLAIM_IDS, job_keys

_log = logging.getLogger("conveyor")


@dataclasses.dataclass(frozen=True)
class _ClaimArgs:
    max_items: int
    lease_timeout: float
    max_attempts: int | None


class ItemClaims:
    """Lease items (oldest first, or by id) and acknowledge their deliveries.

    Args:
        context: Runs its scripts; its identity reads the lease each receipt names.
        give_back: Releases the leases of a claim whose caller was cancelled meanwhile.
        name: The queue's name, for messages.
        where: ``host:port``, for messages.
    """

    def __init__(
        self,
        context: OperationContext,
        *,
        give_back: Callable[[Sequence[str]], Awaitable[list[bool]]],
        name: str,
        where: str,
    ) -> None:
        self._runner, self._identity, self._listener, keys = context
        self._release = give_back
        self._name = name
        self._where = where
        self._claim_script = self._runner.script(_CLAIM)
        self._claim_ids_script = self._runner.script(_CLAIM_IDS)
        self._ack_script = self._runner.script(_ACK)
        self._claim_keys = [
            keys[role]
            for role in (
                "meta",
                "ops",
                "items",
                "ready",
                "delayed",
                "leased",
                "lease",
                "attempts",
                "dead",
                "deadinfo",
                "fresh",
                "holes",
                "waiters",
            )
        ] + job_keys(keys)
        self._inbox = keys["inbox"]
        self._claim_ids_keys = [
            keys[role]
            for role in ("meta", "ops", "items", "fresh", "holes", "leased", "lease", "attempts")
        ]
        self._ack_keys = [
            keys[role]
            for role in (
                "meta",
                "ops",
                "items",
                "leased",
                "lease",
                "attempts",
                "ready",
                "delayed",
                "fresh",
                "holes",
                "putat",
            )
        ] + job_keys(keys)
        self._claims: _Coalescer[_ClaimArgs, tuple[list[Delivery], bool]] = _Coalescer(
            self._flush_claims,
            same_kind=lambda a, b: (
                (a.lease_timeout, a.max_attempts) == (b.lease_timeout, b.max_attempts)
            ),
            orphaned=self._give_back,
        )
        self._acks: _Coalescer[tuple[str, list[list[str]]], list[bool]] = _Coalescer(
            self._flush_acks
        )
        # Items a put handed over to this client (see take_handed), oldest first.
        self._handed: list[Delivery] = []
        self._giving_back: set[asyncio.Task[Any]] = set()

    def take_handed(self, note: bytes) -> None:
        """Keep the item a put handed over on this client's channel, for the next claim.

        A claim that found nothing made this client a waiter (claim.lua); the next put into
        the empty queue leased its first item to it and published it here: "id delivery
        server-now server-deadline payload".  The next ``claim()`` returns it without a
        round trip.  One not claimed within half a second (its getters left meanwhile) is
        given back, ready at once for anybody.
        """
        item_id, delivery, server_now, deadline_text, payload = note.split(b" ", 4)
        epoch = self._identity.epoch
        deadline = time.time() + (float(deadline_text) - float(server_now))
        handed = Delivery(
            item_id=item_id.decode(),
            payload=payload,
            receipt=f"{epoch}:{item_id.decode()}:{delivery.decode()}",
            attempts=1,
            lease_deadline=deadline,
        )
        self._handed.append(handed)
        asyncio.get_running_loop().call_later(0.5, self._unclaimed, handed)

    def _unclaimed(self, handed: Delivery) -> None:
        if handed in self._handed:
            self._handed.remove(handed)
            self._give_back_later([handed])

    def _give_back_later(self, deliveries: list[Delivery]) -> None:
        task = asyncio.ensure_future(self._give_back((deliveries, False)))
        self._giving_back.add(task)
        task.add_done_callback(self._giving_back.discard)

    async def aclose(self) -> None:
        """Give back the items handed over and never claimed, before the store closes."""
        handed, self._handed = self._handed, []
        if handed:
            self._give_back_later(handed)
        if self._giving_back:
            await asyncio.wait(list(self._giving_back))

    async def claim(
        self, max_items: int, lease_timeout: float, max_attempts: int | None
    ) -> list[Delivery]:
        """Lease up to *max_items* of the oldest ready items, in FIFO order.

        Leases that expired are made ready again first (or dead, when the item already
        had *max_attempts* deliveries); delayed items whose delay passed become ready.
        Concurrent calls share one round trip; the items of a caller cancelled meanwhile
        are given back at once, their delivery uncounted.

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
        self._listener.touch()
        handed: list[Delivery] = []
        if self._handed:
            handed, self._handed = self._handed[:max_items], self._handed[max_items:]
            if len(handed) == max_items:
                return handed
            max_items -= len(handed)
        try:
            deliveries, shut = await self._claims.submit(
                _ClaimArgs(max_items, lease_timeout, max_attempts)
            )
        except BaseException:
            if handed:
                self._give_back_later(handed)
            raise
        if shut and not handed:
            raise QueueShutDown
        return handed + deliveries

    async def claim_ids(
        self, item_ids: Sequence[str], lease_timeout: float
    ) -> list[Delivery | None]:
        """Lease the items named, each one if it is still ready and was never claimed.

        One call at a time (the durable layer makes them from one task): calls are not
        merged, and each is replayed, not applied twice, when resent after a lost reply.

        Args:
            item_ids: Ids from ``put_returning_ids()``.
            lease_timeout: Seconds until each lease expires unless acknowledged.

        Returns:
            For each id, the delivery of its item, or ``None`` if it was not leased.

        Raises:
            BackendError: The store failed; nothing was leased, unless the message says
                that the items may have been leased.
        """
        ids = list(item_ids)
        named = [item_id for item_id in ids if item_id.isdigit()]
        if not named:
            return [None] * len(ids)
        self._listener.touch()
        epoch = self._identity.epoch
        args = [*self._runner.head("claim_ids", epoch), repr(float(lease_timeout)), *named]
        reply = await self._runner.change(
            self._claim_ids_script,
            self._claim_ids_keys,
            args,
            "items may have been leased unseen; they come back once their lease expires",
        )
        server_now, deadline_text, numbers, payloads = reply
        deadline = time.time() + (float(deadline_text) - float(server_now))
        found = {d.item_id: d for d in read_deliveries(epoch, deadline, numbers, payloads)}
        return [found.get(item_id) for item_id in ids]

    async def _flush_claims(self, batch: list[_ClaimArgs]) -> list[tuple[list[Delivery], bool]]:
        first = batch[0]
        total = sum(args.max_items for args in batch)
        epoch = self._identity.epoch
        args: list[Any] = [
            *self._runner.head("claim", epoch),
            total,
            repr(float(first.lease_timeout)),
            first.max_attempts or 0,
            self._inbox,
        ]
        reply = await self._runner.change(
            self._claim_script,
            self._claim_keys,
            args,
            "items may have been leased unseen; they come back once their lease expires",
        )
        status, server_now, deadline_text, next_due, numbers, payloads, lost = reply
        self._listener.note_due(server_now, next_due)
        if lost:
            _log.warning(
                "conveyor: Redis at %s: %d items of queue %r had lost their payloads (keys"
                " deleted or evicted: is maxmemory-policy noeviction?); they went to the dead"
                " letters",
                self._where,
                lost,
                self._name,
            )
        if status == -1:
            return [([], True)] * len(batch)
        # Client-side wall-clock deadline: the server's deadline shifted by the clock skew.
        deadline = time.time() + (float(deadline_text) - float(server_now))
        deliveries = read_deliveries(epoch, deadline, numbers, payloads)
        results: list[tuple[list[Delivery], bool]] = []
        start = 0
        for args_ in batch:
            results.append((deliveries[start : start + args_.max_items], False))
            start += args_.max_items
        return results

    async def _give_back(self, result: tuple[list[Delivery], bool]) -> None:
        # On failure the leases expire and the items come back then.
        with contextlib.suppress(BackendError):
            await self._release([delivery.receipt for delivery in result[0]])

    async def ack(self, receipts: Sequence[str]) -> list[bool]:
        """Acknowledge deliveries: their items are done and removed.

        Concurrent calls share one round trip.

        Args:
            receipts: Receipts from ``claim()``.

        Returns:
            For each receipt, ``True`` if it named the current lease of its item;
            ``False`` if the lease expired (and the item may be redelivered) or the
            item is already gone.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see ``_store``'s docstring).
            BackendError: The store failed.
        """
        self._listener.touch()
        if not receipts:
            return []
        epoch = self._identity.epoch
        pairs = [self._identity.lease_of(receipt) for receipt in receipts]
        if all(pairs):
            return await self._acks.submit((epoch, pairs))
        # Receipts of an earlier incarnation acknowledge nothing and need no round trip.
        current = [pair for pair in pairs if pair]
        flags = iter(await self._acks.submit((epoch, current)) if current else [])
        return [bool(pair) and next(flags) for pair in pairs]

    async def _flush_acks(self, batch: list[tuple[str, list[list[str]]]]) -> list[list[bool]]:
        epoch = self._identity.epoch
        args: list[Any] = self._runner.head("ack", epoch)
        for sent_as, pairs in batch:
            # Checked against an epoch given up since (the keys vanished meanwhile): the
            # same ids may name other items now.
            if sent_as == epoch:
                for pair in pairs:
                    args += pair
        reply = await self._runner.change(
            self._ack_script,
            self._ack_keys,
            args,
            "the acknowledgement may or may not have been recorded (if not, the item"
            " is delivered again once its lease expires)",
        )
        flags = [flag == 49 for flag in reply[0]]  # b"1"
        results: list[list[bool]] = []
        start = 0
        for sent_as, pairs in batch:
            if sent_as != epoch:
                results.append([False] * len(pairs))
                continue
            results.append(flags[start : start + len(pairs)])
            start += len(pairs)
        return results
