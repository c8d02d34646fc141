"""``flush()`` and ``aclose()`` report what the background write of ``put_nowait()`` met.

``put_nowait()`` hands its item to a background writer, and the item is durable after
``flush()``.  So when that write fails, ``flush()`` (and ``aclose()``, which flushes)
raise its error, and an error whose outcome is unknown (the store lost touch with a
commit that may still run) stays so: the item may be stored after all.  Real parts
only: a full file system (a 1 MiB tmpfs) under SQLite, a stopped or killed redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import conveyor
from tests.backends.redis_backend import RedisServer, private_server, unique_name

pytestmark = pytest.mark.timeout(90)

__all__ = ["private_server"]

BIG = "x" * 300_000  # more than the free space left on the filled tmpfs


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A directory on a fresh 1 MiB tmpfs of its own; skips when mounting is refused."""
    directory = Path(tempfile.mkdtemp(prefix="conveyor-small-disk-"))
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:  # no mount binary
        mounted = subprocess.CompletedProcess([], 1, "", str(exc))
    if mounted.returncode != 0:
        directory.rmdir()
        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)
        shutil.rmtree(directory, ignore_errors=True)


def _fill(directory: Path) -> Path:
    """Take every free block of the file system *directory* is on; return the filler."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):  # ENOSPC: on with smaller pieces
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    assert shutil.disk_usage(directory).free < len(BIG)
    return filler


async def test_flush_raises_when_a_full_disk_refused_put_nowait_items(small_disk: Path) -> None:
    url = f"sqlite:///{small_disk / 'queue.db'}"
    queue: Any = await conveyor.open_queue(url, name="jobs")
    try:
        await queue.put("before")  # the file and its schema exist before the disk fills
        filler = _fill(small_disk)
        queue.put_nowait(BIG)
        with pytest.raises(conveyor.BackendError, match="full") as caught:
            await queue.flush()
        assert not getattr(caught.value, "outcome_unknown", False)
        await queue.flush()  # reported once, to the first who asks
        filler.unlink()
        assert await queue.aqsize() == 1
        assert await queue.get(timeout=5) == "before"
        queue.task_done()
    finally:
        await queue.aclose()


async def test_aclose_raises_when_a_full_disk_refused_put_nowait_items(small_disk: Path) -> None:
    url = f"sqlite:///{small_disk / 'queue.db'}"
    queue: Any = await conveyor.open_queue(url, name="jobs")
    await queue.put("before")
    filler = _fill(small_disk)
    queue.put_nowait(BIG)
    with pytest.raises(conveyor.BackendError, match="full"):
        await queue.aclose()
    await queue.aclose()  # closed all the same, once
    filler.unlink()
    observer: Any = await conveyor.open_queue(url, name="jobs")
    try:
        assert await observer.aqsize() == 1
    finally:
        await observer.aclose()


async def test_flush_raises_an_outcome_unknown_error_when_redis_stopped_answering(
    private_server: RedisServer,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = unique_name(request)
    queue: Any = await conveyor.open_queue(
        private_server.url, name=name, retry_timeout=0.5, socket_timeout=0.3
    )
    try:
        await queue.put("before")  # connected: the put_nowait is sent on a live socket
        private_server.pause()
        try:
            queue.put_nowait("x")
            with (
                caplog.at_level(logging.ERROR, logger="conveyor"),
                pytest.raises(conveyor.BackendUnavailableError) as caught,
            ):
                await asyncio.wait_for(queue.flush(), 30)
        finally:
            private_server.resume()
        assert getattr(caught.value, "outcome_unknown", False)
        assert "may or may not have been stored" in str(caught.value)
        assert "may or may not have been stored" in caplog.text
        assert "were not stored" not in caplog.text
        # The server ran the put once it resumed: the item was stored after all, as the
        # error allowed (and once: the retries replayed the first one's reply).
        async with conveyor.open_queue(private_server.url, name=name) as observer:
            assert await observer.get_many(10, timeout=5) == ["before", "x"]
    finally:
        with contextlib.suppress(conveyor.BackendError):
            await queue.aclose()


async def test_flush_and_aclose_raise_when_redis_is_gone(
    private_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    queue: Any = await conveyor.open_queue(
        private_server.url, name=unique_name(request), retry_timeout=0.5
    )
    await queue.put("before")
    private_server.kill()
    queue.put_nowait("x")
    # Whether the write left this process before the connection broke decides whether
    # the error says "never reached the server" or "may or may not": either way, it raises.
    with pytest.raises(conveyor.BackendUnavailableError):
        await asyncio.wait_for(queue.flush(), 30)
    queue.put_nowait("y")
    with pytest.raises(conveyor.BackendUnavailableError):
        await asyncio.wait_for(queue.aclose(), 30)
