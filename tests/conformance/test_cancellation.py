"""Cancelled ``get``/``put``: no item lost, none duplicated, order kept, wake-ups passed on.

The hard case is a waiter that was *woken* (an item or a slot is meant for it) and is
cancelled before it runs.  It must leave without taking the item (or slot), and the next
waiter must be woken in its place; a queue that hands items straight to waiting getters
must give a cancelled getter's item back at the head, not lose it nor reorder it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from tests.conformance._helpers import (
    ORDERED,
    cancel_and_wait,
    got,
    kind_params,
    settle,
    wait_until,
)
from tests.conftest import MakeQueue


async def test_get_cancelled_before_any_item(make_queue: MakeQueue) -> None:
    q = await make_queue()
    t1 = asyncio.create_task(q.get())
    t2 = asyncio.create_task(q.get())
    await settle()
    t1.cancel()
    await wait_until(t1.done, "the cancelled getter finishes")
    assert t1.cancelled()
    await q.put("a")
    assert await asyncio.wait_for(t2, 30) == "a"


async def test_getter_cancelled_after_put_nowait_keeps_the_item(make_queue: MakeQueue) -> None:
    q = await make_queue()
    reader = asyncio.create_task(q.get())
    await settle()
    q.put_nowait(1)
    q.put_nowait(2)
    # The reader was woken for item 1 but has not run yet.
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    # If 2 came first here, 1 was dropped or reordered.
    assert [await q.get(), await q.get()] == [1, 2]


async def test_getter_cancelled_after_awaited_put_loses_nothing(make_queue: MakeQueue) -> None:
    q = await make_queue()
    reader = asyncio.create_task(q.get())
    await settle()
    await q.put(1)
    await q.put(2)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    delivered = got([reader])
    delivered += [await q.get() for _ in range(2 - len(delivered))]
    assert delivered == [1, 2]


@pytest.mark.parametrize("cancelled", [(0,), (1,), (0, 1), (0, 2), (1, 3), (0, 1, 2, 3)], ids=str)
async def test_woken_getters_cancelled_lose_nothing_and_keep_fifo(
    make_queue: MakeQueue, cancelled: tuple[int, ...]
) -> None:
    q = await make_queue()
    readers = [asyncio.create_task(q.get()) for _ in range(4)]
    await settle()
    items = list(range(1, 7))
    for item in items:
        q.put_nowait(item)
    for index in cancelled:
        readers[index].cancel()
    await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 30)
    for index, reader in enumerate(readers):
        assert reader.cancelled() == (index in cancelled), (index, reader)
    survivors = got(readers)
    # Readers take from the head, so they hold the first items; the rest stay in order.
    rest = [await q.get() for _ in range(len(items) - len(survivors))]
    assert sorted(survivors) + rest == items
    q.put_nowait(7)
    assert await q.get() == 7


async def test_woken_getter_cancelled_then_more_puts_keep_order(make_queue: MakeQueue) -> None:
    q = await make_queue()
    reader = asyncio.create_task(q.get())
    await settle()
    q.put_nowait("a")
    reader.cancel()
    q.put_nowait("b")
    await asyncio.gather(reader, return_exceptions=True)
    assert reader.cancelled()
    q.put_nowait("c")
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_woken_then_cancelled_getter_passes_its_wakeup_on(make_queue: MakeQueue) -> None:
    q = await make_queue()
    reader1 = asyncio.create_task(q.get())
    reader2 = asyncio.create_task(q.get())
    reader3 = asyncio.create_task(q.get())
    await settle()
    q.put_nowait(1)
    q.put_nowait(2)
    reader1.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader1
    # Two items, two live readers: both must be served, whichever gets which.
    results = await asyncio.wait_for(asyncio.gather(reader2, reader3), 30)
    assert sorted(results) == [1, 2]


async def test_getter_timed_out_by_wait_for_leaves_no_trace(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=5)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(q.get(), 0.01)
    await q.put(1)
    assert await q.get() == 1
    getter = asyncio.create_task(q.get())
    await settle()
    await q.put(2)
    assert await asyncio.wait_for(getter, 30) == 2


async def test_wait_for_get_racing_a_put_delivers_once(make_queue: MakeQueue) -> None:
    q = await make_queue()
    delivered: list[int] = []
    for i in range(30):
        delay = 0.002 * (i % 3)

        async def late_put(item: int = i, delay: float = delay) -> None:
            await asyncio.sleep(delay)
            await q.put(item)

        putter = asyncio.create_task(late_put())
        with contextlib.suppress(asyncio.TimeoutError):
            delivered.append(await asyncio.wait_for(q.get(), 0.002))
        await putter
    while len(delivered) < 30:
        delivered.append(await asyncio.wait_for(q.get(), 30))
    assert delivered == list(range(30))


async def test_put_cancelled_after_a_slot_freed_loses_nothing(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put(1)
    writer = asyncio.create_task(q.put(2))
    await settle()
    assert await q.get() == 1
    writer.cancel()
    try:
        await writer
    except asyncio.CancelledError:
        await q.put(2)
    assert await q.get() == 2
    assert q.qsize() == 0


@pytest.mark.needs("exact_sync_view")
async def test_put_woken_then_cancelled_does_not_put(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put("first")
    writer = asyncio.create_task(q.put("cancelled"))
    await settle()
    assert await q.get() == "first"
    # The writer was woken for the free slot but has not run yet.
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    await q.put("marker")
    assert await q.get() == "marker"
    assert q.empty()


async def test_woken_then_cancelled_putter_passes_its_wakeup_on(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put(0)
    writer1 = asyncio.create_task(q.put(1))
    await settle()
    writer2 = asyncio.create_task(q.put(2))
    await settle()
    assert await q.get() == 0
    writer1.cancel()
    await asyncio.gather(writer1, return_exceptions=True)
    remaining = []
    if not writer1.cancelled():
        # It had already put its item: make room for writer2.
        remaining.append(await q.get())
    await asyncio.wait_for(writer2, 30)
    remaining.append(await q.get())
    assert remaining == ([2] if writer1.cancelled() else [1, 2])
    assert q.empty()


async def test_cancelled_putter_among_waiting_putters(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    put_a = asyncio.create_task(q.put("a"))
    await wait_until(put_a.done, "the first put goes through")
    put_b = asyncio.create_task(q.put("b"))
    put_x = asyncio.create_task(q.put("X"))
    await settle()
    assert not put_b.done()
    put_x.cancel()
    await asyncio.gather(put_x, return_exceptions=True)
    assert put_x.cancelled()
    assert await q.get() == "a"
    assert await q.get() == "b"
    await asyncio.wait_for(put_b, 30)
    assert q.empty()


@pytest.mark.needs("exact_sync_view")
async def test_put_cancelled_race(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    put_a = asyncio.create_task(q.put("a"))
    put_b = asyncio.create_task(q.put("b"))
    put_x = asyncio.create_task(q.put("X"))
    await asyncio.sleep(0)
    assert put_a.done()
    assert not put_b.done()
    put_x.cancel()
    await asyncio.sleep(0)
    assert put_x.done()
    assert q.get_nowait() == "a"
    await asyncio.sleep(0)
    assert q.get_nowait() == "b"
    await put_b


@pytest.mark.needs("exact_sync_view")
async def test_cancelled_put_after_get_nowait(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    q.put_nowait(1)
    put_task = asyncio.create_task(q.put(1))
    await asyncio.sleep(0)
    q.get_nowait()
    put_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put_task
    assert q.qsize() == 0


async def test_put_completes_before_getter_runs(make_queue: MakeQueue) -> None:
    q = await make_queue()

    async def queue_put() -> bool:
        await q.put(1)
        return True

    task = asyncio.create_task(queue_put())
    assert await q.get() == 1
    assert await task is True


async def test_consumers_cancelled_mid_stream_lose_nothing(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=3)
    received: list[int] = []

    async def consumer() -> None:
        while True:
            received.append(await q.get())

    total = 60
    consumers = [asyncio.create_task(consumer()) for _ in range(3)]
    for i in range(total):
        await q.put(i)
        if i % 7 == 0:
            # Swap one consumer for a fresh one while items are flowing.
            old = consumers.pop(0)
            old.cancel()
            await asyncio.gather(old, return_exceptions=True)
            consumers.append(asyncio.create_task(consumer()))
    await wait_until(lambda: len(received) == total and q.empty(), "every item is consumed")
    await cancel_and_wait(consumers)
    assert sorted(received) == list(range(total))


@pytest.mark.parametrize("kind", kind_params())
async def test_woken_getter_cancelled_keeps_the_order_of_every_kind(
    make_queue: MakeQueue, kind: str
) -> None:
    q = await make_queue(kind=kind)
    reader = asyncio.create_task(q.get())
    await settle()
    for item in [1, 3, 2]:
        q.put_nowait(item)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert [await q.get() for _ in range(3)] == ORDERED[kind]


async def test_item_of_a_cancelled_getter_still_counts_for_join(make_queue: MakeQueue) -> None:
    q = await make_queue()
    reader = asyncio.create_task(q.get())
    await settle()
    q.put_nowait("x")
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    joiner = asyncio.create_task(q.join())
    await settle()
    # The item went back to the queue, so it is still unfinished.
    assert not joiner.done()
    assert await q.get() == "x"
    q.task_done()
    await asyncio.wait_for(joiner, 30)


async def test_many_getters_cancelled_in_any_order_keep_the_others_in_line(
    make_queue: MakeQueue,
) -> None:
    # Enough leavers, from the middle of the line and in a shuffled order, that a queue
    # which drops leavers lazily (conveyor's, to make leaving O(1)) has to tidy up more
    # than once: the getters left must still be served one item each, first come first.
    q = await make_queue()
    got_by: list[int] = []

    async def reader(number: int) -> None:
        await q.get()
        got_by.append(number)

    readers = [asyncio.create_task(reader(number)) for number in range(300)]
    await settle()
    leaving = [number for number in range(300) if number % 5]
    random.Random(7).shuffle(leaving)
    for number in leaving:
        readers[number].cancel()
        await asyncio.sleep(0)
    await asyncio.gather(*(readers[number] for number in leaving), return_exceptions=True)
    if hasattr(q, "statistics"):  # asyncio.Queue has none
        assert q.statistics().tasks_waiting_get == 60
    for item in range(60):
        q.put_nowait(item)
    await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 30)
    assert got_by == list(range(0, 300, 5))
    q.put_nowait("after")
    assert await q.get() == "after"


async def test_many_putters_cancelled_in_any_order_keep_the_others_in_line(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue(maxsize=1)
    await q.put(-1)
    putters = [asyncio.create_task(q.put(number)) for number in range(300)]
    await settle()
    leaving = [number for number in range(300) if number % 5]
    random.Random(11).shuffle(leaving)
    for number in leaving:
        putters[number].cancel()
        await asyncio.sleep(0)
    await asyncio.gather(*(putters[number] for number in leaving), return_exceptions=True)
    received = [await asyncio.wait_for(q.get(), 30) for _ in range(61)]
    await asyncio.wait_for(asyncio.gather(*putters, return_exceptions=True), 30)
    assert received == [-1, *range(0, 300, 5)]
    assert q.empty()
