"""The exception classes: asyncio code's ``except`` clauses keep catching conveyor's errors."""

from __future__ import annotations

import asyncio
import queue
import sys

import pytest

import conveyor
from tests.conftest import MakeQueue


def test_queue_empty_and_full_are_the_asyncio_ones() -> None:
    assert issubclass(conveyor.QueueEmpty, asyncio.QueueEmpty)
    assert issubclass(conveyor.QueueFull, asyncio.QueueFull)


def test_except_asyncio_queue_empty_catches_conveyor_queue_empty() -> None:
    caught: Exception | None = None
    try:
        conveyor.Queue[int]().get_nowait()
    except asyncio.QueueEmpty as exc:
        caught = exc
    assert isinstance(caught, conveyor.QueueEmpty)


def test_except_asyncio_queue_full_catches_conveyor_queue_full() -> None:
    q = conveyor.Queue[int](maxsize=1)
    q.put_nowait(1)
    caught: Exception | None = None
    try:
        q.put_nowait(2)
    except asyncio.QueueFull as exc:
        caught = exc
    assert isinstance(caught, conveyor.QueueFull)


def test_queue_empty_and_full_are_also_the_queue_module_ones() -> None:
    assert issubclass(conveyor.QueueEmpty, queue.Empty)
    assert issubclass(conveyor.QueueFull, queue.Full)


@pytest.mark.skipif(sys.version_info < (3, 13), reason="asyncio.QueueShutDown is new in 3.13")
def test_queue_shut_down_is_asyncio_queue_shut_down() -> None:
    assert conveyor.QueueShutDown is asyncio.QueueShutDown  # type: ignore[attr-defined,unused-ignore]


def test_queue_shut_down_is_an_exception() -> None:
    assert issubclass(conveyor.QueueShutDown, Exception)
    assert not issubclass(conveyor.QueueShutDown, (asyncio.QueueEmpty, asyncio.QueueFull))


async def test_get_nowait_on_empty_raises_asyncio_queue_empty(make_queue: MakeQueue) -> None:
    q = await make_queue()
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


async def test_put_nowait_on_full_raises_asyncio_queue_full(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put(1)
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(2)


@pytest.mark.extras
async def test_timeouts_raise_what_both_timeout_clauses_catch(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    for attempt in (q.get(timeout=0), q.get_many(1, timeout=0)):
        with pytest.raises(TimeoutError) as info:
            await attempt
        assert isinstance(info.value, asyncio.TimeoutError)
    await q.put(1)
    with pytest.raises(TimeoutError) as info:
        await q.put(2, timeout=0)
    assert isinstance(info.value, asyncio.TimeoutError)
