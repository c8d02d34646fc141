"""``conveyor shutdown|resume|maxsize URL NAME``, run as real commands on real stores."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from conveyor._stores import list_queues
from tests.backends._processes import run_cli
from tests.backends.durable_fixtures import durable_url, queue_name
from tests.backends.redis_backend import RedisServer

__all__ = ["durable_url", "queue_name"]

ROOT = Path(__file__).resolve().parents[1]


async def test_maxsize_shows_and_changes_the_stored_bound(
    durable_url: str, queue_name: str
) -> None:
    async with conveyor.open_queue(durable_url, name=queue_name, maxsize=3) as q:
        assert isinstance(q, conveyor.DurableQueue)
        await q.put("x")
    shown = run_cli("maxsize", durable_url, queue_name)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().endswith(f"queue {queue_name!r} at {durable_url}: maxsize 3")
    changed = run_cli("maxsize", durable_url, queue_name, "7")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip().endswith("maxsize 7 (was 3)")
    async with conveyor.open_queue(durable_url, name=queue_name) as q:
        assert isinstance(q, conveyor.DurableQueue)
        assert q.maxsize == 7
    with pytest.raises(conveyor.MaxsizeConflictError):
        await conveyor.open_queue(durable_url, name=queue_name, maxsize=3)
    unbounded = run_cli("maxsize", durable_url, queue_name, "0")
    assert unbounded.returncode == 0, unbounded.stderr
    assert unbounded.stdout.strip().endswith("maxsize unbounded (was 7)")
    async with conveyor.open_queue(durable_url, name=queue_name, maxsize=0) as q:
        assert isinstance(q, conveyor.DurableQueue)
        assert q.maxsize == 0


async def test_shutdown_and_resume_act_for_every_process(durable_url: str, queue_name: str) -> None:
    async with conveyor.open_queue(durable_url, name=queue_name) as q:
        assert isinstance(q, conveyor.DurableQueue)
        await q.put_many(["a", "b"])
        done = run_cli("shutdown", durable_url, queue_name)
        assert done.returncode == 0, done.stderr
        assert f"shut down for every process; `conveyor resume {durable_url}" in done.stdout
        with pytest.raises(conveyor.QueueShutDown):
            await q.put("c")
        assert await q.aqsize() == 2  # what was put is still there, to be drained
        done = run_cli("resume", durable_url, queue_name)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith("resumed (it was shut down)")
        await q.put("c")
        done = run_cli("shutdown", durable_url, queue_name, "--immediate")
        assert done.returncode == 0, done.stderr
        assert "shut down immediately" in done.stdout
        assert await q.aqsize() == 0
        with pytest.raises(conveyor.QueueShutDown):
            await q.get(timeout=5)
        assert run_cli("resume", durable_url, queue_name).returncode == 0
        await q.put("d")
        assert await q.get(timeout=10) == "d"
        q.task_done()
        await q.join(timeout=10)


def test_bad_input_is_a_usage_error() -> None:
    for args in (["maxsize", "sqlite:///x.db", "jobs", "-1"], ["maxsize", "sqlite:///x.db"]):
        done = run_cli(*args)
        assert done.returncode == 2
        assert "usage: conveyor maxsize" in done.stderr
    done = run_cli("maxsize", "sqlite:///x.db", "jobs", "many")
    assert "expected a number >= 0 (0: unbounded), not 'many'" in done.stderr


async def test_a_queue_that_does_not_exist_is_refused_and_not_created(
    durable_url: str, queue_name: str
) -> None:
    async with conveyor.open_queue(durable_url, name=f"{queue_name}-other"):
        pass  # the store exists
    for args in (["shutdown"], ["resume"], ["maxsize"], ["maxsize", "3"]):
        done = run_cli(args[0], durable_url, queue_name, *args[1:])
        assert done.returncode == 1
        assert f"has no queue {queue_name!r}" in done.stderr
        assert done.stdout == ""
    assert queue_name not in await list_queues(durable_url)
    done = run_cli("resume", "--missing-ok", durable_url, queue_name)
    assert done.returncode == 0, done.stderr
    assert "nothing to resume" in done.stdout
    assert queue_name not in await list_queues(durable_url)


def test_an_in_memory_url_is_refused(tmp_path: Path) -> None:
    done = run_cli("resume", "memory://", "jobs")
    assert done.returncode == 1
    assert "in-memory queue" in done.stderr
    assert done.stdout == ""


@pytest.fixture
def password_server() -> Iterator[RedisServer]:
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
    server = RedisServer(workdir, password="s3cret-pw")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


async def test_the_password_is_never_printed(password_server: RedisServer, queue_name: str) -> None:
    url = password_server.url
    assert "s3cret-pw" in url
    async with conveyor.open_queue(url, name=queue_name):
        pass  # the commands operate queues that exist; they create none
    for args in (["maxsize", url, queue_name, "4"], ["shutdown", url, queue_name]):
        done = run_cli(*args)
        assert done.returncode == 0, done.stderr
        assert "s3cret-pw" not in done.stdout + done.stderr
        assert "***@127.0.0.1" in done.stdout
    wrong = url.replace("s3cret-pw", "wrong-pw")
    done = run_cli("resume", wrong, queue_name)
    assert done.returncode == 1
    assert "wrong-pw" not in done.stdout + done.stderr
    assert "password" in done.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    # `conveyor peek ... | head -1`: the pipe closed before the table is written.
    import asyncio
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'q.db'}"

    async def fill() -> None:
        async with conveyor.open_queue(url, name="jobs") as q:
            await q.put_many([f"item {i}" for i in range(50)])

    asyncio.run(fill())
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "conveyor", "peek", url, "jobs", "-n", "50"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141  # as a command killed by SIGPIPE
    assert done.stderr == ""
