"""Producers and consumers in separate processes share one Redis queue: ``join()``,
``maxsize`` and ``shutdown()`` hold across them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.parse

import pytest

import conveyor
from conveyor.backends.redis import open_store
from tests.backends.redis_backend import RedisServer, redis_server, unique_name

pytestmark = pytest.mark.timeout(120)

__all__ = ["redis_server"]

MAXSIZE = 5
PER_PRODUCER = 150

PRODUCER = """
import asyncio, sys
import conveyor

async def main(url, name, first, count, maxsize):
    async with conveyor.open_queue(url, name=name, maxsize=maxsize) as q:
        for i in range(first, first + count):
            await q.put(i)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
"""

CONSUMER = """
import asyncio, json, sys
import conveyor

async def main(url, name, maxsize):
    got = []
    async with conveyor.open_queue(url, name=name, maxsize=maxsize) as q:
        async for item in q:
            got.append(item)
            q.task_done()
    print(json.dumps(got), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def spawn(script: str, *args: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE)


async def test_processes_share_join_maxsize_and_shutdown(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    name = unique_name(request)
    url = redis_server.url
    store = await open_store(urllib.parse.urlsplit(url), name)
    async with conveyor.open_queue(url, name=name, maxsize=MAXSIZE) as q:
        producers = [
            spawn(PRODUCER, url, name, k * PER_PRODUCER, PER_PRODUCER, MAXSIZE) for k in range(3)
        ]
        # maxsize holds across processes: sample the shared size while producers push.
        largest = 0
        while any(p.poll() is None for p in producers):
            largest = max(largest, (await store.counts()).ready)
            await asyncio.sleep(0.005)
            if largest >= MAXSIZE:
                break
        consumers = [spawn(CONSUMER, url, name, MAXSIZE) for _ in range(2)]
        while any(p.poll() is None for p in producers):
            counts = await store.counts()
            largest = max(largest, counts.ready + counts.delayed)
            await asyncio.sleep(0.005)
        for producer in producers:
            assert await asyncio.to_thread(producer.wait) == 0
        # join() here waits for items other processes put and other processes acknowledged.
        await q.join(timeout=60)
        counts = await store.counts()
        assert counts.unfinished == 0
        q.shutdown()
        outputs = []
        for consumer in consumers:
            out, _ = await asyncio.to_thread(consumer.communicate, timeout=60)
            assert consumer.returncode == 0
            outputs.append(json.loads(out))
    await store.aclose()
    assert largest == MAXSIZE  # the producers were held at the bound, never past it
    everything = sorted(item for output in outputs for item in output)
    assert everything == list(range(3 * PER_PRODUCER))
    assert all(outputs), "both consumers took part"


async def test_a_put_blocks_across_clients_until_another_gets(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    name = unique_name(request)
    url = redis_server.url
    async with (
        conveyor.open_queue(url, name=name, maxsize=1) as producer,
        conveyor.open_queue(url, name=name, maxsize=1) as consumer,
    ):
        await producer.put("first")
        blocked = asyncio.ensure_future(producer.put("second"))
        deadline = time.monotonic() + 10
        while producer.statistics().tasks_waiting_put == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert not blocked.done()
        assert await consumer.get() == "first"
        await asyncio.wait_for(blocked, 10)
        assert await consumer.get() == "second"
        consumer.task_done()
        consumer.task_done()
        await producer.join(timeout=10)
