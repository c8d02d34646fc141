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
default ``synchronous=FULL``, which also flushes each commit to the disk.  Each of them is
measured both ways an asyncio user may call it: through ``asyncio.to_thread``, and
straight from the loop ("direct", which blocks the loop for the length of each call);
conveyor's goals hold against the faster.

Growth (issue #13): the same file holding a backlog of 0, 1e5 and 1e6 items (scaled with
the run: ``--quick`` takes a tenth), filled with plain SQL before the clock starts.  At
each backlog a bounded put is held against an unbounded one, and getting with a task
waiting in ``join()`` against getting without one (goal 0.7 each: the cost of an
operation must not grow with the queue).  Then the engine's own limits, written as plain
SQL on one connection: ``get_many(100)`` against claim-then-acknowledge in two
transactions per 100 (goal 0.8), and one put per commit against a one-row transaction
(goal 1 / 1.5).  Across processes (``_sqlite_scale``): 1 / 4 / 16 processes putting and
getting one at a time, and the wake-up latency from a put in one process to a get in
another.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import conveyor

from ._common import get_workload, litequeue_done, put_workload, run_in_loop, scenario, split
from ._jobs import priority_scenario
from ._scenario import BenchOptions, Scenario
from ._sqlite_scale import scale_scenarios

__all__ = ["scenarios"]

TASKS = 8
_OTHERS: dict[str, str | None] = {
    "persist-queue": "persistqueue",
    "persist-queue (direct)": "persistqueue",
    "litequeue": "litequeue",
    "litequeue (direct)": "litequeue",
}
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
            litequeue_done(self.queue, message)

    async def put(self, item: int) -> None:
        await asyncio.to_thread(self._put, item)

    async def get_and_ack(self) -> None:
        await asyncio.to_thread(self._get_and_ack)


class _PersistQueueDirect(_PersistQueue):
    # Called straight from the loop: each call blocks it, so the tasks take turns.
    async def put(self, item: int) -> None:
        self.queue.put(item)

    async def get_and_ack(self) -> None:
        self.queue.ack(self.queue.get())


class _LiteQueueDirect(_LiteQueue):
    async def put(self, item: int) -> None:
        self._put(item)

    async def get_and_ack(self) -> None:
        self._get_and_ack()


async def _open(kind: str, path: Path) -> _Adapter:
    if kind == "conveyor":
        return await _Conveyor.open(path)
    if kind == "persist-queue":
        return _PersistQueue(path)
    if kind == "persist-queue (direct)":
        return _PersistQueueDirect(path)
    if kind == "litequeue (direct)":
        return _LiteQueueDirect(path)
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
    put_goals = dict.fromkeys(_OTHERS, 5.0)
    get_goals = dict.fromkeys(_OTHERS, 10.0)
    for tasks, n, goals in ((TASKS, 4_000, (put_goals, get_goals)), (1, 2_000, ({}, {}))):
        who = f"{tasks} tasks" if tasks > 1 else "1 task"
        for name, workload, goal in (
            ("put (durable)", _put_workload, goals[0]),
            ("get + task_done (durable ack)", _get_workload, goals[1]),
        ):
            make = functools.partial(workload, options, tasks=tasks)
            result.append(scenario("sqlite", f"{who}: {name}", n, make, _OTHERS, goal))
    result.append(
        priority_scenario(
            options, "sqlite", lambda: f"sqlite:///{_fresh_path(options, 'priority')}.db"
        )
    )
    result += _growth_scenarios(options) + _limit_scenarios(options)
    return result + scale_scenarios(options)


# -- growth: the same operations over a backlog -----------------------------------------

GROWTH_BACKLOGS = (0, 100_000, 1_000_000)


def _backlog_file(options: BenchOptions, backlog: int, n: int) -> Path:
    """Return a conveyor file holding *backlog* + *n* items, made once per run and size."""
    path = Path(options.workdir) / f"sqlite-backlog-{backlog}-{n}.db"
    if path.exists():
        return path

    async def create() -> float:
        queue = await conveyor.open_queue(f"sqlite:///{path}", name="bench")
        await queue.aclose()
        return 0.0

    run_in_loop(options, create)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Plain SQL, fast: the triggers count them as any put's items.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?)"
            " INSERT INTO items (queue, state, payload)"
            " SELECT (SELECT id FROM queues WHERE name = 'bench'), 0, CAST(i AS TEXT) FROM s",
            (backlog + n,),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path


def _copy(options: BenchOptions, base: Path) -> Path:
    path = _fresh_path(options, "growth")
    shutil.copyfile(base, f"{path}.db")
    return path


def _remove(path: Path) -> None:
    # A round's copy of a large backlog goes once measured: rounds would fill the disk.
    for suffix in (".db", ".db-wal", ".db-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


def _growth_put(options: BenchOptions, backlog: int, bounded: bool) -> Callable[[int], float]:
    def run(n: int) -> float:
        path = _copy(options, _backlog_file(options, backlog, 0))

        async def main() -> float:
            queue = await conveyor.open_queue(
                f"sqlite:///{path}.db", name="bench", maxsize=10**9 if bounded else 0
            )
            assert isinstance(queue, conveyor.DurableQueue)
            try:

                async def producer(count: int) -> None:
                    for i in range(count):
                        await queue.put(i)

                start = time.perf_counter()
                await asyncio.gather(*(producer(c) for c in split(n, TASKS)))
                await queue.flush()
                return time.perf_counter() - start
            finally:
                await queue.aclose()

        try:
            return run_in_loop(options, main)
        finally:
            _remove(path)

    return run


def _growth_get(options: BenchOptions, backlog: int, joining: bool) -> Callable[[int], float]:
    def run(n: int) -> float:
        path = _copy(options, _backlog_file(options, backlog, n))

        async def main() -> float:
            queue = await conveyor.open_queue(f"sqlite:///{path}.db", name="bench")
            assert isinstance(queue, conveyor.DurableQueue)
            joiner = asyncio.ensure_future(queue.join()) if joining else None
            try:

                async def consumer(count: int) -> None:
                    for _ in range(count):
                        await queue.get()
                        queue.task_done()

                await asyncio.sleep(0)  # the joiner waits from here on
                start = time.perf_counter()
                await asyncio.gather(*(consumer(c) for c in split(n, TASKS)))
                await queue.flush()
                return time.perf_counter() - start
            finally:
                if joiner is not None:
                    joiner.cancel()
                await queue.aclose()

        try:
            return run_in_loop(options, main)
        finally:
            _remove(path)

    return run


def _growth_scenarios(options: BenchOptions) -> list[Scenario]:
    result = []
    for full in GROWTH_BACKLOGS:
        backlog = int(full * min(options.scale, 1.0))
        label = f"backlog {backlog:,}"
        for name, workload, other in (
            ("bounded put (8 tasks)", _growth_put, "unbounded put"),
            ("get + task_done with join() waiting (8 tasks)", _growth_get, "without join()"),
        ):

            def make(contender: str, workload: Any = workload, backlog: int = backlog) -> Any:
                return workload(options, backlog, contender == "conveyor")

            result.append(
                scenario("sqlite", f"{label}: {name}", 2_000, make, {other: None}, {other: 0.7})
            )
    return result


# -- the engine's own limits, as plain SQL ---------------------------------------------

_RAW_SCHEMA = (
    "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, queue INTEGER NOT NULL,"
    " state INTEGER NOT NULL, lease_token TEXT, lease_deadline REAL, payload BLOB NOT NULL)",
    "CREATE INDEX items_by_state ON items (queue, state, id)",
)


def _raw_connection(options: BenchOptions) -> sqlite3.Connection:
    path = f"{_fresh_path(options, 'raw')}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in _RAW_SCHEMA:
        conn.execute(statement)
    return conn


def _raw_claim_ack(options: BenchOptions) -> Callable[[int], float]:
    def run(n: int) -> float:
        conn = _raw_connection(options)
        try:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO items (queue, state, payload) VALUES (1, 0, ?)",
                [(str(i).encode(),) for i in range(n)],
            )
            conn.execute("COMMIT")
            start = time.perf_counter()
            while True:
                conn.execute("BEGIN IMMEDIATE")
                rows = conn.execute(
                    "UPDATE items SET state = 1, lease_token = 't', lease_deadline = 1e12"
                    " WHERE id IN (SELECT id FROM items WHERE queue = 1 AND state = 0"
                    " ORDER BY id LIMIT 100) RETURNING id, payload"
                ).fetchall()
                conn.execute("COMMIT")
                if not rows:
                    return time.perf_counter() - start
                ids = [row[0] for row in rows]
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "DELETE FROM items WHERE state = 1 AND lease_token = 't' AND id IN ("
                    + ",".join("?" * len(ids))
                    + ")",
                    ids,
                )
                conn.execute("COMMIT")
        finally:
            conn.close()

    return run


def _raw_put(options: BenchOptions) -> Callable[[int], float]:
    def run(n: int) -> float:
        conn = _raw_connection(options)
        try:
            start = time.perf_counter()
            for i in range(n):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT INTO items (queue, state, payload) VALUES (1, 0, ?)", (str(i).encode(),)
                )
                conn.execute("COMMIT")
            return time.perf_counter() - start
        finally:
            conn.close()

    return run


def _conveyor_get_many(options: BenchOptions) -> Callable[[int], float]:
    def run(n: int) -> float:
        path = _fresh_path(options, "batch")

        async def main() -> float:
            queue = await conveyor.open_queue(f"sqlite:///{path}.db", name="bench")
            try:
                for start in range(0, n, 10_000):
                    await queue.put_many(range(start, min(n, start + 10_000)))
                begin = time.perf_counter()
                got = 0
                while got < n:
                    items = await queue.get_many(100)
                    got += len(items)
                    for _ in items:
                        queue.task_done()
                await queue.join()
                return time.perf_counter() - begin
            finally:
                await queue.aclose()

        return run_in_loop(options, main)

    return run


def _conveyor_single_put(options: BenchOptions) -> Callable[[int], float]:
    def run(n: int) -> float:
        path = _fresh_path(options, "single")

        async def main() -> float:
            queue = await conveyor.open_queue(f"sqlite:///{path}.db", name="bench")
            try:
                start = time.perf_counter()
                for i in range(n):
                    await queue.put(i)
                return time.perf_counter() - start
            finally:
                await queue.aclose()

        return run_in_loop(options, main)

    return run


def _limit_scenarios(options: BenchOptions) -> list[Scenario]:
    raw_batch, raw_put = "SQL: claim, ack (2 txn)", "SQL: 1-row txn"
    return [
        scenario(
            "sqlite",
            "get_many(100) + task_done",
            20_000,
            lambda c: _conveyor_get_many(options) if c == "conveyor" else _raw_claim_ack(options),
            {raw_batch: None},
            {raw_batch: 0.8},
        ),
        scenario(
            "sqlite",
            "1 task: put, one commit each",
            2_000,
            lambda c: _conveyor_single_put(options) if c == "conveyor" else _raw_put(options),
            {raw_put: None},
            {raw_put: 1 / 1.5},
        ),
    ]
