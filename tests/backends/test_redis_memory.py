"""Acknowledged items leave nothing behind: Redis memory returns to its baseline."""

from __future__ import annotations

import urllib.parse

import pytest

import conveyor
from tests.backends.redis_backend import RedisServer, private_server

pytestmark = pytest.mark.timeout(120)

__all__ = ["private_server"]

ITEMS = 100_000
CHUNK = 5_000


def used_memory(server: RedisServer) -> int:
    return int(server.info("memory")["used_memory"])


async def test_memory_returns_to_baseline_after_100k_items(private_server: RedisServer) -> None:
    # A server of the test's own, so that no other test's keys move its memory.
    async with conveyor.open_queue(private_server.url, name="memory") as q:
        await q.put("warm-up")  # scripts loaded, keys and connections made
        assert await q.get() == "warm-up"
        q.task_done()
        await q.join()
        baseline = used_memory(private_server)
        peak = baseline
        done = 0
        while done < ITEMS:
            await q.put_many([{"n": done + i, "pad": "x" * 20} for i in range(CHUNK)])
            peak = max(peak, used_memory(private_server))
            got = 0
            while got < CHUNK:
                batch = await q.get_many(CHUNK - got)
                got += len(batch)
                for _ in batch:
                    q.task_done()
            done += CHUNK
        await q.join()
        after = used_memory(private_server)
    # The items were really in Redis at their peak...
    assert peak - baseline > CHUNK * 40
    # ... and are gone now: what remains is noise (allocator slack, buffers), not items.
    assert after - baseline < 256 * 1024, (baseline, peak, after)


async def test_a_queued_small_item_costs_under_80_bytes(private_server: RedisServer) -> None:
    # The measure: 100k items of 5 bytes, queued, against the memory before them.
    from conveyor.backends.redis import open_store

    store = await open_store(urllib.parse.urlsplit(private_server.url), "bytes")
    try:
        assert await store.put([b"warm"])
        (warm,) = await store.claim(1, 30.0, None)
        assert await store.ack([warm.receipt]) == [True]
        baseline = used_memory(private_server)
        for _ in range(ITEMS // 10_000):
            assert await store.put([b"abcde"] * 10_000)
        per_item = (used_memory(private_server) - baseline) / ITEMS
        assert per_item <= 80, per_item
        got = await store.claim(ITEMS, 30.0, None)
        assert len(got) == ITEMS
        assert await store.ack([d.receipt for d in got]) == [True] * ITEMS
    finally:
        await store.aclose()
