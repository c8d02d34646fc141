"""An item put while a getter waits stays in the queue until that getter takes it.

asyncio wakes the waiting getter and leaves the item in the buffer: until the getter
resumes, the item counts in ``qsize()``, takes a slot of ``maxsize``, and is the first
item any other ``get`` returns.  A queue that hands items straight to a waiting getter
must not let users see the difference: ``get()`` calls still *return* items in the order
they were put, and a put into a full queue still waits for an item to be taken.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conformance._helpers import settle
from tests.conftest import MakeQueue


async def test_gets_return_in_put_order_while_a_getter_waits(make_queue: MakeQueue) -> None:
    q = await make_queue()
    returned: list[int] = []

    async def waiting_getter() -> None:
        returned.append(await q.get())

    waiter = asyncio.create_task(waiting_getter())
    await settle()
    await q.put(1)
    await q.put(2)
    returned.append(await q.get())
    await asyncio.wait_for(waiter, 30)
    # Whoever returns first must return the older item.
    assert returned == [1, 2]


@pytest.mark.needs("exact_sync_view")
async def test_get_nowait_takes_the_item_a_woken_getter_was_woken_for(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    waiter = asyncio.create_task(q.get())
    await settle()
    q.put_nowait(1)
    q.put_nowait(2)
    assert q.get_nowait() == 1
    assert await waiter == 2


async def test_put_into_full_queue_waits_until_a_waiting_getter_took_its_item(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue(maxsize=1)
    events: list[str] = []

    async def waiting_getter() -> None:
        events.append(f"got {await q.get()}")

    waiter = asyncio.create_task(waiting_getter())
    await settle()
    await q.put(1)
    events.append("put 1")
    await q.put(2)
    events.append("put 2")
    await asyncio.wait_for(waiter, 30)
    # maxsize=1: item 2 has no slot until item 1 has been taken.
    assert events.index("got 1") < events.index("put 2"), events
    assert await q.get() == 2


@pytest.mark.needs("exact_sync_view")
async def test_item_meant_for_a_woken_getter_counts_in_size_and_slots(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue(maxsize=1)
    waiter = asyncio.create_task(q.get())
    await settle()
    q.put_nowait(1)
    assert q.qsize() == 1
    assert not q.empty()
    assert q.full()
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(2)
    assert await waiter == 1
    assert q.empty()


@pytest.mark.needs("exact_sync_view")
async def test_woken_getters_each_take_one_item_in_order(make_queue: MakeQueue) -> None:
    q = await make_queue()
    returned: list[int] = []

    async def waiting_getter() -> None:
        returned.append(await q.get())

    waiters = []
    for _ in range(3):
        waiters.append(asyncio.create_task(waiting_getter()))
        await settle()
    for i in range(5):
        q.put_nowait(i)
    assert q.qsize() == 5
    await asyncio.wait_for(asyncio.gather(*waiters), 30)
    assert returned == [0, 1, 2]
    assert [q.get_nowait(), q.get_nowait()] == [3, 4]
