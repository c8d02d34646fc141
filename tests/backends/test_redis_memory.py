"""Acknowledged items leave nothing behind: Redis memory returns to its baseline."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from tests.backends.redis_backend import RedisServer

pytestmark = pytest.mark.timeout(120)

ITEMS = 100_000
CHUNK = 5_000


@pytest.fixture
def quiet_server() -> Iterator[RedisServer]:
    """A server of this test's own, so no other test's keys move its memory."""
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
    server = RedisServer(workdir)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def used_memory(server: RedisServer) -> int:
    return int(server.info("memory")["used_memory"])


async def test_memory_returns_to_baseline_after_100k_items(quiet_server: RedisServer) -> None:
    async with conveyor.open_queue(quiet_server.url, name="memory") as q:
        await q.put("warm-up")  # scripts loaded, keys and connections made
        assert await q.get() == "warm-up"
        q.task_done()
        await q.join()
        baseline = used_memory(quiet_server)
        peak = baseline
        done = 0
        while done < ITEMS:
            await q.put_many([{"n": done + i, "pad": "x" * 20} for i in range(CHUNK)])
            peak = max(peak, used_memory(quiet_server))
            got = 0
            while got < CHUNK:
                batch = await q.get_many(CHUNK - got)
                got += len(batch)
                for _ in batch:
                    q.task_done()
            done += CHUNK
        await q.join()
        after = used_memory(quiet_server)
    # The items were really in Redis at their peak...
    assert peak - baseline > CHUNK * 40
    # ... and are gone now: what remains is noise (allocator slack, buffers), not items.
    assert after - baseline < 256 * 1024, (baseline, peak, after)
