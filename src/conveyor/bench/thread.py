"""Benchmark scenarios for ``conveyor.ThreadQueue``: threads and event loops sharing a queue.

Three workloads, all through a bounded queue (so that both sides block now and then,
which is where sync/async bridges spend their time):

* a thread producer feeding a coroutine consumer;
* a coroutine producer feeding a coroutine consumer in the same loop;
* a thread producer feeding a thread consumer.

Contenders: conveyor, then janus, culsans and aiologic's ``Queue`` (whichever are
installed), and :class:`queue.Queue` for the thread-to-thread workload.
"""

from __future__ import annotations

import asyncio
import importlib.util
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import conveyor

from ._scenario import BenchOptions, Contender, Scenario

__all__ = ["scenarios"]

MAXSIZE = 64
"""The bound of every queue: small enough that producers block regularly."""

_OTHERS = ("janus", "culsans", "aiologic")


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _new_loop(options: BenchOptions) -> asyncio.AbstractEventLoop:
    if options.loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _run_in_loop(options: BenchOptions, main: Callable[[], Awaitable[float]]) -> float:
    loop = _new_loop(options)
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


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


def _thread_to_async(options: BenchOptions, kind: str) -> Callable[[int], float]:
    def run(n: int) -> float:
        async def main() -> float:
            if kind == "aiologic":
                import aiologic

                aq: Any = aiologic.Queue(MAXSIZE)
                put, get = aq.green_put, aq.async_get
                close: Callable[[], Awaitable[None]] | None = None
            else:
                sync_q, async_q, close = _faces(kind)
                put, get = sync_q.put, async_q.get

            def produce() -> None:
                for i in range(n):
                    put(i)

            producer = threading.Thread(target=produce)
            start = time.perf_counter()
            producer.start()
            for _ in range(n):
                await get()
            elapsed = time.perf_counter() - start
            producer.join()
            if close is not None:
                await close()
            return elapsed

        return _run_in_loop(options, main)

    return run


def _async_to_async(options: BenchOptions, kind: str) -> Callable[[int], float]:
    def run(n: int) -> float:
        async def main() -> float:
            if kind == "aiologic":
                import aiologic

                aq: Any = aiologic.Queue(MAXSIZE)
                put, get = aq.async_put, aq.async_get
                close: Callable[[], Awaitable[None]] | None = None
            else:
                _, async_q, close = _faces(kind)
                put, get = async_q.put, async_q.get

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

        return _run_in_loop(options, main)

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

        def produce() -> None:
            for i in range(n):
                put(i)

        producer = threading.Thread(target=produce)
        start = time.perf_counter()
        producer.start()
        for _ in range(n):
            get()
        elapsed = time.perf_counter() - start
        producer.join()
        return elapsed

    return run


def _contenders(
    names: tuple[str, ...], make: Callable[[str], Callable[[int], float]]
) -> tuple[list[Contender], dict[str, str]]:
    contenders = [Contender("conveyor", make("conveyor"))]
    missing: dict[str, str] = {}
    for name in names:
        if name == "queue.Queue" or _installed(name):
            contenders.append(Contender(name, make(name)))
        else:
            missing[name] = f"not installed (pip install {name})"
    return contenders, missing


def scenarios(options: BenchOptions) -> list[Scenario]:
    """Return the ThreadQueue scenarios, with conveyor first in each.

    Args:
        options: The run's settings (event loop kind, scale).

    Returns:
        Thread -> coroutine, coroutine -> coroutine and thread -> thread, each through a
        queue bounded to :data:`MAXSIZE` items.
    """
    result = []
    contenders, missing = _contenders(_OTHERS, lambda kind: _thread_to_async(options, kind))
    result.append(
        Scenario(
            group="thread",
            name=f"thread put -> async get (maxsize={MAXSIZE})",
            n=100_000,
            contenders=contenders,
            goals={"janus": 3.0, "culsans": 1.5},
            missing=missing,
        )
    )
    contenders, missing = _contenders(_OTHERS, lambda kind: _async_to_async(options, kind))
    result.append(
        Scenario(
            group="thread",
            name=f"async put -> async get, one loop (maxsize={MAXSIZE})",
            n=100_000,
            contenders=contenders,
            goals={"janus": 3.0, "culsans": 1.5},
            missing=missing,
        )
    )
    contenders, missing = _contenders(("queue.Queue", *_OTHERS), _thread_to_thread)
    result.append(
        Scenario(
            group="thread",
            name=f"thread put -> thread get (maxsize={MAXSIZE})",
            n=100_000,
            contenders=contenders,
            goals={"queue.Queue": 1.0},
            missing=missing,
        )
    )
    return result
