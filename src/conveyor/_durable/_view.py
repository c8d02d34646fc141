"""The view's reader: reads the shared counters from the store into the local view.

``refresh()`` is the one place the local view is set from the store (the parts keep it
up to date between reads, with each of this process's own operations).  A read may
cross this process's own changes: then it keeps the view rather than overwriting it with
a count that may be stale.  The shutdown re-checks (has some process resumed the queue
since this one saw it shut down?) are reads of the same kind.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ._acknowledger import Acknowledger
from ._state import QueueState, monotonic

_log = logging.getLogger("conveyor")


class ViewReader:
    """Read the store's counters into the shared view; re-check a shutdown seen earlier."""

    def __init__(self, state: QueueState, acknowledger: Acknowledger[Any]) -> None:
        self._state = state
        self._acknowledger = acknowledger
        self._recheck_task: object | None = None

    def _activity(self) -> tuple[int, int] | None:
        # None while a commit, a claim or a lease of this process is under way.
        state = self._state
        if state.inflight or state.claim_in_store or self._acknowledger.leaser_task is not None:
            return None
        return state.commits_done, state.claims_started

    async def refresh(self) -> None:
        """Read the shared counters from the store into the local view."""
        state = self._state
        acknowledger = self._acknowledger
        state.bind_loop()
        shutdown_epoch, bound_epoch = state.shutdown_epoch, state.bound_epoch
        marks = self._activity()
        edits = state.view_edits
        counts = await state.store.counts()
        # Whether this process changed the view while the counts were on their way: then
        # they may predate its own change (a claim, a commit, a retract), and the view,
        # which has that change, is kept rather than overwritten with a stale count.
        quiet = marks is not None and marks == self._activity() and edits == state.view_edits
        # Items get_nowait() handed out are ready in the store until their lease comes
        # back; the view counts them as got (and done, once task_done() was called).
        pending = acknowledger.pending_leases
        adopting = sum(len(entry.payloads) for entry in state.adopting)
        others = counts.ready - pending - len(state.own) - adopting
        if others < 0:
            state.forget_own()  # another process took some of them: which, nobody knows
        elif marks is not None and marks == self._activity():
            # Nothing of this process touched the store during the read: the counts
            # say whether the items it put are all that waits.
            if others == 0 and counts.delayed == 0:
                state.own_exact = True
            else:
                state.forget_own()
        shared_ready = counts.ready + counts.delayed - pending
        state.exact_size = max(0, shared_ready) + len(state.buffer) + state.nowait_pending
        if quiet:
            state.ready = shared_ready
            # Our undelivered buffer is leased in the store; the view counts it as
            # waiting.  Acknowledgements on their way are done already, for the view.
            state.leased = counts.leased - len(state.buffer) - acknowledger.unwritten() + pending
        state.dead = counts.dead
        if shutdown_epoch == state.shutdown_epoch:
            if counts.is_shutdown:
                state.is_shutdown = True
            elif state.is_shutdown and state.shutdown_task is None:
                # Resumed by some process since this one saw the shutdown.
                state.is_shutdown = state.immediate = state.claim_said_shutdown = False
        if bound_epoch == state.bound_epoch:
            state.maxsize = counts.maxsize
        state.as_of = monotonic()
        state.note_size()

    async def exact_size(self) -> int:
        """Read the store and return the exact number of items waiting (``aqsize()``)."""
        await self.refresh()
        state = self._state
        if 0 < state.maxsize < math.inf:
            return min(state.exact_size, math.ceil(state.maxsize))
        return state.exact_size

    async def still_shut_down(self) -> bool:
        """Say whether a shutdown seen earlier still holds, reading the store if need be."""
        # Before refusing on a shutdown seen earlier: resume() in any process may have
        # undone it since.  Only failing calls pay this round trip.
        if self._state.shutdown_task is None:
            await self.refresh()
        return self._state.is_shutdown

    def recheck_later(self) -> None:
        """Have the shutdown seen earlier read again in the background."""
        # The nowait forms do no I/O: they refuse on the last known state and have it
        # read in the background, so that a later call sees a resume().  One read at a
        # time, however fast a caller polls.
        state = self._state
        if state.shutdown_task is None and self._recheck_task is None and not state.closing:
            self._recheck_task = state.spawn(self._recheck())

    async def _recheck(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:
            self._state.background_error = exc
            _log.error("conveyor: could not read the queue's state: %r", exc)
        finally:
            self._recheck_task = None
