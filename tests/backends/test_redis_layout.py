"""The Redis key layout (format 3): the fresh list, its holes, and queues of formats 1 and 2.

Items never claimed live in one list, their ids implied by their places; items that come
back (from a lease, a retry, the dead letters) live in the ready zset.  These tests hold
the promises across both: FIFO by put order, retract and claim by id out of turn, counts,
shutdown, and a format-1 queue opened by this version keeping every item, in order.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from conveyor import IncompatibleStoreError
from conveyor.backends._base import Store
from conveyor.backends.redis import queue_keys
from tests.backends.redis_backend import OpenStore, RedisServer, open_named, redis_server

pytestmark = pytest.mark.timeout(60)

__all__ = ["open_named", "redis_server"]


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Any]:
    connection: Any = aioredis.Redis(port=redis_server.port)  # stubs vary by version
    yield connection
    await connection.aclose()


async def payloads(store: Store, n: int = 100) -> list[bytes]:
    got = await store.claim(n, 30.0, None)
    assert await store.ack([d.receipt for d in got]) == [True] * len(got)
    return [d.payload for d in got]


async def test_items_that_come_back_are_merged_with_fresh_ones_by_put_order(
    open_named: OpenStore,
) -> None:
    store = await open_named()
    assert await store.put([b"%d" % i for i in range(1, 7)])
    one, two, three = await store.claim(3, 30.0, None)
    assert await store.release([two.receipt]) == [True]  # back at once, uncounted
    assert await store.retry(one.receipt, 0)  # back at once, counted
    assert await store.put([b"7"])
    got = await store.claim(4, 30.0, None)
    assert [d.payload for d in got] == [b"1", b"2", b"4", b"5"]
    assert [d.attempts for d in got] == [2, 1, 1, 1]
    assert await store.fail(three.receipt, "boom")
    assert await store.requeue_dead(None) == 1
    assert [d.payload for d in await store.claim(5, 30.0, None)] == [b"3", b"6", b"7"]


async def test_retracted_and_claimed_by_id_items_leave_holes_that_claims_skip(
    open_named: OpenStore,
) -> None:
    store = await open_named()
    _, ids = await store.put_returning_ids([b"a", b"b", b"c", b"d", b"e"])
    assert ids is not None
    assert await store.retract([ids[1], ids[2]]) == [True, True]
    assert await store.retract([ids[1]]) == [False]  # gone already
    assert await store.retract([ids[0], ids[1]]) == [False, False]  # all or none
    (by_id,) = await store.claim_ids([ids[3]], 30.0)
    assert by_id is not None
    assert by_id.payload == b"d"
    assert await store.claim_ids([ids[3], ids[2]], 30.0) == [None, None]
    counts = await store.counts()
    assert (counts.ready, counts.leased) == (2, 1)
    got = await store.claim(10, 30.0, None)
    assert [(d.item_id, d.payload) for d in got] == [(ids[0], b"a"), (ids[4], b"e")]
    # A claimed item is no longer fresh: neither retracted nor claimed by id again.
    assert await store.retract([ids[0]]) == [False]
    assert await store.release([got[0].receipt]) == [True]
    assert await store.retract([ids[0]]) == [False]
    assert await store.claim_ids([ids[0]], 30.0) == [None]
    assert await store.ack([by_id.receipt, got[1].receipt]) == [True, True]
    assert await payloads(store) == [b"a"]
    assert (await store.counts()).unfinished == 0


async def test_holes_at_the_tail_keep_later_puts_in_their_places(open_named: OpenStore) -> None:
    store = await open_named()
    _, ids = await store.put_returning_ids([b"x", b"y"])
    assert ids is not None
    assert await store.retract([ids[1]]) == [True]
    _, later = await store.put_returning_ids([b"z"])
    assert later is not None
    assert int(later[0]) == int(ids[1]) + 1  # an id never names another item
    assert await store.retract(later) == [True]
    assert await store.retract([ids[0]]) == [True]
    assert (await store.counts()).ready == 0
    assert await store.put([b"w"])
    assert await payloads(store) == [b"w"]


async def test_shutdown_immediate_counts_and_deletes_fresh_and_returned_items(
    open_named: OpenStore,
) -> None:
    store = await open_named()
    _, ids = await store.put_returning_ids([b"1", b"2", b"3", b"4"])
    assert ids is not None
    (first,) = await store.claim(1, 30.0, None)
    assert await store.release([first.receipt]) == [True]
    assert await store.retract([ids[2]]) == [True]
    assert (await store.counts()).ready == 3
    assert await store.shutdown(immediate=True) == 3
    counts = await store.counts()
    assert (counts.ready, counts.unfinished) == (0, 0)
    await store.resume()
    _, more = await store.put_returning_ids([b"5"])
    assert more == [str(int(ids[3]) + 1)]
    assert await payloads(store) == [b"5"]


async def test_a_queued_item_is_one_list_element(open_named: OpenStore, client: Any) -> None:
    name = uuid.uuid4().hex
    store = await open_named(name)
    assert await store.put([b"abcde"] * 1000)
    keys = queue_keys("conveyor", name)
    # No per-item entry in a hash or a zset: the list holds the payloads, ids implied.
    assert await client.llen(keys["fresh"]) == 1000
    assert not await client.exists(keys["items"], keys["ready"], keys["attempts"])
    assert await client.object("encoding", keys["fresh"]) == b"quicklist"


def format_one_queue(client: Any, keys: dict[str, str]) -> Any:
    """Write a queue as conveyor of format 1 left it: 4 ready items, 1 leased, 1 dead."""
    pipe = client.pipeline(transaction=True)
    pipe.hset(
        keys["meta"],
        mapping={"format": "1", "epoch": "0123abcd", "seq": 6, "dseq": 3, "deadseq": 1},
    )
    # 1 never claimed; 2 claimed once and released (attempts "0"); 3 leased; 4 retried
    # once; 5 dead; 6 never claimed.
    pipe.hset(keys["items"], mapping={str(i): f"p{i}" for i in range(1, 7)})
    pipe.zadd(keys["ready"], {"1": 1, "2": 2, "4": 4, "6": 6})
    pipe.hset(keys["attempts"], mapping={"2": 0, "3": 1, "4": 1, "5": 1})
    pipe.zadd(keys["leased"], {"3": 4102444800})
    pipe.hset(keys["lease"], "3", 2)
    pipe.zadd(keys["dead"], {"5": 1})
    pipe.hset(keys["deadinfo"], "5", "1700000000.0|boom")
    return pipe.execute()


async def test_a_format_1_queue_is_migrated_on_open_and_keeps_every_item(
    open_named: OpenStore, client: Any
) -> None:
    name = uuid.uuid4().hex
    keys = queue_keys("conveyor", name)
    await format_one_queue(client, keys)
    store = await open_named(name)
    assert await client.hget(keys["meta"], "format") == b"3"
    counts = await store.counts()
    assert (counts.ready, counts.leased, counts.dead) == (4, 1, 1)
    # The old lease still holds: its receipt (epoch, id, delivery) acknowledges it.
    assert await store.ack(["0123abcd:3:2"]) == [True]
    _, ids = await store.put_returning_ids([b"p7"])
    assert ids == ["7"]
    got = await store.claim(10, 30.0, None)
    assert [(d.item_id, d.payload, d.attempts) for d in got] == [
        ("1", b"p1", 1),
        ("2", b"p2", 1),
        ("4", b"p4", 2),
        ("6", b"p6", 1),
        ("7", b"p7", 1),
    ]
    (letter,) = await store.dead_letters(5)
    assert (letter.item_id, letter.payload, letter.error) == ("5", b"p5", "boom")
    assert await store.ack([d.receipt for d in got]) == [True] * 5
    # A second opener finds format 3 and changes nothing.
    again = await open_named(name)
    assert (await again.counts()).unfinished == 0
    assert await client.hget(keys["meta"], "format") == b"3"


async def test_a_format_2_queue_is_marked_3_on_open_and_keeps_its_items(
    open_named: OpenStore, client: Any
) -> None:
    # Format 3 only added the job options' keys: a format-2 queue is one without them.
    name = uuid.uuid4().hex
    keys = queue_keys("conveyor", name)
    await client.hset(keys["meta"], mapping={"format": "2", "epoch": "0123abcd", "seq": 2})
    await client.rpush(keys["fresh"], "p1", "p2")
    store = await open_named(name)
    assert await client.hget(keys["meta"], "format") == b"3"
    got = await store.claim(10, 30.0, None)
    assert [(d.item_id, d.payload) for d in got] == [("1", b"p1"), ("2", b"p2")]


async def test_a_newer_format_is_refused_and_left_alone(open_named: OpenStore, client: Any) -> None:
    name = uuid.uuid4().hex
    keys = queue_keys("conveyor", name)
    await client.hset(keys["meta"], mapping={"format": "4", "epoch": "e"})
    await client.rpush(keys["fresh"], "kept")
    try:
        with pytest.raises(IncompatibleStoreError, match="layout"):
            await open_named(name)
        assert await client.hget(keys["meta"], "format") == b"4"
        assert await client.lrange(keys["fresh"], 0, -1) == [b"kept"]
    finally:
        # A queue no conveyor here can read would break every test that lists the
        # server's queues (conveyor queues) after this one.
        await client.delete(*keys.values())
