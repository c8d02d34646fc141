"""Blocking ``get``/``put``: waiting, waking, and who is woken first."""

from __future__ import annotations

import asyncio

import pytest

from tests.conformance._helpers import settle, wait_until
from tests.conftest import MakeQueue


async def test_blocking_get(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    assert await q.get() == 1


async def test_blocking_get_waits_for_an_item(make_queue: MakeQueue) -> None:
    q = await make_queue()
    started = asyncio.Event()
    finished = False

    async def queue_get() -> int:
        nonlocal finished
        started.set()
        item: int = await q.get()
        finished = True
        return item

    task = asyncio.create_task(queue_get())
    await started.wait()
    await settle()
    assert not finished
    await q.put(1)
    assert await task == 1
    assert finished


async def test_put_with_waiting_getter(make_queue: MakeQueue) -> None:
    q = await make_queue()
    getter = asyncio.create_task(q.get())
    await settle()
    await q.put("a")
    assert await getter == "a"
    assert q.empty()


async def test_put_nowait_with_waiting_getter(make_queue: MakeQueue) -> None:
    q = await make_queue()
    getter = asyncio.create_task(q.get())
    await settle()
    q.put_nowait("a")
    assert await getter == "a"


async def test_blocking_put_unbounded_does_not_wait(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    assert await q.get() == 1


async def test_blocking_put_waits_for_a_free_slot(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    started = asyncio.Event()
    finished = False

    async def queue_put() -> None:
        nonlocal finished
        started.set()
        await q.put(1)
        await q.put(2)
        finished = True

    task = asyncio.create_task(queue_put())
    await started.wait()
    await wait_until(lambda: q.qsize() == 1, "the first item is in")
    await settle()
    assert not finished
    assert await q.get() == 1
    await task
    assert finished
    assert await q.get() == 2


async def test_get_with_waiting_putters(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put("a")
    putter = asyncio.create_task(q.put("b"))
    await settle()
    assert await q.get() == "a"
    assert await q.get() == "b"
    await putter


@pytest.mark.needs("exact_sync_view")
async def test_get_with_racing_putters(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    put_a = asyncio.create_task(q.put("a"))
    put_b = asyncio.create_task(q.put("b"))
    assert await q.get() == "a"
    assert await q.get() == "b"
    await asyncio.gather(put_a, put_b)


async def test_producer_and_consumer_through_maxsize_one(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    received: list[int] = []

    async def consumer(count: int) -> None:
        for _ in range(count):
            received.append(await q.get())

    async def producer(count: int) -> None:
        for i in range(count):
            await q.put(i)

    await asyncio.wait_for(asyncio.gather(producer(5), consumer(5)), 30)
    assert received == [0, 1, 2, 3, 4]


async def test_many_putters_all_get_through(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=2)
    putters = [asyncio.create_task(q.put(i)) for i in range(4)]
    got = [await q.get() for _ in range(4)]
    await asyncio.wait_for(asyncio.gather(*putters), 30)
    assert sorted(got) == [0, 1, 2, 3]
    assert q.empty()


@pytest.mark.needs("exact_sync_view")
async def test_getter_drains_while_putters_wait(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=2)
    drained: list[int] = []

    async def putter(item: int) -> None:
        await q.put(item)

    async def getter() -> None:
        await asyncio.sleep(0)
        for _ in range(q.qsize()):
            drained.append(q.get_nowait())

    tasks = [asyncio.create_task(getter())]
    tasks += [asyncio.create_task(putter(i)) for i in range(4)]
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert drained == [0, 1]
    assert [q.get_nowait(), q.get_nowait()] == [2, 3]


@pytest.mark.needs("exact_sync_view")
async def test_getters_are_served_in_arrival_order(make_queue: MakeQueue) -> None:
    q = await make_queue()
    getters = []
    for _ in range(3):
        getters.append(asyncio.create_task(q.get()))
        await settle()
    for i in range(3):
        q.put_nowait(i)
    assert await asyncio.gather(*getters) == [0, 1, 2]


@pytest.mark.needs("exact_sync_view")
async def test_putters_are_served_in_arrival_order(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    q.put_nowait(0)
    putters = []
    for i in range(1, 4):
        putters.append(asyncio.create_task(q.put(i)))
        await settle()
    assert [await q.get() for _ in range(4)] == [0, 1, 2, 3]
    await asyncio.gather(*putters)


@pytest.mark.needs("exact_sync_view")
async def test_get_nowait_wakes_a_putter(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    q.put_nowait(1)
    putter = asyncio.create_task(q.put(2))
    await settle()
    assert not putter.done()
    assert q.get_nowait() == 1
    await asyncio.wait_for(putter, 30)
    assert q.get_nowait() == 2


async def test_get_wakes_a_putter(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put(1)
    putter = asyncio.create_task(q.put(2))
    await settle()
    assert not putter.done()
    assert await q.get() == 1
    await asyncio.wait_for(putter, 30)
    assert await q.get() == 2
