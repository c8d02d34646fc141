"""Benchmark scenarios for the in-memory ``conveyor.Queue`` against ``asyncio.Queue``.

Six workloads, each in one event loop:

* ``put_nowait`` then ``get_nowait``, item by item;
* awaited ``put`` then ``get`` that never have to wait;
* one producer task and one consumer task through an unbounded queue;
* ping-pong: two tasks strictly alternating through two queues of ``maxsize=1``, also
  against the floor: the same exchange through bare futures, no queue at all (the most
  any queue built on asyncio futures can do; the goal is to be within 10% of it);
* four producers and four consumers through a queue of ``maxsize=100``;
* one consumer draining a full queue: conveyor's ``get_many(100)`` against per-item
  ``get()``;
* ``PriorityQueue`` and ``LifoQueue``: put then get, nowait and awaited, with 1,000 items
  always in the queue (a heap that deep is where the order costs);
* cancelling 30,000 getters (at scale 1) parked on an empty queue, in a shuffled order (each leaver
  must be taken out of the line without disturbing the others').

Contenders: conveyor, ``asyncio.Queue``, conveyor's pure-Python queue (what
``conveyor.Queue`` is where its C accelerator was not built), then the async faces of
janus, culsans and aiologic's ``Queue`` where they are installed (not for ``get_many``,
which they lack).
The goals (the ratio conveyor aims for) are against ``asyncio.Queue``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib.util
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import conveyor
from conveyor._queue import PurePythonQueue

from ._scenario import BenchOptions, Contender, Scenario

__all__ = ["ping_pong_floor", "scenarios"]

_OTHERS = ("janus", "culsans", "aiologic")
_FLOOR = "bare futures (the floor)"

Workload = Callable[["Factory", int], Awaitable[float]]


@dataclasses.dataclass(frozen=True)
class Ops:
    """The four queue operations of one contender, as bound callables."""

    put: Callable[[Any], Awaitable[None]]
    get: Callable[[], Awaitable[Any]]
    put_nowait: Callable[[Any], None]
    get_nowait: Callable[[], Any]
    close: Callable[[], Awaitable[None]] | None = None


Factory = Callable[[int], Ops]


def _standard(q: Any, close: Callable[[], Awaitable[None]] | None = None) -> Ops:
    return Ops(q.put, q.get, q.put_nowait, q.get_nowait, close)


def _make_conveyor(maxsize: int) -> Ops:
    return _standard(conveyor.Queue(maxsize))


def _make_conveyor_pure(maxsize: int) -> Ops:
    # What conveyor.Queue is where its C accelerator was not built.
    return _standard(PurePythonQueue(maxsize))


def _make_asyncio(maxsize: int) -> Ops:
    return _standard(asyncio.Queue(maxsize))


def _make_janus(maxsize: int) -> Ops:
    import janus

    # janus binds to the running loop, so this runs inside it (as every factory does).
    jq: Any = janus.Queue(maxsize)
    return _standard(jq.async_q, jq.aclose)


def _make_culsans(maxsize: int) -> Ops:
    import culsans

    cq: Any = culsans.Queue(maxsize)
    return _standard(cq.async_q, cq.aclose)


def _make_aiologic(maxsize: int) -> Ops:
    import aiologic

    # aiologic spells "unbounded" None, not 0.
    q: Any = aiologic.Queue(maxsize or None)
    return Ops(
        q.async_put,
        q.async_get,
        functools.partial(q.green_put, blocking=False),
        functools.partial(q.green_get, blocking=False),
    )


_FACTORIES: dict[str, Factory] = {
    "conveyor": _make_conveyor,
    "conveyor, pure Python": _make_conveyor_pure,
    "asyncio.Queue": _make_asyncio,
    "janus": _make_janus,
    "culsans": _make_culsans,
    "aiologic": _make_aiologic,
}


async def _close(*queues: Ops) -> None:
    for ops in queues:
        if ops.close is not None:
            await ops.close()


# -- workloads: each returns the seconds its measured part took --------------------------


async def _nowait_pairs(make: Factory, n: int) -> float:
    q = make(0)
    put_nowait, get_nowait = q.put_nowait, q.get_nowait
    start = time.perf_counter()
    for i in range(n):
        put_nowait(i)
        get_nowait()
    elapsed = time.perf_counter() - start
    await _close(q)
    return elapsed


async def _awaited_pairs(make: Factory, n: int) -> float:
    q = make(0)
    put, get = q.put, q.get
    start = time.perf_counter()
    for i in range(n):
        await put(i)
        await get()
    elapsed = time.perf_counter() - start
    await _close(q)
    return elapsed


async def _one_to_one(make: Factory, n: int) -> float:
    q = make(0)
    put, get = q.put, q.get

    async def producer() -> None:
        for i in range(n):
            await put(i)
        await put(None)

    async def consumer() -> None:
        while await get() is not None:
            pass

    start = time.perf_counter()
    await asyncio.gather(producer(), consumer())
    elapsed = time.perf_counter() - start
    await _close(q)
    return elapsed


async def _ping_pong(make: Factory, n: int) -> float:
    ping, pong = make(1), make(1)

    async def server() -> None:
        get, put = ping.get, pong.put
        for _ in range(n):
            await put(await get())

    async def client() -> None:
        put, get = ping.put, pong.get
        for i in range(n):
            await put(i)
            await get()

    start = time.perf_counter()
    await asyncio.gather(server(), client())
    elapsed = time.perf_counter() - start
    await _close(ping, pong)
    return elapsed


async def ping_pong_floor(n: int) -> float:
    """Run *n* ping-pong round trips through bare futures; return the seconds they took.

    Two tasks alternating need two task switches per round trip whatever the queue: one
    future per hand-over is the least any queue built on asyncio futures can do.
    """
    loop = asyncio.get_running_loop()
    to_server: asyncio.Future[int] = loop.create_future()
    to_client: asyncio.Future[int] = loop.create_future()

    async def server() -> None:
        nonlocal to_server, to_client
        for _ in range(n):
            value = await to_server
            to_server = loop.create_future()
            to_client.set_result(value)

    async def client() -> None:
        nonlocal to_server, to_client
        for i in range(n):
            to_server.set_result(i)
            await to_client
            to_client = loop.create_future()

    start = time.perf_counter()
    await asyncio.gather(server(), client())
    return time.perf_counter() - start


async def _many_to_many(make: Factory, n: int, tasks: int = 4, maxsize: int = 100) -> float:
    q = make(maxsize)
    put, get = q.put, q.get
    each = n // tasks

    async def producer() -> None:
        for i in range(each):
            await put(i)

    async def consumer() -> None:
        while await get() is not None:
            pass

    async def produce_all() -> None:
        await asyncio.gather(*(producer() for _ in range(tasks)))
        for _ in range(tasks):
            await put(None)

    start = time.perf_counter()
    await asyncio.gather(produce_all(), *(consumer() for _ in range(tasks)))
    elapsed = time.perf_counter() - start
    await _close(q)
    return elapsed


async def _drain_get_many(n: int) -> float:
    q: conveyor.Queue[int] = conveyor.Queue()
    for i in range(n):
        q.put_nowait(i)
    get_many = q.get_many
    start = time.perf_counter()
    left = n
    while left:
        left -= len(await get_many(100))
    return time.perf_counter() - start


async def _drain_get(make: Factory, n: int) -> float:
    q = make(0)
    for i in range(n):
        q.put_nowait(i)
    get = q.get
    start = time.perf_counter()
    for _ in range(n):
        await get()
    elapsed = time.perf_counter() - start
    await _close(q)
    return elapsed


_STEADY = 1_000
"""Items kept in a priority or LIFO queue while it is measured."""


def _steady(q: Any) -> tuple[Any, list[float]]:
    # Random priorities (seeded: every contender sees the same), so that each put and get
    # walks the heap as a real workload's would.
    values = random.Random(5).sample(range(10 * _STEADY), _STEADY)
    for value in values:
        q.put_nowait(value)
    return q, [value + 0.5 for value in values]


async def _kind_nowait(cls: Callable[[], Any], n: int) -> float:
    q, values = _steady(cls())
    put_nowait, get_nowait = q.put_nowait, q.get_nowait
    start = time.perf_counter()
    for i in range(n):
        put_nowait(values[i % _STEADY])
        get_nowait()
    return time.perf_counter() - start


async def _kind_awaited(cls: Callable[[], Any], n: int) -> float:
    q, values = _steady(cls())
    put, get = q.put, q.get
    start = time.perf_counter()
    for i in range(n):
        await put(values[i % _STEADY])
        await get()
    return time.perf_counter() - start


async def _cancel_parked(cls: Callable[[], Any], n: int) -> float:
    q = cls()
    getters = [asyncio.ensure_future(q.get()) for _ in range(n)]
    await asyncio.sleep(0)
    random.Random(3).shuffle(getters)
    start = time.perf_counter()
    for getter in getters:
        getter.cancel()
    await asyncio.gather(*getters, return_exceptions=True)
    return time.perf_counter() - start


# -- wiring -------------------------------------------------------------------------------


def _new_loop(options: BenchOptions) -> asyncio.AbstractEventLoop:
    if options.loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _runner(
    options: BenchOptions, main: Callable[[int], Awaitable[float]]
) -> Callable[[int], float]:
    def run(n: int) -> float:
        loop = _new_loop(options)
        try:
            return loop.run_until_complete(main(n))
        finally:
            loop.close()

    return run


def _contenders(
    options: BenchOptions, workload: Workload, names: tuple[str, ...]
) -> tuple[list[Contender], dict[str, str]]:
    contenders: list[Contender] = []
    missing: dict[str, str] = {}
    for name in names:
        if name in _OTHERS and importlib.util.find_spec(name) is None:
            missing[name] = "not installed (pip install 'conveyor[bench]')"
            continue
        make = _FACTORIES[name]
        contenders.append(Contender(name, _runner(options, functools.partial(workload, make))))
    return contenders, missing


def scenarios(options: BenchOptions) -> list[Scenario]:
    """Return the in-memory scenarios, with every installed contender.

    Args:
        options: The loop to run on and the scale of the item counts.

    Returns:
        The scenarios, conveyor first in each.
    """
    everyone = ("conveyor", "asyncio.Queue", "conveyor, pure Python", *_OTHERS)
    table: list[tuple[str, int, Workload, float]] = [
        ("put_nowait + get_nowait", 400_000, _nowait_pairs, 2.5),
        ("await put + await get, never blocking", 300_000, _awaited_pairs, 2.0),
        ("1 producer -> 1 consumer, unbounded", 300_000, _one_to_one, 1.7),
        ("ping-pong through two maxsize=1 queues", 50_000, _ping_pong, 2.0),
        ("4 producers x 4 consumers, maxsize=100", 200_000, _many_to_many, 1.7),
    ]
    result: list[Scenario] = []
    for name, n, workload, goal in table:
        contenders, missing = _contenders(options, workload, everyone)
        goals = {"asyncio.Queue": goal}
        if workload is _ping_pong:
            # 2x asyncio is out of reach for any queue on the default loop: the goal is
            # the floor's, which the loop sets.
            contenders.insert(1, Contender(_FLOOR, _runner(options, ping_pong_floor)))
            goals = {_FLOOR: 0.9}
        result.append(Scenario("memory", name, n, contenders, goals, missing))
    drain = [
        Contender("conveyor", _runner(options, _drain_get_many)),
        Contender("asyncio.Queue", _runner(options, functools.partial(_drain_get, _make_asyncio))),
        Contender(
            "conveyor get()", _runner(options, functools.partial(_drain_get, _make_conveyor))
        ),
    ]
    result.append(
        Scenario(
            "memory",
            "drain: get_many(100) vs per-item get()",
            300_000,
            drain,
            {"asyncio.Queue": 3.0},
        )
    )
    pairs: list[tuple[str, int, Callable[[Callable[[], Any], int], Awaitable[float]]]] = [
        ("put_nowait + get_nowait", 300_000, _kind_nowait),
        ("await put + await get", 200_000, _kind_awaited),
    ]
    for kind in ("PriorityQueue", "LifoQueue"):
        for what, n, kind_workload in pairs:
            ours, theirs = getattr(conveyor, kind), getattr(asyncio, kind)
            result.append(
                Scenario(
                    "memory",
                    f"{kind}: {what}, {_STEADY:,} queued",
                    n,
                    [
                        Contender(
                            "conveyor", _runner(options, functools.partial(kind_workload, ours))
                        ),
                        Contender(
                            f"asyncio.{kind}",
                            _runner(options, functools.partial(kind_workload, theirs)),
                        ),
                    ],
                    {f"asyncio.{kind}": 1.5},
                )
            )
    result.append(
        Scenario(
            "memory",
            "cancel parked getters in shuffled order (30k at scale 1)",
            30_000,
            [
                Contender(
                    "conveyor", _runner(options, functools.partial(_cancel_parked, conveyor.Queue))
                ),
                Contender(
                    "asyncio.Queue",
                    _runner(options, functools.partial(_cancel_parked, asyncio.Queue)),
                ),
            ],
            {"asyncio.Queue": 3.0},
        )
    )
    return result
