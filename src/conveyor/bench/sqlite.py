"""Benchmark scenarios for durable queues on SQLite.

The workload asyncio users run on a durable queue: 8 producer tasks put N items, then 8
consumer tasks get and acknowledge them.  Putting and getting are timed as two scenarios
(each from a fresh file; the get scenario's file is filled before the clock starts), plus
the same two with a single task, one item after the other.  An acknowledgement counts
only once it is written: conveyor's runs end with ``await q.join()``.

Contenders, each at its defaults: conveyor (``durability="process"``); persist-queue's
``SQLiteAckQueue`` (``multithreading=True``, which its documentation requires for use from
several threads) and litequeue's ``LiteQueue`` (one, behind a lock: its connection cannot
run two transactions at once, and one per thread fails with "database is locked").  Both
are synchronous, so they run the way an asyncio user runs them: each call in a thread
through ``asyncio.to_thread``, 8 at a time.  conveyor and litequeue use WAL with
``synchronous=NORMAL`` (a commit survives a process crash); persist-queue keeps SQLite's
default ``synchronous=FULL``, which also flushes each commit to the disk.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import conveyor

from ._common import get_workload, put_workload, scenario, split
from ._scenario import BenchOptions, Scenario

__all__ = ["scenarios"]

TASKS = 8
_OTHERS: dict[str, str | None] = {"persist-queue": "persistqueue", "litequeue": "litequeue"}
_counter = itertools.count()


def _fresh_path(options: BenchOptions, kind: str) -> Path:
    return Path(options.workdir) / f"sqlite-{kind}-{next(_counter)}"


async def _timed(workers: list[Callable[[], Awaitable[None]]]) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(worker() for worker in workers))
    return time.perf_counter() - start


# -- the queues, behind one small adapter each -------------------------------------------


class _Adapter:
    """put / get-and-acknowledge / fill / close for one contender, inside a running loop."""

    async def put(self, item: int) -> None:
        raise NotImplementedError

    async def get_and_ack(self) -> None:
        raise NotImplementedError

    async def settle(self) -> None:
        """Wait until every write (puts, acknowledgements) is durable."""

    async def consume(self, n: int, tasks: int) -> float:
        """Get and acknowledge *n* items with *tasks* concurrent consumers.

        Returns:
            ``time.perf_counter()`` once every acknowledgement is durable.
        """

        async def consumer(count: int) -> None:
            for _ in range(count):
                await self.get_and_ack()

        await asyncio.gather(*(consumer(c) for c in split(n, tasks)))
        await self.settle()
        return time.perf_counter()

    async def fill(self, n: int) -> None:
        for i in range(n):
            await self.put(i)
        await self.settle()

    async def close(self) -> None:
        return None


class _Conveyor(_Adapter):
    def __init__(self, queue: conveyor.DurableQueue[int]) -> None:
        self.queue = queue

    @classmethod
    async def open(cls, path: Path) -> _Conveyor:
        queue = await conveyor.open_queue(f"sqlite:///{path}.db", name="bench")
        assert isinstance(queue, conveyor.DurableQueue)
        return cls(queue)

    async def put(self, item: int) -> None:
        await self.queue.put(item)

    async def get_and_ack(self) -> None:
        await self.queue.get()
        self.queue.task_done()

    async def settle(self) -> None:
        if self.queue.statistics().total_got:
            await self.queue.join()
        else:
            await self.queue.flush()

    async def fill(self, n: int) -> None:
        for start in range(0, n, 10_000):
            await self.queue.put_many(range(start, min(n, start + 10_000)))

    async def close(self) -> None:
        await self.queue.aclose()


class _PersistQueue(_Adapter):
    def __init__(self, path: Path) -> None:
        from persistqueue import SQLiteAckQueue

        self.queue: Any = SQLiteAckQueue(str(path), multithreading=True)

    async def put(self, item: int) -> None:
        await asyncio.to_thread(self.queue.put, item)

    async def get_and_ack(self) -> None:
        item = await asyncio.to_thread(self.queue.get)
        await asyncio.to_thread(self.queue.ack, item)


class _LiteQueue(_Adapter):
    # One queue, one lock: its connection cannot run two transactions at once, and one
    # connection per thread fails with "database is locked" under 8 concurrent writers.
    def __init__(self, path: Path) -> None:
        from litequeue import LiteQueue  # type: ignore[import-untyped]

        self.queue: Any = LiteQueue(str(path) + ".db")
        self.lock = threading.Lock()

    def _put(self, item: int) -> None:
        with self.lock:
            self.queue.put(str(item))

    def _get_and_ack(self) -> None:
        with self.lock:
            message = self.queue.pop()
        with self.lock:
            self.queue.done(message.message_id)

    async def put(self, item: int) -> None:
        await asyncio.to_thread(self._put, item)

    async def get_and_ack(self) -> None:
        await asyncio.to_thread(self._get_and_ack)


async def _open(kind: str, path: Path) -> _Adapter:
    if kind == "conveyor":
        return await _Conveyor.open(path)
    if kind == "persist-queue":
        return _PersistQueue(path)
    return _LiteQueue(path)


# -- the workloads -----------------------------------------------------------------------


def _put_workload(options: BenchOptions, kind: str, tasks: int) -> Callable[[int], float]:
    return put_workload(options, lambda: _open(kind, _fresh_path(options, kind)), tasks)


def _get_workload(options: BenchOptions, kind: str, tasks: int) -> Callable[[int], float]:
    return get_workload(options, lambda: _open(kind, _fresh_path(options, kind)), tasks)


def scenarios(options: BenchOptions) -> list[Scenario]:
    """Return the SQLite scenarios, with conveyor first in each.

    Args:
        options: The run's settings (event loop kind, scale, work directory).

    Returns:
        8 producer tasks putting, 8 consumer tasks getting and acknowledging, and the
        same with one task.
    """
    result = []
    for tasks, n, goals in (
        (
            TASKS,
            4_000,
            ({"persist-queue": 5.0, "litequeue": 5.0}, {"persist-queue": 10.0, "litequeue": 10.0}),
        ),
        (1, 2_000, ({}, {})),
    ):
        who = f"{tasks} tasks" if tasks > 1 else "1 task"
        for name, workload, goal in (
            ("put (durable)", _put_workload, goals[0]),
            ("get + task_done (durable ack)", _get_workload, goals[1]),
        ):
            make = functools.partial(workload, options, tasks=tasks)
            result.append(scenario("sqlite", f"{who}: {name}", n, make, _OTHERS, goal))
    return result
