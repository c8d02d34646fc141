"""conveyor's additions to the asyncio surface: timeouts, batches, ``async for``, statistics.

The asyncio oracle has none of these, so every test here is marked ``extras``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import pytest

from conveyor import QueueShutDown, QueueStatistics
from tests.backend_registry import Backend
from tests.conformance._helpers import (
    ORDERED,
    cancel_and_wait,
    kind_params,
    settle,
    wait_until,
)
from tests.conftest import MakeQueue

pytestmark = pytest.mark.extras


# -- get(timeout=) / put(timeout=) -------------------------------------------------------


async def test_get_timeout_on_empty_queue_raises_timeout_error(make_queue: MakeQueue) -> None:
    q = await make_queue()
    with pytest.raises(TimeoutError):
        await q.get(timeout=0.01)
    # asyncio code written for 3.10 catches asyncio.TimeoutError: the same error must do.
    with pytest.raises(asyncio.TimeoutError):
        await q.get(timeout=0.01)
    await q.put(1)
    assert await q.get(timeout=5) == 1
    assert q.empty()


async def test_get_timeout_zero(make_queue: MakeQueue) -> None:
    q = await make_queue()
    with pytest.raises(TimeoutError):
        await q.get(timeout=0)
    await q.put("x")
    assert await q.get(timeout=0) == "x"


async def test_get_timeout_returns_item_that_arrives_in_time(make_queue: MakeQueue) -> None:
    q = await make_queue()
    getter = asyncio.create_task(q.get(timeout=30))
    await settle()
    await q.put("late")
    assert await getter == "late"


async def test_put_timeout_on_full_queue_puts_nothing(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put("kept")
    with pytest.raises(TimeoutError):
        await q.put("dropped", timeout=0.01)
    with pytest.raises(TimeoutError):
        await q.put("dropped", timeout=0)
    assert q.qsize() == 1
    assert await q.get() == "kept"
    assert q.empty()
    await q.put("next", timeout=0)
    assert await q.get() == "next"


async def test_put_timeout_succeeds_when_a_slot_frees_in_time(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put(1)
    putter = asyncio.create_task(q.put(2, timeout=30))
    await settle()
    assert not putter.done()
    assert await q.get() == 1
    await asyncio.wait_for(putter, 30)
    assert await q.get() == 2


async def test_timed_out_get_racing_a_put_delivers_each_item_once(make_queue: MakeQueue) -> None:
    q = await make_queue()
    delivered: list[int] = []
    rounds = 30
    for i in range(rounds):
        delay = 0.002 * (i % 3)

        async def late_put(item: int = i, delay: float = delay) -> None:
            await asyncio.sleep(delay)
            await q.put(item)

        putter = asyncio.create_task(late_put())
        with contextlib.suppress(TimeoutError):
            delivered.append(await q.get(timeout=0.002))
        await putter
    while len(delivered) < rounds:
        delivered.append(await q.get(timeout=30))
    assert delivered == list(range(rounds))
    assert q.empty()


async def test_timed_out_put_racing_a_get_puts_each_item_once(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put(-1)
    accepted = [-1]
    taken: list[int] = []
    for i in range(30):
        delay = 0.002 * (i % 3)

        async def late_get(delay: float = delay) -> None:
            await asyncio.sleep(delay)
            taken.append(await q.get())

        getter = asyncio.create_task(late_get())
        with contextlib.suppress(TimeoutError):
            await q.put(i, timeout=0.002)
            accepted.append(i)
        await asyncio.wait_for(getter, 30)
    while len(taken) < len(accepted):
        taken.append(await q.get(timeout=30))
    assert taken == accepted
    assert q.empty()


async def test_timed_out_getter_was_woken_passes_wakeup_on(make_queue: MakeQueue) -> None:
    q = await make_queue()
    short = asyncio.create_task(q.get(timeout=0.05))
    await settle()
    long = asyncio.create_task(q.get(timeout=30))
    await settle()
    with pytest.raises(TimeoutError):
        await short
    await q.put("x")
    assert await long == "x"


# -- get_many -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", kind_params())
async def test_get_many_returns_up_to_max_items_in_order(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(kind=kind)
    for i in [1, 3, 2]:
        await q.put(i)
    assert await q.get_many(10) == ORDERED[kind]
    for i in range(5):
        await q.put(i)
    first = await q.get_many(3)
    second = await q.get_many(3)
    assert len(first) == 3
    assert sorted(first + second) == [0, 1, 2, 3, 4]
    if kind == "fifo":
        assert (first, second) == ([0, 1, 2], [3, 4])


async def test_get_many_waits_for_the_first_item(make_queue: MakeQueue) -> None:
    q = await make_queue()
    batch = asyncio.create_task(q.get_many(10))
    await settle()
    assert not batch.done()
    await q.put(7)
    assert await asyncio.wait_for(batch, 30) == [7]


async def test_get_many_timeout(make_queue: MakeQueue) -> None:
    q = await make_queue()
    with pytest.raises(TimeoutError):
        await q.get_many(5, timeout=0.01)
    with pytest.raises(TimeoutError):
        await q.get_many(5, timeout=0)
    await q.put(1)
    assert await q.get_many(5, timeout=0) == [1]


async def test_get_many_wakes_a_putter_for_each_freed_slot(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=3)
    for i in range(3):
        await q.put(i)
    putters = [asyncio.create_task(q.put(i)) for i in range(3, 6)]
    await wait_until(lambda: q.statistics().tasks_waiting_put == 3, "three putters wait")
    assert await q.get_many(3) == [0, 1, 2]
    await asyncio.wait_for(asyncio.gather(*putters), 30)
    assert q.qsize() == 3
    assert sorted(await q.get_many(3)) == [3, 4, 5]


async def test_get_many_cancelled_while_waiting_loses_nothing(make_queue: MakeQueue) -> None:
    q = await make_queue()
    batch = asyncio.create_task(q.get_many(5))
    await settle()
    q.put_nowait(1)
    q.put_nowait(2)
    batch.cancel()
    await asyncio.gather(batch, return_exceptions=True)
    assert batch.cancelled()
    assert await q.get_many(5) == [1, 2]


async def test_get_many_counts_each_item_for_join(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put_many(["a", "b", "c"])
    assert await q.get_many(3) == ["a", "b", "c"]
    with pytest.raises(TimeoutError):
        await q.join(timeout=0.01)
    for _ in range(3):
        q.task_done()
    await q.join(timeout=30)
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


@pytest.mark.needs("shutdown")
async def test_get_many_after_shutdown_drains_then_raises(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put_many([1, 2, 3])
    q.shutdown()
    assert await q.get_many(2) == [1, 2]
    assert await q.get_many(2) == [3]
    with pytest.raises(QueueShutDown):
        await q.get_many(2)


@pytest.mark.needs("shutdown")
async def test_shutdown_wakes_a_waiting_get_many(make_queue: MakeQueue) -> None:
    q = await make_queue()
    batch = asyncio.create_task(q.get_many(3))
    await settle()
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(batch, 30)


# -- put_many -------------------------------------------------------------------------


async def test_put_many_puts_in_order(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put_many([1, 2, 3])
    await q.put_many(i for i in (4, 5))
    await q.put_many([])
    assert q.qsize() == 5
    assert [await q.get() for _ in range(5)] == [1, 2, 3, 4, 5]


async def test_put_many_waits_for_room_as_a_consumer_frees_it(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=2)
    producer = asyncio.create_task(q.put_many(range(10)))
    received = [await q.get() for _ in range(10)]
    await asyncio.wait_for(producer, 30)
    assert received == list(range(10))


async def test_put_many_timeout_keeps_what_was_put(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=2)
    with pytest.raises(TimeoutError):
        await q.put_many([1, 2, 3, 4], timeout=0.02)
    assert q.qsize() == 2
    assert await q.get_many(10) == [1, 2]
    stats = q.statistics()
    assert stats.total_put == 2


@pytest.mark.needs("shutdown")
async def test_put_many_after_shutdown_puts_nothing(make_queue: MakeQueue) -> None:
    q = await make_queue()
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await q.put_many([1, 2])
    assert q.qsize() == 0


async def test_put_many_counts_each_item_for_join(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put_many([1, 2])
    joiner = asyncio.create_task(q.join())
    await q.get()
    q.task_done()
    await settle()
    assert not joiner.done()
    await q.get()
    q.task_done()
    await asyncio.wait_for(joiner, 30)


# -- async for --------------------------------------------------------------------------


@pytest.mark.needs("shutdown")
async def test_async_for_ends_when_shut_down_and_drained(make_queue: MakeQueue) -> None:
    q = await make_queue()
    received: list[int] = []

    async def consume() -> None:
        async for item in q:
            received.append(item)

    consumer = asyncio.create_task(consume())
    for i in range(5):
        await q.put(i)
    await q.put(5)
    q.shutdown()
    await asyncio.wait_for(consumer, 30)
    assert received == [0, 1, 2, 3, 4, 5]


@pytest.mark.needs("shutdown")
async def test_async_for_ends_on_immediate_shutdown(make_queue: MakeQueue) -> None:
    q = await make_queue()
    received: list[int] = []

    async def consume() -> None:
        async for item in q:
            received.append(item)

    consumer = asyncio.create_task(consume())
    await q.put(1)
    await wait_until(lambda: received == [1], "the first item is consumed")
    q.shutdown(immediate=True)
    await asyncio.wait_for(consumer, 30)
    assert received == [1]


async def test_async_for_break_leaves_the_rest(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put_many([1, 2, 3])
    async for item in q:
        if item == 2:
            break
    assert await q.get() == 3


# -- join(timeout=) ----------------------------------------------------------------------


async def test_join_timeout(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.join(timeout=0)
    await q.put(1)
    with pytest.raises(TimeoutError):
        await q.join(timeout=0.01)
    with pytest.raises(TimeoutError):
        await q.join(timeout=0)
    assert await q.get() == 1
    q.task_done()
    await q.join(timeout=30)


async def test_join_timeout_returns_when_done_in_time(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    joiner = asyncio.create_task(q.join(timeout=30))
    await settle()
    assert not joiner.done()
    await q.get()
    q.task_done()
    await asyncio.wait_for(joiner, 30)


# -- statistics() ------------------------------------------------------------------------


async def test_statistics_of_a_new_queue(make_queue: MakeQueue, backend: Backend) -> None:
    q = await make_queue(maxsize=4)
    stats = q.statistics()
    assert isinstance(stats, QueueStatistics)
    assert stats.backend == backend.statistics_name
    assert stats.current_size == 0
    assert stats.max_size == 4
    assert stats.peak_size == 0
    assert stats.tasks_waiting_get == 0
    assert stats.tasks_waiting_put == 0
    assert stats.unfinished_tasks == 0
    assert stats.total_put == 0
    assert stats.total_got == 0
    assert stats.is_shutdown is False


@pytest.mark.parametrize("maxsize", [0, -1])
async def test_statistics_max_size_of_unbounded_is_zero(
    make_queue: MakeQueue, maxsize: int
) -> None:
    q = await make_queue(maxsize=maxsize)
    assert q.statistics().max_size == 0


async def test_statistics_is_a_frozen_snapshot(make_queue: MakeQueue) -> None:
    q = await make_queue()
    before = q.statistics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.current_size = 5
    await q.put(1)
    assert before.current_size == 0
    assert q.statistics().current_size == 1


async def test_statistics_counts_puts_gets_and_peak(make_queue: MakeQueue) -> None:
    q = await make_queue()
    for i in range(3):
        await q.put(i)
    await q.get()
    await q.get()
    await q.put_many([3, 4])
    await q.get_many(2)
    stats = q.statistics()
    assert stats.current_size == 1
    assert stats.peak_size == 3
    assert stats.total_put == 5
    assert stats.total_got == 4
    assert stats.unfinished_tasks == 5
    q.task_done()
    assert q.statistics().unfinished_tasks == 4


async def test_statistics_counts_waiting_tasks(make_queue: MakeQueue) -> None:
    q = await make_queue()
    getters = [asyncio.create_task(q.get()) for _ in range(2)]
    await wait_until(lambda: q.statistics().tasks_waiting_get == 2, "two getters wait")
    assert q.statistics().tasks_waiting_put == 0
    await q.put_many([1, 2])
    assert sorted(await asyncio.wait_for(asyncio.gather(*getters), 30)) == [1, 2]
    assert q.statistics().tasks_waiting_get == 0

    bounded = await make_queue(maxsize=1)
    await bounded.put(0)
    putters = [asyncio.create_task(bounded.put(i)) for i in (1, 2, 3)]
    await wait_until(lambda: bounded.statistics().tasks_waiting_put == 3, "three putters wait")
    await cancel_and_wait(putters[:2])
    await wait_until(lambda: bounded.statistics().tasks_waiting_put == 1, "cancelled putters leave")
    assert await bounded.get() == 0
    await asyncio.wait_for(putters[2], 30)
    assert bounded.statistics().tasks_waiting_put == 0


async def test_statistics_waiting_count_drops_after_timeouts(make_queue: MakeQueue) -> None:
    q = await make_queue()
    with pytest.raises(TimeoutError):
        await q.get(timeout=0.01)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(q.get(), 0.01)
    assert q.statistics().tasks_waiting_get == 0


@pytest.mark.needs("shutdown")
async def test_statistics_reports_shutdown(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    q.shutdown(immediate=True)
    stats = q.statistics()
    assert stats.is_shutdown is True
    assert stats.current_size == 0
    assert stats.unfinished_tasks == 0


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("maxsize", ["3", [1], 1j])
async def test_non_numeric_maxsize_raises_type_error(make_queue: MakeQueue, maxsize: Any) -> None:
    with pytest.raises(TypeError, match="maxsize"):
        await make_queue(maxsize=maxsize)


@pytest.mark.needs("none_maxsize_refused")
async def test_none_maxsize_raises_type_error(make_queue: MakeQueue) -> None:
    with pytest.raises(TypeError, match="maxsize"):
        await make_queue(maxsize=None)


BAD_TIMEOUTS = [
    pytest.param(-1, ValueError, id="negative"),
    pytest.param(-0.001, ValueError, id="negative-float"),
    pytest.param(float("nan"), ValueError, id="nan"),
    pytest.param("1", TypeError, id="str"),
    pytest.param([1], TypeError, id="list"),
]


@pytest.mark.parametrize(("timeout", "error"), BAD_TIMEOUTS)
async def test_bad_timeout_on_get(
    make_queue: MakeQueue, timeout: Any, error: type[Exception]
) -> None:
    q = await make_queue()
    with pytest.raises(error, match="timeout"):
        await q.get(timeout=timeout)
    await q.put("kept")
    # Even with an item ready, the bad timeout is refused and the item stays.
    with pytest.raises(error, match="timeout"):
        await q.get(timeout=timeout)
    with pytest.raises(error, match="timeout"):
        await q.get_many(2, timeout=timeout)
    assert await q.get() == "kept"


@pytest.mark.parametrize(("timeout", "error"), BAD_TIMEOUTS)
async def test_bad_timeout_on_put_puts_nothing(
    make_queue: MakeQueue, timeout: Any, error: type[Exception]
) -> None:
    q = await make_queue()
    with pytest.raises(error, match="timeout"):
        await q.put("lost?", timeout=timeout)
    with pytest.raises(error, match="timeout"):
        await q.put_many(["lost?", "lost?"], timeout=timeout)
    assert q.qsize() == 0
    assert q.statistics().total_put == 0
    full = await make_queue(maxsize=1)
    await full.put("kept")
    with pytest.raises(error, match="timeout"):
        await full.put("lost?", timeout=timeout)
    assert await full.get() == "kept"
    assert full.empty()


@pytest.mark.parametrize(("timeout", "error"), BAD_TIMEOUTS)
async def test_bad_timeout_on_join(
    make_queue: MakeQueue, timeout: Any, error: type[Exception]
) -> None:
    q = await make_queue()
    with pytest.raises(error, match="timeout"):
        await q.join(timeout=timeout)
    await q.put(1)
    with pytest.raises(error, match="timeout"):
        await q.join(timeout=timeout)


@pytest.mark.parametrize(
    ("max_items", "error"),
    [(0, ValueError), (-3, ValueError), ("3", TypeError), (1.5, TypeError), (None, TypeError)],
)
async def test_bad_max_items_on_get_many(
    make_queue: MakeQueue, max_items: Any, error: type[Exception]
) -> None:
    q = await make_queue()
    await q.put("kept")
    with pytest.raises(error, match="max_items"):
        await q.get_many(max_items)
    assert await q.get() == "kept"


async def test_task_done_too_many_times_message(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    await q.get()
    q.task_done()
    with pytest.raises(ValueError, match="task_done\\(\\) called too many times"):
        q.task_done()


@pytest.mark.needs("shutdown")
async def test_put_after_shutdown_names_the_reason(make_queue: MakeQueue) -> None:
    q = await make_queue()
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await q.put(1, timeout=1)
    with pytest.raises(QueueShutDown):
        await q.get(timeout=1)


@pytest.mark.needs("shutdown")
async def test_queue_shut_down_says_what_happened(make_queue: MakeQueue) -> None:
    q = await make_queue()
    q.shutdown()
    with pytest.raises(QueueShutDown, match="shut down"):
        await q.put(1)
    with pytest.raises(QueueShutDown, match="shut down"):
        q.put_nowait(1)
    with pytest.raises(QueueShutDown, match="shut down"):
        await q.get()


@pytest.mark.parametrize("delay", [0.005, 0.01, 0.02])
async def test_get_timeout_and_put_due_at_the_same_instant(
    make_queue: MakeQueue, delay: float
) -> None:
    q = await make_queue()
    loop = asyncio.get_running_loop()
    for round_ in range(5):
        getter = asyncio.create_task(q.get(timeout=delay))
        await settle()
        loop.call_later(delay, q.put_nowait, round_)
        await asyncio.gather(getter, return_exceptions=True)
        if getter.exception() is None:
            assert getter.result() == round_
        else:
            assert isinstance(getter.exception(), TimeoutError)
            # It timed out, so the item is still there for the next get.
            assert await q.get(timeout=30) == round_
        assert q.empty()


async def test_statistics_peak_without_any_get(make_queue: MakeQueue) -> None:
    q = await make_queue()
    for i in range(5):
        await q.put(i)
    stats = q.statistics()
    assert (stats.current_size, stats.peak_size, stats.total_put) == (5, 5, 5)


@pytest.mark.needs("exact_sync_view")
async def test_statistics_count_items_put_without_waiting(make_queue: MakeQueue) -> None:
    q = await make_queue()
    for i in range(5):
        q.put_nowait(i)
    stats = q.statistics()
    assert (stats.current_size, stats.peak_size, stats.total_put) == (5, 5, 5)
    assert stats.unfinished_tasks == 5
    assert q.get_nowait() == 0
    q.put_nowait(5)
    q.put_nowait(6)
    stats = q.statistics()
    assert (stats.current_size, stats.peak_size, stats.total_put, stats.total_got) == (6, 6, 7, 1)


@pytest.mark.needs("shutdown")
async def test_statistics_after_immediate_shutdown_keep_peak_and_totals(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    for i in range(4):
        await q.put(i)
    assert await q.get() == 0
    q.shutdown(immediate=True)
    stats = q.statistics()
    assert stats.peak_size == 4
    assert stats.total_put == 4
    # Discarded items were not got by anyone.
    assert stats.total_got == 1
    assert stats.current_size == 0
    assert stats.unfinished_tasks == 1
