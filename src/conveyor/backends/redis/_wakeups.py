"""Wake-ups: learning that a Redis queue may have changed, in this process or another.

The listener owns the queue's pub/sub connection and a change counter (the generation):
every message on the channel, every (re)subscription and every change this process made
bumps it and wakes ``wait_changed()``.  The store's parts tell it when a caller looks at
the queue (``touch()``), when a change of their own was published (``wake_soon()``) and
when the next lease or retry deadline falls (``note_due()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import redis.exceptions as rexc

from ._wire import _Subscription

_log = logging.getLogger("conveyor")

# (listener id, generation) at the start of the calling context's last operation on a
# store.  A context variable, not a per-task record, because callers may run
# wait_changed() in a task of its own, which inherits the context of the task that made
# the operation.
_LOOKED: contextvars.ContextVar[tuple[int, int]] = contextvars.ContextVar(
    "conveyor_redis_looked", default=(0, -1)
)


class ChangeListener:
    """Listen for a queue's changes over pub/sub, and wake the waiters of this process.

    Args:
        subscribe: Opens a pub/sub connection whose messages go to the callable given
            (``RedisConnection.subscription``).
        channel: The queue's channel.
        own_ops: The ops key of this store, which its own messages name: those woke its
            waiters already (see ``wake_soon()``).
        time_left: Seconds one more wait may take (the connection layer's budget).
    """

    def __init__(
        self,
        subscribe: Callable[[Callable[[Any], None]], Awaitable[_Subscription]],
        channel: str,
        *,
        own_ops: str,
        time_left: Callable[[], float],
        inbox: str = "",
    ) -> None:
        self._subscribe = subscribe
        self._subscription: _Subscription | None = None
        self._pause = 0.02
        self._channel = channel
        self._inbox = inbox
        self._inbox_bytes = inbox.encode()
        self.handed: Callable[[bytes], None] | None = None
        """Takes each item a put handed over on this client's own channel (``inbox``)."""
        self._ops_bytes = own_ops.encode()
        self._time_left = time_left
        # Change notifications: a generation number bumped by every message on the channel
        # (and on every (re)subscription, since messages may have been missed meanwhile).
        self._generation = 0
        self._changed = asyncio.Event()
        self._subscribed = asyncio.Event()  # or refused: see _refused
        self._refused: rexc.ResponseError | None = None
        self._listener: asyncio.Task[None] | None = None
        self._next_due: float | None = None  # loop.time() of the next lease/retry deadline
        self._closed = False

    def touch(self) -> None:
        """Note, in the caller's context, the generation its look at the queue starts at."""
        _LOOKED.set((id(self), self._generation))

    def note_due(self, server_now: bytes, next_due: bytes) -> None:
        """Note when the next lease or retry deadline falls (server times; "" for none)."""
        if next_due:
            delay = float(next_due) - float(server_now)
            self._next_due = asyncio.get_running_loop().time() + max(delay, 0.0)

    def wake_soon(self) -> None:
        """Wake this process's waiters for a change it made and published."""
        # Here, after the reply reached its caller (call_soon), rather than by our own
        # pub/sub message: that one can arrive before the reply and wake a waiter ahead
        # of the task that made the change.
        asyncio.get_running_loop().call_soon(self._bump)

    async def wait_changed(self, timeout: float) -> None:
        """Return once this queue may have changed in any process, or after *timeout*.

        Changes arrive over pub/sub.  When a change was published since the calling
        context's last operation on this store began, it returns at once, so none is missed
        between a look and a wait; callers therefore look (``claim``, ``put``, ``counts``...)
        between waits.  The wait also ends at the next lease or retry deadline this store
        knows of.

        Args:
            timeout: The most seconds to wait.
        """
        if self._closed:
            return
        await self.listen()
        if _LOOKED.get() != (id(self), self._generation):
            # Something changed since the caller last looked (or it never did): report
            # it now, before waiting, so that no change slips between a look and a wait.
            _LOOKED.set((id(self), self._generation))
            return
        loop = asyncio.get_running_loop()
        if self._next_due is not None:
            remaining = self._next_due - loop.time()
            if remaining > 0:
                timeout = min(timeout, remaining + 0.005)
            else:
                self._next_due = None
        if timeout > 0:
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait([changed], timeout=None if math.isinf(timeout) else timeout)
            finally:
                changed.cancel()
        _LOOKED.set((id(self), self._generation))

    async def listen(self, wait: bool = False) -> None:
        """Subscribe to the queue's change notifications, in the background, if not yet.

        ``open_store()`` does it, and waits for the subscription, so that its
        confirmation (which counts as a change) never wakes a waiter later on.

        Args:
            wait: Return only once subscribed, refused, or after one socket_timeout.
        """
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        if wait and not self._subscribed.is_set():
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), self._time_left())

    def subscribe_error(self) -> rexc.ResponseError | None:
        """Return why the server refused the subscription, if it did (e.g. ``NOPERM``)."""
        return self._refused

    def _bump(self) -> None:
        self._generation += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _heard(self, message: Any) -> None:
        # Every message counts, the subscribe confirmation included: from it on nothing is
        # missed, and what happened before is re-read by callers.  Called from the
        # connection's protocol as the bytes arrive (see _Subscription).
        if isinstance(message, rexc.ResponseError):
            # Refused (e.g. no permission): open_store reports it rather than letting
            # waiters miss every change in silence; the listener tries again later.
            self._refused = message
            self._subscribed.set()
            if self._subscription is not None:
                self._subscription.transport.abort()
            return
        if not isinstance(message, list) or len(message) < 3:
            return
        kind, channel, data = message[0], message[1], message[2]
        if kind == b"message" or kind == b"smessage":  # smessage: sharded, in a Cluster
            if data == self._ops_bytes:
                return  # this store's own change woke its waiters already (wake_soon)
            if channel == self._inbox_bytes and self.handed is not None:
                try:
                    self.handed(data)
                except Exception:  # a note it cannot read: the lease expires, never lost
                    _log.exception("conveyor: unreadable item handed over on %r", channel)
        elif kind == b"subscribe" or kind == b"ssubscribe":
            self._refused = None
            self._subscribed.set()
            self._pause = 0.02
        else:
            return
        self._bump()

    async def _listen(self) -> None:
        while not self._closed:
            self._refused = None
            refused = False
            try:
                self._subscription = await self._subscribe(self._heard)
                if self._closed:
                    # aclose() cancelled the connect, which may swallow a cancellation
                    # (asyncio.wait_for before 3.12 does when the connection comes at
                    # the same time): listening on would keep aclose() waiting forever.
                    break
                self._subscription.subscribe(*(c for c in (self._channel, self._inbox) if c))
                await self._subscription.lost
                refused = self._refused is not None
            except (rexc.ConnectionError, rexc.TimeoutError, OSError):
                pass
            except rexc.RedisError:
                refused = True  # e.g. authentication: commands report it
            finally:
                if self._subscription is not None:
                    await self._subscription.disconnect()
                    self._subscription = None
            if refused:
                await asyncio.sleep(1.0)
            else:
                self._bump()  # messages may have been missed meanwhile
                await asyncio.sleep(self._pause)
                self._pause = min(self._pause * 2, 0.5)

    async def aclose(self) -> None:
        """Stop listening and wake every waiter; ``wait_changed()`` returns at once from then on."""
        self._closed = True
        self._bump()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener])
            self._listener = None
