"""The oldest ready item's age and the rates in and out, on every durable backend.

Ages are checked against bounds measured around the put (and around the read): the
store's figure must lie between them, plus the resolution the backend states (a second
on Redis, whose put times are checkpoints; none on SQLite).  Time is made to pass with a
short sleep only where an age must grow: nothing here orders events by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor._stores import open_existing_store
from conveyor.backends._base import Store
from conveyor.backends.sqlite import SCHEMA_VERSION
from tests.backends._processes import ROOT
from tests.backends.durable_fixtures import durable_url, open_durable, queue_name
from tests.backends.redis_backend import RedisServer, redis_server

__all__ = ["durable_url", "open_durable", "queue_name", "redis_server"]

# How much later than the truth a backend may date a put (see its oldest_ready_age()).
RESOLUTION = {"sqlite": 0.0, "redis": 1.0}
SLACK = 0.05  # two clocks of one machine read a few instructions apart


async def _timed_put(store: Store, *items: str) -> tuple[float, float]:
    before = time.time()
    assert await store.put([json.dumps(item).encode() for item in items])
    return before, time.time()


async def _age_within(store: Store, put_between: tuple[float, float]) -> float:
    """Read the age, and check it against the put's bounds and the read's."""
    read_from = time.time()
    age = await store.oldest_ready_age()
    read_to = time.time()
    assert age is not None
    low = read_from - put_between[1] - SLACK
    high = read_to - put_between[0] + RESOLUTION[store.backend] + SLACK
    assert low <= age <= high, (low, age, high)
    return age


async def test_the_age_grows_while_an_item_waits_and_moves_on_when_claimed(
    open_durable: Any, durable_url: str, queue_name: str
) -> None:
    await open_durable()
    async with open_existing_store(durable_url, queue_name) as store:
        assert await store.oldest_ready_age() == 0.0  # nothing ready
        first = await _timed_put(store, "a")
        await _age_within(store, first)
        # A second item, put past the coarsest resolution (Redis: a second) after the
        # first, so that each has a put time of its own.
        await asyncio.sleep(RESOLUTION[store.backend] + 0.2)
        second = await _timed_put(store, "b")
        grown = await _age_within(store, first)
        assert grown >= RESOLUTION[store.backend] + 0.2 - SLACK
        [delivery] = await store.claim(1, 60, None)
        assert json.loads(delivery.payload) == "a"
        await _age_within(store, second)
        [other] = await store.claim(1, 60, None)
        assert await store.oldest_ready_age() == 0.0
        # An item given back is ready again, with the age of its first put.
        assert await store.release([delivery.receipt]) == [True]
        await _age_within(store, first)
        assert await store.ack([other.receipt]) == [True]


async def test_items_with_job_options_have_their_age(
    open_durable: Any, durable_url: str, queue_name: str
) -> None:
    # Only puts with options (put_jobs): they record put times too, and an item of a
    # priority other than 0 that waits longest gives the age, though a claim takes
    # lower priorities first.
    from conveyor.backends._base import PutOptions

    await open_durable()
    async with open_existing_store(durable_url, queue_name) as store:
        before = time.time()
        assert await store.put_jobs([b'"late"'], [PutOptions(priority=5)])
        first = (before, time.time())
        await _age_within(store, first)
        await asyncio.sleep(RESOLUTION[store.backend] + 0.2)
        assert await store.put_jobs([b'"urgent"'], [PutOptions(priority=-1, key="k")])
        grown = await _age_within(store, first)
        assert grown >= RESOLUTION[store.backend] + 0.2 - SLACK
        [urgent] = await store.claim(1, 60, None)
        assert json.loads(urgent.payload) == "urgent"
        await _age_within(store, first)
        assert await store.ack([urgent.receipt]) == [True]


_PUT_IN_ANOTHER_PROCESS = """
import asyncio, sys, conveyor

async def main():
    async with conveyor.open_queue(sys.argv[1], name=sys.argv[2]) as q:
        await q.put_many(["x", "y"])

asyncio.run(main())
"""


async def test_the_age_holds_across_processes(
    open_durable: Any, durable_url: str, queue_name: str
) -> None:
    await open_durable()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    before = time.time()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PUT_IN_ANOTHER_PROCESS,
        durable_url,
        queue_name,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    after = time.time()
    assert process.returncode == 0, err.decode()
    # A store opened afresh, as by a process started after the putter ended.
    async with open_existing_store(durable_url, queue_name) as store:
        await _age_within(store, (before, after))
        totals = await store.totals()
        assert (totals.put, totals.delivered, totals.finished) == (2, 0, 0)


async def _age_snapshots(store: Store, url: str, name: str, seconds: float) -> None:
    """Move the store's snapshots of its totals *seconds* into the past."""
    if store.backend == "sqlite":
        path = url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("UPDATE snapshots SET taken_at = taken_at - ?", (seconds,))
            conn.commit()
        return
    import redis

    from conveyor.backends.redis import queue_keys

    if url.startswith("redis+sentinel:"):
        from tests.backends.sentinel_backend import primary_url

        url = primary_url()  # written to the primary itself
    elif url.startswith("redis+cluster:"):
        from tests.backends.cluster_backend import owner_url

        url = owner_url(name)  # written to the primary of the queue's slot
    client: Any = redis.Redis.from_url(url)
    try:
        meta = queue_keys("conveyor", name)["meta"]
        snaps = client.hget(meta, "snaps").decode()
        moved = []
        for entry in snaps.split(","):
            at, put, finished = entry.split()
            moved.append(f"{float(at) - seconds:.6f} {put} {finished}")
        client.hset(meta, "snaps", ",".join(moved))
    finally:
        client.close()


async def test_rates_follow_known_puts_and_acks(
    open_durable: Any, durable_url: str, queue_name: str
) -> None:
    await open_durable()
    async with open_existing_store(durable_url, queue_name) as store:
        totals = await store.totals()
        assert (totals.put, totals.delivered, totals.finished) == (0, 0, 0)
        # No snapshot a minute old yet: the store cannot tell, and says so.
        assert (totals.put_per_minute, totals.finished_per_minute, totals.rate_span) == (
            None,
            None,
            None,
        )
        # The first put takes a snapshot of the totals before it (all zero).
        await _timed_put(store, *[f"item-{i}" for i in range(6)])
        deliveries = await store.claim(6, 60, None)
        assert len(deliveries) == 6
        assert await store.ack([d.receipt for d in deliveries[:4]]) == [True] * 4
        assert await store.fail(deliveries[4].receipt, "broken")
        totals = await store.totals()
        assert (totals.put, totals.delivered, totals.finished) == (6, 6, 5)
        assert totals.put_per_minute is None
        await _age_snapshots(store, durable_url, queue_name, 90.0)
        totals = await store.totals()
        assert totals.rate_span is not None
        assert 90.0 <= totals.rate_span <= 150.0
        minutes = totals.rate_span / 60.0
        assert totals.put_per_minute == pytest.approx(6 / minutes)
        assert totals.finished_per_minute == pytest.approx(5 / minutes)
        # A redelivery counts as a delivery again; the lease still held finishes later.
        assert await store.release([deliveries[5].receipt]) == [True]
        [again] = await store.claim(1, 60, None)
        assert await store.ack([again.receipt]) == [True]
        totals = await store.totals()
        assert (totals.put, totals.delivered, totals.finished) == (6, 7, 6)


# Version 2's tables, as conveyor wrote them; version 3 came from its migration.
SCHEMA_2 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE queues (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " shutdown INTEGER NOT NULL DEFAULT 0, maxsize REAL)",
    "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, queue INTEGER NOT NULL,"
    " state INTEGER NOT NULL, available_at REAL NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0, lease_token TEXT, lease_deadline REAL,"
    " error TEXT, failed_at REAL, payload BLOB NOT NULL)",
    "CREATE INDEX items_by_state ON items (queue, state, id)",
    "CREATE INDEX items_by_lease ON items (queue, lease_deadline) WHERE state = 1",
)


def _make_schema_3_file(path: Path) -> None:
    from conveyor.backends.sqlite._schema import _MIGRATIONS

    with contextlib.closing(sqlite3.connect(path)) as conn:
        for statement in (*SCHEMA_2, *_MIGRATIONS[3]):
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("application", "conveyor"), ("schema_version", "3"), ("incarnation", "cd34")],
        )
        conn.execute("INSERT INTO queues (id, name) VALUES (1, 'jobs')")
        conn.executemany(
            "INSERT INTO items (queue, state, lease_token, lease_deadline, payload)"
            " VALUES (1, ?, ?, ?, ?)",
            [
                (0, None, None, b'"old-1"'),
                (0, None, None, b'"old-2"'),
                (1, "tok", time.time() + 3600, b'"leased-3"'),
                (2, None, None, b'"dead-4"'),
            ],
        )
        conn.commit()


async def test_a_schema_3_file_is_migrated_and_dates_the_items_put_since(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v3.db"
    _make_schema_3_file(path)
    url = f"sqlite:///{path}"
    async with open_existing_store(url, "jobs") as store:
        counts = await store.counts()
        assert (counts.ready, counts.leased, counts.dead) == (2, 1, 1)
        # Put before put times were recorded: the store does not know, and says so.
        assert await store.oldest_ready_age() is None
        totals = await store.totals()
        assert (totals.put, totals.delivered, totals.finished) == (0, 0, 0)
        old = await store.claim(2, 60, None)
        assert [json.loads(d.payload) for d in old] == ["old-1", "old-2"]
        assert await store.oldest_ready_age() == 0.0
        put = await _timed_put(store, "new")
        await _age_within(store, put)
        assert await store.ack([d.receipt for d in old]) == [True, True]
        totals = await store.totals()
        assert (totals.put, totals.delivered, totals.finished) == (1, 2, 2)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == str(SCHEMA_VERSION)
        # The counts the triggers keep still match the rows, after the triggers changed.
        counted = conn.execute("SELECT ready, leased, dead, delayed FROM counters").fetchone()
        rows = conn.execute(
            "SELECT SUM(state = 0), SUM(state = 1), SUM(state = 2), SUM(state = 3) FROM items"
        ).fetchone()
        assert counted == rows


async def test_the_age_is_read_through_the_index_at_any_backlog(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'big.db'}"
    async with conveyor.open_queue(url, name="jobs") as q:
        assert isinstance(q, conveyor.DurableQueue)
        await q.put_many(list(range(20_000)))
    with contextlib.closing(sqlite3.connect(tmp_path / "big.db")) as conn:
        # The lookup oldest_ready_age() makes for each priority.
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT priority, id, put_at FROM items WHERE queue = 1"
            " AND state = 0 AND priority > 0 ORDER BY priority, id LIMIT 1"
        ).fetchall()
    details = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX items_by_state" in details, details
    assert "TEMP B-TREE" not in details, details


async def test_redis_put_times_thin_out_behind_an_old_backlog(
    redis_server: RedisServer, queue_name: str
) -> None:
    # A backlog whose oldest item was put 1000 s ago (its checkpoint moved back so): the
    # next checkpoint comes 10 s (1%) after the one a put writes now, not 1 s.
    import redis

    from conveyor.backends.redis import queue_keys

    url = redis_server.url
    async with conveyor.open_queue(url, name=queue_name):
        pass
    client: Any = redis.Redis.from_url(url)
    keys = queue_keys("conveyor", queue_name)
    try:
        async with open_existing_store(url, queue_name) as store:
            await _timed_put(store, "old")
            [(member, score)] = client.zrange(keys["putat"], 0, -1, withscores=True)
            client.zrem(keys["putat"], member)
            client.zadd(keys["putat"], {f"{float(member) - 1000:.6f}": score})
            client.hdel(keys["meta"], "putnext")  # due now
            await _timed_put(store, "new")
            for i in range(5):
                await _timed_put(store, f"more-{i}")
            assert client.zcard(keys["putat"]) == 2
            due = float(client.hget(keys["meta"], "putnext"))
            assert 9.0 < due - time.time() <= 10.5
            age = await store.oldest_ready_age()
            assert age is not None
            assert 1000.0 <= age <= 1000.0 + 5.0
            # Claimed, the old item hands the age to "new", dated by its own checkpoint.
            [old] = await store.claim(1, 60, None)
            young = await store.oldest_ready_age()
            assert young is not None
            assert young < 5.0
            assert await store.ack([old.receipt]) == [True]
    finally:
        client.close()
