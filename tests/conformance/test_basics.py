"""Ordering, size and the non-blocking methods."""

from __future__ import annotations

import asyncio

import pytest

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


async def test_get_nowait_empty_raises(make_queue: MakeQueue) -> None:
    q = await make_queue()
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()
