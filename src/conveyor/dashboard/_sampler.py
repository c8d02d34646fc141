"""The dashboard's one reader of the store: it samples every queue on a timer.

Browsers never cause a store read of their own: every page and event stream is served
from the last sample, so the load on the store does not grow with the number of open
pages.  Each tick reads, for every queue, ``counts()``, ``totals()`` and
``oldest_ready_age()``; for each queue that at least one page shows in detail, also
``peek()`` and ``dead_letters()``; and every ``list_every`` seconds the store's list of
queues.  Changes (requeue, purge) go through here too, and are followed at once by a
fresh sample of that queue, so a page sees their effect without waiting for the tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from .._exceptions import ConveyorError, QueueNotFoundError
from .._stores import list_queues, open_existing_store
from ..backends._base import DeadLetter, PeekedItem, Purgeable, Store, StoreCounts

__all__ = ["Point", "QueueView", "Sampler", "shown_payload"]

PAYLOAD_SHOWN = 300  # characters of an item shown on a page


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    """One sample of a queue, for the charts: depths, and rates since the one before.

    Attributes:
        at: Wall-clock time of the sample (``time.time()``).
        ready, delayed, leased, dead: The queue's counts then.
        rate_in: Items put per second since the sample before (``None``: unknown).
        rate_out: Items finished (acknowledged or dead) per second since the sample before
            (``None``: unknown).
    """

    at: float
    ready: int
    delayed: int
    leased: int
    dead: int
    rate_in: float | None
    rate_out: float | None

    def as_json(self) -> list[Any]:
        """Return the point as a compact JSON array, in the order the page reads it."""
        return [
            round(self.at, 3),
            self.ready,
            self.delayed,
            self.leased,
            self.dead,
            _rounded(self.rate_in),
            _rounded(self.rate_out),
        ]


def _rounded(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 2)


def shown_payload(payload: bytes) -> str:
    """Return how a page shows a serialized item: its text, cut short, never decoded further.

    The dashboard never runs a deserializer (a pickled item is shown, not unpickled).
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(payload)} bytes, not text) {payload[:48].hex()}"
    if len(text) > PAYLOAD_SHOWN:
        return text[:PAYLOAD_SHOWN] + f"… ({len(payload)} bytes)"
    return text


@dataclasses.dataclass
class QueueView:
    """What the dashboard last read of one queue."""

    name: str
    counts: StoreCounts | None = None
    oldest_age: float | None = None
    history: deque[Point] = dataclasses.field(default_factory=deque)
    error: str | None = None
    peeked: list[PeekedItem] = dataclasses.field(default_factory=list)
    dead_letters: list[DeadLetter] = dataclasses.field(default_factory=list)
    put_total: int | None = None
    finished_total: int | None = None
    read_at: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Return the queue's counts and latest rates as JSON-ready values."""
        counts = self.counts
        last = self.history[-1] if self.history else None
        maxsize = counts.maxsize if counts is not None else 0
        return {
            "name": self.name,
            "ready": counts.ready if counts else None,
            "delayed": counts.delayed if counts else None,
            "leased": counts.leased if counts else None,
            "dead": counts.dead if counts else None,
            "maxsize": maxsize if maxsize > 0 and not math.isinf(maxsize) else None,
            "shutdown": counts.is_shutdown if counts else None,
            "oldest_age": self.oldest_age,
            "rate_in": _rounded(last.rate_in) if last else None,
            "rate_out": _rounded(last.rate_out) if last else None,
            "counted": self.put_total is not None,
            "error": self.error,
        }

    def detail(self) -> dict[str, Any]:
        """Return the summary with the peeked items and the dead letters."""
        return {
            **self.summary(),
            "peek": [
                {"id": p.item_id, "attempts": p.attempts, "item": shown_payload(p.payload)}
                for p in self.peeked
            ],
            "dead_letters": [
                {
                    "id": d.item_id,
                    "attempts": d.attempts,
                    "error": d.error,
                    "failed_at": d.failed_at,
                    "item": shown_payload(d.payload),
                }
                for d in self.dead_letters
            ],
        }


class Sampler:
    """Sample every queue of the store at *url* each *interval* seconds, keeping history.

    Args:
        url: The store's URL.
        interval: Seconds between samples.
        window: Seconds of history kept for the charts.
        list_every: Seconds between two reads of the store's list of queues.
        peek_limit: Items shown on a queue's page.
        dead_limit: Dead letters shown on a queue's page.
    """

    def __init__(
        self,
        url: str,
        *,
        interval: float = 1.0,
        window: float = 600.0,
        list_every: float = 5.0,
        peek_limit: int = 20,
        dead_limit: int = 100,
    ) -> None:
        self.url = url
        self.interval = interval
        self.peek_limit = peek_limit
        self.dead_limit = dead_limit
        self._list_every = list_every
        self._points = max(2, math.ceil(window / interval))
        self._views: dict[str, QueueView] = {}
        self._stores: dict[str, tuple[contextlib.AsyncExitStack, Store]] = {}
        self._watchers: dict[str, int] = {}
        self._listed_at = -math.inf
        self.error: str | None = None
        self.version = 0
        self.closing = False  # set when the server stops: event streams end
        # Set, and replaced by a fresh one, at each new sample.  Not a Condition: a
        # waiter cancelled while it re-acquires a Condition's lock (a page closed at
        # that instant) breaks the lock on Python 3.11.
        self._sampled = asyncio.Event()
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one sample at a time: stores are opened and closed

    # -- what the pages read ---------------------------------------------------------

    def names(self) -> list[str]:
        """Return the names of the queues last listed, sorted."""
        return sorted(self._views)

    def view(self, name: str) -> QueueView | None:
        """Return what was last read of queue *name*, or ``None`` if it was not listed."""
        return self._views.get(name)

    def overview(self) -> dict[str, Any]:
        """Return every queue's summary and its recent history, as JSON-ready values."""
        return {
            "version": self.version,
            "error": self.error,
            "queues": [
                {**view.summary(), "history": [p.as_json() for p in view.history]}
                for view in map(self._views.__getitem__, self.names())
            ],
        }

    def latest(self) -> dict[str, Any]:
        """Return every queue's summary and its newest point only (an event's payload)."""
        return {
            "version": self.version,
            "error": self.error,
            "queues": [
                {**view.summary(), "point": view.history[-1].as_json() if view.history else None}
                for view in map(self._views.__getitem__, self.names())
            ],
        }

    async def next_version(self, seen: int, timeout: float) -> int:
        """Wait until a sample newer than version *seen* is taken, or *timeout* passes."""
        if self.version <= seen and not self.closing:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._sampled.wait(), timeout)
        return self.version

    def end_streams(self) -> None:
        """Make every event stream end (the server is stopping), without waiting for them."""
        self.closing = True
        self._sampled.set()

    @contextlib.contextmanager
    def watching(self, name: str) -> Iterator[None]:
        """Mark queue *name* as shown in detail (its items and dead letters get read)."""
        self._watchers[name] = self._watchers.get(name, 0) + 1
        self._poke.set()
        try:
            yield
        finally:
            self._watchers[name] -= 1
            if not self._watchers[name]:
                del self._watchers[name]

    # -- changes -----------------------------------------------------------------------

    async def requeue(self, name: str, item_ids: Sequence[str] | None) -> int:
        """Put dead letters of queue *name* back (``None``: all), then sample it again."""
        async with self._lock:
            done = await (await self._store(name)).requeue_dead(item_ids)
            await self._sample(name)
        self._bump()
        return done

    async def purge(self, name: str, which: Purgeable) -> int:
        """Delete the waiting items, the dead letters or both, then sample it again."""
        async with self._lock:
            done = await (await self._store(name)).purge(which)
            await self._sample(name)
        self._bump()
        return done

    # -- the loop ----------------------------------------------------------------------

    async def start(self) -> None:
        """Take a first sample (raising what it raises), then go on in a task."""
        await self._tick(first=True)
        self._task = asyncio.create_task(self._run(), name="conveyor-dashboard-sampler")

    async def aclose(self) -> None:
        """Stop sampling and close every store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        async with self._lock:
            for name in list(self._stores):
                await self._close(name)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.interval)
            self._poke.clear()
            try:
                await self._tick(first=False)
            except Exception as exc:  # a page that stops updating would hide it: show it
                self.error = f"sampling failed: {exc!r}"
                self._bump()

    async def _tick(self, *, first: bool) -> None:
        async with self._lock:
            await self._list(raising=first)
            await asyncio.gather(*(self._sample(name) for name in list(self._views)))
        self._bump()

    async def relist(self) -> list[str]:
        """Read the store's list of queues now (a page named one not listed yet)."""
        async with self._lock:
            if time.monotonic() - self._listed_at > 0.5:
                await self._list(raising=False, force=True)
        return self.names()

    async def _list(self, *, raising: bool, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._listed_at < self._list_every:
            return
        try:
            listed = await list_queues(self.url)
        except ConveyorError as exc:
            if raising:
                raise
            self.error = str(exc)
            return
        self._listed_at = now
        self.error = None
        for name in listed:
            self._views.setdefault(name, QueueView(name))
        for name in set(self._views) - set(listed):
            await self._close(name)
            del self._views[name]

    def _bump(self) -> None:
        self.version += 1
        sampled, self._sampled = self._sampled, asyncio.Event()
        sampled.set()

    async def _store(self, name: str) -> Store:
        opened = self._stores.get(name)
        if opened is None:
            stack = contextlib.AsyncExitStack()
            store = await stack.enter_async_context(open_existing_store(self.url, name))
            opened = self._stores[name] = (stack, store)
        return opened[1]

    async def _close(self, name: str) -> None:
        opened = self._stores.pop(name, None)
        if opened is not None:
            with contextlib.suppress(ConveyorError):
                await opened[0].aclose()

    async def _sample(self, name: str) -> None:
        view = self._views.get(name)
        if view is None:
            return
        try:
            store = await self._store(name)
            counts = await store.counts()
            totals = await store.totals()
            oldest = await store.oldest_ready_age()
            if name in self._watchers:
                view.peeked = await store.peek(self.peek_limit)
                view.dead_letters = await store.dead_letters(self.dead_limit)
        except QueueNotFoundError as exc:
            view.error = str(exc)
            await self._close(name)
            return
        except ConveyorError as exc:
            view.error = str(exc)
            await self._close(name)  # reopened at the next tick
            return
        now = time.time()
        rate_in = _rate(view.put_total, totals.put, now - view.read_at)
        rate_out = _rate(view.finished_total, totals.finished, now - view.read_at)
        view.counts, view.oldest_age, view.error = counts, oldest, None
        view.put_total, view.finished_total, view.read_at = totals.put, totals.finished, now
        view.history.append(
            Point(now, counts.ready, counts.delayed, counts.leased, counts.dead, rate_in, rate_out)
        )
        while len(view.history) > self._points:
            view.history.popleft()


def _rate(before: int | None, after: int | None, seconds: float) -> float | None:
    if before is None or after is None or after < before or seconds <= 0:
        return None  # not counted, first sample, or the store's data was wiped
    return (after - before) / seconds
