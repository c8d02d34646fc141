"""``shutdown(immediate=...)`` and ``QueueShutDown``, as Python 3.13 defines them.

``conveyor.QueueShutDown`` is what every body catches: on 3.13 it *is*
``asyncio.QueueShutDown``, which the asyncio oracle raises.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conveyor import QueueShutDown
from tests.conformance._helpers import ORDERED, kind_params, outcome, settle, wait_until
from tests.conftest import MakeQueue

pytestmark = pytest.mark.needs("shutdown")


async def assert_put_and_get_raise(q: Any) -> None:
    with pytest.raises(QueueShutDown):
        await q.put("data")
    with pytest.raises(QueueShutDown):
        q.put_nowait("data")
    with pytest.raises(QueueShutDown):
        await q.get()
    with pytest.raises(QueueShutDown):
        q.get_nowait()


@pytest.mark.parametrize("kind", kind_params())
async def test_shutdown_empty(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(kind=kind)
    get_task = asyncio.create_task(q.get())
    await settle()

    q.shutdown(immediate=False)

    assert q.qsize() == 0
    await asyncio.wait_for(q.join(), 30)
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(get_task, 30)
    await assert_put_and_get_raise(q)


@pytest.mark.parametrize("kind", kind_params())
async def test_shutdown_nonempty(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(maxsize=1, kind=kind)
    await q.put("data")
    join_task = asyncio.create_task(q.join())
    put_task = asyncio.create_task(q.put("data2"))
    await settle()
    assert not put_task.done()

    q.shutdown(immediate=False)

    assert q.qsize() == 1
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(put_task, 30)
    # What was queued before the shutdown can still be got.
    assert await q.get() == "data"
    await settle()
    assert not join_task.done()
    await assert_put_and_get_raise(q)

    q.task_done()
    await asyncio.wait_for(join_task, 30)
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


@pytest.mark.parametrize("kind", kind_params())
async def test_shutdown_immediate(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(kind=kind)
    await q.put("data")
    join_task = asyncio.create_task(q.join())

    q.shutdown(immediate=True)

    assert q.qsize() == 0
    # The discarded item counts as done.
    await asyncio.wait_for(join_task, 30)
    await assert_put_and_get_raise(q)
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


@pytest.mark.parametrize("kind", kind_params())
async def test_shutdown_immediate_with_unfinished(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(kind=kind)
    await q.put("data")
    await q.put("data")
    join_task = asyncio.create_task(q.join())
    assert await q.get() == "data"

    q.shutdown(immediate=True)

    assert q.qsize() == 0
    await settle()
    # The item got before the shutdown is still unfinished.
    assert not join_task.done()
    await assert_put_and_get_raise(q)

    q.task_done()
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()
    await asyncio.wait_for(join_task, 30)


@pytest.mark.parametrize("immediate", [False, True])
async def test_shutdown_wakes_every_blocked_getter(make_queue: MakeQueue, immediate: bool) -> None:
    q = await make_queue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    assert not any(g.done() for g in getters)
    q.shutdown(immediate=immediate)
    await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), 30)
    for getter in getters:
        assert isinstance(getter.exception(), QueueShutDown)


@pytest.mark.parametrize("immediate", [False, True])
async def test_shutdown_wakes_every_blocked_putter(make_queue: MakeQueue, immediate: bool) -> None:
    q = await make_queue(maxsize=1)
    await q.put(0)
    putters = [asyncio.create_task(q.put(i)) for i in range(1, 4)]
    await settle()
    assert not any(p.done() for p in putters)
    q.shutdown(immediate=immediate)
    await asyncio.wait_for(asyncio.gather(*putters, return_exceptions=True), 30)
    for putter in putters:
        assert isinstance(putter.exception(), QueueShutDown)
    if not immediate:
        assert await q.get() == 0
    with pytest.raises(QueueShutDown):
        await q.get()


@pytest.mark.parametrize("kind", kind_params())
async def test_get_drains_then_raises(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(kind=kind)
    for i in [1, 3, 2]:
        await q.put(i)
    q.shutdown()
    assert q.qsize() == 3
    drained = [await q.get() for _ in range(3)]
    assert drained == ORDERED[kind]
    with pytest.raises(QueueShutDown):
        await q.get()
    with pytest.raises(QueueShutDown):
        q.get_nowait()


async def test_put_after_shutdown_raises_even_with_room(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=5)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await q.put(1)
    with pytest.raises(QueueShutDown):
        q.put_nowait(1)
    assert q.qsize() == 0


async def test_put_on_full_queue_after_shutdown_raises_without_waiting(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue(maxsize=1)
    await q.put(1)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(q.put(2), 30)
    assert await q.get() == 1


async def test_shutdown_twice_then_immediate_drains(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    await q.put(2)
    q.shutdown()
    q.shutdown()
    assert q.qsize() == 2
    q.shutdown(immediate=True)
    assert q.qsize() == 0
    await asyncio.wait_for(q.join(), 30)
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_task_done_after_immediate_shutdown_of_unread_items(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    await q.put(2)
    q.shutdown(immediate=True)
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()
    await asyncio.wait_for(q.join(), 30)


async def test_join_after_shutdown_waits_for_queued_items(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    q.shutdown()
    joiner = asyncio.create_task(q.join())
    await settle()
    assert not joiner.done()
    assert await q.get() == 1
    q.task_done()
    await asyncio.wait_for(joiner, 30)


@pytest.mark.needs("exact_sync_view")
async def test_immediate_shutdown_right_after_getters_were_woken(make_queue: MakeQueue) -> None:
    q = await make_queue()
    getters = [asyncio.create_task(q.get()) for _ in range(2)]
    await settle()
    q.put_nowait(1)
    q.put_nowait(2)
    # Both getters were woken for an item, but neither has run yet.
    q.shutdown(immediate=True)
    assert q.qsize() == 0
    await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), 30)
    for getter in getters:
        assert isinstance(getter.exception(), QueueShutDown)
    # The items were discarded by the shutdown, and count as done.
    await asyncio.wait_for(q.join(), 30)
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


async def test_immediate_shutdown_after_puts_to_waiting_getters_accounts_for_each_item(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()

    async def consume_one() -> Any:
        item = await q.get()
        q.task_done()
        return item

    getters = [asyncio.create_task(consume_one()) for _ in range(3)]
    await settle()
    await q.put(1)
    await q.put(2)
    q.shutdown(immediate=True)
    await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), 30)
    delivered = []
    for getter in getters:
        status, value = outcome(getter)
        if status == "ok":
            delivered.append(value)
        else:
            assert isinstance(value, QueueShutDown), value
    # Each item was either delivered once or discarded by the shutdown, never both.
    assert len(delivered) == len(set(delivered))
    assert set(delivered) <= {1, 2}
    assert q.qsize() == 0
    await asyncio.wait_for(q.join(), 30)
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_shutdown_right_after_getters_were_woken_still_delivers(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    q.put_nowait(1)
    q.put_nowait(2)
    q.shutdown()
    await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), 30)
    results = [outcome(g) for g in getters]
    assert sorted(value for status, value in results if status == "ok") == [1, 2]
    errors = [value for status, value in results if status != "ok"]
    assert len(errors) == 1
    assert isinstance(errors[0], QueueShutDown)


@pytest.mark.needs("exact_sync_view")
async def test_putter_woken_then_shutdown_does_not_put(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    q.put_nowait(0)
    putter = asyncio.create_task(q.put(1))
    await settle()
    assert q.get_nowait() == 0
    # The putter was woken for the free slot but has not run yet.
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(putter, 30)
    assert q.qsize() == 0
    with pytest.raises(QueueShutDown):
        q.get_nowait()


async def test_blocked_get_wakes_when_last_item_is_drained_after_shutdown(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    await q.put(1)
    q.shutdown()
    assert await q.get() == 1
    getter = asyncio.create_task(q.get())
    await wait_until(getter.done, "a get on a shut-down, drained queue finishes")
    assert isinstance(getter.exception(), QueueShutDown)


async def test_shutdown_then_cancel_of_a_woken_getter_keeps_its_item(make_queue: MakeQueue) -> None:
    q = await make_queue()
    reader = asyncio.create_task(q.get())
    await settle()
    q.put_nowait(1)
    q.shutdown()
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    if reader.cancelled():
        # Nobody took it: it is still there to be drained.
        assert await q.get() == 1
    else:
        assert reader.result() == 1
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_immediate_shutdown_discards_the_item_of_a_cancelled_woken_getter(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    reader = asyncio.create_task(q.get())
    await settle()
    q.put_nowait(1)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert reader.cancelled()
    q.shutdown(immediate=True)
    assert q.qsize() == 0
    await asyncio.wait_for(q.join(), 30)
    with pytest.raises(QueueShutDown):
        await q.get()
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()
