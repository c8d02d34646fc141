"""``work()``: run a handler over a queue's items, as a job worker does.

Up to ``concurrency`` handlers run at once.  A handler that returns acknowledges its
item; one that raises is retried with exponential backoff and jitter, then sent to the
dead letters with the exception's type, message and traceback.  A stop (``stop()`` of
the returned handle's event, a signal, the queue shut down and drained) takes no new
item, lets the running handlers finish within ``grace`` seconds, then cancels the rest
and gives their items back at once.

On a durable queue every item is got with its receipt (``get_with_receipt()``) and
settled by it, so that a retry waits in the store (delayed) and a dead letter keeps the
traceback.  On an in-memory queue (``Queue``, ``ThreadQueue.async_q``) there is no store
to wait in: a failed item is retried in place by the same slot after its backoff, and
after the last retry it is reported (logged, counted in ``WorkStats.failed``) and marked
done with ``task_done()``, as asyncio code does; an item whose handler was cancelled at
the stop is put back with ``put_nowait()`` when the queue takes it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import inspect
import logging
import random
import signal
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from ._abc import AsyncQueue
from ._durable import DurableQueue, Receipt
from ._exceptions import QueueFull, QueueShutDown, SerializationError

__all__ = ["WorkStats", "work"]

T = TypeVar("T")

_log = logging.getLogger("conveyor.worker")

Handler = Callable[[Any], Any]


@dataclasses.dataclass
class WorkStats:
    """What ``work()`` did, as it returns it (and logs it once a minute).

    Attributes:
        done: Items whose handler returned (acknowledged).
        failed: Items that failed for good: dead letters (durable), or reported and
            marked done (in memory).
        retried: Failed attempts given another try.
        released: Items whose handler was cancelled at the stop, given back untried.
        unsettled: Items whose handler ended but whose acknowledgement, retry or dead
            letter the queue refused (the lease expired or the store failed): they may be
            delivered again.
        clean: Whether the stop drained cleanly: every running handler finished within
            ``grace`` and every item was settled.
    """

    done: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    unsettled: int = 0
    clean: bool = True


class _Slot(Generic[T]):
    """One item on its way through a handler: what to settle it by, once it ends."""

    __slots__ = ("item", "receipt", "settled")

    def __init__(self, item: T, receipt: Receipt[T] | None) -> None:
        self.item = item
        self.receipt = receipt
        self.settled = False


def _backoff(base: float, cap: float, attempt: int) -> float:
    # "Equal jitter": half the exponential delay for sure, half at random, so that
    # items that failed together do not come back together.
    delay: float = min(cap, base * 2.0 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def _dead_letter_text(exc: BaseException) -> str:
    # The exception's line first, then its traceback: tables of dead letters (conveyor
    # dead, the dashboard) show the start of the text, which then says what went wrong.
    summary = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    return f"{summary}\n\n{trace}"


def _check(
    queue: object,
    handler: object,
    concurrency: object,
    retries: object,
    backoff: object,
    max_backoff: object,
    grace: object,
    threads: bool,
) -> None:
    if not isinstance(queue, AsyncQueue):
        raise TypeError(f"work() takes a conveyor queue (AsyncQueue), not {queue!r}")
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {handler!r}")
    if not threads and not _is_async(handler):
        raise TypeError(
            f"handler {handler!r} is not a coroutine function: pass threads=True (--threads)"
            " to run a blocking function in threads, or make it `async def`"
        )
    for name, value, low in (("concurrency", concurrency, 1), ("retries", retries, 0)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {value!r}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, not {value}")
    for name, value in (("backoff", backoff), ("max_backoff", max_backoff), ("grace", grace)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number of seconds, not {value!r}")
        if not 0 <= value < float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")


def _is_async(handler: object) -> bool:
    call = getattr(handler, "__call__", None)  # noqa: B004 - an object with async __call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


async def work(
    queue: AsyncQueue[T],
    handler: Callable[[T], Awaitable[object]] | Callable[[T], object],
    *,
    concurrency: int = 8,
    retries: int = 3,
    backoff: float = 1.0,
    max_backoff: float = 300.0,
    grace: float = 30.0,
    threads: bool = False,
    stop: asyncio.Event | None = None,
    signals: bool = False,
    summary_every: float = 60.0,
) -> WorkStats:
    """Run *handler* on the items of *queue*, up to *concurrency* at once, until stopped.

    A handler that returns acknowledges its item.  One that raises is retried after
    ``backoff * 2 ** (attempt - 1)`` seconds (at most *max_backoff*), half of it random;
    after *retries* retries the item goes to the dead letters (durable queues) with the
    exception's type, message and traceback.  Each failure is logged as one line, and a
    summary (done, failed, retried, rate) once per *summary_every* seconds, on the
    ``conveyor.worker`` logger.

    It stops when *stop* is set (or, with *signals*, on SIGTERM or SIGINT), or when the
    queue is shut down and drained: it takes no new item, lets the running handlers
    finish within *grace* seconds, then cancels the rest and gives their items back at
    once (``release()``: ready again, the attempt not counted).  With *signals*, a second
    SIGINT skips the grace.  Cancelling ``work()`` itself does the same without the
    grace, then raises ``CancelledError``.

    The items' leases renew themselves while this process lives (see ``open_queue``'s
    ``renew_leases`` and ``processing_timeout``), so a handler may run longer than
    ``lease_timeout``.

    Args:
        queue: A durable queue (``open_queue``) or an in-memory one (see the module
            docstring for what differs).
        handler: ``async def handler(item)``, or with *threads* a blocking function, run
            in a pool of *concurrency* threads (a thread cannot be interrupted: one still
            running at the stop is left to finish, its item given back and its result
            ignored).
        concurrency: Handlers running at once, ``>= 1``.
        retries: Retries of a failed item before it goes dead, ``>= 0``.  On a durable
            queue they count deliveries (``Receipt.attempts``), so a delivery after a
            crash uses one too, and the queue's ``max_attempts``, when lower, ends them.
        backoff: Seconds before the first retry; each next one waits twice as long.
        max_backoff: The longest wait before a retry.
        grace: Seconds the running handlers get to finish at a stop.
        threads: Run a blocking *handler* in threads.
        stop: Set it to stop (gracefully).
        signals: Stop on SIGTERM and SIGINT (a second SIGINT at once); for programs
            whose main task this is, as ``conveyor worker`` is.
        summary_every: Seconds between two summary lines.

    Returns:
        What it did; ``clean`` is ``False`` when handlers had to be cancelled or items
        could not be settled.

    Raises:
        TypeError: An argument has the wrong type, or *handler* is not a coroutine
            function and *threads* is not set.
        ValueError: An argument is out of range.
        BackendError: The store failed while getting items (after the running handlers
            were let finish within *grace*).
    """
    _check(queue, handler, concurrency, retries, backoff, max_backoff, grace, threads)
    runner = _Runner(
        queue, handler, concurrency, retries, backoff, max_backoff, grace, threads, summary_every
    )
    return await runner.run(stop, signals)


class _Runner(Generic[T]):
    """One ``work()`` call: its slots, its counters, its stop."""

    def __init__(
        self,
        queue: AsyncQueue[T],
        handler: Handler,
        concurrency: int,
        retries: int,
        backoff: float,
        max_backoff: float,
        grace: float,
        threads: bool,
        summary_every: float,
    ) -> None:
        self.queue = queue
        self.durable = isinstance(queue, DurableQueue)
        self.handler = handler
        self.concurrency = concurrency
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.grace = float(grace)
        self.summary_every = summary_every
        self.pool = (
            concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="conveyor-work")
            if threads
            else None
        )
        self.stats = WorkStats()
        self.running: dict[asyncio.Task[None], _Slot[T]] = {}
        self.stopping = asyncio.Event()
        self.hurry = asyncio.Event()  # a second SIGINT: no grace
        self.room = asyncio.Event()
        self.started = time.monotonic()

    # -- the loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None, signals: bool) -> WorkStats:
        loop = asyncio.get_running_loop()
        watchers = [loop.create_task(self._summaries())]
        if stop is not None:
            watchers.append(loop.create_task(self._watch(stop)))
        installed = self._install_signals(loop) if signals else []
        error: BaseException | None = None
        try:
            try:
                await self._take()
            except asyncio.CancelledError:
                self.hurry.set()
                raise
            except Exception as exc:
                # The store failed: the running handlers still get their grace.
                error = exc
                _log.error("conveyor worker: could not get items, stopping: %r", exc)
            finally:
                self.stopping.set()
                await self._drain()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            for watcher in watchers:
                watcher.cancel()
            await asyncio.wait(watchers)
            if self.pool is not None:
                self.pool.shutdown(wait=False, cancel_futures=True)
            stats, took = self.stats, max(1e-9, time.monotonic() - self.started)
            self._summary("stopped", stats.done, stats.failed, stats.retried, stats.done / took)
        if error is not None:
            raise error
        return self.stats

    async def _take(self) -> None:
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            while not self.stopping.is_set():
                if len(self.running) >= self.concurrency:
                    self.room.clear()
                    room = asyncio.ensure_future(self.room.wait())
                    await asyncio.wait((room, stopping), return_when=asyncio.FIRST_COMPLETED)
                    room.cancel()
                    continue
                getting = asyncio.ensure_future(self._get())
                try:
                    await asyncio.wait((getting, stopping), return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:
                    getting.cancel()
                    await self._settle_late(getting)
                    raise
                if not getting.done():
                    # Stopped while waiting: a cancelled get() loses nothing, and one that
                    # got its item anyway gives it back.
                    getting.cancel()
                    await self._settle_late(getting)
                    return
                try:
                    slot = getting.result()
                except QueueShutDown:
                    _log.info("conveyor worker: the queue is shut down and drained")
                    return
                except SerializationError as exc:
                    # The store moved it to the dead letters already: the next one.
                    self.stats.failed += 1
                    _log.error("conveyor worker: an item could not be decoded: %s", exc)
                    continue
                self._start(slot)
        finally:
            stopping.cancel()

    async def _get(self) -> _Slot[T]:
        queue = self.queue
        if isinstance(queue, DurableQueue):
            receipt: Receipt[T] = await queue.get_with_receipt()
            return _Slot(receipt.item, receipt)
        return _Slot(await queue.get(), None)

    async def _settle_late(self, getting: asyncio.Future[_Slot[T]]) -> None:
        # wait() returns once the get() ended, however it ended; it raises only when
        # this task is cancelled meanwhile, and that cancellation propagates.
        await asyncio.wait((getting,))
        if getting.cancelled() or getting.exception() is not None:
            return
        slot = getting.result()
        await self._give_back(slot)

    def _start(self, slot: _Slot[T]) -> None:
        task = asyncio.get_running_loop().create_task(self._process(slot))
        self.running[task] = slot
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.running.pop(task, None)
        self.room.set()
        if not task.cancelled() and task.exception() is not None:
            # _process() settles every outcome itself: this is a bug, never silent.
            _log.error("conveyor worker: a slot ended with %r", task.exception())
            self.stats.clean = False

    # -- one item ------------------------------------------------------------------------

    async def _call(self, item: T) -> None:
        if self.pool is not None:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self.pool, functools.partial(self.handler, item))
        else:
            result = self.handler(item)
        if inspect.isawaitable(result):
            await result

    async def _process(self, slot: _Slot[T]) -> None:
        attempt = slot.receipt.attempts if slot.receipt is not None else 1
        # The queue's own max_attempts, when lower, ends the retries too: the dead letter
        # then keeps the traceback instead of "gave up after N attempts".
        last = self.retries + 1
        if isinstance(self.queue, DurableQueue) and self.queue.max_attempts is not None:
            last = min(last, self.queue.max_attempts)
        while True:
            try:
                await self._call(slot.item)
            except asyncio.CancelledError:
                raise  # _drain() gives the item back
            except Exception as exc:
                if attempt >= last:
                    await self._dead(slot, exc, attempt)
                    return
                delay = _backoff(self.backoff, self.max_backoff, attempt)
                _log.warning(
                    "conveyor worker: item %s failed (attempt %d of %d), retrying in %.3gs: %s",
                    self._name(slot),
                    attempt,
                    last,
                    delay,
                    _one_line(exc),
                )
                self.stats.retried += 1
                if slot.receipt is None:
                    await asyncio.sleep(delay)  # in memory: retried in place
                    attempt += 1
                    continue
                await self._settle(slot, self._retry(slot.receipt, delay), "retry")
                return
            else:
                self.stats.done += 1
                await self._settle(slot, self._ack(slot), "acknowledgement")
                return

    async def _ack(self, slot: _Slot[T]) -> None:
        queue = self.queue
        if slot.receipt is not None:
            assert isinstance(queue, DurableQueue)
            await queue.ack(slot.receipt)
        else:
            queue.task_done()

    async def _retry(self, receipt: Receipt[T], delay: float) -> None:
        queue = self.queue
        assert isinstance(queue, DurableQueue)
        await queue.retry(receipt, delay)

    async def _dead(self, slot: _Slot[T], exc: Exception, attempt: int) -> None:
        self.stats.failed += 1
        _log.error(
            "conveyor worker: item %s failed for good after %d attempts%s: %s",
            self._name(slot),
            attempt,
            "" if slot.receipt is None else ", moved to the dead letters",
            _one_line(exc),
        )
        queue = self.queue
        if slot.receipt is not None:
            assert isinstance(queue, DurableQueue)
            await self._settle(slot, queue.fail(slot.receipt, _dead_letter_text(exc)), "failure")
        else:
            await self._settle(slot, self._ack(slot), "failure")

    async def _settle(self, slot: _Slot[T], settling: Awaitable[None], what: str) -> None:
        slot.settled = True
        try:
            await settling
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The lease ran out (processing_timeout, or renewal refused) or the store
            # failed: the item may be delivered again, and the handler's work repeated.
            self.stats.unsettled += 1
            self.stats.clean = False
            _log.error(
                "conveyor worker: the %s of item %s was refused, it may be delivered again: %s",
                what,
                self._name(slot),
                _one_line(exc),
            )

    @staticmethod
    def _name(slot: _Slot[T]) -> str:
        if slot.receipt is not None:
            return slot.receipt.item_id
        text = repr(slot.item)
        return text if len(text) <= 60 else text[:57] + "..."

    # -- the stop ------------------------------------------------------------------------

    async def _drain(self) -> None:
        if self.running and not self.hurry.is_set():
            _log.info(
                "conveyor worker: stopping; %d handlers running get %.3gs to finish",
                len(self.running),
                self.grace,
            )
            hurry = asyncio.ensure_future(self.hurry.wait())
            deadline = time.monotonic() + self.grace
            try:
                while self.running and not self.hurry.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    await asyncio.wait(
                        {*self.running, hurry}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                    )
            except asyncio.CancelledError:
                self.hurry.set()
                await self._cancel_running()
                raise
            finally:
                hurry.cancel()
        await self._cancel_running()

    async def _cancel_running(self) -> None:
        if not self.running:
            return
        pending = dict(self.running)
        for task in pending:
            task.cancel()
        # Not cancellable itself: the items of cancelled handlers go back below, at once.
        await asyncio.shield(asyncio.wait(pending))
        give_back = [slot for slot in pending.values() if not slot.settled]
        if give_back:
            self.stats.clean = False
            _log.warning(
                "conveyor worker: %d handlers did not finish in time: cancelled, their items"
                " given back",
                len(give_back),
            )
        for slot in give_back:
            await asyncio.shield(self._give_back(slot))

    async def _give_back(self, slot: _Slot[T]) -> None:
        queue = self.queue
        try:
            if slot.receipt is not None:
                assert isinstance(queue, DurableQueue)
                await queue.release(slot.receipt)
            else:
                try:
                    queue.put_nowait(slot.item)
                finally:
                    queue.task_done()  # put back, or dropped: either way join() must not wait
        except (QueueFull, QueueShutDown) as exc:
            self.stats.unsettled += 1
            _log.error(
                "conveyor worker: item %s could not be put back into the in-memory queue (%s):"
                " it is dropped",
                self._name(slot),
                type(exc).__name__,
            )
            return
        except Exception as exc:
            self.stats.unsettled += 1
            _log.error(
                "conveyor worker: item %s could not be given back (its lease expires instead,"
                " and it is delivered again then): %s",
                self._name(slot),
                _one_line(exc),
            )
            return
        self.stats.released += 1

    # -- signals and the summary ---------------------------------------------------------

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stopping.set()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        installed: list[int] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
            installed.append(sig)
        return installed

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self.stopping.is_set():
            if sig == signal.SIGINT:
                _log.warning("conveyor worker: %s again: stopping at once", name)
                self.hurry.set()
            return
        _log.info("conveyor worker: %s: stopping (a second SIGINT stops at once)", name)
        self.stopping.set()

    async def _summaries(self) -> None:
        last = dataclasses.replace(self.stats)
        while True:
            await asyncio.sleep(self.summary_every)
            now = self.stats
            self._summary(
                f"last {self.summary_every:.0f}s",
                now.done - last.done,
                now.failed - last.failed,
                now.retried - last.retried,
                (now.done - last.done) / self.summary_every,
            )
            last = dataclasses.replace(now)

    def _summary(self, span: str, done: int, failed: int, retried: int, rate: float) -> None:
        _log.info(
            "conveyor worker: %s: %d done, %d failed, %d retried (%.1f/s), %d running",
            span,
            done,
            failed,
            retried,
            rate,
            len(self.running),
        )


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text else type(exc).__name__
