"""A method taken from the queue earlier behaves exactly as one looked up now.

Code keeps bound methods around all the time: ``loop.call_soon(q.put_nowait, item)``,
``protocol.callback = q.put_nowait``, ``put = q.put_nowait`` hoisted out of a loop.  The
queue's state may change between taking the method and calling it (a getter starts
waiting, the queue is shut down); the call must still see the current state.
"""

from __future__ import annotations

import asyncio

import pytest

from conveyor import QueueShutDown
from tests.conformance._helpers import settle
from tests.conftest import MakeQueue


async def test_put_nowait_taken_before_a_getter_waits_still_wakes_it(make_queue: MakeQueue) -> None:
    q = await make_queue()
    put = q.put_nowait
    getter = asyncio.create_task(q.get())
    await settle()
    put(1)
    assert await asyncio.wait_for(getter, 5) == 1


async def test_put_nowait_scheduled_as_a_callback_wakes_a_getter(make_queue: MakeQueue) -> None:
    q = await make_queue()
    loop = asyncio.get_running_loop()
    loop.call_soon(q.put_nowait, "a")
    loop.call_soon(q.put_nowait, "b")
    got = [await asyncio.wait_for(q.get(), 5)]
    # The second callback ran while (or after) this getter waited.
    got.append(await asyncio.wait_for(q.get(), 5))
    assert got == ["a", "b"]
    getter = asyncio.create_task(q.get())
    await settle()
    loop.call_soon(q.put_nowait, "c")
    assert await asyncio.wait_for(getter, 5) == "c"


async def test_put_nowait_taken_earlier_wakes_each_of_several_getters(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    put = q.put_nowait
    put(0)
    assert await q.get() == 0
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    for i in range(1, 4):
        put(i)
    assert sorted(await asyncio.wait_for(asyncio.gather(*getters), 5)) == [1, 2, 3]


async def test_items_put_through_a_method_taken_earlier_count_for_join(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    put = q.put_nowait
    put("x")
    joiner = asyncio.create_task(q.join())
    await settle()
    assert not joiner.done()
    assert await q.get() == "x"
    q.task_done()
    await asyncio.wait_for(joiner, 5)


@pytest.mark.needs("shutdown")
async def test_put_nowait_taken_before_shutdown_raises_after_it(make_queue: MakeQueue) -> None:
    q = await make_queue()
    put = q.put_nowait
    put(1)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        put(2)
    assert await q.get() == 1
    with pytest.raises(QueueShutDown):
        await q.get()


@pytest.mark.needs("shutdown")
async def test_put_nowait_taken_before_immediate_shutdown_raises_after_it(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    put = q.put_nowait
    q.shutdown(immediate=True)
    with pytest.raises(QueueShutDown):
        put(1)
    assert q.qsize() == 0
    await asyncio.wait_for(q.join(), 5)


@pytest.mark.needs("exact_sync_view")
async def test_methods_taken_earlier_report_the_current_size(make_queue: MakeQueue) -> None:
    q = await make_queue()
    put, get, qsize, empty = q.put_nowait, q.get_nowait, q.qsize, q.empty
    put(1)
    put(2)
    assert (qsize(), empty()) == (2, False)
    assert get() == 1
    getter = asyncio.create_task(q.get())
    await settle()
    assert await asyncio.wait_for(getter, 5) == 2
    put(3)
    assert (qsize(), empty()) == (1, False)
    assert get() == 3
    assert (qsize(), empty()) == (0, True)
