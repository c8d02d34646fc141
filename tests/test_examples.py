"""The five classic programs, run scaled down on every backend in ``EXAMPLE_BACKENDS``."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import os
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import conveyor
from conveyor._durable import DurableQueue
from conveyor.backends._base import Store
from conveyor.examples import EXAMPLES, Run, basic, bounded, find, join, nowait, wait_for
from tests.backends.redis_backend import RedisServer, redis_server

__all__ = ["redis_server"]

# name -> a function (request, tmp_path) -> the URL the programs run on.  A backend joins
# these tests by adding itself here; "durable" ones also run producers and consumer in
# separate processes.
UrlFactory = Callable[[pytest.FixtureRequest, Path], str]


def _sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'examples.db'}"


# The programs use fixed queue names, so each Redis test gets a database of its own
# (1 to 15, emptied first; the other Redis tests share database 0 with unique names).
_redis_databases = itertools.cycle(range(1, 16))


def _redis_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # The session's private redis-server (skips, or fails under CI=true, without one).
    server: RedisServer = request.getfixturevalue("redis_server")
    database = next(_redis_databases)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as sock:
        sock.sendall(f"SELECT {database}\r\nFLUSHDB\r\n".encode())
        replies = b""
        while replies.count(b"\r\n") < 2:
            chunk = sock.recv(256)
            assert chunk, "redis-server closed the connection"
            replies += chunk
    assert replies == b"+OK\r\n+OK\r\n", replies
    return f"redis://127.0.0.1:{server.port}/{database}"


EXAMPLE_BACKENDS: dict[str, UrlFactory] = {
    "memory": lambda request, tmp_path: "memory://",
    "sqlite": _sqlite_url,
    "redis": _redis_url,
}
DURABLE = frozenset({"sqlite", "redis"})

SPEED = 100.0
"""Every sleep of the lesson divided by this: a program takes a few tenths of a second."""


@pytest.fixture(params=list(EXAMPLE_BACKENDS))
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh queue store for one test."""
    factory = EXAMPLE_BACKENDS[request.param]
    return factory(request, tmp_path)


def quiet_run(speed: float = SPEED, seed: int = 5) -> Run:
    return Run(speed=speed, seed=seed, quiet=True)


def got_lines(run: Run) -> list[str]:
    return [line for line in run.lines if line.startswith(">got ")]


def assert_delivered_in_order(run: Run, count: int) -> None:
    assert len(run.put_order) == count
    assert run.got_order == run.put_order
    assert got_lines(run) == [f">got {item}" for item in run.put_order]
    assert all(isinstance(item, float) and 0 <= item < 1 for item in run.put_order)


def assert_within_maxsize(run: Run, maxsize: int) -> None:
    """Check that no qsize() the program saw, nor the queue's own peak, passed maxsize."""
    if maxsize <= 0:
        return
    assert run.peak_size <= maxsize
    assert run.queue is not None
    statistics = run.queue.statistics()
    assert statistics.peak_size <= maxsize
    assert statistics.current_size <= maxsize


async def test_basic_delivers_every_value_in_order(queue_url: str) -> None:
    run = await basic.main(queue_url, run=quiet_run())
    assert_delivered_in_order(run, 10)
    assert run.lines[0] == "Producer: Running"
    assert run.lines[1] == "Consumer: Running"
    assert run.lines[-1] == "Consumer: Done"
    assert "Producer: Done" in run.lines


async def test_nowait_hits_queue_empty_and_still_gets_everything(queue_url: str) -> None:
    run = await nowait.main(queue_url, run=quiet_run())
    assert_delivered_in_order(run, 10)
    # The producer sleeps before its first put, so the first poll always finds nothing.
    assert run.lines[2] == "Consumer: got nothing, waiting a while..."
    assert run.lines[-1] == "Consumer: Done"


async def test_wait_for_gives_up_waiting_and_still_gets_everything(queue_url: str) -> None:
    # Seed 5 draws six values above 0.7: the producer then sleeps at least 0.2 lesson
    # seconds longer than the consumer's 0.5 s timeout, and both timers run on one loop,
    # so the earlier deadline (the consumer's) fires first however loaded the machine is.
    run = await wait_for.main(queue_url, run=quiet_run(speed=20.0, seed=5))
    assert_delivered_in_order(run, 10)
    assert run.lines.count("Consumer: gave up waiting...") >= sum(
        value > 0.7 for value in run.put_order
    )
    assert run.lines[-1] == "Consumer: Done"


async def test_join_returns_once_every_item_is_done(queue_url: str) -> None:
    queue = await conveyor.open_queue(queue_url, name="join-test")
    try:
        run = await join.main(run=quiet_run(), queue=queue)
        assert_delivered_in_order(run, 10)
        assert queue.statistics().unfinished_tasks == 0
        await queue.join(timeout=5)
        # The consumer runs forever in the lesson: main cancels it after join().
        assert "Consumer: Done" not in run.lines
        assert run.lines.index("Producer: Done") < len(run.lines)
    finally:
        await queue.aclose()


async def test_bounded_queue_never_holds_more_than_maxsize(queue_url: str) -> None:
    run = await bounded.main(queue_url, run=quiet_run())
    assert_delivered_in_order(run, 50)
    assert run.produced == {f"Producer {i}": 10 for i in range(5)}
    assert run.consumed == {"Consumer": 50}
    # Five producers against one slow consumer: the two slots fill, and never overflow.
    assert run.peak_size == bounded.MAXSIZE
    assert_within_maxsize(run, bounded.MAXSIZE)
    assert run.lines.count("Producer: Running") == 5
    assert {f"Producer {i}: Done" for i in range(5)} <= set(run.lines)


async def test_bounded_producers_really_block_on_a_full_queue() -> None:
    queue: conveyor.Queue[float | None] = conveyor.Queue(bounded.MAXSIZE)
    blocked: list[int] = []

    async def watch() -> None:
        while True:
            blocked.append(queue.statistics().tasks_waiting_put)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    try:
        await bounded.main(run=quiet_run(), queue=queue)
    finally:
        watcher.cancel()
    assert max(blocked) >= 1
    assert queue.qsize() == 0


@pytest.mark.parametrize("module", [basic, nowait, wait_for, join, bounded])
async def test_roles_split_over_one_queue(module: ModuleType, queue_url: str) -> None:
    """Producer and consumer roles, run side by side, move every item once.

    On a durable backend each role opens the queue itself, as separate processes would.
    """
    main = module.main
    name = module.NAME
    first = await conveyor.open_queue(queue_url, name=name, maxsize=module.MAXSIZE)
    second = first
    if queue_url != "memory://":
        second = await conveyor.open_queue(queue_url, name=name, maxsize=module.MAXSIZE)
    producing, consuming = quiet_run(), quiet_run()
    try:
        await asyncio.gather(
            main(run=producing, queue=first, role="producer"),
            main(run=consuming, queue=second, role="consumer"),
        )
        assert consuming.got_order == producing.put_order
        assert not producing.got_order
        assert not consuming.put_order
        assert consuming.lines[-1] == "Consumer: Done"
        if isinstance(first, DurableQueue):
            assert await first.aqsize() == 0
        assert first.qsize() == 0
        assert_within_maxsize(producing, module.MAXSIZE)
        assert_within_maxsize(consuming, module.MAXSIZE)
    finally:
        await first.aclose()
        if second is not first:
            await second.aclose()


async def test_a_given_queue_is_left_open() -> None:
    queue: conveyor.Queue[float | None] = conveyor.Queue()
    await basic.main(run=quiet_run(), queue=queue)
    queue.put_nowait(1.0)
    assert queue.get_nowait() == 1.0


async def test_bad_role_and_speed_are_refused() -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        await basic.main(role="observer")
    with pytest.raises(ValueError, match="speed must be a positive number"):
        Run(speed=0)
    with pytest.raises(ValueError, match="no example called 'six'"):
        find("six")


def test_examples_are_found_by_number_and_name() -> None:
    assert [e.number for e in EXAMPLES] == [1, 2, 3, 4, 5]
    for example in EXAMPLES:
        assert find(str(example.number)) is example
        assert find(example.name) is example
        assert example.name == example.load().NAME


def _python_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    return env


@pytest.mark.parametrize("name", [e.name for e in EXAMPLES])
def test_each_program_runs_on_its_own(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"conveyor.examples.{name}", "--speed", "100", "--seed", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_python_env(),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] in ("Producer: Running", "Consumer: Running")
    expected = bounded.ITEMS if name == "bounded" else 10
    assert sum(line.startswith(">got ") for line in lines) == expected


def test_a_split_role_on_a_memory_queue_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conveyor.examples.bounded", "--role", "producer"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_python_env(),
    )
    assert done.returncode == 2
    assert "--role producer needs a queue other processes can reach" in done.stderr


@pytest.mark.parametrize(
    "store", sorted(name for name in EXAMPLE_BACKENDS if name in DURABLE) or ["none yet"]
)
@pytest.mark.parametrize("name", [e.name for e in EXAMPLES])
def test_producers_and_consumer_in_separate_processes(
    store: str, name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if store not in EXAMPLE_BACKENDS:
        pytest.skip("no durable backend is registered in EXAMPLE_BACKENDS yet")
    url = EXAMPLE_BACKENDS[store](request, tmp_path)
    command = [sys.executable, "-m", "conveyor", "demo", name, "--backend", url]
    command += ["--speed", "50", "--plain"]
    processes = [
        subprocess.Popen(
            [*command, "--role", role], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for role in ("consumer", "producer")
    ]
    consumer, producer = processes
    module = find(name).load()
    # Meanwhile this process watches the shared queue, as a third process would.
    sizes = asyncio.run(_watch_sizes(url, name, processes))
    _, producer_err = producer.communicate(timeout=120)
    out, err = consumer.communicate(timeout=120)
    assert producer.returncode == 0, producer_err
    assert consumer.returncode == 0, err
    expected = bounded.ITEMS if name == "bounded" else 10
    assert sum(">got " in line for line in out.splitlines()) == expected
    if module.MAXSIZE > 0:
        assert max(sizes) <= module.MAXSIZE, sizes


async def _watch_sizes(url: str, name: str, processes: list[subprocess.Popen[str]]) -> list[int]:
    """Read the shared queue's ready and delayed count until every process has exited."""
    parts = urllib.parse.urlsplit(url)
    backend = importlib.import_module(f"conveyor.backends.{parts.scheme}")
    # The store itself, not a queue: a queue's qsize() is capped at maxsize.
    store: Store = await backend.open_store(parts, name)
    sizes = [0]
    try:
        while any(process.poll() is None for process in processes):
            counts = await store.counts()
            sizes.append(counts.ready + counts.delayed)
            # Sampling, not synchronising: the processes' exit ends the loop.
            await asyncio.sleep(0.005)
    finally:
        await store.aclose()
    return sizes
