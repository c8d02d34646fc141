"""Redis scenarios at scale (issue #13): backlogs, processes, wake-up latency, memory.

* Backlog 0 / 1e5 / 1e6 (times the run's scale): 8 tasks put, put into a bounded queue,
  get + ack, and get + ack while a task waits in ``join()``, on a queue already holding
  the backlog.  Conveyor against a plain list (LPUSH; BLMOVE + LREM); the bounded put and
  the get with ``join()`` waiting against conveyor's own unbounded put and plain get
  (goal: at least 0.7x, i.e. a bound and a join cost little however deep the queue).
  A backlog is filled once per run and kept for every round (each round's puts add to it,
  each round's gets are put back untimed).
* 1 / 4 / 16 processes, each one task putting one item at a time (``await put()``), then
  getting and acknowledging one at a time: conveyor against a plain list (LPUSH; BLMOVE
  + LREM) and Redis Streams (XADD; XREADGROUP + XACK).
* Cross-process wake-up on an idle queue, from ``put()`` returning in one process to
  ``get()`` returning in another: p50 and p99, against redis-py's BLMOVE (measured as
  1 / latency, so that the ratio reads like the others: above 1, conveyor is faster;
  shown in milliseconds).
* Memory of queued 5-byte items, bytes of ``used_memory`` per item, against a list and a
  stream (measured as items per MB, so that above 1 conveyor takes less).
* Batches: one task ``put_many()`` 100 at a time while another ``get_many(100)`` and
  acknowledges each item, against the server's own pipelined limit measured in the
  same run (``redis-benchmark -P 50`` LPUSH; goal: 10% of it).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import re
import shutil
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import conveyor

from ._common import new_loop, process_context, split, time_processes
from ._scenario import BenchOptions, Contender, Scenario

__all__ = ["scale_scenarios"]

TASKS = 8
_made: list[tuple[str, str]] = []  # (url, key pattern) of every backlog, deleted at exit


def _forget_backlogs() -> None:
    import redis

    for url, pattern in _made:
        with contextlib.suppress(Exception):
            client: Any = redis.Redis.from_url(url)
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)
            client.close()


atexit.register(_forget_backlogs)


def _name(kind: str) -> str:
    return f"bench-scale-{kind}-{uuid.uuid4().hex[:8]}"


def _run(options: BenchOptions, main: Callable[[], Any]) -> Any:
    loop = new_loop(options)
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


# -- backlogs ----------------------------------------------------------------------------


class _Backlog:
    """One contender's queue holding *backlog* items, filled on first use, kept after."""

    def __init__(self, options: BenchOptions, kind: str, backlog: int) -> None:
        self.options = options
        self.url = options.redis_url or ""
        self.kind = kind  # "conveyor", "bounded" or "list"
        self.backlog = backlog
        self.name = _name(kind)
        self.filled = False
        pattern = self.name if kind == "list" else f"conveyor:{{{self.name}}}:*"
        _made.append((self.url, pattern + ("*" if kind == "list" else "")))

    async def _open(self) -> Any:
        if self.kind == "list":
            import redis.asyncio as aioredis

            return aioredis.Redis.from_url(self.url)
        maxsize = 10**7 if self.kind == "bounded" else 0
        return await conveyor.open_queue(self.url, name=self.name, maxsize=maxsize)

    async def _close(self, queue: Any) -> None:
        await queue.aclose()

    async def _fill(self, queue: Any, n: int) -> None:
        for start in range(0, n, 10_000):
            count = min(10_000, n - start)
            if self.kind == "list":
                await queue.lpush(self.name, *(b"%d" % i for i in range(count)))
            else:
                await queue.put_many(range(count))
        if self.kind != "list":
            await queue.flush()

    async def _ensure(self, queue: Any) -> None:
        if not self.filled:
            await self._fill(queue, self.backlog)
            self.filled = True

    def put(self, n: int) -> float:
        async def main() -> float:
            queue = await self._open()
            try:
                await self._ensure(queue)
                if self.kind == "list":

                    async def one(count: int) -> None:
                        for i in range(count):
                            await queue.lpush(self.name, b"%d" % i)
                else:

                    async def one(count: int) -> None:
                        for i in range(count):
                            await queue.put(i)

                start = time.perf_counter()
                await asyncio.gather(*(one(c) for c in split(n, TASKS)))
                if self.kind != "list":
                    await queue.flush()
                return time.perf_counter() - start
            finally:
                await self._close(queue)

        return float(_run(self.options, main))

    def get(self, n: int, joining: bool = False) -> float:
        async def main() -> float:
            queue = await self._open()
            try:
                await self._ensure(queue)
                processing = self.name + ":processing"
                if self.kind == "list":

                    async def one(count: int) -> None:
                        for _ in range(count):
                            payload = await queue.blmove(self.name, processing, 5, "RIGHT", "LEFT")
                            await queue.lrem(processing, 1, payload)
                else:

                    async def one(count: int) -> None:
                        for _ in range(count):
                            await queue.get()
                            queue.task_done()

                waiter = asyncio.ensure_future(queue.join()) if joining else None
                await asyncio.sleep(0)
                start = time.perf_counter()
                await asyncio.gather(*(one(c) for c in split(n, TASKS)))
                if self.kind != "list":
                    await queue.flush()  # every acknowledgement written
                elapsed = time.perf_counter() - start
                if waiter is not None:
                    waiter.cancel()
                    await asyncio.gather(waiter, return_exceptions=True)
                await self._fill(queue, n)  # the backlog as it was, untimed
                return elapsed
            finally:
                await self._close(queue)

        return float(_run(self.options, main))


def _backlog_scenarios(options: BenchOptions) -> list[Scenario]:
    scenarios = []
    n = 4_000
    for level in (0, 100_000, 1_000_000):
        backlog = round(level * options.scale)
        label = f"backlog {backlog:,}"
        mine = _Backlog(options, "conveyor", backlog)
        bounded = _Backlog(options, "bounded", backlog)
        plain = _Backlog(options, "list", backlog)
        scenarios += [
            Scenario(
                "redis",
                f"{label}: {TASKS} tasks put",
                n,
                [Contender("conveyor", mine.put), Contender("redis-py list", plain.put)],
            ),
            Scenario(
                "redis",
                f"{label}: {TASKS} tasks put, maxsize 1e7",
                n,
                [Contender("conveyor", bounded.put), Contender("conveyor unbounded", mine.put)],
                goals={"conveyor unbounded": 0.7},
            ),
            Scenario(
                "redis",
                f"{label}: {TASKS} tasks get + ack",
                n,
                [Contender("conveyor", mine.get), Contender("redis-py list", plain.get)],
            ),
            Scenario(
                "redis",
                f"{label}: get + ack, join() waiting",
                n,
                [
                    Contender("conveyor", functools.partial(mine.get, joining=True)),
                    Contender("conveyor, no join", mine.get),
                ],
                goals={"conveyor, no join": 0.7},
            ),
        ]
    return scenarios


# -- processes ---------------------------------------------------------------------------


def _process_main(kind: str, url: str, name: str, work: str, n: int, go: Any, out: Any) -> None:
    import redis.asyncio as aioredis

    async def main() -> None:
        client: Any = None
        queue: Any = None
        if kind == "conveyor":
            queue = await conveyor.open_queue(url, name=name)
        else:
            client = aioredis.Redis.from_url(url)
        group_ready = kind != "streams" or work == "put"
        if not group_ready:
            with contextlib.suppress(Exception):
                await client.xgroup_create(name, "g", id="0", mkstream=True)
        out.put(("ready", 0.0, 0.0))
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        consumer = uuid.uuid4().hex
        start = time.perf_counter()
        for i in range(n):
            if work == "put":
                if kind == "conveyor":
                    await queue.put(i)
                elif kind == "list":
                    await client.lpush(name, b"%d" % i)
                else:
                    await client.xadd(name, {"d": b"%d" % i})
            elif kind == "conveyor":
                await queue.get()
                queue.task_done()
            elif kind == "list":
                payload = await client.blmove(name, name + ":p", 5, "RIGHT", "LEFT")
                await client.lrem(name + ":p", 1, payload)
            else:
                reply = await client.xreadgroup("g", consumer, {name: ">"}, count=1, block=5000)
                entry_id = reply[0][1][0][0]
                await client.xack(name, "g", entry_id)
        if queue is not None:
            await queue.flush()
        end = time.perf_counter()
        out.put(("done", start, end))
        if queue is not None:
            await queue.aclose()
        if client is not None:
            await client.aclose()

    asyncio.run(main())


async def _prefill(kind: str, url: str, name: str, n: int) -> None:
    import redis.asyncio as aioredis

    if kind == "conveyor":
        async with conveyor.open_queue(url, name=name) as opened:
            assert isinstance(opened, conveyor.DurableQueue)
            await opened.put_many(range(n))
            await opened.flush()
        return
    client: Any = aioredis.Redis.from_url(url)
    try:
        if kind == "list":
            await client.lpush(name, *(b"%d" % i for i in range(n)))
        else:
            pipe = client.pipeline(transaction=False)
            for i in range(n):
                pipe.xadd(name, {"d": b"%d" % i})
            await pipe.execute()
            await client.xgroup_create(name, "g", id="0")
    finally:
        await client.aclose()


def _processes(options: BenchOptions, kind: str, work: str, procs: int) -> Callable[[int], float]:
    url = options.redis_url or ""

    def run(n: int) -> float:
        name = _name(kind)
        _made.append((url, f"*{name}*"))
        each = max(1, n // procs)
        if work == "get":
            _run(options, lambda: _prefill(kind, url, name, each * procs))
        span = time_processes(_process_main, (kind, url, name, work, each), procs)
        # Whole items only: what the processes did, scaled to the n the runner divides by.
        return span * n / (each * procs)

    return run


def _process_scenarios(options: BenchOptions) -> list[Scenario]:
    scenarios = []
    for work, label in (("put", "put"), ("get", "get + ack")):
        for procs in (1, 4, 16):
            scenarios.append(
                Scenario(
                    "redis",
                    f"{procs} process{'' if procs == 1 else 'es'} x 1 task: {label}, one at a time",
                    3_000,
                    [
                        Contender("conveyor", _processes(options, "conveyor", work, procs)),
                        Contender("redis-py list", _processes(options, "list", work, procs)),
                        Contender("redis-py streams", _processes(options, "streams", work, procs)),
                    ],
                    goals={"redis-py list": 1.0, "redis-py streams": 1.0},
                )
            )
    return scenarios


# -- wake-up latency ---------------------------------------------------------------------


def _latency_getter(kind: str, url: str, name: str, n: int, ready: Any, out: Any) -> None:
    import redis.asyncio as aioredis

    async def main() -> None:
        stamps = []
        if kind == "conveyor":
            async with conveyor.open_queue(url, name=name) as queue:
                ready.set()
                for _ in range(n):
                    await queue.get()
                    stamps.append(time.time())
                    queue.task_done()
                await queue.join()
        else:
            client: Any = aioredis.Redis.from_url(url)
            ready.set()
            for _ in range(n):
                await client.blmove(name, name + ":p", 0, "RIGHT", "LEFT")
                stamps.append(time.time())
            await client.aclose()
        out.put(stamps)

    asyncio.run(main())


def _latency_putter(kind: str, url: str, name: str, n: int, ready: Any, out: Any) -> None:
    import redis.asyncio as aioredis

    async def main() -> None:
        stamps = []
        queue: Any = None
        client: Any = None
        if kind == "conveyor":
            queue = await conveyor.open_queue(url, name=name)
        else:
            client = aioredis.Redis.from_url(url)
        await asyncio.get_running_loop().run_in_executor(None, ready.wait)
        await asyncio.sleep(0.2)
        for i in range(n):
            if queue is not None:
                await queue.put(i)
            else:
                await client.lpush(name, b"%d" % i)
            stamps.append(time.time())
            await asyncio.sleep(0.003)  # idle again before the next one
        out.put(stamps)
        if queue is not None:
            await queue.aclose()
        if client is not None:
            await client.aclose()

    asyncio.run(main())


def _latencies(url: str, kind: str, n: int) -> list[float]:
    name = _name(f"latency-{kind}")
    _made.append((url, f"*{name}*"))
    context: Any = process_context()
    ready, got, put = context.Event(), context.Queue(), context.Queue()
    getter = context.Process(target=_latency_getter, args=(kind, url, name, n, ready, got))
    putter = context.Process(target=_latency_putter, args=(kind, url, name, n, ready, put))
    getter.start()
    putter.start()
    try:
        got_at, put_at = got.get(timeout=120), put.get(timeout=120)
    finally:
        for child in (getter, putter):
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
    return sorted(max(b - a, 1e-6) for a, b in zip(put_at, got_at, strict=True))


def _latency(options: BenchOptions, kind: str, quantile: float) -> Callable[[int], float]:
    def run(n: int) -> float:
        latencies = _latencies(options.redis_url or "", kind, max(20, n))
        return latencies[min(len(latencies) - 1, int(len(latencies) * quantile))] * n

    return run


def _latency_scenarios(options: BenchOptions) -> list[Scenario]:
    return [
        Scenario(
            "redis",
            f"cross-process put -> get: {label} latency",
            300,
            [
                Contender("conveyor", _latency(options, "conveyor", quantile)),
                Contender("redis-py BLMOVE", _latency(options, "blmove", quantile)),
            ],
            unit="latency",
        )
        for label, quantile in (("p50", 0.5), ("p99", 0.99))
    ]


# -- memory ------------------------------------------------------------------------------


def _memory(options: BenchOptions, kind: str) -> Callable[[int], float]:
    url = options.redis_url or ""

    async def main(n: int) -> float:
        import redis.asyncio as aioredis

        name = _name(f"memory-{kind}")
        client: Any = aioredis.Redis.from_url(url)
        queue: Any = None
        try:
            if kind == "conveyor":
                queue = await conveyor.open_queue(url, name=name, serializer=_Raw())
                await queue.put(b"warm!")
                await queue.get()
                queue.task_done()
                await queue.join()
            info = await client.info("memory")
            before = int(info["used_memory"])
            for start in range(0, n, 10_000):
                count = min(10_000, n - start)
                if kind == "conveyor":
                    await queue.put_many([b"abcde"] * count)
                elif kind == "list":
                    await client.lpush(name, *([b"abcde"] * count))
                else:
                    pipe = client.pipeline(transaction=False)
                    for _ in range(count):
                        pipe.xadd(name, {"d": b"abcde"})
                    await pipe.execute()
            if queue is not None:
                await queue.flush()
            info = await client.info("memory")
            per_item = (int(info["used_memory"]) - before) / n
        finally:
            if queue is not None:
                await queue.aclose()
            await client.delete(name)
            async for key in client.scan_iter(match=f"conveyor:{{{name}}}:*", count=1000):
                await client.delete(key)
            await client.aclose()
        # Shown as items per MB: the runner divides n by this.
        return n * max(per_item, 0.01) / 1e6

    return lambda n: float(_run(options, lambda: main(n)))


class _Raw:
    """Payloads stored as given: 5 bytes are 5 bytes in Redis."""

    name = "raw"

    @staticmethod
    def dumps(item: bytes) -> bytes:
        return item

    @staticmethod
    def loads(data: bytes) -> bytes:
        return data


def _memory_scenarios(options: BenchOptions) -> list[Scenario]:
    return [
        Scenario(
            "redis",
            "memory: a queued 5-byte item (goal: at most 80 B)",
            100_000,
            [
                Contender("conveyor", _memory(options, "conveyor")),
                Contender("redis-py list", _memory(options, "list")),
                Contender("redis-py streams", _memory(options, "streams")),
            ],
            unit="memory",
        )
    ]


# -- batches against the server's pipelined limit -------------------------------------


def _batches(options: BenchOptions) -> Callable[[int], float]:
    url = options.redis_url or ""

    async def main(n: int) -> float:
        name = _name("batches")
        queue: Any = await conveyor.open_queue(url, name=name)
        try:

            async def produce() -> None:
                for start in range(0, n, 100):
                    await queue.put_many(range(start, min(n, start + 100)))

            async def consume() -> None:
                left = n
                while left:
                    for _ in await queue.get_many(100):
                        queue.task_done()
                        left -= 1

            start = time.perf_counter()
            await asyncio.gather(produce(), consume())
            await queue.join()  # every acknowledgement written
            return time.perf_counter() - start
        finally:
            await queue.aclose()
            _made.append((url, f"conveyor:{{{name}}}:*"))

    return lambda n: float(_run(options, lambda: main(n)))


def _pipelined_limit(options: BenchOptions) -> Callable[[int], float]:
    parts = urllib.parse.urlsplit(options.redis_url or "")

    def run(n: int) -> float:
        # Ten times the items, and never under 100,000: the tool needs a longer run than
        # conveyor for a steady rate (a few thousand requests end within its clock's
        # resolution, and it prints "inf requests per second").
        command = ["redis-benchmark", "-h", parts.hostname or "127.0.0.1"]
        command += ["-p", str(parts.port or 6379), "-t", "lpush", "-P", "50", "-q"]
        command += ["-n", str(max(n * 10, 100_000))]
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
        rates = re.findall(r"([\d.]+) requests per second", out.stdout.replace("\r", "\n"))
        if not rates:
            raise RuntimeError(f"redis-benchmark printed no rate: {out.stdout[-200:]!r}")
        return n / float(rates[-1])

    return run


def _batch_scenarios(options: BenchOptions) -> list[Scenario]:
    parts = urllib.parse.urlsplit(options.redis_url or "")
    missing = {}
    limit = "redis-benchmark -P 50 LPUSH"
    if shutil.which("redis-benchmark") is None:
        missing[limit] = "not installed (it comes with redis-server)"
    elif parts.scheme != "redis" or parts.password or parts.username:
        missing[limit] = "runs here on plain, password-less URLs only"
    contenders = [Contender("conveyor", _batches(options))]
    if not missing:
        contenders.append(Contender(limit, _pipelined_limit(options)))
    return [
        Scenario(
            "redis",
            "put_many(100) + get_many(100) + ack, 1 task each",
            40_000,
            contenders,
            goals={limit: 0.1},
            missing=missing,
        )
    ]


def scale_scenarios(options: BenchOptions) -> list[Scenario]:
    """Return the scenarios at scale (see the module docstring)."""
    if options.redis_url is None:
        return []
    found = _memory_scenarios(options) + _batch_scenarios(options)
    found += _latency_scenarios(options)
    found += _process_scenarios(options) + _backlog_scenarios(options)
    return found
