"""Puts handed straight to a waiting client; replies read off the wire; batch tokens.

A claim that finds nothing makes its client a waiter; the next put into the empty queue
leases its first item to it and publishes it on the client's own channel, so that the
getter has it without a claim's round trip.  These tests hold what that must not break:
nothing lost (a waiter gone, a handed item nobody claims), nothing handed to the putter
itself, receipts that acknowledge.  Then the store's RESP reader, and the replay rules of
batch tokens (head.lua) driven by hand.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from conveyor.backends.redis import lua_script, open_store, queue_keys
from conveyor.backends.redis._scripts import job_keys
from conveyor.backends.redis._wire import _IncompleteError, _parse
from tests.backends.redis_backend import OpenStore, RedisServer, open_named, redis_server

pytestmark = pytest.mark.timeout(60)

__all__ = ["open_named", "redis_server"]


async def until(condition: Callable[[], Awaitable[bool]], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not await condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_a_put_hands_its_first_item_to_a_waiting_client(open_named: OpenStore) -> None:
    name = uuid.uuid4().hex
    getter, putter = await open_named(name), await open_named(name)
    assert await getter.claim(1, 30.0, None) == []  # now a waiter
    assert await putter.put([b"first", b"second"])
    # Leased to the getter by the put itself: nothing else may claim it.
    counts = await putter.counts()
    assert (counts.ready, counts.leased) == (1, 1)
    (other,) = await putter.claim(5, 30.0, None)
    assert other.payload == b"second"

    async def handed() -> bool:
        await getter.wait_changed(0.05)
        return bool(getter._claims._handed)  # type: ignore[attr-defined]

    await until(handed)
    (mine,) = await getter.claim(1, 30.0, None)
    assert (mine.payload, mine.attempts) == (b"first", 1)
    assert mine.lease_deadline > time.time() + 20
    assert await getter.ack([mine.receipt]) == [True]
    assert await putter.ack([other.receipt]) == [True]
    assert (await putter.counts()).unfinished == 0


async def test_a_handed_item_nobody_claims_is_given_back(open_named: OpenStore) -> None:
    name = uuid.uuid4().hex
    getter, putter = await open_named(name), await open_named(name)
    assert await getter.claim(1, 30.0, None) == []
    assert await putter.put([b"x"])
    assert (await putter.counts()).leased == 1

    async def back() -> bool:
        counts = await putter.counts()
        return (counts.ready, counts.leased) == (1, 0)

    await until(back)
    (again,) = await putter.claim(1, 30.0, None)
    assert (again.payload, again.attempts) == (b"x", 1)  # the handover counted no delivery
    assert await putter.ack([again.receipt]) == [True]


async def test_a_waiter_that_closed_gets_nothing_and_nothing_is_lost(
    open_named: OpenStore,
) -> None:
    name = uuid.uuid4().hex
    getter, putter = await open_named(name), await open_named(name)
    assert await getter.claim(1, 30.0, None) == []
    await getter.aclose()  # its channel has no listener now
    assert await putter.put([b"kept"])
    counts = await putter.counts()
    assert (counts.ready, counts.leased) == (1, 0)
    (got,) = await putter.claim(1, 30.0, None)
    assert got.payload == b"kept"


async def test_a_client_never_hands_its_own_puts_to_itself(open_named: OpenStore) -> None:
    store = await open_named(uuid.uuid4().hex)
    _, ids = await store.put_returning_ids([b"warm"])
    assert await store.retract(ids or []) == [True]
    assert await store.claim(1, 30.0, None) == []  # a waiter
    _, ids = await store.put_returning_ids([b"mine"])
    assert (await store.counts()).ready == 1  # still fresh: retract and claim by id work
    assert await store.retract(ids or []) == [True]


async def test_a_closing_store_gives_back_what_was_handed_to_it(
    open_named: OpenStore,
) -> None:
    name = uuid.uuid4().hex
    getter, putter = await open_named(name), await open_named(name)
    assert await getter.claim(1, 30.0, None) == []
    assert await putter.put([b"x"])

    async def handed() -> bool:
        await getter.wait_changed(0.05)
        return bool(getter._claims._handed)  # type: ignore[attr-defined]

    await until(handed)
    await getter.aclose()
    counts = await putter.counts()
    assert (counts.ready, counts.leased) == (1, 0)


@pytest.mark.parametrize(
    ("wire", "reply"),
    [
        (b"$5\r\nhello\r\n", b"hello"),
        (b"$-1\r\n", None),
        (b"_\r\n", None),
        (b":-42\r\n", -42),
        (b"+OK\r\n", b"OK"),
        (b",1.5\r\n", 1.5),
        (b"#t\r\n", True),
        (b"*3\r\n:1\r\n$0\r\n\r\n*1\r\n$2\r\nab\r\n", [1, b"", [b"ab"]]),
        (b"%1\r\n$1\r\nk\r\n$1\r\nv\r\n", {b"k": b"v"}),
        (b"~1\r\n:7\r\n", [7]),
        (b"=8\r\ntxt:abcd\r\n", b"abcd"),
    ],
)
def test_replies_are_parsed_whole_or_not_at_all(wire: bytes, reply: Any) -> None:
    buffer = bytearray(wire + b":9\r\n")
    parsed, end = _parse(buffer, 0)
    assert parsed == reply
    assert _parse(buffer, end) == (9, len(buffer))
    for cut in range(1, len(wire)):  # every shorter prefix is incomplete, never misread
        with pytest.raises(_IncompleteError):
            _parse(bytearray(wire[:cut]), 0)


def test_error_replies_become_redis_py_exceptions() -> None:
    error, _ = _parse(bytearray(b"-NOSCRIPT No matching script.\r\n"), 0)
    assert isinstance(error, redis.exceptions.NoScriptError)
    error, _ = _parse(bytearray(b"!9\r\nEPOCH abc\r\n"), 0)
    assert isinstance(error, redis.exceptions.ResponseError)
    assert str(error) == "EPOCH abc"


async def test_batch_tokens_replay_chain_and_refuse_stale_copies(
    redis_server: RedisServer,
) -> None:
    client: Any = aioredis.Redis(port=redis_server.port)  # stubs vary by version
    keys = queue_keys("conveyor", uuid.uuid4().hex, client="c")
    await client.hset(keys["meta"], mapping={"format": "3", "epoch": "e"})
    put_keys = [
        keys[role]
        for role in (
            "meta",
            "ops",
            "fresh",
            "holes",
            "ready",
            "delayed",
            "waiters",
            "items",
            "leased",
            "lease",
            "attempts",
            "putat",
        )
    ] + job_keys(keys)
    sha = await client.script_load(lua_script("put"))

    async def put(token: str, payload: bytes) -> Any:
        args = ["put@e", token, "60", "ch", -1, payload]
        return await client.evalsha(sha, len(put_keys), *put_keys, *args)

    try:
        assert await put("1", b"a") == b"1 1 1"
        assert await put("2+", b"b") == b"2 1 0"  # chained right after 1: runs
        with pytest.raises(redis.ResponseError, match="GAP"):
            await put("4+", b"d")  # 3 never ran: neither does 4, chained to it
        assert await put("1", b"a") == b"1 1 1"  # a resend replays, runs nothing
        assert await put("2+", b"b") == b"2 1 0"
        assert await put("3+", b"c") == b"3 1 0"
        for token in range(4, 12):
            await put(str(token), b"n")
        with pytest.raises(redis.ResponseError, match="STALE"):
            await put("1", b"a")  # its reply is gone: a stale copy never runs
        assert await put("11", b"n") == b"11 1 0"
        assert await client.llen(keys["fresh"]) == 11
    finally:
        await client.aclose()


@pytest.mark.parametrize("fault", ["kill", "flush"])
async def test_pipelined_puts_are_stored_once_each_in_order_through_faults(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    # Puts go several batches at once on one connection (the put lane).  Dropping that
    # connection mid-stream (its replies lost, the batches resent, some replayed) or
    # forgetting the scripts (NOSCRIPT for one batch, GAP for those chained behind it)
    # must neither lose, repeat nor reorder a put.
    from conveyor.backends.redis._connection import _Lane

    peak = 0
    join = _Lane.join

    def counting(lane: _Lane, encode: Any) -> Any:
        nonlocal peak
        entry = join(lane, encode)
        peak = max(peak, len(lane.entries))
        return entry

    monkeypatch.setattr(_Lane, "join", counting)
    store = await open_store(urllib.parse.urlsplit(redis_server.url), uuid.uuid4().hex)
    admin: Any = aioredis.Redis(port=redis_server.port)
    stop = asyncio.Event()

    async def faults() -> int:
        done = 0
        while not stop.is_set():
            await asyncio.sleep(0.003)
            if fault == "kill":
                await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            else:
                # Forgotten, and loaded again at once, as another client would: a batch
                # may then run while the one before it was refused (NOSCRIPT).
                pipe = admin.pipeline(transaction=False)
                for _ in range(20):
                    pipe.script_flush()
                    pipe.script_load(lua_script("put"))
                await pipe.execute()
            done += 1
        return done

    try:
        chaos = asyncio.ensure_future(faults())
        payloads = [b"%d" % i for i in range(600)]
        results = []
        for start in range(0, len(payloads), 100):
            batch = payloads[start : start + 100]
            results += await asyncio.gather(*(store.put([p]) for p in batch))
        stop.set()
        assert await chaos > 0
        assert results == [True] * len(payloads)
        got = await store.claim(len(payloads) + 10, 30.0, None)
        assert [d.payload for d in got] == payloads
        assert peak >= 2  # batches were in flight together
    finally:
        stop.set()
        await store.aclose()
        await admin.aclose()
