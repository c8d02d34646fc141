"""SQLite scenarios across processes (issue #13): putting and getting, wake-up latency.

* 1 / 4 / 16 processes on one file, each one task putting one item at a time
  (``await put()``), then getting and acknowledging one at a time: conveyor against
  litequeue and persist-queue.  Each process calls those two straight from its event
  loop ("direct"): with one task a process there is nothing to overlap, so that is the
  faster of the two ways an asyncio user calls them (``asyncio.to_thread`` only adds a
  hand-off), and the one to judge against.  Goal: at least litequeue's put at every
  process count.  persist-queue puts only: its ``SQLiteAckQueue.get()`` reads, then
  marks an item in two steps, so two processes may take the same one.
* Cross-process wake-up on an idle queue, from ``put()`` called in one process to
  ``get()`` returning in another (the put's commit included: ``put()`` may return after
  the getter has its item), p50 and p99, shown in milliseconds (measured as 1 /
  latency, so that a ratio above 1 means conveyor is faster).  The goals are absolute
  (p50 at most 1 ms, p99 at most 5 ms): each is a contender of its own, a latency that
  never varies, so that the ratio is met when conveyor's latency is at most the goal's.
  The alternative is
  litequeue polled every millisecond from the loop, which is what its users do (it has
  no blocking get; persist-queue's blocking ``get()`` sees another process's put only
  at its next 10-second tick).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import conveyor

from ._common import installed, litequeue_done, process_context, time_processes
from ._scenario import BenchOptions, Contender, Scenario

__all__ = ["scale_scenarios"]

_MODULES = {"litequeue": "litequeue", "persist-queue": "persistqueue"}
_counter = itertools.count()


def _path(options: BenchOptions, kind: str) -> str:
    return str(Path(options.workdir) / f"sqlite-procs-{kind}-{os.getpid()}-{next(_counter)}.db")


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.remove(path + suffix)


class _Queue:
    """One contender's queue in one process: put, get-and-acknowledge, close."""

    def __init__(self, kind: str, path: str) -> None:
        self.kind = kind
        self.path = path
        self.queue: Any = None

    async def open(self) -> None:
        if self.kind == "conveyor":
            self.queue = await conveyor.open_queue(f"sqlite:///{self.path}", name="bench")
        elif self.kind == "litequeue":
            from litequeue import LiteQueue  # type: ignore[import-untyped]

            self.queue = LiteQueue(self.path)
        else:
            from persistqueue import SQLiteAckQueue

            # One thread uses it; auto_commit (the default) commits each put.
            self.queue = SQLiteAckQueue(self.path, multithreading=False)

    async def put(self, item: int) -> None:
        if self.kind == "conveyor":
            await self.queue.put(item)
        elif self.kind == "litequeue":
            self.queue.put(str(item))
        else:
            self.queue.put(item)

    async def get_and_ack(self) -> None:
        if self.kind == "conveyor":
            await self.queue.get()
            self.queue.task_done()
        elif self.kind == "litequeue":
            litequeue_done(self.queue, await self.pop())
        else:
            raise NotImplementedError("persist-queue is measured putting only")

    async def pop(self) -> Any:
        """Take litequeue's oldest message, polling every millisecond until there is one."""
        # litequeue has no blocking get: polling is how its users wait.
        while (message := self.queue.pop()) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        return message

    async def close(self) -> None:
        """Close the queue; conveyor's once its puts and acknowledgements are written."""
        if self.kind == "conveyor":
            # flush(), not join(): join() would wait for the other processes' items too.
            await self.queue.flush()
            await self.queue.aclose()
            return
        close = getattr(self.queue, "close", None)
        if close is not None:
            close()


def _process_main(kind: str, path: str, work: str, n: int, go: Any, out: Any) -> None:
    async def main() -> None:
        queue = _Queue(kind, path)
        await queue.open()
        out.put(("ready", 0.0, 0.0))
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        start = time.perf_counter()
        for i in range(n):
            if work == "put":
                await queue.put(i)
            else:
                await queue.get_and_ack()
        await queue.close()  # conveyor: every acknowledgement written
        out.put(("done", start, time.perf_counter()))

    asyncio.run(main())


def _prefill(kind: str, path: str, n: int) -> None:
    async def main() -> None:
        queue = _Queue(kind, path)
        await queue.open()
        if kind == "conveyor":
            await queue.queue.put_many(range(n))
        else:
            for i in range(n):
                await queue.put(i)
        await queue.close()

    asyncio.run(main())


def _processes(options: BenchOptions, kind: str, work: str, procs: int) -> Callable[[int], float]:
    def run(n: int) -> float:
        path = _path(options, kind)
        each = max(1, n // procs)
        try:
            # The file made (and, for getting, filled) before the processes start, so
            # that they do not race to create it.
            _prefill(kind, path, each * procs if work == "get" else 0)
            span = time_processes(_process_main, (kind, path, work, each), procs)
        finally:
            _remove(path)
        # Whole items only: what the processes did, scaled to the n the runner divides by.
        return span * n / (each * procs)

    return run


def _process_scenarios(options: BenchOptions) -> list[Scenario]:
    scenarios = []
    for work, label in (("put", "put"), ("get", "get + ack")):
        for procs in (1, 4, 16):
            contenders = [Contender("conveyor", _processes(options, "conveyor", work, procs))]
            missing = {}
            others = _MODULES if work == "put" else {"litequeue": "litequeue"}
            for other, module in others.items():
                if installed(module):
                    contenders.append(Contender(other, _processes(options, other, work, procs)))
                else:
                    missing[other] = f"not installed (pip install {other})"
            scenarios.append(
                Scenario(
                    "sqlite",
                    f"{procs} process{'es' if procs > 1 else ''} x 1 task: {label}, one at a time",
                    2_000,
                    contenders,
                    goals={"litequeue": 1.0} if work == "put" else {},
                    missing=missing,
                )
            )
    return scenarios


# -- wake-up latency ---------------------------------------------------------------------


def _latency_getter(kind: str, path: str, n: int, ready: Any, out: Any) -> None:
    async def main() -> None:
        stamps = []
        queue = _Queue(kind, path)
        await queue.open()
        ready.set()
        for _ in range(n):
            if kind == "conveyor":
                await queue.queue.get()
                stamps.append(time.time())
                queue.queue.task_done()
            else:
                message = await queue.pop()
                stamps.append(time.time())
                litequeue_done(queue.queue, message)
        await queue.close()
        out.put(stamps)

    asyncio.run(main())


def _latency_putter(kind: str, path: str, n: int, ready: Any, out: Any) -> None:
    async def main() -> None:
        stamps = []
        queue = _Queue(kind, path)
        await queue.open()
        await asyncio.get_running_loop().run_in_executor(None, ready.wait)
        await asyncio.sleep(0.2)  # the getter waits by now
        for i in range(n):
            stamps.append(time.time())
            await queue.put(i)
            await asyncio.sleep(0.003)  # idle again before the next one
        await queue.close()
        out.put(stamps)

    asyncio.run(main())


def _latencies(options: BenchOptions, kind: str, n: int) -> list[float]:
    path = _path(options, f"latency-{kind}")
    try:
        _prefill(kind, path, 0)
        context: Any = process_context()
        ready, got, put = context.Event(), context.Queue(), context.Queue()
        getter = context.Process(target=_latency_getter, args=(kind, path, n, ready, got))
        putter = context.Process(target=_latency_putter, args=(kind, path, n, ready, put))
        getter.start()
        putter.start()
        try:
            got_at, put_at = got.get(timeout=120), put.get(timeout=120)
        finally:
            for child in (getter, putter):
                child.join(timeout=30)
                if child.is_alive():
                    child.kill()
    finally:
        _remove(path)
    return sorted(max(b - a, 1e-6) for a, b in zip(put_at, got_at, strict=True))


def _latency(options: BenchOptions, kind: str, quantile: float) -> Callable[[int], float]:
    def run(n: int) -> float:
        latencies = _latencies(options, kind, max(20, n))
        return latencies[min(len(latencies) - 1, int(len(latencies) * quantile))] * n

    return run


def _fixed(latency: float, n: int) -> float:
    # A goal as a contender: n wake-ups at exactly that latency each.
    return n * latency


def _latency_scenarios(options: BenchOptions) -> list[Scenario]:
    scenarios = []
    for label, quantile, goal in (("p50", 0.5, 0.001), ("p99", 0.99, 0.005)):
        goal_name = f"goal: {goal * 1000:g} ms"
        contenders = [
            Contender("conveyor", _latency(options, "conveyor", quantile)),
            Contender(goal_name, functools.partial(_fixed, goal)),
        ]
        missing = {}
        if installed("litequeue"):
            contenders.append(
                Contender("litequeue, polled", _latency(options, "litequeue", quantile))
            )
        else:
            missing["litequeue, polled"] = "not installed (pip install litequeue)"
        scenarios.append(
            Scenario(
                "sqlite",
                f"cross-process put -> get: {label} latency",
                300,
                contenders,
                goals={goal_name: 1.0},
                missing=missing,
                unit="latency",
            )
        )
    return scenarios


def scale_scenarios(options: BenchOptions) -> list[Scenario]:
    """Return the scenarios across processes (see the module docstring)."""
    return _process_scenarios(options) + _latency_scenarios(options)
