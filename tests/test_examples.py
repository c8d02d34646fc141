"""The five classic programs, run scaled down on every backend in ``EXAMPLE_BACKENDS``.

The programs are plain asyncio programs; the tests run them on a :class:`Stage`, which
paces their sleeps, hears what they print and knows the random values they draw.
"""

from __future__ import annotations

import ast
import asyncio
import itertools
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import conveyor
from conveyor._durable import DurableQueue
from conveyor._stores import _backend
from conveyor.backends._base import Store
from conveyor.examples import EXAMPLES, find
from conveyor.examples._stage import Stage
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


def _cluster_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # The session's Redis Cluster; a key prefix of the test's own keeps the programs'
    # fixed queue names apart (a cluster has database 0 only).
    from tests.backends.cluster_backend import shared_setup

    return shared_setup(request.config).url(query=f"prefix=lesson-{uuid.uuid4().hex[:12]}")


EXAMPLE_BACKENDS: dict[str, UrlFactory] = {
    "memory": lambda request, tmp_path: "memory://",
    "sqlite": _sqlite_url,
    "redis": _redis_url,
    "cluster": _cluster_url,
}
DURABLE = frozenset({"sqlite", "redis", "cluster"})

SPEED = 100.0
"""Every sleep of the lesson divided by this: a program takes a few tenths of a second."""

PROGRAMS = [example.name for example in EXAMPLES]


@pytest.fixture(params=list(EXAMPLE_BACKENDS))
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh queue store for one test."""
    factory = EXAMPLE_BACKENDS[request.param]
    return factory(request, tmp_path)


async def play(name: str, url: str = "memory://", *, speed: float = SPEED, seed: int = 5) -> Stage:
    stage = Stage(name, speed=speed, seed=seed)
    await stage.play(url)
    return stage


def got_lines(stage: Stage) -> list[str]:
    return [line for line in stage.lines if line.startswith(">got ")]


def assert_delivered_in_order(stage: Stage, count: int) -> None:
    """Check that the consumer got every value the producers drew, in the order put."""
    assert len(stage.values) == count
    if stage.example.producers == 1:
        assert got_lines(stage) == [f">got {value}" for value in stage.values]
    else:
        # Five producers draw in turn, and put after sleeps of their own: the order of
        # the puts is not the order of the draws, but each value arrives once.
        assert sorted(got_lines(stage)) == sorted(f">got {value}" for value in stage.values)


def assert_within_maxsize(stage: Stage) -> None:
    """Check that the queue's own peak never passed the program's maxsize."""
    maxsize = stage.example.maxsize
    assert stage.queue is not None
    statistics = stage.queue.statistics()
    if maxsize > 0:
        assert statistics.peak_size <= maxsize
        assert statistics.current_size <= maxsize


async def test_basic_delivers_every_value_in_order(queue_url: str) -> None:
    stage = await play("basic", queue_url)
    assert_delivered_in_order(stage, 10)
    assert stage.lines[:2] == ["Producer: Running", "Consumer: Running"]
    assert stage.lines[-1] == "Consumer: Done"
    assert "Producer: Done" in stage.lines


async def test_nowait_hits_queue_empty_and_still_gets_everything(queue_url: str) -> None:
    stage = await play("nowait", queue_url)
    assert_delivered_in_order(stage, 10)
    # The producer sleeps before its first put, so the first poll always finds nothing.
    assert stage.lines[2] == "Consumer: got nothing, waiting a while..."
    assert stage.lines[-1] == "Consumer: Done"


async def test_wait_for_gives_up_waiting_and_still_gets_everything(queue_url: str) -> None:
    # Seed 5 draws six values above 0.7: the producer then sleeps at least 0.2 lesson
    # seconds longer than the consumer's 0.5 s timeout, and both timers run on one loop,
    # so the earlier deadline (the consumer's) fires first however loaded the machine is.
    stage = await play("wait_for", queue_url, speed=20.0, seed=5)
    assert_delivered_in_order(stage, 10)
    assert stage.lines.count("Consumer: gave up waiting...") >= sum(
        value > 0.7 for value in stage.values
    )
    assert stage.lines[-1] == "Consumer: Done"


async def test_join_returns_once_every_item_is_done(queue_url: str) -> None:
    queue = await conveyor.open_queue(queue_url, name="join-test")
    try:
        stage = Stage("join", speed=SPEED, seed=5)
        await stage.play(queue=queue)
        assert_delivered_in_order(stage, 10)
        assert stage.lines[-1] == "Main: every item is processed"
        assert queue.statistics().unfinished_tasks == 0
        await queue.join(timeout=5)
    finally:
        await queue.aclose()


async def test_bounded_queue_never_holds_more_than_maxsize(queue_url: str) -> None:
    stage = await play("bounded", queue_url)
    assert_delivered_in_order(stage, 50)
    assert stage.example.maxsize == 2
    assert_within_maxsize(stage)
    assert stage.queue is not None
    if queue_url == "memory://":
        # Five producers against one slow consumer: the two places fill, and never overflow.
        assert stage.queue.statistics().peak_size == 2
    for i in range(5):
        assert f"Producer {i}: Running" in stage.lines
        assert f"Producer {i}: Done" in stage.lines
    assert stage.lines[-1] == "Main: every item is processed"


async def test_bounded_producers_really_block_on_a_full_queue() -> None:
    queue: conveyor.Queue[float] = conveyor.Queue(bounded_maxsize())
    blocked: list[int] = []

    async def watch() -> None:
        while True:
            blocked.append(queue.statistics().tasks_waiting_put)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    try:
        await Stage("bounded", speed=SPEED, seed=5).play(queue=queue)
    finally:
        watcher.cancel()
    assert max(blocked) >= 1
    assert queue.qsize() == 0


def bounded_maxsize() -> int:
    return find("bounded").maxsize


@pytest.mark.parametrize("name", PROGRAMS)
async def test_roles_split_over_one_queue(name: str, queue_url: str) -> None:
    """Producer and consumer roles, run side by side, move every item once.

    On a durable backend each role opens the queue itself, as separate processes would.
    """
    example = find(name)
    first = await conveyor.open_queue(queue_url, name=name, maxsize=example.maxsize)
    second = first
    if queue_url != "memory://":
        second = await conveyor.open_queue(queue_url, name=name, maxsize=example.maxsize)
    producing = Stage(name, speed=SPEED, seed=5)
    consuming = Stage(name, speed=SPEED, seed=5)
    try:
        await asyncio.gather(
            producing.play(queue=first, role="producer"),
            consuming.play(queue=second, role="consumer"),
        )
        assert len(producing.values) == example.items
        assert not consuming.values
        assert not got_lines(producing)
        got = got_lines(consuming)
        expected = [f">got {value}" for value in producing.values]
        assert (got if example.producers == 1 else sorted(got)) == (
            expected if example.producers == 1 else sorted(expected)
        )
        if isinstance(first, DurableQueue):
            assert await first.aqsize() == 0
        assert first.qsize() == 0
        assert_within_maxsize(producing)
        assert_within_maxsize(consuming)
    finally:
        await first.aclose()
        if second is not first:
            await second.aclose()


async def test_a_given_queue_is_left_open() -> None:
    queue: conveyor.Queue[float | None] = conveyor.Queue()
    await Stage("basic", speed=SPEED).play(queue=queue)
    queue.put_nowait(1.0)
    assert queue.get_nowait() == 1.0


async def test_bad_role_and_speed_are_refused() -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        await Stage("basic").play(role="observer")
    with pytest.raises(ValueError, match="speed must be a positive number"):
        Stage("basic", speed=0)
    with pytest.raises(ValueError, match="no example called 'six'"):
        find("six")


def test_examples_are_found_by_number_and_name() -> None:
    assert [e.number for e in EXAMPLES] == [1, 2, 3, 4, 5]
    for example in EXAMPLES:
        assert find(str(example.number)) is example
        assert find(example.name) is example


def _program_tree(name: str) -> ast.Module:
    source = (Path(conveyor.__file__).parent / "examples" / f"{name}.py").read_text()
    return ast.parse(source)


@pytest.mark.parametrize("name", PROGRAMS)
def test_each_program_reads_as_the_lesson(name: str) -> None:
    """The programs import asyncio, random and conveyor only, and use conveyor for the queue.

    Besides type hints, the one conveyor call is the one that makes the queue; the queue's
    own methods are asyncio.Queue's.
    """
    tree = _program_tree(name)
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported == {"asyncio", "random", "conveyor"}
    assert not any(isinstance(node, ast.ImportFrom) for node in ast.walk(tree))
    calls = [
        ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).startswith("conveyor.")
    ]
    assert calls == ["conveyor.Queue"]
    queue_methods = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and ast.unparse(node.func.value) == "queue"
    }
    assert queue_methods <= {"put", "get", "get_nowait", "task_done", "join"}


@pytest.mark.parametrize("name", PROGRAMS)
def test_the_program_and_the_demo_agree_on_the_bound(name: str) -> None:
    (call,) = [
        node
        for node in ast.walk(_program_tree(name))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "conveyor.Queue"
    ]
    given = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    assert given.get("maxsize", 0) == find(name).maxsize


def _python_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    return env


@pytest.mark.slow
def test_each_program_runs_on_its_own() -> None:
    """``python -m conveyor.examples.NAME`` is the plain program, at the lesson's pace.

    All five at once (the longest, bounded, takes about 25 s at that pace).
    """
    running = {
        example.name: subprocess.Popen(
            [sys.executable, "-m", f"conveyor.examples.{example.name}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_python_env(),
        )
        for example in EXAMPLES
    }
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        lines = out.splitlines()
        assert lines[0].startswith(("Producer", "Consumer")), lines
        assert sum(line.startswith(">got ") for line in lines) == find(name).items


def test_a_split_role_on_a_memory_queue_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "demo", "bounded", "--role", "producer"],
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
@pytest.mark.parametrize("name", PROGRAMS)
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
    example = find(name)
    # Meanwhile this process watches the shared queue, as a third process would.
    sizes = asyncio.run(_watch_sizes(url, name, processes))
    _, producer_err = producer.communicate(timeout=120)
    out, err = consumer.communicate(timeout=120)
    assert producer.returncode == 0, producer_err
    assert consumer.returncode == 0, err
    assert sum(">got " in line for line in out.splitlines()) == example.items
    if example.maxsize > 0:
        assert max(sizes) <= example.maxsize, sizes


async def _watch_sizes(url: str, name: str, processes: list[subprocess.Popen[str]]) -> list[int]:
    """Read the shared queue's ready and delayed count until every process has exited."""
    backend, parts = _backend(url)  # the module of the URL's scheme, as open_queue picks it
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
