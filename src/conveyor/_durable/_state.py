"""The state every part of a durable queue shares: its settings, the local view, changes.

One ``QueueState`` per ``DurableQueue``, shared by its parts (the writer, the claimer,
the acknowledger, the receipts and the queue's face), as trio's channel state is shared
by its endpoints.  It holds what more than one part reads or writes:

* the settings and the event loop the queue is bound to, and the background tasks;
* the local view of the shared counters (``qsize()`` and ``statistics()`` report it),
  with the local figures the parts keep it exact with;
* the shutdown and close state;
* the change notification that wakes this process's blocked tasks;
* the items this process committed and knows as ready ("own items"), which
  ``get_nowait()`` hands out without a store round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._serializers import Serializer
from .._statistics import QueueStatistics
from ..backends._base import Delivery, Store

if TYPE_CHECKING:
    from ._writer import PutEntry

monotonic = time.monotonic


class QueueState:
    """What the parts of one durable queue share (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        serializer: Serializer,
        *,
        maxsize: float,
        lease_timeout: float,
        max_attempts: int | None,
        describe: Callable[[], str],
    ) -> None:
        self.store = store
        self.serializer = serializer
        self.maxsize = maxsize
        self.lease_timeout = lease_timeout
        self.max_attempts = max_attempts
        self._describe = describe
        # How long a blocked task trusts notifications before re-checking the store.
        self.poll = min(1.0, max(0.02, lease_timeout / 4))
        self.hold = min(0.5, lease_timeout / 4)
        self.loop: asyncio.AbstractEventLoop | None = None
        # The local view of the shared counters.
        self.ready = 0
        self.view_edits = 0  # changes of this process to the view (see refresh)
        self.exact_size = 0  # the shared size the last refresh() read (see aqsize)
        self.leased = 0
        self.dead = 0
        self.is_shutdown = False
        # Bumped by this process's shutdown()/resume() and set_maxsize(): a read of the
        # store that started before one of them must not undo it in the local view.
        self.shutdown_epoch = 0
        self.bound_epoch = 0
        self.shutdown_task: asyncio.Task[BaseException | None] | None = None
        self.as_of = monotonic()
        self.peak = 0
        self.total_put = 0
        self.total_got = 0
        self.total_deduplicated = 0  # puts a dedup key skipped (see PutOptions.key)
        # Local figures the view adds to the shared counters.
        self.buffer: deque[Delivery] = deque()  # claimed, not yet taken (the claimer's)
        self.nowait_pending = 0  # put_nowait() items not yet committed (the writer's)
        self.local_held = 0  # got without a lease, not yet done (the acknowledger's)
        # Local state.
        self.immediate = False
        self.claim_said_shutdown = False
        self.closing = False
        self.closed = False
        self.background_error: BaseException | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.version = 0
        self._change_waiters: list[asyncio.Future[None]] = []
        # What of this process is in the store's hands (see activity()).
        self.inflight = 0  # items of the commit under way
        self.claim_in_store = False
        self.commits_done = 0
        self.claims_started = 0
        # Items this process committed and knows as ready and never claimed, oldest
        # first: what get_nowait() hands out at once (see take_own).  Only while
        # own_exact: no other item is known to be ready in the store (a quiet refresh
        # or a claim that found the store empty says so; whatever may make an item
        # ready behind this process's back says not).
        self.own: deque[tuple[str, bytes, PutEntry]] = deque()
        # Committed entries whose items join own once their putters have returned, so
        # that no consumer of this process sees an item before its put() is over.
        self.adopting: deque[PutEntry] = deque()
        self.own_exact = False

    # -- the local view ----------------------------------------------------------------

    def qsize(self) -> int:
        size = max(0, self.ready) + len(self.buffer) + self.nowait_pending
        if 0 < self.maxsize < math.inf:
            # The store refuses any put beyond maxsize, so a larger sum is only ever a
            # stale view: a claim and a put of this process that finished in another
            # order than the store applied them, or an item claimed here for a getter
            # that has been woken and not yet run.
            return min(size, math.ceil(self.maxsize))
        return size

    def unfinished(self) -> int:
        return (
            max(0, self.ready)
            + max(0, self.leased)
            + len(self.buffer)
            + self.nowait_pending
            + self.local_held
        )

    def statistics(self, waiting_get: int, waiting_put: int) -> QueueStatistics:
        return QueueStatistics(
            backend=self.store.backend,
            current_size=self.qsize(),
            max_size=self.maxsize if self.maxsize > 0 else 0,
            peak_size=self.peak,
            tasks_waiting_get=waiting_get,
            tasks_waiting_put=waiting_put,
            unfinished_tasks=self.unfinished(),
            total_put=self.total_put,
            total_got=self.total_got,
            total_deduplicated=self.total_deduplicated,
            current_leased=max(0, self.leased) + len(self.buffer),
            current_dead=self.dead,
            is_shutdown=self.is_shutdown,
            as_of=self.as_of,
        )

    def note_size(self) -> None:
        size = self.qsize()
        if size > self.peak:
            self.peak = size

    def forget_own(self) -> None:
        self.view_edits += 1
        # An item may be ready that this process does not know of (or does not know
        # whether it still is): get_nowait() hands nothing out unseen until a claim or a
        # quiet refresh tells again.
        self.own.clear()
        self.adopting.clear()
        self.own_exact = False

    def adopt(self, upto: PutEntry | None = None) -> None:
        # Move committed entries into own, in commit order: through *upto* (whose
        # putter just returned), then the put_nowait() ones that follow (nobody awaits
        # them).  An awaited entry first in line waits for its own putter.
        adopting = self.adopting
        if upto is not None and upto not in adopting:
            return  # forgotten meanwhile
        while adopting and (upto is not None or adopting[0].future is None):
            entry = adopting.popleft()
            assert entry.ids is not None
            self.own.extend(zip(entry.ids, entry.payloads, [entry] * len(entry.ids), strict=True))
            if entry is upto:
                upto = None

    # -- plumbing ----------------------------------------------------------------------

    def bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
        elif self.loop is not loop:
            raise RuntimeError(f"{self._describe()} is bound to a different event loop")
        if self.closed:
            raise RuntimeError(f"{self._describe()} is closed")
        return loop

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def changed(self) -> None:
        # Something this process did may unblock another of its tasks.
        self.version += 1
        waiters, self._change_waiters = self._change_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for_change(self, version: int, timeout: float | None) -> None:
        # Return when this process changed the queue since *version*, when the store
        # reports a change by anyone, or after at most the safety interval.
        if self.version != version:
            return
        loop = asyncio.get_running_loop()
        local: asyncio.Future[None] = loop.create_future()
        self._change_waiters.append(local)
        poll = self.poll if timeout is None else max(0.0, min(timeout, self.poll))
        remote = asyncio.ensure_future(self.store.wait_changed(poll))
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
