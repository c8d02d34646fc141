"""A receipt names its queue and the incarnation of its store.

Another queue refuses it and changes nothing (both backends).  A store wiped or replaced
while open (Redis ``FLUSHALL`` or a restart without persistence; an SQLite file deleted and
created again) is reported as such, and no receipt from before acknowledges anything in it.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor import ForeignReceiptError, LeaseExpiredError, StoreResetError
from tests.backends.durable_fixtures import durable_url
from tests.backends.redis_backend import RedisServer, redis_server, unique_name

pytestmark = pytest.mark.timeout(60)

__all__ = ["durable_url", "redis_server"]


# -- another queue's receipt (#11 item 8) -----------------------------------------------


async def test_another_queues_receipt_is_refused_and_changes_nothing(durable_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    a: Any = await conveyor.open_queue(durable_url, name=f"a-{suffix}")
    b: Any = await conveyor.open_queue(durable_url, name=f"b-{suffix}")
    try:
        await a.put("a's job")
        await b.put("b's job")
        # Both first items, both first deliveries: the same numbers in either queue.
        from_a = await a.get_with_receipt(timeout=10)
        from_b = await b.get_with_receipt(timeout=10)
        before = (await a.refresh(), await b.refresh())
        with pytest.raises(ForeignReceiptError) as caught:
            await b.ack(from_a)
        assert isinstance(caught.value, ValueError)
        assert f"b-{suffix}" in str(caught.value)
        with pytest.raises(ForeignReceiptError):
            await b.retry(from_a)
        with pytest.raises(ForeignReceiptError):
            await b.fail(from_a, "nope")
        with pytest.raises(ForeignReceiptError):
            await b.extend(from_a, 10)
        with pytest.raises(ForeignReceiptError):
            await a.ack(from_b)
        after = (await a.refresh(), await b.refresh())
        assert [(s.current_size, s.unfinished_tasks) for s in after] == [
            (s.current_size, s.unfinished_tasks) for s in before
        ]
        assert after[1].unfinished_tasks == 1
        await a.ack(from_a)  # each queue's own receipt still works
        await b.ack(from_b)
        await a.join(timeout=10)
        await b.join(timeout=10)
    finally:
        await a.aclose()
        await b.aclose()


# -- a wiped Redis (#11 item 7) ----------------------------------------------------------


def redis_command(server: RedisServer, *args: str) -> bytes:
    command = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%b\r\n" % (len(a.encode()), a.encode()) for a in args
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as sock:
        sock.sendall(command)
        return sock.recv(65536)


async def test_a_receipt_from_before_flushall_acknowledges_nothing(
    redis_server: RedisServer, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique_name(request)
    old: Any = await conveyor.open_queue(redis_server.url, name=name)
    try:
        await old.put("lost with the wipe")
        stale = await old.get_with_receipt(timeout=10)
        await old.refresh()
        redis_command(redis_server, "FLUSHALL")
        # Another process opens the queue anew: its first item and delivery get the same
        # numbers as the stale receipt's.
        async with conveyor.open_queue(redis_server.url, name=name) as new:
            assert isinstance(new, conveyor.DurableQueue)
            await new.put("unrelated")
            fresh = await new.get_with_receipt(timeout=10)
            assert fresh.item == "unrelated"
            with (
                caplog.at_level(logging.WARNING, logger="conveyor"),
                pytest.raises(StoreResetError, match="vanished") as caught,
            ):
                await old.ack(stale)
            assert "1 leased" in str(caught.value)  # the counts at the last look
            assert any("vanished" in r.getMessage() for r in caplog.records)
            with pytest.raises(LeaseExpiredError):
                await old.ack(stale)  # of a past incarnation: no round trip, no effect
            assert (await new.refresh()).unfinished_tasks == 1
            await new.ack(fresh)
            await new.join(timeout=10)
    finally:
        await old.aclose()


async def test_a_restart_without_persistence_is_reported_not_decoded(
    request: pytest.FixtureRequest,
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
    server = RedisServer(workdir, extra_args=["--appendonly", "no"])
    server.start()
    try:
        q: Any = await conveyor.open_queue(server.url, name=unique_name(request))
        try:
            await q.put("before")
            stale = await q.get_with_receipt(timeout=10)
            server.kill()
            server.start()  # nothing persisted: every key is gone
            with pytest.raises(StoreResetError, match="vanished"):
                await q.put("after")  # not stored: the call changed nothing
            await q.put("after")
            again = await q.get_with_receipt(timeout=10)
            assert (again.item, again.attempts) == ("after", 1)
            with pytest.raises(LeaseExpiredError):
                await q.ack(stale)
            await q.ack(again)
            await q.join(timeout=10)
            assert await q.dead_letters() == []
        finally:
            await q.aclose()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# -- an SQLite file replaced under a running process (#11 item 7) ----------------------


async def test_an_sqlite_file_replaced_while_open_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    url = f"sqlite:///{path}"
    old: Any = await conveyor.open_queue(url, name="jobs")
    try:
        await old.put("lost with the file")
        stale = await old.get_with_receipt(timeout=10)
        for suffix in ("", "-wal", "-shm"):  # as `rm queue.db*` would
            os.unlink(f"{path}{suffix}")
        async with conveyor.open_queue(url, name="jobs") as new:
            assert isinstance(new, conveyor.DurableQueue)
            await new.put("unrelated")
            fresh = await new.get_with_receipt(timeout=10)
            with pytest.raises(StoreResetError, match="deleted or replaced"):
                await old.put("written where nobody would see it")
            with pytest.raises(LeaseExpiredError):
                await old.ack(stale)
            await old.put("seen")  # in the file now at the path
            assert await new.get(timeout=10) == "seen"
            new.task_done()
            await new.ack(fresh)
            await new.join(timeout=10)
    finally:
        await old.aclose()


async def test_items_whose_payload_vanished_go_dead_saying_why(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    # Keys deleted or evicted one by one (e.g. an eviction policy changed at run time):
    # the ids still ready name payloads that are gone.  Never a decode error.  Since
    # layout 2 an item keeps its payload in the items hash once it has been claimed (before
    # that, in the fresh list, where ids are implied by places): both items come back
    # from a first delivery before their payloads are deleted.
    name = unique_name(request)
    q: Any = await conveyor.open_queue(redis_server.url, name=name)
    try:
        await q.put_many(["a", "b"])
        for _ in range(2):
            await q.retry(await q.get_with_receipt(timeout=30))
        redis_command(redis_server, "DEL", f"conveyor:{{{name}}}:items")
        with pytest.raises(TimeoutError):
            await q.get(timeout=0.5)
        dead = await q.dead_letters()
        assert len(dead) == 2
        assert all("vanished" in letter.error for letter in dead)
        assert not any("JSON" in letter.error or "decode" in letter.error for letter in dead)
    finally:
        await q.aclose()
