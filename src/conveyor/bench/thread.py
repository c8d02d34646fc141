"""Benchmark scenarios for ``conveyor.ThreadQueue``: threads and event loops sharing a queue.

Three workloads, all through a bounded queue (so that both sides block now and then,
which is where sync/async bridges spend their time):

* a thread producer feeding a coroutine consumer;
* a coroutine producer feeding a coroutine consumer in the same loop;
* a thread producer feeding a thread consumer.

Contenders: conveyor, then janus, culsans and aiologic's ``Queue`` (whichever are
installed), and ``queue.Queue`` for the thread-to-thread workload.
"""

from __future__ import annotations

import asyncio
import importlib
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import conveyor

from ._common import run_in_loop, scenario
from ._scenario import BenchOptions, Scenario

__all__ = ["scenarios"]

MAXSIZE = 64
"""The bound of every queue: small enough that producers block regularly."""

_OTHERS: dict[str, str | None] = {"janus": "janus", "culsans": "culsans", "aiologic": "aiologic"}


def _faces(kind: str) -> tuple[Any, Any, Callable[[], Awaitable[None]]]:
    # The sync face, the async face and the closer of a new *kind* queue.  Called inside
    # the running loop: janus binds to the loop that first uses it.
    if kind == "conveyor":
        tq: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(MAXSIZE)
        return tq.sync_q, tq.async_q, tq.aclose
    if kind == "janus":
        import janus

        jq: Any = janus.Queue(MAXSIZE)

        async def close_janus() -> None:
            jq.close()
            await jq.wait_closed()

        return jq.sync_q, jq.async_q, close_janus
    if kind == "culsans":
        import culsans

        cq: Any = culsans.Queue(MAXSIZE)

        async def close_culsans() -> None:
            return None

        return cq.sync_q, cq.async_q, close_culsans
    raise ValueError(kind)


def _async_ends(
    kind: str, thread_producer: bool
) -> tuple[Any, Any, Callable[[], Awaitable[None]] | None]:
    # put, get and closer of a new *kind* queue whose consumer is a coroutine and whose
    # producer is a thread (blocking put) or, without *thread_producer*, a coroutine.
    if kind == "aiologic":
        import aiologic

        aq: Any = aiologic.Queue(MAXSIZE)
        return (aq.green_put if thread_producer else aq.async_put), aq.async_get, None
    sync_q, async_q, close = _faces(kind)
    return (sync_q.put if thread_producer else async_q.put), async_q.get, close


def _producer_thread(put: Callable[[int], object], n: int) -> threading.Thread:
    # A thread (not started) that puts 0 .. n - 1 with the blocking *put*.
    def produce() -> None:
        for i in range(n):
            put(i)

    return threading.Thread(target=produce)


def _thread_to_async(options: BenchOptions, kind: str) -> Callable[[int], float]:
    def run(n: int) -> float:
        async def main() -> float:
            put, get, close = _async_ends(kind, thread_producer=True)
            producer = _producer_thread(put, n)
            start = time.perf_counter()
            producer.start()
            for _ in range(n):
                await get()
            elapsed = time.perf_counter() - start
            producer.join()
            if close is not None:
                await close()
            return elapsed

        return run_in_loop(options, main)

    return run


def _async_to_async(options: BenchOptions, kind: str) -> Callable[[int], float]:
    def run(n: int) -> float:
        async def main() -> float:
            put, get, close = _async_ends(kind, thread_producer=False)

            async def produce() -> None:
                for i in range(n):
                    await put(i)

            start = time.perf_counter()
            producer = asyncio.ensure_future(produce())
            for _ in range(n):
                await get()
            await producer
            elapsed = time.perf_counter() - start
            if close is not None:
                await close()
            return elapsed

        return run_in_loop(options, main)

    return run


def _thread_to_thread(kind: str) -> Callable[[int], float]:
    def run(n: int) -> float:
        if kind == "queue.Queue":
            q: Any = queue.Queue(MAXSIZE)
            put, get = q.put, q.get
        elif kind == "aiologic":
            import aiologic

            q = aiologic.Queue(MAXSIZE)
            put, get = q.green_put, q.green_get
        elif kind == "conveyor":
            q = conveyor.ThreadQueue(MAXSIZE)
            put, get = q.sync_q.put, q.sync_q.get
        else:
            # janus and culsans sync faces work without a running loop.
            module = importlib.import_module(kind)
            q = module.Queue(MAXSIZE)
            put, get = q.sync_q.put, q.sync_q.get
        producer = _producer_thread(put, n)
        start = time.perf_counter()
        producer.start()
        for _ in range(n):
            get()
        elapsed = time.perf_counter() - start
        producer.join()
        return elapsed

    return run


def scenarios(options: BenchOptions) -> list[Scenario]:
    """Return the ThreadQueue scenarios, with conveyor first in each.

    Args:
        options: The run's settings (event loop kind, scale).

    Returns:
        Thread -> coroutine, coroutine -> coroutine and thread -> thread, each through a
        queue bounded to ``MAXSIZE`` items.
    """
    bridge_goals = {"janus": 3.0, "culsans": 1.5}
    return [
        scenario(
            "thread",
            f"thread put -> async get (maxsize={MAXSIZE})",
            100_000,
            lambda kind: _thread_to_async(options, kind),
            _OTHERS,
            bridge_goals,
        ),
        scenario(
            "thread",
            f"async put -> async get, one loop (maxsize={MAXSIZE})",
            100_000,
            lambda kind: _async_to_async(options, kind),
            _OTHERS,
            bridge_goals,
        ),
        scenario(
            "thread",
            f"thread put -> thread get (maxsize={MAXSIZE})",
            100_000,
            _thread_to_thread,
            {"queue.Queue": None, **_OTHERS},
            {"queue.Queue": 1.0},
        ),
    ]
