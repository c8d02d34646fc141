"""``ThreadQueue`` across its two faces: threads, several event loops, join and shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

import conveyor

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")

WAIT_LIMIT = 10.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Block the calling thread until *condition()* holds; fail after WAIT_LIMIT."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.001)


async def async_wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.001)


class LoopThread:
    """An event loop running in a thread of its own, for the length of a test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        """Run *coro* on this loop; returns a ``concurrent.futures.Future``."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT_LIMIT)
        self.loop.close()


@pytest.fixture
def loops() -> Any:
    """Three event loops, each running in its own thread."""
    made = [LoopThread() for _ in range(3)]
    yield made
    for loop_thread in made:
        loop_thread.close()


def waiting(q: conveyor.ThreadQueue[Any]) -> tuple[int, int]:
    stats = q.statistics()
    return stats.tasks_waiting_get, stats.tasks_waiting_put


# -- creation and plain threads ---------------------------------------------------------


def test_created_before_any_loop_then_used_by_a_loop() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(2)
    q.sync_q.put(1)

    async def main() -> list[int]:
        await q.async_q.put(2)
        return [await q.async_q.get(), await q.async_q.get()]

    assert asyncio.run(main()) == [1, 2]
    # The queue is bound to no loop: a second asyncio.run uses it as well.
    assert asyncio.run(q.async_q.put(3)) is None
    assert q.sync_q.get_nowait() == 3


def test_threads_only_no_event_loop() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(3)
    got: list[int] = []

    def consume() -> None:
        while True:
            try:
                got.append(q.sync_q.get())
            except conveyor.SyncQueueShutDown:
                return
            q.sync_q.task_done()

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(200):
        q.sync_q.put(i)
    q.sync_q.join()
    q.shutdown()
    consumer.join()
    assert got == list(range(200))


def test_exceptions_are_both_kinds() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(1)
    with pytest.raises(asyncio.QueueEmpty):
        q.sync_q.get_nowait()
    with pytest.raises(conveyor.QueueEmpty):
        q.async_q.get_nowait()
    q.sync_q.put_nowait(1)
    with pytest.raises(asyncio.QueueFull):
        q.sync_q.put_nowait(2)
    q.shutdown()
    with pytest.raises(conveyor.SyncQueueShutDown):
        q.sync_q.put_nowait(2)
    with pytest.raises(conveyor.QueueShutDown):
        q.async_q.put_nowait(2)


def test_maxsize_is_checked() -> None:
    with pytest.raises(TypeError):
        conveyor.ThreadQueue("3")  # type: ignore[arg-type]
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(4)
    assert q.maxsize == q.sync_q.maxsize == q.async_q.maxsize == 4


# -- thread <-> coroutine ---------------------------------------------------------------


async def test_thread_producer_async_consumer_keeps_order() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(4)
    n = 2000

    def produce() -> None:
        for i in range(n):
            q.sync_q.put(i)

    producer = threading.Thread(target=produce)
    producer.start()
    got = [await q.async_q.get() for _ in range(n)]
    producer.join()
    assert got == list(range(n))
    assert q.statistics().total_got == n


async def test_async_producer_thread_consumer_keeps_order() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(4)
    n = 2000
    got: list[int] = []

    def consume() -> None:
        for _ in range(n):
            got.append(q.sync_q.get())

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(n):
        await q.async_q.put(i)
    await asyncio.to_thread(consumer.join)
    assert got == list(range(n))


async def test_batches_cross_faces() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(3)

    def produce() -> None:
        for i in range(10):
            q.sync_q.put(i)

    producer = threading.Thread(target=produce)
    producer.start()
    got: list[int] = []
    while len(got) < 10:
        batch = await q.async_q.get_many(5)
        assert 1 <= len(batch) <= 3
        got += batch
    producer.join()
    assert got == list(range(10))

    putter = asyncio.create_task(q.async_q.put_many(range(5)))
    assert await asyncio.to_thread(
        lambda: [q.sync_q.get(timeout=WAIT_LIMIT) for _ in range(5)]
    ) == [
        0,
        1,
        2,
        3,
        4,
    ]
    await putter


async def test_async_get_timeout_and_thread_get_timeout() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(1)
    with pytest.raises(TimeoutError):
        await q.async_q.get(timeout=0.01)
    with pytest.raises(conveyor.QueueEmpty):
        await asyncio.to_thread(q.sync_q.get, True, 0.01)
    q.sync_q.put(1)
    with pytest.raises(TimeoutError):
        await q.async_q.put(2, timeout=0.01)
    with pytest.raises(conveyor.QueueFull):
        await asyncio.to_thread(q.sync_q.put, 2, True, 0.01)
    assert q.statistics().current_size == 1
    assert waiting(q) == (0, 0)


# -- several event loops ----------------------------------------------------------------


def test_several_loops_wait_at_once_and_each_gets_one(loops: list[LoopThread]) -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue()
    futures = [loop_thread.submit(q.async_q.get()) for loop_thread in loops]
    wait_until(lambda: waiting(q)[0] == 3, "a getter waits in each loop")
    for i in range(3):
        q.sync_q.put(i)
    assert sorted(f.result(WAIT_LIMIT) for f in futures) == [0, 1, 2]


def test_loops_and_threads_share_one_stream(loops: list[LoopThread]) -> None:
    q: conveyor.ThreadQueue[tuple[str, int]] = conveyor.ThreadQueue(5)
    per_producer = 300

    async def async_produce(name: str) -> None:
        for i in range(per_producer):
            await q.async_q.put((name, i))

    async def async_consume() -> list[tuple[str, int]]:
        return [item async for item in q.async_q]

    thread_got: list[list[tuple[str, int]]] = [[], []]

    def thread_consume(into: list[tuple[str, int]]) -> None:
        while True:
            try:
                into.append(q.sync_q.get())
            except conveyor.SyncQueueShutDown:
                return

    def thread_produce() -> None:
        for i in range(per_producer):
            q.sync_q.put(("thread", i))

    consumers = [loop_thread.submit(async_consume()) for loop_thread in loops]
    thread_consumers = [threading.Thread(target=thread_consume, args=(g,)) for g in thread_got]
    for thread in thread_consumers:
        thread.start()
    producers = [
        loop_thread.submit(async_produce(f"loop{n}")) for n, loop_thread in enumerate(loops)
    ]
    thread_producer = threading.Thread(target=thread_produce)
    thread_producer.start()
    for future in producers:
        future.result(WAIT_LIMIT)
    thread_producer.join()
    q.shutdown()
    streams = [f.result(WAIT_LIMIT) for f in consumers]
    for thread in thread_consumers:
        thread.join()
    streams += thread_got
    everything = [item for stream in streams for item in stream]
    expected = {(name, i) for name in ("loop0", "loop1", "loop2", "thread") for i in range(300)}
    assert len(everything) == len(expected)
    assert set(everything) == expected
    for stream in streams:
        for name in ("loop0", "loop1", "loop2", "thread"):
            seqs = [i for n, i in stream if n == name]
            assert seqs == sorted(seqs), f"{name} items out of order"


# -- join and task_done across faces ----------------------------------------------------


async def test_task_done_on_either_face_counts_for_join_on_both() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue()
    q.sync_q.put(1)
    await q.async_q.put(2)
    assert q.sync_q.unfinished_tasks == 2

    thread_joined = threading.Event()

    def thread_join() -> None:
        q.sync_q.join()
        thread_joined.set()

    joiner = threading.Thread(target=thread_join)
    joiner.start()
    async_join = asyncio.create_task(q.async_q.join())
    await asyncio.sleep(0)
    assert not async_join.done()

    assert q.sync_q.get_nowait() == 1
    q.async_q.task_done()
    assert await q.async_q.get() == 2
    await asyncio.sleep(0)
    assert not async_join.done()
    assert not thread_joined.is_set()
    await asyncio.to_thread(q.sync_q.task_done)
    await asyncio.wait_for(async_join, WAIT_LIMIT)
    await asyncio.to_thread(joiner.join)
    assert thread_joined.is_set()
    with pytest.raises(ValueError, match="too many times"):
        q.sync_q.task_done()
    with pytest.raises(ValueError, match="too many times"):
        q.async_q.task_done()


def test_join_in_several_loops_released_by_a_thread(loops: list[LoopThread]) -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue()
    q.sync_q.put(1)
    joins = [loop_thread.submit(q.async_q.join()) for loop_thread in loops]
    with pytest.raises(TimeoutError):
        loops[0].submit(q.async_q.join(timeout=0.01)).result(WAIT_LIMIT)
    assert not any(f.done() for f in joins)
    q.sync_q.get()
    q.sync_q.task_done()
    for future in joins:
        assert future.result(WAIT_LIMIT) is None


# -- shutdown and close -----------------------------------------------------------------


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_every_thread_and_task(loops: list[LoopThread], immediate: bool) -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue()
    full: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(1)
    full.sync_q.put(0)
    outcomes: list[str] = []

    def thread_get() -> None:
        try:
            q.sync_q.get()
        except conveyor.SyncQueueShutDown:
            outcomes.append("thread get")

    def thread_put() -> None:
        try:
            full.sync_q.put(1)
        except conveyor.SyncQueueShutDown:
            outcomes.append("thread put")

    async def async_get() -> str:
        try:
            await q.async_q.get()
        except conveyor.QueueShutDown:
            return "task get"
        return "got"

    async def async_put() -> str:
        try:
            await full.async_q.put(1)
        except conveyor.QueueShutDown:
            return "task put"
        return "put"

    threads = [threading.Thread(target=thread_get), threading.Thread(target=thread_put)]
    for thread in threads:
        thread.start()
    gets = [loop_thread.submit(async_get()) for loop_thread in loops]
    puts = [loop_thread.submit(async_put()) for loop_thread in loops]
    wait_until(lambda: waiting(q)[0] == 4, "every getter is blocked")
    wait_until(lambda: waiting(full)[1] == 4, "every putter is blocked")
    q.shutdown(immediate)
    full.shutdown(immediate)
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["thread get", "thread put"]
    assert [f.result(WAIT_LIMIT) for f in gets] == ["task get"] * 3
    assert [f.result(WAIT_LIMIT) for f in puts] == ["task put"] * 3
    assert full.statistics().current_size == (0 if immediate else 1)


async def test_context_managers_close_the_queue() -> None:
    # Leaving the block closes the queue as close() does (janus's meaning): what is left
    # is dropped.
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue()
    with q:
        q.sync_q.put(1)
        assert not q.closed
    assert q.closed
    assert q.statistics().is_shutdown
    assert q.statistics().current_size == 0
    with pytest.raises(conveyor.SyncQueueShutDown):
        q.sync_q.get_nowait()
    q.close()  # closing twice is harmless
    async with conveyor.ThreadQueue[int]() as other:
        await other.async_q.put(1)
    assert other.closed
    assert other.unfinished_tasks == 0


async def test_statistics_and_repr() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(3)
    q.sync_q.put(1)
    await q.async_q.put(2)
    assert q.sync_q.get() == 1
    stats = q.async_q.statistics()
    assert stats.backend == "thread"
    assert (stats.current_size, stats.max_size, stats.peak_size) == (1, 3, 2)
    assert (stats.total_put, stats.total_got, stats.unfinished_tasks) == (2, 1, 2)
    assert stats == q.sync_q.statistics() == q.statistics()
    assert "maxsize=3" in repr(q)
    assert "_queue=[2]" in repr(q.sync_q)
    q.shutdown(immediate=True)
    stats = q.statistics()
    assert (stats.current_size, stats.total_got, stats.unfinished_tasks) == (0, 1, 1)
    assert "shutdown" in str(q.async_q)


# -- cancellation after a wake-up -------------------------------------------------------


@pytest.mark.parametrize("waker", ["same loop", "other thread"])
async def test_getter_cancelled_after_wake_passes_the_item_on(waker: str) -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue()
    first = asyncio.create_task(q.async_q.get())
    second = asyncio.create_task(q.async_q.get())
    await async_wait_until(lambda: waiting(q)[0] == 2, "two getters wait")
    if waker == "same loop":
        q.async_q.put_nowait(7)
    else:
        # Blocks this loop on purpose: the wake-up is queued and the loop has not run it.
        thread = threading.Thread(target=q.sync_q.put, args=(7,))
        thread.start()
        thread.join()
    first.cancel()
    assert await asyncio.wait_for(second, WAIT_LIMIT) == 7
    with pytest.raises(asyncio.CancelledError):
        await first
    assert q.statistics().current_size == 0


@pytest.mark.parametrize("waker", ["same loop", "other thread"])
async def test_putter_cancelled_after_wake_passes_the_slot_on(waker: str) -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(1)
    q.sync_q.put(0)
    first = asyncio.create_task(q.async_q.put(1))
    second = asyncio.create_task(q.async_q.put(2))
    await async_wait_until(lambda: waiting(q)[1] == 2, "two putters wait")
    if waker == "same loop":
        assert q.async_q.get_nowait() == 0
    else:
        thread = threading.Thread(target=q.sync_q.get)
        thread.start()
        thread.join()
    first.cancel()
    await asyncio.wait_for(second, WAIT_LIMIT)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert q.sync_q.get_nowait() == 2
    assert q.sync_q.empty()


async def test_thread_getter_timed_out_loses_nothing() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue()

    def get(timeout: float, into: list[object]) -> None:
        try:
            into.append(q.sync_q.get(timeout=timeout))
        except conveyor.QueueEmpty:
            into.append("timeout")

    for _ in range(50):
        short_result: list[object] = []
        long_result: list[object] = []
        short = threading.Thread(target=get, args=(0.001, short_result))
        long = threading.Thread(target=get, args=(WAIT_LIMIT, long_result))
        short.start()
        long.start()
        # Race the short getter's timeout against the put that wakes it.
        await q.async_q.put(1)
        await asyncio.to_thread(short.join)
        if short_result == [1]:
            q.sync_q.put(2)
        await asyncio.to_thread(long.join)
        assert (short_result, long_result) in (([1], [2]), (["timeout"], [1]))
        assert q.sync_q.empty()


def test_immediate_shutdown_never_makes_unfinished_tasks_negative() -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue()
    q.sync_q.put(1)
    q.sync_q.put(2)
    q.sync_q.task_done()  # early, for an item still queued: allowed, as in asyncio
    q.shutdown(immediate=True)
    assert q.statistics().unfinished_tasks == 0
    q.sync_q.join()
    with pytest.raises(ValueError, match="too many times"):
        q.sync_q.task_done()


def _loop_factories() -> list[Any]:
    factories = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:
        factories.append(pytest.param(None, id="uvloop", marks=pytest.mark.skip("no uvloop")))
    else:
        factories.append(pytest.param(uvloop.new_event_loop, id="uvloop"))
    return factories


@pytest.mark.parametrize("new_loop", _loop_factories())
def test_thread_wakes_waiters_on_each_loop_kind(new_loop: Callable[[], Any]) -> None:
    q: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(2)
    n = 500

    def produce() -> None:
        for i in range(n):
            q.sync_q.put(i)

    async def consume() -> list[int]:
        producer = threading.Thread(target=produce)
        producer.start()
        got = [await q.async_q.get() for _ in range(n)]
        await asyncio.to_thread(producer.join)
        return got

    loop = new_loop()
    try:
        assert loop.run_until_complete(consume()) == list(range(n))
    finally:
        loop.close()
