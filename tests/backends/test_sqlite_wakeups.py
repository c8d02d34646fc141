"""Wake-ups between processes on an SQLite file: the sockets next to it come and go.

A store whose tasks wait binds a datagram socket in ``<file>-wake/``; commits in other
processes send to it.  The directory holds only the sockets of open stores: closing
removes a store's (and the directory with the last one), and a socket whose process was
SIGKILLed is removed by the next commit that finds it dead.
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

import conveyor
from conveyor.backends.sqlite import _store as sqlite_store
from conveyor.backends.sqlite import open_store

from ._processes import Worker


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _sockets(path: Path) -> list[Path]:
    """Return the sockets in the file's wake-up directory (none when it is gone)."""
    wake = Path(f"{path}-wake")
    return sorted(wake.iterdir()) if wake.exists() else []


async def _until(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.01)


async def test_a_waiting_store_is_woken_by_another_process_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        waiting = asyncio.ensure_future(q.get())
        await _until(lambda: len(_sockets(path)) == 1)
        producer = Worker("produce", _url(path), "jobs", "--count", "1")
        producer.finish()
        assert await asyncio.wait_for(waiting, 30) == 0
        q.task_done()
    assert not _sockets(path)


async def test_the_socket_of_a_killed_process_is_removed_by_the_next_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.db"
    consumer = Worker("consume", _url(path), "jobs", "--idle", "60")
    consumer.wait_for(lambda lines: "ready" in lines)
    await _until(lambda: len(_sockets(path)) == 1)
    consumer.kill()
    (stale,) = _sockets(path)
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        await q.put("after the kill")  # its commit finds the socket dead
        await _until(lambda: stale not in _sockets(path))
    assert not _sockets(path)


@pytest.mark.parametrize("producer", ["another process", "this process"])
async def test_a_commit_wakes_the_stores_of_its_queue_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, producer: str
) -> None:
    # Every commit tells each waiting store of the file which queue changed: waiters of
    # other queues stay asleep (woken by each commit, eight processes waiting on other
    # queues made one task's put 4-10x slower with their needless claims).  The safety
    # net (data_version, every 20 ms) would wake them: it is put out of the way here.
    monkeypatch.setattr(sqlite_store, "WATCH_INTERVAL", 600.0)
    path = tmp_path / "q.db"
    url = urllib.parse.urlsplit(_url(path))
    # Opened last, "other" has seen every commit so far: its one check of data_version
    # (when it starts waiting) finds nothing new.
    mine = await open_store(url, "jobs")
    other = await open_store(url, "other")

    async def put(name: str) -> None:
        if producer == "another process":
            Worker("produce", _url(path), name, "--count", "1").finish()
            return
        store = await open_store(url, name)
        try:
            assert await store.put([b"1"])
        finally:
            await store.aclose()

    try:
        sleeping = asyncio.ensure_future(other.wait_changed(300))
        waiting = asyncio.ensure_future(mine.wait_changed(300))
        await _until(lambda: len(_sockets(path)) == 2)
        await put("jobs")
        await asyncio.wait_for(waiting, 30)
        # Both sockets had their datagram before the put returned: a few loop turns
        # read them (and would have woken "other" by now, were it woken).
        for _ in range(5):
            await asyncio.sleep(0)
        assert not sleeping.done()
        await put("other")
        await asyncio.wait_for(sleeping, 30)
    finally:
        await other.aclose()
        await mine.aclose()


async def test_a_write_that_changes_nothing_wakes_nobody(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A claim that finds no item commits nothing: were the queue's waiting getters
    # woken by it, each would claim in vain and wake the others in turn.
    monkeypatch.setattr(sqlite_store, "WATCH_INTERVAL", 600.0)
    path = tmp_path / "q.db"
    url = urllib.parse.urlsplit(_url(path))
    other = await open_store(url, "jobs")
    assert await other.put([b"0"])
    (done,) = await other.claim(1, 30.0, None)
    assert await other.ack([done.receipt]) == [True]
    mine = await open_store(url, "jobs")  # opened last: it has seen every commit so far
    try:
        waiting = asyncio.ensure_future(mine.wait_changed(300))
        await _until(lambda: len(_sockets(path)) == 1)
        assert await other.claim(10, 30.0, None) == []
        assert await other.ack([done.receipt]) == [False]
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()
        assert await other.put([b"1"])
        await asyncio.wait_for(waiting, 30)
    finally:
        await other.aclose()
        await mine.aclose()


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="abstract socket names are Linux's"
)
async def test_a_file_too_deep_for_a_socket_path_still_wakes_its_waiters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A socket's path holds about 100 bytes: deeper, the socket takes an abstract name
    # derived from its path, and the file there marks it.  The safety net (data_version,
    # every 20 ms) is put out of the way: only a datagram can wake the waiter.
    monkeypatch.setattr(sqlite_store, "WATCH_INTERVAL", 600.0)
    path = tmp_path / ("deep" * 20) / "q.db"
    path.parent.mkdir()
    assert len(str(path)) > 100
    consumer = Worker("consume", _url(path), "jobs", "--idle", "60")
    consumer.wait_for(lambda lines: "ready" in lines)
    await _until(lambda: len(_sockets(path)) == 1)
    (mark,) = _sockets(path)
    assert mark.is_file()  # a mark, not a socket
    store = await open_store(urllib.parse.urlsplit(_url(path)), "jobs")
    try:
        waiting = asyncio.ensure_future(store.wait_changed(300))
        await _until(lambda: len(_sockets(path)) == 2)
        Worker("produce", _url(path), "jobs", "--count", "1").finish()
        await asyncio.wait_for(waiting, 30)
    finally:
        await store.aclose()
    # The killed consumer's name is gone with it: the next commit finds it so and
    # removes its mark.
    consumer.kill()
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        await q.put("after the kill")
        await _until(lambda: mark not in _sockets(path))
