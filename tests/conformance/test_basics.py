"""Ordering, size, ``maxsize``, the non-blocking methods, ``repr``/``str`` and generics."""

from __future__ import annotations

import asyncio
import types
import typing
from typing import Any

import pytest

import conveyor
from tests.conformance._helpers import ORDERED, cancel_and_wait, kind_params, settle, wait_until
from tests.conftest import MakeQueue


async def test_fifo_order(make_queue: MakeQueue) -> None:
    q = await make_queue()
    for i in [1, 3, 2]:
        await q.put(i)
    assert [await q.get() for _ in range(3)] == [1, 3, 2]


@pytest.mark.needs("lifo")
async def test_lifo_order(make_queue: MakeQueue) -> None:
    q = await make_queue(kind="lifo")
    for i in [1, 3, 2]:
        await q.put(i)
    assert [await q.get() for _ in range(3)] == [2, 3, 1]


@pytest.mark.needs("priority")
async def test_priority_order(make_queue: MakeQueue) -> None:
    q = await make_queue(kind="priority")
    for i in [1, 3, 2]:
        await q.put(i)
    assert [await q.get() for _ in range(3)] == [1, 2, 3]


@pytest.mark.parametrize("kind", kind_params())
async def test_order_holds_across_interleaved_puts_and_gets(
    make_queue: MakeQueue, kind: str
) -> None:
    q = await make_queue(kind=kind)
    for i in [5, 1, 4]:
        await q.put(i)
    first = await q.get()
    for i in [3, 2]:
        await q.put(i)
    rest = [await q.get() for _ in range(4)]
    expected = {"fifo": [5, 1, 4, 3, 2], "lifo": [4, 2, 3, 1, 5], "priority": [1, 2, 3, 4, 5]}
    assert [first, *rest] == expected[kind]


@pytest.mark.needs("priority", "any_item")
async def test_priority_entries_are_tuples_compared_in_order(make_queue: MakeQueue) -> None:
    q = await make_queue(kind="priority")
    for entry in [(2, "b"), (1, "z"), (1, "a"), (0, "x")]:
        await q.put(entry)
    assert [await q.get() for _ in range(4)] == [(0, "x"), (1, "a"), (1, "z"), (2, "b")]


@pytest.mark.parametrize("kind", kind_params())
async def test_nowait_order(make_queue: MakeQueue, kind: str) -> None:
    q = await make_queue(kind=kind)
    for i in [1, 3, 2]:
        q.put_nowait(i)
    assert [await q.get() for _ in range(3)] == ORDERED[kind]


async def test_get_nowait_empty_raises(make_queue: MakeQueue) -> None:
    q = await make_queue()
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


@pytest.mark.needs("exact_sync_view")
async def test_nonblocking_put_then_get(make_queue: MakeQueue) -> None:
    q = await make_queue()
    q.put_nowait(1)
    assert q.get_nowait() == 1
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


@pytest.mark.needs("exact_sync_view")
async def test_get_nowait_after_awaited_put(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put("a")
    assert q.get_nowait() == "a"


async def test_put_nowait_full_raises(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put(1)
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(2)
    assert await q.get() == 1
    assert q.empty()


@pytest.mark.needs("exact_sync_view")
async def test_put_nowait_full_raises_right_after_put_nowait(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    q.put_nowait(1)
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(2)
    assert q.get_nowait() == 1


async def test_empty(make_queue: MakeQueue) -> None:
    q = await make_queue()
    assert q.empty()
    await q.put(1)
    assert not q.empty()
    assert await q.get() == 1
    assert q.empty()


async def test_full(make_queue: MakeQueue) -> None:
    q = await make_queue()
    assert not q.full()
    bounded = await make_queue(maxsize=1)
    assert not bounded.full()
    await bounded.put(1)
    assert bounded.full()
    await bounded.get()
    assert not bounded.full()


@pytest.mark.parametrize("maxsize", [0, -1])
async def test_unbounded_is_never_full(make_queue: MakeQueue, maxsize: int) -> None:
    q = await make_queue(maxsize=maxsize)
    assert q.maxsize == maxsize
    for i in range(50):
        await q.put(i)
    assert not q.full()
    assert q.qsize() == 50


async def test_qsize_counts_items(make_queue: MakeQueue) -> None:
    q = await make_queue()
    assert q.qsize() == 0
    for i in range(3):
        await q.put(i)
        assert q.qsize() == i + 1
    await q.get()
    assert q.qsize() == 2


async def test_maxsize(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=2)
    assert q.maxsize == 2
    have_been_put: list[int] = []

    async def putter() -> bool:
        for i in range(3):
            await q.put(i)
            have_been_put.append(i)
        return True

    task = asyncio.create_task(putter())
    await wait_until(lambda: have_been_put == [0, 1], "two items are put")
    await settle()
    # The third put waits for a free slot.
    assert have_been_put == [0, 1]
    assert not task.done()
    assert q.full()

    assert await q.get() == 0
    await wait_until(lambda: have_been_put == [0, 1, 2], "the blocked put goes through")
    assert await q.get() == 1
    assert await q.get() == 2
    assert await task is True


@pytest.mark.needs("float_maxsize")
async def test_float_maxsize_nowait(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1.3)
    q.put_nowait(1)
    q.put_nowait(2)
    assert q.full()
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(3)


@pytest.mark.needs("float_maxsize")
async def test_float_maxsize_awaited(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1.3)
    assert q.maxsize == 1.3
    await q.put(1)
    assert not q.full()
    await q.put(2)
    assert q.full()
    blocked = asyncio.create_task(q.put(3))
    await settle()
    assert not blocked.done()
    assert await q.get() == 1
    await blocked
    assert [await q.get(), await q.get()] == [2, 3]


async def test_generic_alias(make_queue: MakeQueue) -> None:
    q = await make_queue()
    alias = type(q)[int]
    assert typing.get_origin(alias) is type(q)
    assert typing.get_args(alias) == (int,)


@pytest.mark.needs("class_named_repr")
async def test_repr_and_str_name_the_queue(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=3)
    name = type(q).__name__
    assert repr(q).startswith(f"<{name}"), repr(q)
    assert str(q).startswith(f"<{name}"), str(q)
    assert hex(id(q)) in repr(q)
    assert hex(id(q)) not in str(q)
    assert "maxsize=3" in repr(q)
    assert "maxsize=3" in str(q)


@pytest.mark.needs("asyncio_repr")
@pytest.mark.parametrize("fn", [repr, str])
async def test_repr_and_str_show_waiters_items_and_tasks(
    make_queue: MakeQueue, fn: typing.Callable[[object], str]
) -> None:
    q = await make_queue()
    getter = asyncio.create_task(q.get())
    await settle()
    assert "_getters[1]" in fn(q), fn(q)
    q.put_nowait(0)
    assert await getter == 0

    q = await make_queue(maxsize=1)
    q.put_nowait(1)
    putter = asyncio.create_task(q.put(2))
    await settle()
    assert "_putters[1]" in fn(q), fn(q)
    assert q.get_nowait() == 1
    await putter

    q = await make_queue()
    assert fn(q).endswith("maxsize=0>"), fn(q)
    q.put_nowait(1)
    assert "_queue=[1]" in fn(q), fn(q)
    assert "tasks=1" in fn(q), fn(q)
    q.get_nowait()
    q.task_done()
    assert fn(q).endswith("maxsize=0>"), fn(q)


@pytest.mark.needs("asyncio_repr", "shutdown")
async def test_repr_shows_shutdown(make_queue: MakeQueue) -> None:
    q = await make_queue()
    q.shutdown()
    assert str(q).endswith("maxsize=0 shutdown>"), str(q)


@pytest.mark.needs("same_loop_only")
async def test_use_from_another_loop_raises_runtime_error(make_queue: MakeQueue) -> None:
    q = await make_queue()
    # A getter parked here binds the queue to this loop.
    getter = asyncio.create_task(q.get())
    await settle()

    def get_in_another_loop() -> BaseException | None:
        try:
            asyncio.run(asyncio.wait_for(q.get(), 5))
        except BaseException as exc:
            return exc
        return None

    error = await asyncio.to_thread(get_in_another_loop)
    assert isinstance(error, RuntimeError), error
    await cancel_and_wait([getter])


@pytest.mark.parametrize("cls", [conveyor.Queue, conveyor.LifoQueue, conveyor.PriorityQueue])
def test_memory_classes_subscript_like_asyncio(cls: type[Any]) -> None:
    alias = cls[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__args__ == (int,)
    assert alias.__origin__ is cls
    assert isinstance(alias(), cls)  # type: ignore[operator]
