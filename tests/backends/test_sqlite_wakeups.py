"""Wake-ups between processes on an SQLite file: the sockets next to it come and go.

A store whose tasks wait binds a datagram socket in ``<file>-wake/``; commits in other
processes send to it.  The directory holds only the sockets of open stores: closing
removes a store's (and the directory with the last one), and a socket whose process was
SIGKILLed is removed by the next commit that finds it dead.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import conveyor

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
