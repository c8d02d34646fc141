"""The writer: puts of this process, committed together (group commit) by one task.

Every put appends its encoded items to a local list; one writer task at a time hands
everything waiting to ``Store.put`` in one transaction and wakes the putters.  It also
owns what goes with that list: waiting for room (put deadlines, a smaller batch when the
whole one does not fit), the errors of ``put_nowait()`` writes that ``flush()`` raises,
a put cancelled while its commit is in the store's hands (it waits for that commit and
retracts what was stored), and handing an uncommitted ``put_nowait()`` item straight to
a getter of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .._abc import check_timeout
from .._compat import QueueTimeoutError
from .._exceptions import QueueShutDown
from ..backends._base import DEFAULT_PUT, PutOptions, Store
from ._retract import settle_cancelled
from ._state import QueueState, monotonic
from ._view import ViewReader

_log = logging.getLogger("conveyor")

# Most items one commit carries: large enough to amortise a transaction, small enough
# that one commit never holds the database lock for long.
_PUT_BATCH = 512


def put_shut_down() -> QueueShutDown:
    return QueueShutDown("the queue is shut down: put() is refused (shut down by any process)")


class PutEntry:
    """Payloads waiting for the group-commit writer; ``future`` is None for put_nowait."""

    __slots__ = (
        "added",
        "deadline",
        "discarded",
        "future",
        "handed",
        "ids",
        "options",
        "payloads",
        "stored",
        "taken",
        "undecodable",
        "withdrawn",
    )

    def __init__(
        self,
        payloads: list[bytes],
        future: asyncio.Future[None] | None,
        deadline: float | None,
        options: list[PutOptions] | None = None,
    ) -> None:
        self.payloads = payloads
        # Job options, one per payload; None for a plain put (the fast path).
        self.options = options
        # After a commit with options: which payloads were stored (False: a duplicate
        # key skipped them); None when all were.
        self.added: list[bool] | None = None
        self.future = future
        self.deadline = deadline
        self.taken = False
        self.discarded = False
        self.stored = False
        # The stored items' ids, when the store names them: what a cancelled put retracts.
        self.ids: list[str] | None = None
        # get_nowait() handed one of its items out: a cancelled put must not retract them.
        self.handed = False
        # Its putter was cancelled: get_nowait() must not hand its items out.
        self.withdrawn = False
        # Its item did not decode when get_nowait() tried to take it: it goes the way of
        # every item, through the store, where a claim meets it and buries it.
        self.undecodable = False


_STORED, _NO_ROOM, _FAILED, _SHUT_DOWN = (object() for _ in range(4))


class _Commit:
    """One batch handed to ``Store.put``: what it carries and how it went."""

    __slots__ = (
        "batch",
        "claim_busy",
        "claims_mark",
        "done",
        "error",
        "finished",
        "jobs",
        "landed",
        "payloads",
        "state",
        "stored",
        "version",
    )

    def __init__(self, state: QueueState, batch: list[PutEntry]) -> None:
        self.state = state
        self.batch = batch
        self.payloads = [p for entry in batch for p in entry.payloads]
        # Items with job options: the commit goes through Store.put_jobs.
        self.jobs = any(e.options is not None for e in batch)
        self.version = state.version
        # What a claim of this process did meanwhile tells whether the items may join own.
        self.claims_mark, self.claim_busy = state.claims_started, state.claim_in_store
        self.stored = False
        self.error: BaseException | None = None
        # Set once the writer settled it (a cancelled putter waits for that: _retract.py).
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.finished = False  # the store answered (or failed)
        self.landed: Callable[[], None] | None = None  # told when it finishes
        state.inflight += len(self.payloads)

    async def run(self) -> None:
        store = self.state.store
        batch, payloads = self.batch, self.payloads
        try:
            if self.jobs:
                stored, ids = await self._put_jobs()
            elif store.claims_by_id or any(e.future is not None for e in batch):
                stored, ids = await store.put_returning_ids(payloads)
            else:  # put_nowait() items only: nobody can cancel them, no ids needed
                stored, ids = await store.put(payloads), None
        except Exception as exc:
            self.error = exc
        else:
            self.stored = stored
            offset = 0
            for entry in batch:
                entry.stored = stored
                n = len(entry.payloads)
                if ids is not None and len(ids) == len(payloads):
                    entry.ids = ids[offset : offset + n]
                    if entry.added is not None:  # only the stored are retracted
                        entry.ids = [i for i, a in zip(entry.ids, entry.added, strict=True) if a]
                offset += n
        finally:
            self.finished = True
            if self.landed is not None:
                self.landed()

    async def _put_jobs(self) -> tuple[bool, list[str] | None]:
        # A commit with job options: each item's options go with it, plain items of the
        # batch with the defaults; which items a duplicate key skipped lands in `added`.
        batch = self.batch
        options = [
            option
            for entry in batch
            for option in (entry.options or [DEFAULT_PUT] * len(entry.payloads))
        ]
        names = await self.state.store.put_jobs(self.payloads, options)
        if names is None:
            return False, None
        offset = 0
        for entry in batch:
            n = len(entry.payloads)
            entry.added = [name is not None for name in names[offset : offset + n]]
            offset += n
        return True, [name or "" for name in names]


class Writer:
    """This process's puts: the list waiting, the writer task, the commits under way.

    The writer task runs one commit at a time itself.  With ``Store.put_depth`` above 1
    (and no bound), puts that come while commits are under way do not wait for them:
    a relay task sends them as the next commit, up to that many in flight, each sent
    after the one before it (the store applies them in the order called); the writer
    settles them all in the order sent.
    """

    def __init__(self, state: QueueState, reader: ViewReader) -> None:
        self._state = state
        self._reader = reader
        self._puts: deque[PutEntry] = deque()
        self._writer_task: asyncio.Task[None] | None = None
        # The commits under way, oldest first, and what wakes the writer waiting on them.
        self._flights: deque[_Commit] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._busy = False  # the writer awaits a commit: puts that come start a relay
        self._relay_due = False  # a relay task is started and has not taken its batch
        self._relays: set[asyncio.Task[None]] = set()
        self._jobs_seen = False  # a put with job options was made (see check_options)
        # The first error a write of put_nowait() items met since flush() last raised.
        self._write_error: BaseException | None = None

    @property
    def inflight_entries(self) -> list[PutEntry]:
        """The entries of the commits under way (tests synchronise on them)."""
        return [entry for flight in self._flights for entry in flight.batch]

    @property
    def inflight_done(self) -> asyncio.Future[None] | None:
        """Done once the oldest commit under way is settled; None when none is."""
        return self._flights[0].done if self._flights else None

    def commit_of(self, entries: list[PutEntry]) -> asyncio.Future[None] | None:
        """Return the ``done`` of the oldest commit under way carrying one of *entries*."""
        mine = {id(entry) for entry in entries}
        for flight in self._flights:
            if any(id(entry) in mine for entry in flight.batch):
                return flight.done
        return None

    def putters(self) -> int:
        """Return how many put() calls wait."""
        return sum(1 for e in self._puts if e.future is not None)

    # -- putting -----------------------------------------------------------------------

    def check_options(self, given: bool) -> None:
        """Refuse job options at once when the store cannot take them.

        Otherwise they would fail in a commit shared with plain puts, failing those too.

        Raises:
            NotImplementedError: Options were *given* and the store has no ``put_jobs()``.
        """
        store = self._state.store
        if given and type(store).put_jobs is Store.put_jobs:
            raise NotImplementedError(
                f"the {store.backend} store does not support delay, priority, key or ttl"
            )
        if given:
            # Store.put_jobs and Store.put are separate calls that the store does not
            # order between them: from the first put with options on, one commit at a time.
            self._jobs_seen = True

    def put_nowait(self, payload: bytes, options: PutOptions | None = None) -> None:
        """Queue an accepted ``put_nowait()`` item for the next commit."""
        state = self._state
        self._puts.append(PutEntry([payload], None, None, None if options is None else [options]))
        state.nowait_pending += 1
        state.total_put += 1
        state.note_size()
        self._ensure_writer()  # no relay: nobody waits for it, and a full batch costs less

    async def put(
        self, item: object, timeout: float | None, options: PutOptions | None = None
    ) -> bool:
        """Put one item and return once it is committed (see ``DurableQueue.put``)."""
        state = self._state
        timeout = check_timeout(timeout)
        loop = state.bind_loop()
        if state.is_shutdown and await self._reader.still_shut_down():
            raise put_shut_down()
        payload = state.serializer.dumps(item)
        deadline = None if timeout is None else monotonic() + timeout
        future: asyncio.Future[None] = loop.create_future()
        entry = PutEntry([payload], future, deadline, None if options is None else [options])
        self._puts.append(entry)
        if self._writer_task is None:
            self._ensure_writer()
        elif self._busy:
            self._arrived()
        try:
            await future
        except asyncio.CancelledError as exc:
            await settle_cancelled(self._state, self, [entry], exc)
            raise
        except BaseException:
            self.withdraw([entry])
            raise
        state.adopt(entry)
        return entry.added is None or entry.added[0]

    async def put_many(
        self,
        items: Iterable[object],
        timeout: float | None,
        options: list[PutOptions] | None = None,
    ) -> list[bool]:
        """Put every item of *items*, in order (see ``DurableQueue.put_many``)."""
        state = self._state
        timeout = check_timeout(timeout)
        loop = state.bind_loop()
        if state.is_shutdown and await self._reader.still_shut_down():
            raise put_shut_down()
        payloads = [state.serializer.dumps(item) for item in items]
        if not payloads:
            return []
        deadline = None if timeout is None else monotonic() + timeout
        if state.maxsize <= 0:
            entries = [PutEntry(payloads, loop.create_future(), deadline, options)]
        else:
            entries = [
                PutEntry([p], loop.create_future(), deadline, None if options is None else [o])
                for p, o in zip(payloads, options or [DEFAULT_PUT] * len(payloads), strict=True)
            ]
        self._puts.extend(entries)
        if self._busy:
            self._arrived()
        self._ensure_writer()
        try:
            for entry in entries:
                assert entry.future is not None
                await entry.future
        except asyncio.CancelledError as exc:
            await settle_cancelled(self._state, self, entries, exc)
            raise
        except BaseException:
            self.withdraw(entries)
            raise
        state.adopt(entries[-1])
        return [flag for entry in entries for flag in (entry.added or [True] * len(entry.payloads))]

    def withdraw(self, entries: list[PutEntry]) -> None:
        """Withdraw the entries of a put that failed or was cancelled, if not yet sent."""
        # Entries not handed to the store yet are withdrawn; one in flight may still be
        # committed (the store decides), exactly as if the put had just finished.
        for entry in entries:
            if not entry.taken and entry.future is not None and not entry.future.done():
                entry.future.cancel()
                with contextlib.suppress(ValueError):
                    self._puts.remove(entry)

    # -- flushing ----------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until the writer task has nothing left to write."""
        while self._writer_task is not None:
            await asyncio.shield(self._writer_task)

    def raise_write_error(self) -> None:
        """Raise the first error a write of ``put_nowait()`` items met, once."""
        exc, self._write_error = self._write_error, None
        if exc is not None:
            raise exc

    # -- handing over and shutting down ------------------------------------------------

    def handoff_possible(self) -> bool:
        """Say whether an uncommitted ``put_nowait()`` item may go straight to a getter."""
        # An uncommitted put_nowait() item may go straight to a getter of this process
        # only when nothing older exists anywhere this process knows of.
        if self._state.ready > 0 or self._state.inflight or not self._puts:
            return False
        head = self._puts[0]
        # An item with job options waits its turn in the store (a delay, a priority, a key).
        return (
            head.future is None and not head.taken and not head.undecodable and head.options is None
        )

    def take_handoff(self, loads: Callable[[bytes], Any]) -> tuple[bool, Any]:
        """Decode and take the first uncommitted ``put_nowait()`` item (``handoff_possible()``).

        Returns:
            ``(True, item)``; ``(False, None)`` when it does not decode: it then stays
            in the put list, never handed out, so that it is committed and a claim
            buries it in the dead letters as any undecodable item (none is lost here).
        """
        entry = self._puts[0]
        try:
            item = loads(entry.payloads[0])
        except Exception:
            entry.undecodable = True
            return False, None
        self._puts.popleft()
        self._state.nowait_pending -= 1
        return True, item

    def shut_down(self, immediate: bool) -> None:
        """Refuse the putters waiting; with *immediate*, count accepted items as done."""
        state = self._state
        # Blocked putters go; put_nowait() items were accepted already and stay.
        kept: deque[PutEntry] = deque()
        for entry in self._puts:
            if entry.future is None:
                if immediate:  # accepted, then emptied out with the rest: done
                    state.nowait_pending -= len(entry.payloads)
                else:
                    kept.append(entry)
            elif not entry.future.done():
                entry.future.set_exception(put_shut_down())
        self._puts = kept
        if immediate:
            for entry in self.inflight_entries:
                if not entry.discarded and entry.future is None:
                    state.nowait_pending -= len(entry.payloads)
                entry.discarded = True

    # -- the writer task ---------------------------------------------------------------

    def _ensure_writer(self) -> None:
        if self._writer_task is None and self._puts:
            self._writer_task = self._state.spawn(self._write())

    def _take_batch(self, limit: int) -> list[PutEntry]:
        batch: list[PutEntry] = []
        count = 0
        puts = self._puts
        while puts and count < limit:
            entry = puts[0]
            if entry.future is not None and entry.future.done():
                puts.popleft()  # withdrawn by a cancelled or timed-out putter
                continue
            if batch and count + len(entry.payloads) > limit:
                break
            puts.popleft()
            entry.taken = True
            batch.append(entry)
            count += len(entry.payloads)
        return batch

    def _fail_entries(self, entries: Iterable[PutEntry], exc: BaseException) -> None:
        state = self._state
        lost = 0
        for entry in entries:
            if entry.future is None:
                if entry.discarded:
                    continue  # an immediate shutdown counted it done already
                state.nowait_pending -= len(entry.payloads)
                state.total_put -= len(entry.payloads)
                lost += len(entry.payloads)
            elif not entry.future.done():
                entry.future.set_exception(exc)
        if lost:
            # Nobody awaits these items: flush(), join() or aclose() raises the error, so
            # that "durable after flush()" holds; the log is for who never calls them.
            if self._write_error is None:
                self._write_error = exc
            if getattr(exc, "outcome_unknown", False):
                outcome = "may or may not have been stored"
            else:
                outcome = "were not stored"
            _log.error("conveyor: %d items put with put_nowait() %s: %r", lost, outcome, exc)

    def _depth(self) -> int:
        # With a bound, one commit at a time: a batch refused for room must not be
        # overtaken by a later, smaller one.
        if 0 < self._state.maxsize < math.inf or self._jobs_seen:
            return 1
        return self._state.store.put_depth

    def _arrived(self) -> None:
        # A put came while the writer awaits a commit: send what waits now, if there is
        # room, and once it is as many puts as the last commit sent carries.  Smaller
        # batches would cost more than they save where the client's and the server's
        # work per commit, not the wait for a reply, is what limits (a local server): on
        # this project's 2-core VM, sending each put at once took 50% more client time
        # per item with 8 tasks putting.  Where replies take long, puts pile up while
        # one is awaited, and go at once.  Only for awaited puts: put_nowait() items,
        # which nobody waits for, go in the next full batch.
        flights = self._flights
        if (
            not self._relay_due
            and len(flights) < self._depth()
            and (not flights or len(self._puts) >= len(flights[-1].batch))
        ):
            self._relay_due = True
            task = asyncio.ensure_future(self._relay())
            self._relays.add(task)
            task.add_done_callback(self._relays.discard)

    async def _relay(self) -> None:
        # Puts that came in the same loop turn go with it (it runs after their callers).
        self._relay_due = False
        if not self._busy or len(self._flights) >= self._depth():
            return  # the writer is taking them itself, or enough are in flight
        batch = self._take_batch(_PUT_BATCH)
        if batch:
            flight = _Commit(self._state, batch)
            flight.landed = self._poke
            self._flights.append(flight)
            await flight.run()

    def _poke(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _write(self) -> None:
        state = self._state
        limit = _PUT_BATCH
        flights = self._flights
        try:
            while True:
                if not flights:
                    batch = self._take_batch(limit)
                    if not batch:
                        break
                    flight = _Commit(state, batch)
                    flights.append(flight)
                    self._busy = True
                    try:
                        await flight.run()
                    finally:
                        self._busy = False
                elif not flights[0].finished:
                    # Relayed commits are under way: wait for the oldest to land, and
                    # send what waits meanwhile if there is room.
                    self._busy = True
                    try:
                        if any(entry.future is not None for entry in self._puts):
                            self._arrived()
                        self._wake = asyncio.get_running_loop().create_future()
                        await self._wake
                    finally:
                        self._busy = False
                # Commits land in the order they were sent: settle them in that order.
                refused: list[_Commit] = []
                stored = stop = False
                while flights and flights[0].finished:
                    flight = flights.popleft()
                    outcome = self._settle(flight)
                    if outcome is _STORED or outcome is _FAILED:
                        stored = stored or outcome is _STORED
                        continue  # a failed commit fails its putters alone, as before
                    if outcome is _NO_ROOM:
                        refused.append(flight)
                    else:
                        stop = True
                    while not all(other.finished for other in flights):
                        # Those sent behind it land first, then are settled with it.
                        self._wake = asyncio.get_running_loop().create_future()
                        await self._wake
                if stop:
                    break
                if not refused:
                    if stored:
                        limit = _PUT_BATCH
                        if not flights:
                            # The putters just woken may put again at once: one loop
                            # turn lets them, so that the next commit carries all of
                            # them, and this task lives on instead of being started
                            # again for each commit.
                            await asyncio.sleep(0)
                    continue
                # No room for the whole batch: put it back and try fewer, then wait.
                batches = [entry for flight in refused for entry in flight.batch]
                self._puts.extendleft(reversed(batches))
                count = sum(len(flight.payloads) for flight in refused)
                if count > 1 and len(batches) > 1:
                    limit = max(1, count // 2)
                    continue
                limit = 1
                # No room by the stored bound, which another process may have changed
                # since this one read it: read the bound and the size again, so that
                # maxsize, qsize() and full() tell what the putters wait for.
                try:
                    await self._reader.refresh()
                except Exception:  # the next put meets the failure and reports it
                    if state.maxsize > 0:
                        state.ready = max(state.ready, math.ceil(state.maxsize))
                if state.is_shutdown or state.closing:
                    pending = list(self._puts)
                    self._puts.clear()
                    self._fail_entries(
                        pending,
                        put_shut_down()
                        if state.is_shutdown
                        else RuntimeError(
                            "the queue was closed while items waited for room: not stored"
                        ),
                    )
                    break
                await state.wait_for_change(refused[0].version, self._nearest_put_deadline())
                self._expire_puts()
        finally:
            self._writer_task = None
            if self._puts and not state.closed:
                self._ensure_writer()

    def _settle(self, flight: _Commit) -> object:
        """Wake the putters of a commit that landed; say how it went."""
        state = self._state
        batch = flight.batch
        state.commits_done += 1
        state.inflight -= len(flight.payloads)
        for entry in batch:
            entry.taken = entry.stored
        if not flight.done.done():
            flight.done.set_result(None)
        error = flight.error
        if isinstance(error, QueueShutDown):
            state.is_shutdown = True
            pending = list(self._puts)
            self._puts.clear()
            self._fail_entries(batch + pending, put_shut_down())
            state.changed()
            return _SHUT_DOWN
        if error is not None:
            self._fail_entries(batch, error)
            state.forget_own()  # the items may be stored all the same
            return _FAILED
        if not flight.stored:
            for entry in batch:
                entry.taken = False
            return _NO_ROOM
        if (
            flight.claim_busy
            or state.claim_in_store
            or flight.claims_mark != state.claims_started
            or flight.jobs
            or any(e.withdrawn or e.ids is None for e in batch)
        ):
            # A claim of this process ran with this commit (it may have taken these
            # items, or left older ones ready), or items of this commit are ready and
            # cannot join own.
            state.forget_own()
        elif state.own_exact:
            state.adopting.extend(e for e in batch if not e.discarded)
            state.adopt()
        for entry in batch:
            n = len(entry.payloads)
            added = n if entry.added is None else sum(entry.added)
            state.total_deduplicated += n - added
            if entry.future is not None:
                state.total_put += added
                if not entry.future.done():
                    entry.future.set_result(None)
            else:
                state.total_put -= n - added
            if entry.discarded:
                continue  # an immediate shutdown deletes it right after
            if entry.future is None:
                state.nowait_pending -= n
            state.ready += added
        state.note_size()
        state.changed()
        return _STORED

    def _nearest_put_deadline(self) -> float | None:
        deadlines = [e.deadline for e in self._puts if e.deadline is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - monotonic())

    def _expire_puts(self) -> None:
        now = monotonic()
        kept: deque[PutEntry] = deque()
        for entry in self._puts:
            if entry.deadline is not None and entry.deadline <= now and entry.future is not None:
                if not entry.future.done():
                    entry.future.set_exception(QueueTimeoutError())
            else:
                kept.append(entry)
        self._puts = kept
