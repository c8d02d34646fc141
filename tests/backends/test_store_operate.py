"""The store operations behind the operating commands: list, peek, purge, totals, open.

They work through the ``Store`` interface on every durable backend in
``durable_fixtures``; none creates a store or a queue, and only ``purge`` changes one.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor._stores import list_queues, open_existing_store
from conveyor.backends._base import Store
from tests.backends.durable_fixtures import durable_url, open_durable, queue_name

__all__ = ["durable_url", "open_durable", "queue_name"]


async def _fill(store: Store) -> None:
    """Leave the queue with 3 ready items, 1 leased and 2 dead."""
    items = ["dead-1", "dead-2", "leased", "a", "b", "c"]
    assert await store.put([json.dumps(item).encode() for item in items])
    for delivery in await store.claim(2, 60, None):
        assert await store.fail(delivery.receipt, "broken")
    assert len(await store.claim(1, 60, None)) == 1  # held: leased


async def test_open_existing_store_reads_without_changing(
    open_durable: Any, durable_url: str, queue_name: str
) -> None:
    q = await open_durable()
    assert queue_name in await list_queues(durable_url)
    async with open_existing_store(durable_url, queue_name) as store:
        put_from = time.time()
        await _fill(store)
        put_to = time.time()
        before = await store.counts()
        assert (before.ready, before.leased, before.dead) == (3, 1, 2)
        peeked = await store.peek(10)
        assert [json.loads(p.payload) for p in peeked] == ["a", "b", "c"]
        assert [p.attempts for p in peeked] == [0, 0, 0]
        assert [json.loads(p.payload) for p in await store.peek(2)] == ["a", "b"]
        assert await store.peek(0) == []
        assert await store.counts() == before
        totals = await store.totals()
        assert (totals.put, totals.delivered, totals.finished) == (6, 3, 2)
        read_from = time.time()
        age = await store.oldest_ready_age()
        assert age is not None
        # Redis dates a put by a checkpoint at most a second earlier.
        assert read_from - put_to - 0.05 <= age <= time.time() - put_from + 1.05
    assert await q.get(timeout=30) == "a"  # what peek showed is still there, in order


async def test_purge_removes_what_it_names_and_wakes_putters(
    open_durable: Any, durable_url: str, queue_name: str
) -> None:
    await open_durable()
    async with open_existing_store(durable_url, queue_name) as store:
        await _fill(store)
        await store.set_maxsize(3)
        q = await open_durable()
        blocked = asyncio.ensure_future(q.put("d"))  # 3 ready of 3: no room
        await asyncio.sleep(0.2)
        assert not blocked.done()
        with pytest.raises(ValueError, match="purge takes one of"):
            await store.purge("leased")  # type: ignore[arg-type]
        assert await store.purge("ready") == 3
        await asyncio.wait_for(blocked, 30)
        assert await store.purge("dead") == 2
        counts = await store.counts()
        assert (counts.ready, counts.leased, counts.dead) == (1, 1, 0)
        assert await store.purge("all") == 1
        assert await store.purge("all") == 0
        counts = await store.counts()
        assert (counts.ready, counts.leased, counts.dead) == (0, 1, 0)


async def test_a_missing_queue_is_refused_and_not_created(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await open_durable()  # the store exists, with another queue in it
    with pytest.raises(conveyor.QueueNotFoundError, match=repr(f"{queue_name}-missing")):
        async with open_existing_store(durable_url, f"{queue_name}-missing"):
            pass
    assert f"{queue_name}-missing" not in await list_queues(durable_url)


async def test_a_missing_sqlite_file_is_refused_and_not_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    with pytest.raises(conveyor.QueueNotFoundError, match="no SQLite queue file"):
        await list_queues(url)
    with pytest.raises(conveyor.QueueNotFoundError, match="no SQLite queue file"):
        async with open_existing_store(url, "jobs"):
            pass
    assert not (tmp_path / "none.db").exists()
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"")
    with pytest.raises(conveyor.IncompatibleStoreError):
        await list_queues(f"sqlite:///{foreign}")


@pytest.mark.parametrize("url", ["memory://", "nosuch://x", "sqlite://host/x.db", "redis://h:x/0"])
async def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(conveyor.InvalidURLError):
        await list_queues(url)
    with pytest.raises(conveyor.InvalidURLError):
        async with open_existing_store(url, "jobs"):
            pass


async def test_delayed_items_are_not_peeked_and_are_purged_as_waiting(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await open_durable()
    async with open_existing_store(durable_url, queue_name) as store:
        assert await store.put([b'"later"', b'"now"'])
        (first,) = await store.claim(1, 60, None)
        assert await store.retry(first.receipt, 60)  # delayed for a minute
        counts = await store.counts()
        assert (counts.ready, counts.delayed) == (1, 1)
        assert [p.payload for p in await store.peek(10)] == [b'"now"']
        assert await store.purge("ready") == 2
        counts = await store.counts()
        assert (counts.ready, counts.delayed, counts.leased, counts.dead) == (0, 0, 0, 0)
