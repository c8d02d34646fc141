"""How a task of an in-memory queue waits: a line of futures, and the methods that park on it.

``Waiters`` is a line of blocked tasks' futures; ``Waiting`` is the part of a queue that
parks a task in such a line and lets it leave (woken, timed out, cancelled) without losing
a wake-up meant for it.  ``PurePythonQueue`` inherits it, and the C accelerator calls its
``_bind()`` and ``_abandon()`` by name.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from ._compat import QueueTimeoutError
from ._exceptions import QueueShutDown

_get_running_loop = asyncio.get_running_loop
_monotonic = time.monotonic


class Waiters(deque[asyncio.Future[bool]]):
    # The futures of blocked tasks, in the order they are served.  A waiter that leaves
    # (cancelled, timed out) is not searched for and removed, which costs O(n) in a
    # deque and made cancelling n parked tasks O(n**2) (as it is in asyncio): it stays,
    # done, and every wake-up skips done waiters.  *stale* counts those left behind since
    # the last compaction; once they may be half the list, one pass drops them, so
    # leaving is amortized O(1) and the list never holds much more than twice the
    # waiters it serves.
    __slots__ = ("stale",)

    def __init__(self) -> None:
        super().__init__()
        self.stale = 0

    def forget(self, waiter: asyncio.Future[bool]) -> None:
        """Take a done *waiter* off the list, if it is still there; order is kept."""
        if not self:
            return
        if self[-1] is waiter:  # the newest leaves: a lone waiter, a timeout, a wait_for
            self.pop()
        elif self[0] is waiter:
            self.popleft()
        else:
            self.stale += 1
            if self.stale > 16 and 2 * self.stale > len(self):
                live = [w for w in self if not w.done()]
                self.clear()
                self.extend(live)
                self.stale = 0

    def waiting(self) -> int:
        """Return how many waiters are still blocked."""
        return sum(not waiter.done() for waiter in self)


def expire(waiter: asyncio.Future[bool]) -> None:
    # A waiter's result says why it woke: True for "state changed", False for "timed out".
    if not waiter.done():
        waiter.set_result(False)


def wake_one(waiters: Waiters) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(True)
            return


def wake_all(waiters: Waiters) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(True)


class Waiting:
    """The parking of a queue's blocked tasks (see the module docstring)."""

    _loop: asyncio.AbstractEventLoop | None
    _is_shutdown: bool

    async def _park(
        self, waiters: Waiters, blocked: Callable[[], bool], deadline: float | None
    ) -> bool:
        # Wait on a fresh future in *waiters*: True when woken, False once *deadline*
        # (time.monotonic()) passed.  A waiter woken for an item or a slot that leaves
        # anyway (cancelled, interrupted) passes the wake-up on, or it would be lost.
        loop = _get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        waiter: asyncio.Future[bool] = loop.create_future()
        waiters.append(waiter)
        timer = None
        if deadline is not None:
            timer = loop.call_at(loop.time() + max(0.0, deadline - _monotonic()), expire, waiter)
        try:
            woken = await waiter
        except BaseException:
            self._abandon(waiters, waiter, blocked)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not woken:
            self._forget(waiters, waiter)
        return woken

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not None:
            raise RuntimeError(f"{self!r} is bound to a different event loop")
        self._loop = loop

    def _abandon(
        self, waiters: Waiters, waiter: asyncio.Future[bool], blocked: Callable[[], bool]
    ) -> None:
        # The waiter leaves (cancelled, interrupted).  If it had been woken for an item
        # or a slot, that wake-up goes to the next waiter, or it would be lost.
        waiter.cancel()
        self._forget(waiters, waiter)
        if not waiter.cancelled() and waiter.result() and not blocked():
            wake_one(waiters)

    def _forget(self, waiters: Waiters, waiter: asyncio.Future[bool]) -> None:
        # A wake-up or shutdown() may already have taken it off.
        waiters.forget(waiter)

    async def _wait_while(
        self,
        blocked: Callable[[], bool],
        waiters: Waiters,
        shut_down: str,
        timeout: float | None,
    ) -> None:
        # Return once blocked() is false; raise QueueShutDown(shut_down) or TimeoutError
        # instead.  Woken waiters re-check: another task may have been faster.
        deadline = None
        while blocked():
            if self._is_shutdown:
                raise QueueShutDown(shut_down)
            if timeout is not None:
                if deadline is None:
                    deadline = _monotonic() + timeout
                elif _monotonic() >= deadline:
                    raise QueueTimeoutError
            if not await self._park(waiters, blocked, deadline):
                raise QueueTimeoutError
