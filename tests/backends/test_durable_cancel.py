"""Cancellation and bounds of the durable layer, on every durable backend.

A put cancelled while its commit is in the store's hands must either return (stored) or
raise (not stored); a bounded queue must never let the shared queue pass ``maxsize``
because this process claimed items ahead of its getters.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import conveyor
from conveyor._durable import DurableQueue
from tests.backends.durable_fixtures import durable_url, queue_name
from tests.conformance._helpers import wait_until

__all__ = ["durable_url", "queue_name"]


async def _open(url: str, name: str, maxsize: int = 0) -> DurableQueue[Any]:
    queue = await conveyor.open_queue(url, name=name, maxsize=maxsize)
    assert isinstance(queue, DurableQueue)
    return queue


async def test_a_put_cancelled_during_its_commit_returns_stored(
    durable_url: str, queue_name: str
) -> None:
    queue = await _open(durable_url, queue_name)
    observer = await _open(durable_url, queue_name)
    try:
        task = asyncio.create_task(queue.put("x"))
        # Wait (on state) until the writer has handed the item to the store.
        await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
        task.cancel()
        try:
            await task
            stored = True
        except asyncio.CancelledError:
            stored = False
        # Either outcome is allowed by the contract, but it must match the store.
        assert await observer.aqsize() == (1 if stored else 0)
        assert stored  # in flight: the commit finishes and the put returns
        assert await observer.get(timeout=5) == "x"
        observer.task_done()
    finally:
        await queue.aclose()
        await observer.aclose()


async def test_a_put_cancelled_before_its_commit_is_not_stored(
    durable_url: str, queue_name: str
) -> None:
    queue = await _open(durable_url, queue_name, maxsize=1)
    observer = await _open(durable_url, queue_name)
    try:
        await queue.put("first")
        task = asyncio.create_task(queue.put("second"))
        # The queue is full: the put waits for room, then is cancelled.
        await wait_until(lambda: queue.statistics().tasks_waiting_put == 1, "the put waits")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await queue.flush()
        assert await observer.aqsize() == 1
        assert await observer.get(timeout=5) == "first"
        observer.task_done()
        with pytest.raises(TimeoutError):
            await observer.get(timeout=0.2)
    finally:
        await queue.aclose()
        await observer.aclose()


async def test_a_bounded_queue_claims_no_item_ahead_of_its_getters(
    durable_url: str, queue_name: str
) -> None:
    consumer = await _open(durable_url, queue_name, maxsize=2)
    producer = await _open(durable_url, queue_name, maxsize=2)
    try:
        await producer.put("a")
        await producer.put("b")
        await consumer.refresh()  # the consumer knows both wait, as after a busy spell
        assert await consumer.get(timeout=5) == "a"
        consumer.task_done()
        # "b" still waits in the shared queue, so one slot is free, not two: an item
        # claimed ahead into the consumer's buffer would free its slot for "d".
        await producer.put("c", timeout=5)
        with pytest.raises(TimeoutError):
            await producer.put("d", timeout=0.3)
        assert await producer.aqsize() == 2
        assert consumer.qsize() <= 2
        assert [await consumer.get(timeout=5) for _ in range(2)] == ["b", "c"]
    finally:
        await consumer.aclose()
        await producer.aclose()


async def test_closing_during_a_claim_strands_no_item(durable_url: str, queue_name: str) -> None:
    producer = await _open(durable_url, queue_name)
    consumer = await conveyor.open_queue(durable_url, name=queue_name, lease_timeout=60)
    assert isinstance(consumer, DurableQueue)
    try:
        await producer.put("x")
        getter = asyncio.create_task(consumer.get())
        await wait_until(lambda: consumer._claim_in_store, "the claim is in the store's hands")
        await consumer.aclose()
        try:
            got = [await getter]
        except RuntimeError:  # the queue was closed under the waiting getter
            got = []
        if not got:
            # The claim's lease was given back on close, not left to expire in a minute.
            got = [await producer.get(timeout=5)]
            producer.task_done()
        assert got == ["x"]
    finally:
        await consumer.aclose()
        await producer.aclose()
