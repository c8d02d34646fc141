"""Benchmark scenarios for distributed queues on Redis.

The workload: 8 producer tasks put N items, then 8 consumer tasks get and acknowledge them
(each from a fresh queue; the get scenario's queue is filled before the clock starts).  A
run ends only when everything is in Redis: conveyor's put runs end with ``flush()``, its
get runs with ``join()`` (every acknowledgement written).

Contenders, same server, same concurrency:

* conveyor: ``open_queue("redis://...")``, ``put()`` / ``get()`` + ``task_done()``.
* redis-py: the plain reliable queue of the Redis documentation, written here on
  ``redis.asyncio``: ``LPUSH`` to put; ``BLMOVE`` to a processing list, then ``LREM`` from
  it to acknowledge.  One round trip per put, two per get.
* saq: ``enqueue()`` of a job, then a saq ``Worker`` (concurrency 8) running a no-op job
  function for each; the run ends when the worker finished them all.

Then the scenarios at scale of ``_redis_scale``: backlogs of 0 / 1e5 / 1e6 items, 1 / 4 /
16 processes against a plain list and Redis Streams, cross-process wake-up latency, and
bytes per queued item.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import conveyor

from ._common import get_workload, put_workload, scenario, split
from ._jobs import priority_scenario
from ._redis_scale import scale_scenarios
from ._scenario import BenchOptions, Scenario

__all__ = ["scenarios"]

TASKS = 8
N = 4_000
_counter = itertools.count()


_OTHERS: dict[str, str | None] = {"redis-py": None, "saq": "saq"}


def _fresh_name(kind: str) -> str:
    return f"bench-{kind}-{next(_counter)}-{uuid.uuid4().hex[:8]}"


async def _delete_keys(url: str, pattern: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


# -- the queues, behind one small adapter each -------------------------------------------


class _Adapter:
    """put / get-and-acknowledge / fill / settle / close for one contender."""

    async def put(self, item: int) -> None:
        raise NotImplementedError

    async def consume(self, n: int, tasks: int) -> float:
        """Get and acknowledge *n* items with *tasks* concurrent consumers.

        Returns:
            ``time.perf_counter()`` when the last acknowledgement was in Redis (before
            any teardown).
        """
        raise NotImplementedError

    async def fill(self, n: int) -> None:
        for i in range(n):
            await self.put(i)
        await self.settle()

    async def settle(self) -> None:
        """Wait until every write is in Redis."""

    async def close(self) -> None:
        return None


class _Conveyor(_Adapter):
    def __init__(self, queue: conveyor.DurableQueue[int], url: str, name: str) -> None:
        self.queue = queue
        self.url = url
        self.name = name

    @classmethod
    async def open(cls, url: str) -> _Conveyor:
        name = _fresh_name("conveyor")
        queue = await conveyor.open_queue(url, name=name)
        assert isinstance(queue, conveyor.DurableQueue)
        return cls(queue, url, name)

    async def put(self, item: int) -> None:
        await self.queue.put(item)

    async def consume(self, n: int, tasks: int) -> float:
        queue = self.queue

        async def consumer(count: int) -> None:
            for _ in range(count):
                await queue.get()
                queue.task_done()

        await asyncio.gather(*(consumer(c) for c in split(n, tasks)))
        await queue.join()
        return time.perf_counter()

    async def fill(self, n: int) -> None:
        for start in range(0, n, 10_000):
            await self.queue.put_many(range(start, min(n, start + 10_000)))

    async def settle(self) -> None:
        await self.queue.flush()

    async def close(self) -> None:
        await self.queue.aclose()
        await _delete_keys(self.url, f"conveyor:{{{self.name}}}:*")


class _PlainRedis(_Adapter):
    """The reliable-queue pattern: LPUSH; BLMOVE to a processing list, then LREM."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.client: Any = aioredis.Redis.from_url(url)
        name = _fresh_name("redis-py")
        self.key = f"{name}:queue"
        self.processing = f"{name}:processing"

    async def put(self, item: int) -> None:
        await self.client.lpush(self.key, json.dumps(item))

    async def consume(self, n: int, tasks: int) -> float:
        client, key, processing = self.client, self.key, self.processing

        async def consumer(count: int) -> None:
            for _ in range(count):
                payload = await client.blmove(key, processing, 5, "RIGHT", "LEFT")
                json.loads(payload)
                await client.lrem(processing, 1, payload)

        await asyncio.gather(*(consumer(c) for c in split(n, tasks)))
        return time.perf_counter()

    async def close(self) -> None:
        await self.client.delete(self.key, self.processing)
        await self.client.aclose()


async def _noop(ctx: Any, **kwargs: Any) -> None:
    return None


class _Saq(_Adapter):
    def __init__(self, url: str) -> None:
        from saq import Queue

        self.url = url
        self.name = _fresh_name("saq")
        self.queue: Any = Queue.from_url(url, name=self.name)

    async def put(self, item: int) -> None:
        await self.queue.enqueue("_noop", item=item)

    async def consume(self, n: int, tasks: int) -> float:
        from saq import Worker

        # Stopping an idle worker warns about its blocked dequeues: expected here.
        logging.getLogger("saq").setLevel(logging.ERROR)
        done = asyncio.Event()
        processed = 0
        finished = 0.0

        async def after_process(ctx: Any) -> None:
            nonlocal processed, finished
            processed += 1
            if processed >= n:
                finished = time.perf_counter()
                done.set()

        worker: Any = Worker(
            self.queue,
            functions=[("_noop", _noop)],
            concurrency=tasks,
            after_process=after_process,
        )
        runner = asyncio.ensure_future(worker.start())
        try:
            await done.wait()
        finally:  # the worker's shutdown is not timed
            await worker.stop()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        return finished

    async def close(self) -> None:
        await self.queue.disconnect()
        await _delete_keys(self.url, f"saq:{self.name}:*")
        await _delete_keys(self.url, f"saq:job:{self.name}:*")


async def _open(kind: str, url: str) -> _Adapter:
    if kind == "conveyor":
        return await _Conveyor.open(url)
    if kind == "redis-py":
        return _PlainRedis(url)
    adapter = _Saq(url)
    await adapter.queue.connect()
    return adapter


# -- the workloads -----------------------------------------------------------------------


def _put_workload(options: BenchOptions, url: str, kind: str) -> Callable[[int], float]:
    return put_workload(options, lambda: _open(kind, url), TASKS)


def _get_workload(options: BenchOptions, url: str, kind: str) -> Callable[[int], float]:
    return get_workload(options, lambda: _open(kind, url), TASKS)


def scenarios(options: BenchOptions) -> list[Scenario]:
    """Return the Redis scenarios, with conveyor first in each.

    Args:
        options: The run's settings; ``options.redis_url`` names the server.

    Returns:
        8 producer tasks putting and 8 consumer tasks getting and acknowledging; none
        when no Redis server was given.
    """
    url = options.redis_url
    if url is None:
        return []
    goals = {"redis-py": 3.0}
    return [
        *(
            scenario(
                "redis",
                f"{TASKS} tasks: {name}",
                N,
                functools.partial(workload, options, url),
                _OTHERS,
                goals,
            )
            for name, workload in (
                ("put", _put_workload),
                ("get + task_done (ack)", _get_workload),
            )
        ),
        priority_scenario(options, "redis", lambda: url),
        *scale_scenarios(options),
    ]
