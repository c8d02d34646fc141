"""The claimer: gets of this process, served from a local buffer that one task fills.

Getters wait on futures; one claimer task leases, in one ``Store.claim``, as many items
as they want (carrying the acknowledgements waiting along) and wakes them, and each
takes its item from the local buffer when it runs.  An item claimed for nobody (its
getter was cancelled or timed out, or it is the extra one) goes to the next getter or
``get_nowait()``, or back to the store after a short hold: no item is ever lost to a
cancellation or a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any, Generic, TypeVar

from .._abc import check_timeout
from .._compat import QueueTimeoutError
from .._exceptions import QueueEmpty, QueueShutDown, SerializationError
from ..backends._base import Delivery
from ._acknowledger import Acknowledger
from ._state import QueueState, monotonic
from ._view import ViewReader
from ._writer import Writer

T = TypeVar("T")

_log = logging.getLogger("conveyor")


class _Getter:
    __slots__ = ("expired", "future", "want")

    def __init__(self, future: asyncio.Future[bool], want: int) -> None:
        self.future = future
        self.want = want
        self.expired = False


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


def get_shut_down(immediate: bool) -> QueueShutDown:
    if immediate:
        return QueueShutDown("the queue was shut down immediately: get() is refused")
    return QueueShutDown("the queue is shut down and empty: nothing left to get")


def _decode_error(exc: Exception) -> SerializationError:
    if isinstance(exc, SerializationError):
        return exc
    return SerializationError(f"stored item cannot be decoded: {type(exc).__name__}: {exc}")


class Claimer(Generic[T]):
    """This process's getters, the local buffer and the claimer task that fills it."""

    def __init__(
        self,
        state: QueueState,
        writer: Writer,
        acknowledger: Acknowledger[T],
        reader: ViewReader,
    ) -> None:
        self._state = state
        self._writer = writer
        self._acknowledger = acknowledger
        self._reader = reader
        self._getters: deque[_Getter] = deque()
        self._prefetch = 0
        self._claiming = False
        self._claimer_task: asyncio.Task[None] | None = None
        self._release_timer: asyncio.TimerHandle | None = None
        self._taken_since_claim = 0
        self._last_claim: float | None = None

    def waiting(self) -> int:
        """Return how many getters wait."""
        return sum(1 for g in self._getters if not g.future.done())

    # -- getting -----------------------------------------------------------------------

    def get_nowait(self) -> T:
        """Return an item already in this process (see ``DurableQueue.get_nowait``)."""
        state = self._state
        state.bind_loop()
        if state.buffer or self._writer.handoff_possible():
            taken = self._take_now(1)
            if taken:
                return self._acknowledger.hold(taken)[0]
        if (
            state.own
            and state.own_exact
            and not state.buffer
            and not state.claim_in_store
            and state.ready <= len(state.own)
        ):
            try:
                return self._acknowledger.take_own()
            except SerializationError:
                state.forget_own()  # a claim fetches it, and the decode failure buries it
        if state.is_shutdown and (state.immediate or state.qsize() == 0):
            self._reader.recheck_later()
            raise get_shut_down(state.immediate)
        if not self._getters:
            # Even when the view says empty: other processes put without telling this
            # one, and a caller polling with get_nowait() alone must see their items.
            self._prefetch = 1
            self._ensure_claimer()
        raise QueueEmpty

    def _take_now(self, n: int, handoff: bool = True) -> list[tuple[Any, Delivery | None]]:
        state = self._state
        loads = state.serializer.loads
        taken: list[tuple[Any, Delivery | None]] = []
        buffer = state.buffer
        while buffer and len(taken) < n:
            delivery = buffer.popleft()
            if delivery.lease_deadline <= time.time():
                # Its lease ran out while it waited here: it may be someone else's now.
                state.ready += 1
                state.forget_own()
                continue
            try:
                item = loads(delivery.payload)
            except Exception as exc:
                # Whatever a serializer raises, the item can never be read here: to the
                # dead letters at once, not redelivered forever.
                error = _decode_error(exc)
                state.leased += 1
                state.spawn(self._bury(delivery, error))
                if taken:
                    break
                if error is exc:
                    raise
                raise error from exc
            state.leased += 1
            taken.append((item, delivery))
        self._taken_since_claim += len(taken)
        writer = self._writer
        while handoff and not taken and len(taken) < n and writer.handoff_possible():
            decoded, item = writer.take_handoff(loads)
            if not decoded:
                break
            taken.append((item, None))
        if not buffer and self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        return taken

    async def _bury(self, delivery: Delivery, exc: SerializationError) -> None:
        state = self._state
        with contextlib.suppress(Exception):
            if await state.store.fail(delivery.receipt, f"cannot decode: {exc}"):
                state.dead += 1
        state.leased -= 1
        state.changed()

    async def take(
        self, n: int, timeout: float | None, handoff: bool = True
    ) -> list[tuple[Any, Delivery | None]]:
        """Take up to *n* items, waiting up to *timeout* for the first."""
        state = self._state
        timeout = check_timeout(timeout)
        loop = state.bind_loop()
        writer = self._writer
        if (state.buffer and (len(state.buffer) >= n or state.ready <= 0)) or (
            handoff and not state.buffer and writer.handoff_possible()
        ):
            taken = self._take_now(n, handoff)
            if taken:
                return taken
        if state.is_shutdown and state.immediate and await self._reader.still_shut_down():
            raise get_shut_down(state.immediate)
        getter = _Getter(loop.create_future(), n)
        self._getters.append(getter)
        self._ensure_claimer()
        timer = None if timeout is None else loop.call_later(timeout, self._time_out, getter)
        try:
            while True:
                woken = await getter.future
                if state.buffer or (handoff and writer.handoff_possible()):
                    taken = self._take_now(n, handoff)
                    if taken:
                        return taken
                if state.is_shutdown and (state.immediate or state.claim_said_shutdown):
                    raise get_shut_down(state.immediate)
                if state.background_error is not None and woken:
                    exc, state.background_error = state.background_error, None
                    raise exc
                if not woken:
                    raise QueueTimeoutError
                getter.future = loop.create_future()
                self._getters.append(getter)
                self._ensure_claimer()
        finally:
            if timer is not None:
                timer.cancel()
            if not getter.future.done():
                getter.future.cancel()
            with contextlib.suppress(ValueError):
                self._getters.remove(getter)
            self._pass_on()

    def _time_out(self, getter: _Getter) -> None:
        # A claim already on its way may bring the item: a getter whose time ran out
        # meanwhile still takes it (so get(timeout=0) finds what the store holds).
        getter.expired = True
        if not self._claiming:
            _expire(getter.future)

    def _expire_getters(self) -> None:
        for getter in self._getters:
            if getter.expired:
                _expire(getter.future)

    def _wanted(self) -> int:
        want = self._prefetch
        for getter in self._getters:
            if not getter.future.done() and not getter.expired:
                want += getter.want
        return want - len(self._state.buffer)

    def _wake_getters(self) -> None:
        available = len(self._state.buffer)
        if self._writer.handoff_possible():
            available += 1
        for getter in list(self._getters):
            if available <= 0:
                break
            if not getter.future.done():
                getter.future.set_result(True)
                available -= getter.want
            self._getters.remove(getter)

    def _wake_all_getters(self) -> None:
        getters, self._getters = self._getters, deque()
        for getter in getters:
            if not getter.future.done():
                getter.future.set_result(True)

    # -- giving back what nobody took ----------------------------------------------------

    def _pass_on(self) -> None:
        # A getter left: what it would have taken goes to the next one, or back to the
        # store after a short hold so that other processes are not kept waiting.
        state = self._state
        if not state.buffer:
            return
        if any(not g.future.done() for g in self._getters):
            self._wake_getters()
            return
        if self._release_timer is None and state.loop is not None:
            self._release_timer = state.loop.call_later(state.hold, self._release_idle)

    def _release_idle(self) -> None:
        self._release_timer = None
        if self._state.buffer and not any(not g.future.done() for g in self._getters):
            self._state.spawn(self.release_buffer())

    async def release_buffer(self) -> None:
        """Give the items claimed and not taken back to the store."""
        state = self._state
        deliveries = list(state.buffer)
        state.buffer.clear()
        if not deliveries:
            return
        state.ready += len(deliveries)
        state.forget_own()  # older than this process's own items, ready again
        try:
            await state.store.release([d.receipt for d in deliveries])
        except Exception as exc:  # the leases expire and the items come back anyway
            _log.warning("conveyor: could not release %d leased items: %r", len(deliveries), exc)
        state.changed()

    # -- the claimer task --------------------------------------------------------------

    def _ensure_claimer(self) -> None:
        if self._claimer_task is None and not self._state.closed:
            self._claiming = True
            self._claimer_task = self._state.spawn(self._claim())

    async def _claim(self) -> None:
        state = self._state
        acknowledger = self._acknowledger
        try:
            while True:
                if acknowledger.leaser_task is not None:
                    # Items get_nowait() handed out are still ready in the store until
                    # their leases land: a claim now would take them a second time.
                    with contextlib.suppress(Exception):
                        await asyncio.shield(acknowledger.leaser_task)
                    continue
                want = self._wanted()
                if want <= 0 or state.closing:
                    break
                version = state.version
                # While consumers keep up (the last claim was used up within the hold
                # time), claim as many as were taken since then, plus one when more are
                # known to wait: consumers that come back one by one are then served by
                # one claim, not one each, and ``await get(); get_nowait()`` works.  Slow
                # consumers get exactly what they wait for, so that nothing sits leased
                # here while other processes could work on it.
                now = monotonic()
                asked = want
                # A bounded queue claims only what its getters wait for: an item claimed
                # ahead would leave its slot in the store free for another put while it
                # still waits here, and the queue would hold more than maxsize.
                if state.maxsize <= 0 and (
                    self._last_claim is None or now - self._last_claim <= state.hold
                ):
                    asked = max(want, self._taken_since_claim)
                    if state.ready > asked:
                        asked += 1
                asked = min(asked, state.store.max_claim)
                self._last_claim = now
                self._taken_since_claim = 0
                acks = acknowledger.take_acks()
                commits_mark, commit_busy = state.commits_done, state.inflight > 0
                state.claims_started += 1
                state.claim_in_store = True
                try:
                    if acks:
                        results, deliveries = await state.store.ack_and_claim(
                            acks, asked, state.lease_timeout, state.max_attempts
                        )
                        acknowledger.acks_written(acks, results)
                        acks = []
                    else:
                        deliveries = await state.store.claim(
                            asked, state.lease_timeout, state.max_attempts
                        )
                except QueueShutDown:
                    acknowledger.acks_gone(acks)
                    state.is_shutdown = True
                    state.claim_said_shutdown = True
                    state.ready = 0
                    self._prefetch = 0
                    self._wake_all_getters()
                    break
                except asyncio.CancelledError:
                    acknowledger.acks_gone(acks)  # the store still writes them
                    raise
                except Exception as exc:
                    # Nothing was written: the acknowledgements wait for the next write.
                    acknowledger.acks_unwritten(acks)
                    state.background_error = exc
                    self._prefetch = 0
                    self._wake_all_getters()
                    break
                finally:
                    state.claim_in_store = False
                    # A claim takes the oldest ready items, which may be ours: they are
                    # no longer known as ready (and none was handed out meanwhile).
                    state.forget_own()
                # The store answered without a shutdown-and-empty: whatever an earlier
                # claim said (a resume() may have come since) no longer holds.
                state.claim_said_shutdown = False
                if (
                    len(deliveries) < asked
                    and not commit_busy
                    and not state.inflight
                    and commits_mark == state.commits_done
                ):
                    state.own_exact = True  # nothing else waited in the store
                self._prefetch = 0
                if deliveries:
                    if state.is_shutdown and state.immediate:
                        state.spawn(state.store.ack([d.receipt for d in deliveries]))
                        continue
                    state.buffer.extend(deliveries)
                    state.ready = 0 if len(deliveries) < asked else state.ready - len(deliveries)
                    self._wake_getters()
                    self._expire_getters()
                    self._pass_on()
                    continue
                state.ready = 0
                state.as_of = monotonic()
                if self._writer.handoff_possible():
                    self._wake_getters()
                    continue
                self._expire_getters()
                if state.closing:
                    break
                self._claiming = False
                await state.wait_for_change(version, None)
                self._claiming = True
        finally:
            self._claimer_task = None
            self._claiming = False
            self._expire_getters()

    # -- shutting down and closing -----------------------------------------------------

    def shut_down_immediately(self) -> list[Delivery]:
        """Empty the buffer, wake every getter; return the deliveries to acknowledge."""
        state = self._state
        state.forget_own()
        buffered = list(state.buffer)
        state.buffer.clear()
        state.ready = 0
        self._wake_all_getters()
        return buffered

    async def stop(self) -> None:
        """Stop claiming: wait for the background tasks, let a claim under way finish."""
        state = self._state
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        self._prefetch = 0
        for task in list(state.tasks):
            if task is not self._claimer_task:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(task)
        claimer = self._claimer_task
        if claimer is not None:
            # A claim in the store's hands is let finish (it stops after it): cancelled,
            # its acknowledgements might not be written and its leases would strand
            # their items until they expire; what it brings is released below.
            if not state.claim_in_store:
                claimer.cancel()
            with contextlib.suppress(BaseException):
                await claimer
        with contextlib.suppress(Exception):
            await self.release_buffer()

    def refuse_getters(self) -> None:
        """Fail the getters still waiting: the queue is closed."""
        for getter in self._getters:
            if not getter.future.done():
                getter.future.set_exception(RuntimeError("the queue was closed"))
        self._getters.clear()
