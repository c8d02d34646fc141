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
import time
from collections.abc import Callable

import pytest

import conveyor
from tests.backends.thread_peers import PEERS, Peer

pytestmark = pytest.mark.timeout(60)

WAIT_LIMIT = 10.0


@pytest.fixture(params=list(PEERS))
def peer(request: pytest.FixtureRequest) -> Peer:
    """Each library in turn: conveyor, janus, culsans."""
    chosen = PEERS[request.param]
    chosen.module  # noqa: B018 - skips here when the peer is not installed
    return chosen


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Block the calling thread until *condition()* holds; fail after WAIT_LIMIT."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.001)


async def async_wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait in the running loop until *condition()* holds; fail after WAIT_LIMIT."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.001)


def start(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
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
