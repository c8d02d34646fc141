"""Redis queues under faults, with real processes: crashed consumers, a crashed server,
Redis down, wrong credentials, no server at all."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import conveyor
from tests.backends.redis_backend import (
    RedisServer,
    free_port,
    private_server,
    redis_server,
    unique_name,
)

pytestmark = pytest.mark.timeout(90)

__all__ = ["private_server", "redis_server"]

# A consumer process: gets N items, prints them, then hangs until it is killed.
CONSUMER = """
import asyncio, json, sys
import conveyor

async def main(url, name, count):
    q = await conveyor.open_queue(url, name=name, lease_timeout=1.0)
    got = [await q.get() for _ in range(count)]
    print(json.dumps(got), flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def spawn_consumer(url: str, name: str, count: int) -> subprocess.Popen[bytes]:
    """Start a consumer process that takes *count* items and then hangs."""
    return subprocess.Popen(
        [sys.executable, "-c", CONSUMER, url, name, str(count)], stdout=subprocess.PIPE
    )


async def test_killed_consumers_items_are_redelivered(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    name = unique_name(request)
    async with conveyor.open_queue(redis_server.url, name=name, lease_timeout=1.0) as q:
        await q.put_many(list(range(6)))
        assert isinstance(q, conveyor.DurableQueue)
        consumers = [spawn_consumer(redis_server.url, name, 3) for _ in range(2)]
        taken: list[int] = []
        try:
            for consumer in consumers:
                assert consumer.stdout is not None
                line = await asyncio.to_thread(consumer.stdout.readline)
                taken += json.loads(line)
        finally:
            for consumer in consumers:
                consumer.kill()
                consumer.wait()
                if consumer.stdout is not None:
                    consumer.stdout.close()
        assert sorted(taken) == list(range(6))
        # Their leases lapse one second after the claim; then every item comes back.
        again = []
        for _ in range(6):
            receipt = await q.get_with_receipt(timeout=20)
            assert receipt.attempts == 2
            again.append(receipt.item)
            await q.ack(receipt)
        assert sorted(again) == list(range(6))
        await q.join(timeout=10)


async def test_server_killed_and_restarted_loses_no_put(
    private_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    name = unique_name(request)
    returned: list[int] = []
    restarted = threading.Event()

    def crash_and_restart() -> None:
        private_server.kill()
        time.sleep(0.3)  # let the clients notice that the server is gone
        private_server.start()
        restarted.set()

    async with conveyor.open_queue(private_server.url, name=name, retry_timeout=30) as q:
        crasher: asyncio.Future[None] | None = None
        restarted_at: int | None = None
        i = 0
        # Keep putting through the crash, and for a while after the restart.
        while restarted_at is None or i < restarted_at + 200:
            await q.put(i)
            returned.append(i)
            if i == 200:
                crasher = asyncio.ensure_future(asyncio.to_thread(crash_and_restart))
            if restarted_at is None and restarted.is_set():
                restarted_at = i
            i += 1
        assert crasher is not None
        await crasher
        got: list[int] = []
        while len(got) < len(returned):
            batch = await q.get_many(100, timeout=20)
            got += batch
            for _ in batch:
                q.task_done()
        await q.join(timeout=20)
    assert sorted(set(got)) == returned
    assert len(got) == len(returned)  # nothing duplicated either: resent batches replay


async def test_operations_give_up_clearly_when_redis_is_down(
    private_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    q: Any = await conveyor.open_queue(
        private_server.url, name=unique_name(request), retry_timeout=0.5
    )
    try:
        await q.put("before")
        private_server.kill()
        started = time.monotonic()
        with pytest.raises(conveyor.BackendUnavailableError) as caught:
            await asyncio.wait_for(q.put("after"), 20)
        assert f"127.0.0.1:{private_server.port}" in str(caught.value)
        assert "retry_timeout" in str(caught.value)
        assert caught.value.__cause__ is not None
        with pytest.raises(conveyor.BackendUnavailableError):
            await asyncio.wait_for(q.aqsize(), 20)
        with pytest.raises(conveyor.BackendUnavailableError):
            await asyncio.wait_for(q.get(), 20)
        assert time.monotonic() - started < 20  # bounded: never a hang
    finally:
        await q.aclose()


async def test_wrong_password_is_a_clear_error_at_open(request: pytest.FixtureRequest) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
    server = RedisServer(workdir, password="s3cret")
    server.start()
    try:
        bad = f"redis://:wrong@127.0.0.1:{server.port}/0"
        with pytest.raises(conveyor.BackendError, match="password") as caught:
            await conveyor.open_queue(bad, name=unique_name(request))
        assert f"127.0.0.1:{server.port}" in str(caught.value)
        assert not isinstance(caught.value, conveyor.BackendUnavailableError)
        with pytest.raises(conveyor.BackendError, match="password"):
            await conveyor.open_queue(
                f"redis://127.0.0.1:{server.port}/0", name=unique_name(request)
            )
        async with conveyor.open_queue(server.url, name=unique_name(request)) as q:
            await q.put("ok")
            assert await q.get() == "ok"
            q.task_done()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def test_a_server_without_zmscore_is_refused_at_open(
    request: pytest.FixtureRequest,
) -> None:
    # Redis before 6.2 has no ZMSCORE, which acknowledgements use: a real server with the
    # command disabled stands for one, and opening a queue there must say so at once.
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
    server = RedisServer(workdir, extra_args=["--rename-command", "ZMSCORE", ""])
    server.start()
    try:
        started = time.monotonic()
        with pytest.raises(conveyor.BackendError, match=r"Redis 6\.2") as caught:
            await conveyor.open_queue(server.url, name=unique_name(request))
        assert time.monotonic() - started < 5  # refused, not retried
        assert not isinstance(caught.value, conveyor.BackendUnavailableError)
        assert f"127.0.0.1:{server.port}" in str(caught.value)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def test_unreachable_server_is_a_clear_error_at_open(
    request: pytest.FixtureRequest,
) -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(conveyor.BackendUnavailableError, match=f"127.0.0.1:{port}"):
        await asyncio.wait_for(
            conveyor.open_queue(
                f"redis://127.0.0.1:{port}/0", name=unique_name(request), retry_timeout=0.3
            ),
            20,
        )
    assert time.monotonic() - started < 20


async def test_bad_urls_and_options_are_clear_errors(request: pytest.FixtureRequest) -> None:
    with pytest.raises(conveyor.InvalidURLError, match="database number"):
        await conveyor.open_queue("redis://127.0.0.1:1/jobs", name="x")
    with pytest.raises(TypeError, match="retry_timout"):
        await conveyor.open_queue("redis://127.0.0.1:1/0", name="x", retry_timout=1)
    with pytest.raises(ValueError, match="retry_timeout"):
        await conveyor.open_queue("redis://127.0.0.1:1/0", name="x", retry_timeout=-1)
