"""The renewer: the leases this process holds, kept alive while it lives.

Every item this process got and has not settled (by ``task_done()`` or by receipt) has
its lease renewed in the background, all of them in one store call a round
(``Store.extend_many``), every ``lease_timeout / 3``: a lease then always has two thirds
of ``lease_timeout`` left, and a single failed round loses nothing.  Renewal lives in
the process, so a process that dies (killed, crashed, frozen by the OS) renews nothing
and its items come back at most ``lease_timeout`` after its last round.

``processing_timeout`` bounds a live holder: once that long has passed since the
delivery, the lease is no longer renewed, expires within ``lease_timeout`` and the item
is delivered again; the holder's acknowledgement then counts for nothing (a receipt's
``ack()`` raises ``LeaseExpiredError``, as for any expired lease).

A renewal that the store refuses (the lease expired meanwhile: the store was out of
reach for longer than the lease, or the process was frozen) is never only a log line:
a receipt's ``ack()`` raises ``LeaseExpiredError`` (the store says so), and for items
held for ``task_done()`` the next ``get()`` or ``join()`` raises it (through
``background_error``).
"""

from __future__ import annotations

import asyncio
import logging

from .._exceptions import LeaseExpiredError
from ._state import QueueState, monotonic

_log = logging.getLogger("conveyor")


class _Lease:
    """One lease being renewed: until when (monotonic), and who settles it."""

    __slots__ = ("by_receipt", "item_id", "until")

    def __init__(self, item_id: str, until: float, by_receipt: bool) -> None:
        self.item_id = item_id
        self.until = until
        self.by_receipt = by_receipt


class Renewer:
    """Renew the leases of the items this process holds (see the module docstring).

    Args:
        state: The queue's shared state (the store, ``lease_timeout``, the tasks).
        enabled: Whether to renew at all; when not, leases end after ``lease_timeout``.
        processing_timeout: Seconds after its delivery that a lease stops being renewed;
            ``None`` renews it for as long as it is held.
    """

    def __init__(self, state: QueueState, enabled: bool, processing_timeout: float | None) -> None:
        self._state = state
        self.enabled = enabled
        self.processing_timeout = processing_timeout
        self._leases: dict[str, _Lease] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def interval(self) -> float:
        """Seconds between two rounds: a third of ``lease_timeout``."""
        return self._state.lease_timeout / 3

    def track(self, receipt: str, item_id: str, by_receipt: bool = False) -> None:
        """Renew the lease *receipt* names from now on, until ``forget()``."""
        if not self.enabled or self._stopped:
            return
        timeout = self.processing_timeout
        until = float("inf") if timeout is None else monotonic() + timeout
        self._leases[receipt] = _Lease(item_id, until, by_receipt)
        if self._task is None:
            # Not one of state.tasks: closing waits for those, and this one sleeps
            # between rounds; stop() ends it instead.
            self._task = asyncio.get_running_loop().create_task(self._run())

    def forget(self, receipt: str) -> None:
        """Stop renewing the lease *receipt* names: it is being settled."""
        self._leases.pop(receipt, None)

    async def stop(self) -> None:
        """Stop renewing for good (the queue is closing); wait for the round under way."""
        self._stopped = True
        self._leases.clear()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            # wait() returns when the renewer ended and raises only if the caller itself
            # is cancelled meanwhile: that cancellation propagates.
            await asyncio.wait((task,))

    async def _run(self) -> None:
        try:
            while self._leases and not self._state.closing:
                await asyncio.sleep(self.interval)
                await self._round()
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _round(self) -> None:
        now = monotonic()
        for receipt, lease in list(self._leases.items()):
            if lease.until <= now:
                # A live holder past processing_timeout: the lease runs out and the item
                # is delivered again, to whoever claims it next.
                del self._leases[receipt]
                _log.warning(
                    "conveyor: item %s held longer than processing_timeout (%ss): its lease"
                    " is no longer renewed and it will be delivered again",
                    lease.item_id,
                    self.processing_timeout,
                )
        receipts = list(self._leases)
        if not receipts:
            return
        try:
            deadlines = await self._state.store.extend_many(receipts, self._state.lease_timeout)
        except Exception as exc:
            # The next round tries again; a lease that expires meanwhile is refused then,
            # and that is what the holder is told (see the module docstring).
            _log.warning(
                "conveyor: could not renew the leases of %d items (retrying in %.3gs): %r",
                len(receipts),
                self.interval,
                exc,
            )
            return
        lost = []
        for receipt, deadline in zip(receipts, deadlines, strict=True):
            if deadline is None:
                gone = self._leases.pop(receipt, None)
                if gone is not None:  # not settled while the round ran
                    lost.append(gone)
        if lost:
            ids = ", ".join(lease.item_id for lease in lost[:10])
            _log.error(
                "conveyor: the leases of %d items held here expired before they could be"
                " renewed (the store was out of reach, or this process stalled): they may be"
                " delivered again (items %s)",
                len(lost),
                ids,
            )
            if any(not lease.by_receipt for lease in lost):
                self._state.background_error = LeaseExpiredError(
                    f"the leases of {len(lost)} items this process held for task_done() expired"
                    f" before they could be renewed, and they may have been delivered again"
                    f" (items {ids})"
                )


def check_renewal(renew_leases: object, processing_timeout: object) -> None:
    """Check the renewal options a durable queue is opened with.

    Raises:
        TypeError: *renew_leases* is not a bool, or *processing_timeout* not a number.
        ValueError: *processing_timeout* is not positive and finite, or is given with
            ``renew_leases=False``.
    """
    if not isinstance(renew_leases, bool):
        raise TypeError(f"renew_leases must be True or False, not {renew_leases!r}")
    if processing_timeout is None:
        return
    if isinstance(processing_timeout, bool) or not isinstance(processing_timeout, (int, float)):
        raise TypeError(
            f"processing_timeout must be None or a number of seconds, not {processing_timeout!r}"
        )
    if not 0 < processing_timeout < float("inf"):
        raise ValueError(
            f"processing_timeout must be a positive number, not {processing_timeout!r}"
        )
    if not renew_leases:
        raise ValueError(
            "processing_timeout bounds renewed leases: with renew_leases=False every lease"
            " already ends lease_timeout after its delivery"
        )
