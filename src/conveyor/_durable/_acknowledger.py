"""The acknowledger: what this process got and holds, until ``task_done()`` settles it.

It keeps the deliveries that ``get()`` and ``get_nowait()`` handed out, per task, picks
the one ``task_done()`` acknowledges and batches the acknowledgements into background
writes (or hands them to the next claim, which carries them along).  It also leases, in
the background, the items ``get_nowait()`` handed out from this process's own commits
(see ``take_own``): their ``task_done()`` acknowledges once the lease is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any, Generic, TypeVar

from ..backends._base import Delivery
from ._renewer import Renewer
from ._state import QueueState

T = TypeVar("T")

_log = logging.getLogger("conveyor")


class _Held:
    """A delivery got by ``get()``, waiting for ``task_done()``; receipt None: never stored.

    ``pending``: handed out by ``get_nowait()`` before its lease came back from the store.
    """

    __slots__ = ("pending", "receipt", "task")

    def __init__(self, receipt: str | None, task: object, pending: bool = False) -> None:
        self.receipt = receipt
        self.task = task
        self.pending = pending


def _current_task() -> object:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


class Acknowledger(Generic[T]):
    """The deliveries this process holds, and their acknowledgements on their way."""

    def __init__(self, state: QueueState, renewer: Renewer) -> None:
        self._state = state
        self._renewer = self.renewer = renewer
        self._held: dict[int, _Held] = {}
        self._held_by_task: dict[object, deque[int]] = {}
        self._held_seq = 0
        self._acking = 0
        self._acks: list[str] = []
        self._acker_task: asyncio.Task[None] | None = None
        self._leasing: list[tuple[str, int]] = []
        self.pending_leases = 0
        self._owed: set[int] = set()
        self.leaser_task: asyncio.Task[None] | None = None

    def holding(self) -> bool:
        """Whether this process holds items got and not yet marked done."""
        return bool(self._held)

    def unwritten(self) -> int:
        """Acknowledgements given and not yet written: done already, for the view."""
        return len(self._acks) + self._acking + len(self._owed)

    def _tokens(self, task: object) -> deque[int]:
        tokens = self._held_by_task.get(task)
        if tokens is None:
            tokens = self._held_by_task[task] = deque()
        return tokens

    def hold(self, taken: list[tuple[Any, Delivery | None]]) -> list[T]:
        """Track items just got for ``task_done()``; return them."""
        task = _current_task()
        tokens = self._tokens(task)
        items: list[T] = []
        for item, delivery in taken:
            self._held_seq += 1
            self._held[self._held_seq] = _Held(None if delivery is None else delivery.receipt, task)
            tokens.append(self._held_seq)
            if delivery is None:
                self._state.local_held += 1
            else:
                self._renewer.track(delivery.receipt, delivery.item_id)
            items.append(item)
        self._state.total_got += len(items)
        return items

    def take_own(self) -> T:
        """Hand out the oldest of this process's own ready items; lease it in the background."""
        # The oldest item this process knows as ready is one it committed itself, so
        # it has the payload and the id: hand it out now and lease it in the background
        # (one round trip, shared by the get_nowait() calls meanwhile).  Nothing else of
        # this process takes it first: no claim is under way (each clears own), and
        # the next one waits for the lease.  Another process may have claimed it since
        # the commit; the lease then finds it gone and the item was delivered twice,
        # which at-least-once allows.
        state = self._state
        name, payload, entry = state.own[0]
        item: T = state.serializer.loads(payload)
        state.own.popleft()
        entry.handed = True
        state.ready -= 1
        state.leased += 1
        state.total_got += 1
        task = _current_task()
        tokens = self._tokens(task)
        self._held_seq += 1
        self._held[self._held_seq] = _Held(None, task, pending=True)
        tokens.append(self._held_seq)
        self._leasing.append((name, self._held_seq))
        self.pending_leases += 1
        if self.leaser_task is None:
            self.leaser_task = state.spawn(self._lease_own())
        return item

    async def _lease_own(self) -> None:
        state = self._state
        try:
            while self._leasing:
                batch, self._leasing = self._leasing, []
                error: Exception | None = None
                try:
                    results = await state.store.claim_ids(
                        [name for name, _ in batch], state.lease_timeout
                    )
                except Exception as exc:
                    # Unleased, the items are delivered again: the next get() or join()
                    # says why (the items themselves are in the caller's hands).
                    error = exc
                    results = [None] * len(batch)
                lost = 0
                for (_, token), delivery in zip(batch, results, strict=True):
                    self.pending_leases -= 1
                    held = self._held.get(token)
                    if delivery is None:
                        lost += 1
                        self._owed.discard(token)
                        if held is not None:  # task_done() has nothing to acknowledge
                            held.pending = False
                            state.leased -= 1
                            state.local_held += 1
                    elif held is not None:
                        held.pending = False
                        held.receipt = delivery.receipt
                        self._renewer.track(delivery.receipt, delivery.item_id)
                    elif token in self._owed:  # task_done() came first
                        self._owed.discard(token)
                        self._acks.append(delivery.receipt)
                if self._acks and self._acker_task is None:
                    self._acker_task = state.spawn(self._ack_pending())
                if error is not None:
                    state.background_error = error
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
                state.changed()
        finally:
            self.leaser_task = None

    def task_done(self) -> None:
        """Acknowledge the oldest item the calling task holds (see ``DurableQueue``)."""
        if not self._held:
            raise ValueError(
                "task_done() called too many times: this process holds no item got with get() "
                "and not yet marked done"
            )
        state = self._state
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
            state.leased -= 1
            self._owed.add(token)
            state.changed()
            return
        if held.receipt is None:
            state.local_held -= 1
            state.changed()
            return
        state.leased -= 1
        self._renewer.forget(held.receipt)
        self._acks.append(held.receipt)
        if self._acker_task is None:
            self._acker_task = state.spawn(self._ack_pending())

    async def _ack_pending(self) -> None:
        state = self._state
        try:
            while self._acks:
                receipts, self._acks = self._acks, []
                self._acking += len(receipts)
                try:
                    results = await state.store.ack(receipts)
                except Exception as exc:
                    state.background_error = exc
                    _log.error("conveyor: could not acknowledge %d items: %r", len(receipts), exc)
                    state.leased += len(receipts)
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
        self._state.changed()

    # -- acknowledgements carried by a claim ---------------------------------------------

    def take_acks(self) -> list[str]:
        """Hand the acknowledgements waiting to a claim, which writes them with it."""
        acks, self._acks = self._acks, []
        self._acking += len(acks)
        return acks

    def acks_written(self, acks: list[str], results: list[bool]) -> None:
        """The claim that carried *acks* wrote them."""
        self._acking -= len(acks)
        self._acked(results)

    def acks_gone(self, acks: list[str]) -> None:
        """The claim that carried *acks* ended without saying (the store still writes them)."""
        self._acking -= len(acks)

    def acks_unwritten(self, acks: list[str]) -> None:
        """The claim that carried *acks* wrote nothing: they wait for the next write."""
        self._acking -= len(acks)
        self._acks[:0] = acks
        if acks and self._acker_task is None and not self._state.closing:
            self._acker_task = self._state.spawn(self._ack_pending())

    async def flush(self) -> None:
        """Wait for the leases and acknowledgements on their way."""
        # Leases of get_nowait() items first: an early task_done() acknowledges after.
        while self.leaser_task is not None or self._acker_task is not None:
            task = self.leaser_task or self._acker_task
            assert task is not None
            await asyncio.shield(task)
