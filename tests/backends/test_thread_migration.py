"""Moving from janus or culsans: one body per documented behaviour, run against all three.

Each test takes the ``peer`` fixture: conveyor's thread queues, then janus's and
culsans's (skipped when not installed).  Where a peer documents another behaviour it
declares the difference in ``thread_peers.PEERS`` and the body skips on it, with the
reason.  Threads and tasks synchronise on the queue's state, never on sleeps.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

import conveyor
from tests.backends.test_thread_faces import WAIT_LIMIT, async_wait_until
from tests.backends.thread_peers import KINDS, PEERS, Peer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=list(PEERS))
def peer(request: pytest.FixtureRequest) -> Peer:
    """Each library in turn: conveyor, janus, culsans."""
    chosen = PEERS[request.param]
    chosen.module  # noqa: B018 - skips here when the peer is not installed
    return chosen


def start(target: Callable[..., object], *args: object) -> threading.Thread:
    """Start a daemon thread running ``target(*args)``; return it."""
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


# -- item 4: the shutdown exception of each face -------------------------------------------


async def test_each_face_raises_its_documented_shutdown_class(peer: Peer) -> None:
    q = peer.make(1)
    q.shutdown()
    with pytest.raises(peer.exception("sync")):
        q.sync_q.put_nowait(1)
    with pytest.raises(peer.exception("sync")):
        q.sync_q.get()
    with pytest.raises(peer.exception("async")):
        q.async_q.put_nowait(1)
    with pytest.raises(peer.exception("async")):
        await q.async_q.get()


@pytest.mark.skipif(sys.version_info < (3, 13), reason="queue.ShutDown is new in Python 3.13")
async def test_standard_library_classes_catch_each_face_on_313(peer: Peer) -> None:
    q = peer.make()
    q.shutdown()
    with pytest.raises(queue.ShutDown):  # type: ignore[attr-defined,unused-ignore]
        q.sync_q.get()
    with pytest.raises(asyncio.QueueShutDown):  # type: ignore[attr-defined,unused-ignore]
        await q.async_q.get()


async def test_one_except_clause_catches_both_faces(peer: Peer) -> None:
    peer.require("one_shutdown_class")
    both: type[BaseException] = peer.module.QueueShutDown
    q = peer.make()
    caught: list[str] = []

    def getter_thread() -> None:
        try:
            q.sync_q.get()
        except both:
            caught.append("thread")

    async def getter_task() -> None:
        try:
            await q.async_q.get()
        except both:
            caught.append("task")

    # Whether each getter blocks before the shutdown or after, it must raise the same.
    thread = start(getter_thread)
    task = asyncio.create_task(getter_task())
    await asyncio.sleep(0)
    q.shutdown()
    await asyncio.wait_for(task, WAIT_LIMIT)
    await asyncio.to_thread(thread.join, WAIT_LIMIT)
    assert sorted(caught) == ["task", "thread"]


def test_sync_shutdown_has_a_public_name_caught_by_queue_shutdown() -> None:
    q = conveyor.ThreadQueue[int]()
    q.shutdown()
    with pytest.raises(conveyor.QueueShutDown) as caught:
        q.sync_q.get_nowait()
    cls = type(caught.value)
    assert cls is conveyor.SyncQueueShutDown
    assert f"{cls.__module__}.{cls.__qualname__}" == "conveyor.SyncQueueShutDown"
    assert "SyncQueueShutDown" in conveyor.__all__


# -- item 2: LIFO and priority kinds, with both faces ---------------------------------------

ORDER = {"fifo": [3, 1, 2], "lifo": [2, 1, 3], "priority": [1, 2, 3]}
"""The order in which each kind returns the items put as 3, 1, 2."""


@pytest.mark.parametrize("kind", KINDS)
async def test_each_kind_keeps_its_order_across_faces(peer: Peer, kind: str) -> None:
    q = peer.make(kind=kind)
    q.sync_q.put(3)
    await q.async_q.put(1)
    q.sync_q.put_nowait(2)
    assert q.sync_q.qsize() == q.async_q.qsize() == 3
    assert [q.sync_q.get(), await q.async_q.get(), q.async_q.get_nowait()] == ORDER[kind]
    for _ in range(3):
        q.sync_q.task_done()
    await asyncio.wait_for(q.async_q.join(), WAIT_LIMIT)


@pytest.mark.parametrize("kind", KINDS)
async def test_each_kind_wakes_blocked_threads_and_tasks(peer: Peer, kind: str) -> None:
    q = peer.make(1, kind)
    q.sync_q.put(5)
    # A thread blocked putting into the full queue is woken by a task's get ...
    putter = start(lambda: q.sync_q.put(4))
    await async_wait_until(lambda: putter.is_alive() and q.sync_q.full(), "the put blocks")
    assert await q.async_q.get() == 5
    await asyncio.to_thread(putter.join, WAIT_LIMIT)
    assert not putter.is_alive()
    assert q.sync_q.get_nowait() == 4
    # ... and a task blocked getting from the empty queue by a thread's put.
    getter = asyncio.create_task(q.async_q.get())
    await asyncio.sleep(0)
    await asyncio.to_thread(q.sync_q.put, 6)
    assert await asyncio.wait_for(getter, WAIT_LIMIT) == 6


@pytest.mark.parametrize("kind", ["lifo", "priority"])
def test_kinds_are_thread_queues(kind: str) -> None:
    q = PEERS["conveyor"].make(2, kind)
    assert isinstance(q, conveyor.ThreadQueue)
    assert q.maxsize == q.sync_q.maxsize == q.async_q.maxsize == 2
    assert q.statistics().backend == "thread"


# -- item 3: an assignable maxsize ----------------------------------------------------------


def blocked_putters(q: Any) -> int:
    """Return how many threads and tasks wait to put into *q* (conveyor's or culsans's)."""
    if isinstance(q, conveyor.ThreadQueue):
        return q.statistics().tasks_waiting_put
    return int(q.putting)


def test_maxsize_is_assignable_on_the_queue_and_both_faces(peer: Peer) -> None:
    peer.require("settable_maxsize")
    q = peer.make(1)
    q.maxsize = 2
    assert q.maxsize == q.sync_q.maxsize == q.async_q.maxsize == 2
    q.sync_q.maxsize = 3
    assert q.maxsize == q.async_q.maxsize == 3
    q.async_q.maxsize = 0
    assert q.maxsize == q.sync_q.maxsize == 0
    assert not q.sync_q.full()


def test_shrinking_blocks_puts_until_gets_make_room(peer: Peer) -> None:
    # CPython's test_shrinking_queue, on both faces.
    peer.require("settable_maxsize")
    q = peer.make(3)
    for item in (1, 2, 3):
        q.sync_q.put(item)
    q.sync_q.maxsize = 2
    assert q.sync_q.full()
    assert q.async_q.full()
    with pytest.raises(queue.Full):
        q.sync_q.put_nowait(4)
    assert q.sync_q.get() == 1
    with pytest.raises(asyncio.QueueFull):
        q.async_q.put_nowait(4)
    assert q.sync_q.get() == 2
    q.async_q.put_nowait(4)
    assert [q.sync_q.get_nowait(), q.sync_q.get_nowait()] == [3, 4]


async def test_growing_wakes_blocked_threads_and_tasks(peer: Peer) -> None:
    peer.require("settable_maxsize")
    q = peer.make(1)
    q.sync_q.put(0)
    threads = [start(q.sync_q.put, item) for item in (1, 2)]
    tasks = [asyncio.create_task(q.async_q.put(item)) for item in (3, 4)]
    await async_wait_until(lambda: blocked_putters(q) == 4, "four putters wait")
    # Grown by two slots from another thread: two of the four putters get in.
    await asyncio.to_thread(setattr, q, "maxsize", 3)
    await async_wait_until(lambda: q.sync_q.qsize() == 3, "two putters got in")
    assert blocked_putters(q) == 2
    # Unbounded: every putter gets in.
    q.async_q.maxsize = 0
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT_LIMIT)
    for thread in threads:
        await asyncio.to_thread(thread.join, WAIT_LIMIT)
    assert sorted(q.sync_q.get_nowait() for _ in range(5)) == [0, 1, 2, 3, 4]


def test_maxsize_changes_race_puts_and_gets_from_many_threads(peer: Peer) -> None:
    peer.require("settable_maxsize")
    q = peer.make(1)
    producers, per_producer = 4, 500
    got: list[int] = []
    done = threading.Event()

    def produce(first: int) -> None:
        for item in range(first, first + per_producer):
            q.sync_q.put(item)

    def consume() -> None:
        for _ in range(producers * per_producer):
            got.append(q.sync_q.get())

    def resize() -> None:
        bounds = [1, 5, 2, 0, 3]
        turn = 0
        while not done.is_set():
            q.maxsize = bounds[turn % len(bounds)]
            turn += 1

    resizer = start(resize)
    consumer = start(consume)
    feeders = [start(produce, first) for first in range(0, 2000, 500)]
    for thread in [*feeders, consumer]:
        thread.join(WAIT_LIMIT * 3)
        assert not thread.is_alive()
    done.set()
    resizer.join(WAIT_LIMIT)
    assert sorted(got) == list(range(producers * per_producer))


def test_assigned_maxsize_is_checked_and_shutdown_stays() -> None:
    q = conveyor.ThreadQueue[int](1)
    with pytest.raises(TypeError):
        q.sync_q.maxsize = "2"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="NaN"):
        q.maxsize = float("nan")
    assert q.maxsize == 1
    q.shutdown()
    q.maxsize = 5
    assert q.statistics().max_size == 5
    with pytest.raises(conveyor.SyncQueueShutDown):
        q.sync_q.put_nowait(1)


# -- item 5: smaller differences ------------------------------------------------------------


async def test_faces_are_read_only(peer: Peer) -> None:
    q = peer.make()
    for name in ("sync_q", "async_q"):
        with pytest.raises(AttributeError):
            setattr(q, name, None)
        with pytest.raises(AttributeError):
            delattr(q, name)
    q.sync_q.put_nowait(1)
    assert q.async_q.get_nowait() == 1


async def test_the_queue_counts_unfinished_tasks_and_knows_its_shutdown(peer: Peer) -> None:
    peer.require("queue_counters")
    q = peer.make()
    q.sync_q.put(1)
    await q.async_q.put(2)
    assert q.unfinished_tasks == q.sync_q.unfinished_tasks == 2
    q.sync_q.get()
    q.async_q.task_done()
    assert q.unfinished_tasks == 1
    assert not q.is_shutdown
    q.async_q.shutdown()
    assert q.is_shutdown
    assert q.sync_q.is_shutdown


@pytest.mark.parametrize(("kind", "name"), [("fifo", "Queue"), ("lifo", "LifoQueue")])
async def test_async_face_repr_has_asyncios_shape(peer: Peer, kind: str, name: str) -> None:
    peer.require("asyncio_repr")
    q = peer.make(2, kind)
    q.sync_q.put(1)
    face = q.async_q
    assert repr(face).startswith(f"<{name} at {id(face):#x} maxsize=2 _queue=[1]")
    assert str(face).startswith(f"<{name} maxsize=2 _queue=[1]")
    assert hex(id(face)) not in str(face)


@pytest.mark.parametrize("call", ["get", "put"])
def test_nan_timeout_raises_at_once(peer: Peer, call: str) -> None:
    # queue.Queue (and janus) wait forever on a NaN timeout; conveyor refuses it, as
    # culsans does, and as conveyor's async face refuses any timeout that is not a number
    # of seconds: a NaN is a bug upstream, which waiting forever would hide.
    peer.require("nan_timeout_raises")
    q = peer.make(1)
    if call == "put":
        q.sync_q.put(0)
        with pytest.raises(ValueError, match=r"(?i)nan"):
            q.sync_q.put(1, timeout=float("nan"))
    else:
        with pytest.raises(ValueError, match=r"(?i)nan"):
            q.sync_q.get(timeout=float("nan"))


async def test_nan_timeout_raises_on_the_async_face_too() -> None:
    q = conveyor.ThreadQueue[int](1)
    with pytest.raises(ValueError, match="nan"):
        await q.async_q.get(timeout=float("nan"))
    with pytest.raises(ValueError, match="nan"):
        await q.async_q.join(timeout=float("nan"))
    # An unbounded put never waits, so its timeout is not read (as in queue.Queue).
    q.maxsize = 0
    q.sync_q.put(1, timeout=float("nan"))


# -- item 1: close() is an immediate shutdown; wait_closed(); aclose() ----------------------


async def test_close_drops_items_and_wakes_everyone(peer: Peer) -> None:
    q = peer.make(1)
    q.sync_q.put(1)
    outcomes: list[str] = []

    def blocked_putter() -> None:
        try:
            q.sync_q.put(2)
        except peer.exception("sync"):
            outcomes.append("thread put")

    async def blocked_putter_task() -> None:
        try:
            await q.async_q.put(3)
        except peer.exception("async"):
            outcomes.append("task put")

    thread = start(blocked_putter)
    task = asyncio.create_task(blocked_putter_task())
    await asyncio.sleep(0)
    q.close()
    await q.wait_closed()
    await asyncio.wait_for(task, WAIT_LIMIT)
    await asyncio.to_thread(thread.join, WAIT_LIMIT)
    assert sorted(outcomes) == ["task put", "thread put"]
    assert q.closed
    assert q.sync_q.qsize() == 0
    with pytest.raises(peer.exception("sync")):
        q.sync_q.get_nowait()
    with pytest.raises(peer.exception("async")):
        await q.async_q.get()


async def test_join_after_close_returns_as_in_janus(peer: Peer) -> None:
    # The migration that hung: q.close(); await q.wait_closed(), then a join() elsewhere.
    q = peer.make()
    for item in range(3):
        q.sync_q.put(item)
    q.sync_q.get()
    q.sync_q.task_done()
    thread_joined = threading.Event()

    def join_then_say_so() -> None:
        q.sync_q.join()
        thread_joined.set()

    joiner = start(join_then_say_so)
    q.close()
    await q.wait_closed()
    await asyncio.wait_for(q.async_q.join(), WAIT_LIMIT)
    await asyncio.to_thread(joiner.join, WAIT_LIMIT)
    assert thread_joined.is_set()


async def test_wait_closed_refuses_an_open_queue(peer: Peer) -> None:
    q = peer.make()
    with pytest.raises(RuntimeError):
        await q.wait_closed()
    q.shutdown()  # a shut-down queue is a closed one
    assert q.closed
    await q.wait_closed()


async def test_aclose_closes_and_waits(peer: Peer) -> None:
    q = peer.make()
    q.sync_q.put(1)
    assert not q.closed
    await q.aclose()
    assert q.closed
    assert q.sync_q.empty()
    await q.async_q.join()
    await q.aclose()  # twice is harmless


def test_faces_say_closed(peer: Peer) -> None:
    q = peer.make()
    assert not q.sync_q.closed
    q.close()
    assert q.sync_q.closed
    assert q.async_q.closed


async def test_priority_put_of_an_item_that_cannot_be_compared_puts_nothing() -> None:
    q = conveyor.PriorityThreadQueue[Any]()
    q.sync_q.put((2, "b"))
    q.sync_q.put((1, "a"))
    with pytest.raises(TypeError):
        q.sync_q.put(object())
    with pytest.raises(TypeError):
        await q.async_q.put("not a tuple")
    assert q.sync_q.qsize() == 2
    assert q.unfinished_tasks == 2
    q.sync_q.put((0, "z"))
    assert [q.sync_q.get(), q.sync_q.get(), await q.async_q.get()] == [(0, "z"), (1, "a"), (2, "b")]
    assert q.statistics().total_got == 3
