"""``task_done()`` and ``join()``.

On durable queues ``task_done()`` acknowledges an item the *calling task* got, so every
body here calls it from the task that did the ``get()``.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conformance._helpers import cancel_and_wait, kind_params, settle, wait_until
from tests.conftest import MakeQueue


@pytest.mark.parametrize("kind", kind_params())
async def test_task_done_underflow(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(kind=kind)
    with pytest.raises(ValueError, match="task_done\\(\\) called too many times"):
        q.task_done()


@pytest.mark.parametrize("kind", kind_params())
async def test_task_done_once_per_item(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(kind=kind)
    await q.put(1)
    await q.put(2)
    await q.get()
    await q.get()
    q.task_done()
    q.task_done()
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()
    await asyncio.wait_for(q.join(), 30)


@pytest.mark.parametrize("kind", kind_params())
async def test_task_done_and_join_with_workers(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(kind=kind)
    for i in range(100):
        await q.put(i)
    accumulator = 0

    async def worker() -> None:
        nonlocal accumulator
        while True:
            item = await q.get()
            accumulator += item
            q.task_done()

    workers = [asyncio.create_task(worker()) for _ in range(2)]
    await asyncio.wait_for(q.join(), 30)
    assert accumulator == sum(range(100))
    await cancel_and_wait(workers)


@pytest.mark.parametrize("kind", kind_params())
async def test_join_empty_queue(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(kind=kind)
    # Returns at once, and again.
    await asyncio.wait_for(q.join(), 30)
    await asyncio.wait_for(q.join(), 30)


async def test_join_waits_for_every_task_done(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put("a")
    await q.put("b")
    joiner = asyncio.create_task(q.join())
    await q.get()
    await q.get()
    await settle()
    assert not joiner.done()
    q.task_done()
    await settle()
    # Getting is not enough: the last item is not marked done yet.
    assert not joiner.done()
    q.task_done()
    await asyncio.wait_for(joiner, 30)


async def test_join_wakes_every_joiner(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    joiners = [asyncio.create_task(q.join()) for _ in range(3)]
    await settle()
    assert not any(j.done() for j in joiners)
    await q.get()
    q.task_done()
    await asyncio.wait_for(asyncio.gather(*joiners), 30)


async def test_join_waits_for_items_put_after_it_started(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    joiner = asyncio.create_task(q.join())
    await settle()
    await q.put(2)
    await q.get()
    q.task_done()
    await settle()
    assert not joiner.done()
    await q.get()
    q.task_done()
    await asyncio.wait_for(joiner, 30)


async def test_join_is_reusable(make_queue: MakeQueue) -> None:
    q = await make_queue()
    for round_ in range(3):
        await q.put(round_)
        joiner = asyncio.create_task(q.join())
        await settle()
        assert not joiner.done()
        assert await q.get() == round_
        q.task_done()
        await asyncio.wait_for(joiner, 30)


async def test_cancelled_joiner_does_not_block_others(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    first = asyncio.create_task(q.join())
    second = asyncio.create_task(q.join())
    await settle()
    await cancel_and_wait([first])
    await q.get()
    q.task_done()
    await asyncio.wait_for(second, 30)


async def test_unfinished_count_survives_consumer_cancel(make_queue: MakeQueue) -> None:
    q = await make_queue()
    consumer = asyncio.create_task(q.get())
    await settle()
    await cancel_and_wait([consumer])
    await q.put("x")
    joiner = asyncio.create_task(q.join())
    await settle()
    assert not joiner.done()
    assert await q.get() == "x"
    q.task_done()
    await wait_until(joiner.done, "join() returns")
    await joiner
