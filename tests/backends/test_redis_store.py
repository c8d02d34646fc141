"""The Redis :class:`~conveyor.backends._base.Store`, driven directly, on a private server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from conveyor import QueueShutDown
from conveyor.backends._base import Delivery, Store
from tests.backends.redis_backend import OpenStore, RedisServer, open_named, redis_server

pytestmark = pytest.mark.timeout(60)

__all__ = ["open_named", "redis_server"]


@pytest.fixture
async def store(open_named: OpenStore) -> Store:
    return await open_named()


async def until(condition: Callable[[], Awaitable[bool]], limit: float = 10.0) -> None:
    """Wait until *condition* holds (checked on state, not guessed with a sleep)."""
    deadline = time.monotonic() + limit
    while not await condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_put_claim_ack_fifo(store: Store) -> None:
    assert await store.put([b"a", b"b"])
    assert await store.put([b"c"])
    got = await store.claim(2, 30.0, None)
    assert [d.payload for d in got] == [b"a", b"b"]
    assert all(d.attempts == 1 for d in got)
    assert all(d.lease_deadline > time.time() + 20 for d in got)
    assert len({d.receipt for d in got}) == 2
    counts = await store.counts()
    assert (counts.ready, counts.leased, counts.unfinished) == (1, 2, 3)
    assert await store.ack([d.receipt for d in got]) == [True, True]
    assert await store.ack([got[0].receipt]) == [False]
    (last,) = await store.claim(5, 30.0, None)
    assert last.payload == b"c"
    assert await store.ack([last.receipt]) == [True]
    assert (await store.counts()).unfinished == 0
    assert await store.claim(1, 30.0, None) == []


async def test_put_is_all_or_nothing_within_maxsize(store: Store) -> None:
    await store.set_maxsize(2)
    assert not await store.put([b"1", b"2", b"3"])
    assert (await store.counts()).ready == 0
    assert await store.put([b"1", b"2"])
    assert not await store.put([b"3"])
    (first,) = await store.claim(1, 30.0, None)
    assert await store.put([b"3"])  # leased items do not count against maxsize
    assert (await store.counts()).ready == 2
    assert first.payload == b"1"


async def test_float_maxsize_admits_as_asyncio_does(store: Store) -> None:
    await store.set_maxsize(2.5)
    assert await store.put([b"1", b"2"])
    assert await store.put([b"3"])
    assert not await store.put([b"4"])


async def claim_soon(store: Store, lease_timeout: float = 30.0) -> list[Delivery]:
    """Claim until something comes, waiting on the store between tries."""
    deadline = time.monotonic() + 10
    while not (got := await store.claim(1, lease_timeout, None)):
        assert time.monotonic() < deadline, "nothing came"
        await store.wait_changed(1.0)  # ends at the next lease or retry deadline
    return got


async def test_expired_lease_is_redelivered_and_old_receipt_is_stale(store: Store) -> None:
    await store.put([b"x"])
    (first,) = await store.claim(1, 0.05, None)
    (second,) = await claim_soon(store)
    assert second.item_id == first.item_id
    assert second.attempts == 2
    assert second.receipt != first.receipt
    assert await store.ack([first.receipt]) == [False]
    assert await store.retry(first.receipt, 0) is False
    assert await store.extend(first.receipt, 10) is None
    assert await store.fail(first.receipt, "no") is False
    assert await store.ack([second.receipt]) == [True]


async def test_ack_after_deadline_is_refused(store: Store) -> None:
    await store.put([b"x"])
    (got,) = await store.claim(1, 0.05, None)
    await asyncio.sleep(0.1)  # the lease must lapse: waiting out a deadline is the point
    assert await store.ack([got.receipt]) == [False]
    (again,) = await store.claim(1, 30.0, None)
    assert again.attempts == 2


async def test_too_many_attempts_go_dead(store: Store) -> None:
    await store.put([b"x"])
    (got,) = await store.claim(1, 0.01, 1)
    await asyncio.sleep(0.05)  # past the lease deadline
    assert await store.claim(1, 30.0, 1) == []
    counts = await store.counts()
    assert (counts.dead, counts.unfinished) == (1, 0)
    (letter,) = await store.dead_letters(10)
    assert (letter.item_id, letter.payload, letter.attempts) == (got.item_id, b"x", 1)
    assert letter.error == "lease expired"
    assert abs(letter.failed_at - time.time()) < 60


async def test_retry_with_delay(store: Store) -> None:
    await store.put([b"x", b"y"])
    (x,) = await store.claim(1, 30.0, None)
    assert await store.retry(x.receipt, 0.2)
    counts = await store.counts()
    assert (counts.ready, counts.delayed, counts.leased) == (1, 1, 0)
    (y,) = await store.claim(1, 30.0, None)
    assert y.payload == b"y"
    assert await store.claim(1, 30.0, None) == []
    got = await claim_soon(store)
    assert got[0].payload == b"x"
    assert got[0].attempts == 2


async def test_retry_without_delay_keeps_fifo_position(store: Store) -> None:
    await store.put([b"1", b"2", b"3"])
    (one,) = await store.claim(1, 30.0, None)
    assert await store.retry(one.receipt, 0)
    assert [d.payload for d in await store.claim(3, 30.0, None)] == [b"1", b"2", b"3"]


async def test_fail_dead_letters_and_requeue(store: Store) -> None:
    await store.put([b"a", b"b", b"c"])
    got = await store.claim(3, 30.0, None)
    for delivery in got:
        assert await store.fail(delivery.receipt, f"boom {delivery.payload!r}")
    assert await store.fail(got[0].receipt, "twice") is False
    letters = await store.dead_letters(2)
    assert [letter.payload for letter in letters] == [b"a", b"b"]
    assert letters[0].error == "boom b'a'"
    counts = await store.counts()
    assert (counts.dead, counts.unfinished) == (3, 0)
    assert await store.requeue_dead([got[1].item_id, "nope"]) == 1
    assert await store.requeue_dead(None) == 2
    assert await store.dead_letters(10) == []
    again = await store.claim(3, 30.0, None)
    assert [d.payload for d in again] == [b"a", b"b", b"c"]
    assert [d.attempts for d in again] == [1, 1, 1]


async def test_extend(store: Store) -> None:
    await store.put([b"x"])
    (got,) = await store.claim(1, 0.5, None)
    deadline = await store.extend(got.receipt, 60)
    assert deadline is not None
    assert deadline > time.time() + 50
    await asyncio.sleep(0.6)  # past the first deadline: the extension must hold
    assert await store.claim(1, 30.0, None) == []
    assert await store.ack([got.receipt]) == [True]


async def test_shutdown_drains_then_refuses(store: Store, open_named: OpenStore) -> None:
    await store.put([b"1", b"2"])
    assert await store.shutdown(immediate=False) == 0
    other = await open_named(name=None)
    assert not (await other.counts()).is_shutdown  # another name is another queue
    assert (await store.counts()).is_shutdown
    with pytest.raises(QueueShutDown):
        await store.put([b"3"])
    assert len(await store.claim(5, 30.0, None)) == 2
    with pytest.raises(QueueShutDown):
        await store.claim(1, 30.0, None)


async def test_shutdown_immediate_deletes_waiting_items(store: Store) -> None:
    await store.put([b"1", b"2", b"3"])
    (leased,) = await store.claim(1, 30.0, None)
    assert await store.shutdown(immediate=True) == 2
    counts = await store.counts()
    assert (counts.ready, counts.leased, counts.is_shutdown) == (0, 1, True)
    assert await store.ack([leased.receipt]) == [True]


async def test_shutdown_is_shared(open_named: OpenStore) -> None:
    name = uuid.uuid4().hex
    one, two = await open_named(name), await open_named(name)
    await one.shutdown(immediate=False)
    assert (await two.counts()).is_shutdown
    with pytest.raises(QueueShutDown):
        await two.put([b"x"])


async def test_concurrent_calls_coalesce_in_order(store: Store) -> None:
    results = await asyncio.gather(*(store.put([str(i).encode()]) for i in range(200)))
    assert all(results)
    claims = await asyncio.gather(*(store.claim(3, 30.0, None) for _ in range(80)))
    payloads = [d.payload for batch in claims for d in batch]
    assert payloads == [str(i).encode() for i in range(200)]
    acks = await asyncio.gather(*(store.ack([d.receipt for d in batch]) for batch in claims))
    assert all(all(flags) for flags in acks)
    assert (await store.counts()).unfinished == 0


async def test_concurrent_puts_respect_maxsize_in_order(store: Store) -> None:
    await store.set_maxsize(5)
    results = await asyncio.gather(*(store.put([str(i).encode()]) for i in range(10)))
    assert results == [True] * 5 + [False] * 5


async def test_a_put_sent_behind_one_refused_for_room_is_refused_too(
    store: Store, redis_server: RedisServer
) -> None:
    # Puts go several at once on one connection (put_depth): one that fits must never be
    # stored ahead of an older one refused for room (put.lua refuses a batch chained
    # behind a refused one).
    await store.set_maxsize(2)
    assert await store.put([b"old"])
    admin: Any = aioredis.Redis(port=redis_server.port)
    lane = store._puts._lane  # type: ignore[attr-defined]
    try:
        await admin.client_pause(10_000, all=False)
        try:
            first = asyncio.ensure_future(store.put([b"a", b"b"]))
            await until(lambda: _true(len(lane.entries) == 1 and lane.entries[0].sent_on))
            second = asyncio.ensure_future(store.put([b"c"]))
            await until(lambda: _true(len(lane.entries) == 2 and lane.entries[1].sent_on))
        finally:
            await admin.client_unpause()
        assert await first is False
        assert await second is False  # it fits, yet must not pass "a" and "b"
        assert (await store.counts()).ready == 1
        assert await store.put([b"c"])  # made after the refusal: stored
    finally:
        await admin.aclose()


async def _true(value: object) -> bool:
    return bool(value)


async def test_put_returning_ids_names_the_items_of_each_put(store: Store) -> None:
    await store.set_maxsize(4)
    puts = ([b"a"], [b"b", b"c"], [b"x"] * 5, [b"d"], [b"e", b"f"])
    results = await asyncio.gather(*(store.put_returning_ids(p) for p in puts))
    # Five never fit in four and block nobody; "e", "f" find no room.
    assert [stored for stored, _ in results] == [True, True, False, True, False]
    assert [ids for stored, ids in results if not stored] == [None, None]
    named: dict[str, bytes] = {}
    for (stored, ids), put in zip(results, puts, strict=True):
        if stored:
            assert ids is not None
            named.update(zip(ids, put, strict=True))
    got = await store.claim(10, 30.0, None)
    assert {d.item_id: d.payload for d in got} == named
    assert [d.payload for d in got] == [b"a", b"b", b"c", b"d"]


async def test_cancelled_claim_gives_its_items_back(store: Store) -> None:
    await store.put([b"x"])
    task = asyncio.ensure_future(store.claim(1, 30.0, None))
    await asyncio.sleep(0)  # the claim's round trip is now under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def ready_again() -> bool:
        return (await store.counts()).ready == 1

    await until(ready_again)
    (got,) = await store.claim(1, 30.0, None)
    assert got.payload == b"x"
    assert got.attempts == 1


async def test_wait_changed_wakes_on_another_client(open_named: OpenStore) -> None:
    name = uuid.uuid4().hex
    waiter, putter = await open_named(name), await open_named(name)
    assert await waiter.claim(1, 30.0, None) == []
    await waiter.wait_changed(0.0)  # subscribes; the first call may return at once
    assert await waiter.claim(1, 30.0, None) == []

    async def put_later() -> None:
        await asyncio.sleep(0.05)
        await putter.put([b"x"])

    producer = asyncio.ensure_future(put_later())
    started = time.monotonic()
    await waiter.wait_changed(30.0)
    assert time.monotonic() - started < 20  # woken by the change, not the timeout
    await producer
    assert len(await waiter.claim(1, 30.0, None)) == 1


async def test_wait_changed_idles_without_burning_cpu(store: Store) -> None:
    await store.counts()
    cpu, start = time.process_time(), time.monotonic()
    wakeups = 0
    while (remaining := start + 0.5 - time.monotonic()) > 0:
        await store.wait_changed(remaining)
        wakeups += 1
    # Early returns are allowed (the first wait subscribes), a spin is not.
    assert wakeups <= 3
    assert time.process_time() - cpu < 0.2


async def test_acknowledged_items_leave_no_keys(
    open_named: OpenStore, redis_server: RedisServer
) -> None:
    name = uuid.uuid4().hex
    store = await open_named(name)
    await store.put([b"x" * 100] * 50)
    got = await store.claim(50, 30.0, None)
    await store.ack([d.receipt for d in got])
    client = aioredis.Redis(port=redis_server.port)
    try:
        found = await client.keys(f"conveyor:{{{name}}}:*")
    finally:
        await client.aclose()
    # Only the counters and this client's replay record (which expires) remain.
    assert {str(key, "utf-8").split(":")[2] for key in found} <= {"meta", "ops"}  # type: ignore[arg-type,unused-ignore]


async def test_leases_stay_in_a_skiplist_and_the_pin_is_never_a_lease(
    open_named: OpenStore, redis_server: RedisServer
) -> None:
    # A few leases would otherwise be a listpack, whose inserts scan every member (see
    # _LEASED_PIN); the pin must not show as a lease, a due time or a delivery.
    name = uuid.uuid4().hex
    store = await open_named(name)
    await store.put([b"%d" % i for i in range(5)])
    got = await store.claim(3, 0.2, None)
    client = aioredis.Redis(port=redis_server.port)
    try:
        encoding = await client.object("encoding", f"conveyor:{{{name}}}:leased")
    finally:
        await client.aclose()
    assert encoding == b"skiplist"
    counts = await store.counts()
    assert (counts.ready, counts.leased) == (2, 3)
    # The leases expire: the next claim makes those items ready again and hands out all.
    await asyncio.sleep(0.3)
    again = await store.claim(10, 30.0, None)
    assert sorted(d.payload for d in again) == [b"%d" % i for i in range(5)]
    assert await store.ack([d.receipt for d in got]) == [False] * 3  # expired receipts
    assert await store.ack([d.receipt for d in again]) == [True] * 5
    counts = await store.counts()
    assert (counts.ready, counts.leased, counts.unfinished) == (0, 0, 0)


async def test_batches_of_thousands_keep_every_receipt_apart(store: Store) -> None:
    # Scripts work through ids a thousand at a time: flags must stay with their receipts
    # across the chunks, a stale receipt and a repeated one included.
    payloads = [b"%d" % i for i in range(2500)]
    assert await store.put(payloads)
    got = await store.claim(2500, 30.0, None)
    assert [d.payload for d in got] == payloads
    assert [d.attempts for d in got] == [1] * 2500
    stale = got[1500].receipt.split(":")[0] + ":999999"
    receipts = [d.receipt for d in got]
    receipts[1500:1500] = [stale, receipts[1800]]
    flags = await store.ack(receipts)
    expected = [True] * 2502
    expected[1500] = False  # a delivery that never was
    expected[1802] = False  # the second mention of one receipt
    assert flags == expected
    counts = await store.counts()
    assert (counts.ready, counts.leased, counts.unfinished) == (0, 0, 0)


async def test_binary_payloads_round_trip(store: Store) -> None:
    payload = bytes(range(256)) * 4
    await store.put([payload, b""])
    got = await store.claim(2, 30.0, None)
    assert [d.payload for d in got] == [payload, b""]


async def test_backend_name(store: Store) -> None:
    assert store.backend == "redis"


async def test_a_put_behind_delayed_items_wakes_waiting_getters(open_named: OpenStore) -> None:
    name = uuid.uuid4().hex
    waiter, putter = await open_named(name), await open_named(name)
    await putter.put([b"later"])
    (got,) = await putter.claim(1, 30.0, None)
    assert await putter.retry(got.receipt, 60)  # delayed: not ready, but in the queue
    assert await waiter.claim(1, 30.0, None) == []
    while True:  # until the subscription is confirmed and nothing else is pending
        await waiter.wait_changed(0.0)
        if await waiter.claim(1, 30.0, None) == []:
            break

    async def put_later() -> None:
        await asyncio.sleep(0.05)
        await putter.put([b"now"])

    producer = asyncio.ensure_future(put_later())
    started = time.monotonic()
    await waiter.wait_changed(30.0)
    assert time.monotonic() - started < 20  # woken by the put, not the timeout
    await producer
    assert [d.payload for d in await waiter.claim(1, 30.0, None)] == [b"now"]


async def test_a_receipt_twice_in_one_ack_counts_once(store: Store) -> None:
    await store.put([b"x"])
    (got,) = await store.claim(1, 30.0, None)
    assert await store.ack([got.receipt, got.receipt]) == [True, False]
