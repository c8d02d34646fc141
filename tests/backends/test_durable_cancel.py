"""Cancellation and bounds of the durable layer, on every durable backend.

A put cancelled while its commit is in the store's hands must either return (stored) or
raise (not stored): a backend that can retract (SQLite) takes the item back and raises,
one that cannot (Redis, for now) returns; a bounded queue must never let the shared queue
pass ``maxsize`` because this process claimed items ahead of its getters.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
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


def _can_retract(url: str) -> bool:
    return url.startswith("sqlite:")


@contextlib.contextmanager
def _commits_held(url: str) -> Iterator[None]:
    """On SQLite, hold the file's write lock, so that a put stays in flight until exit.

    The store's writer waits for the lock (its busy timeout), so a cancellation lands
    while the commit is surely in the store's hands.  Redis cannot be held this way; its
    outcome (stored) is the same whether the cancellation lands before or after.
    """
    if not url.startswith("sqlite:"):
        yield
        return
    blocker = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None, timeout=5)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
    finally:
        blocker.close()


async def test_a_put_cancelled_during_its_commit_is_retracted_or_returns_stored(
    durable_url: str, queue_name: str
) -> None:
    queue = await _open(durable_url, queue_name)
    observer = await _open(durable_url, queue_name)
    try:
        with _commits_held(durable_url):
            task = asyncio.create_task(queue.put("x"))
            # Wait (on state) until the writer has handed the item to the store.
            await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
            task.cancel()
            await asyncio.sleep(0)
        try:
            await task
            stored = True
        except asyncio.CancelledError:
            stored = False
        # Either outcome is allowed by the contract, but it must match the store.
        assert await observer.aqsize() == (1 if stored else 0)
        assert queue.qsize() == (1 if stored else 0)
        if _can_retract(durable_url):
            # The commit finished, then the item was retracted: the cancellation holds.
            assert not stored
            assert task.cancelled()
            assert queue.statistics().total_put == 0
            with pytest.raises(TimeoutError):
                await observer.get(timeout=0.2)
        else:
            assert stored  # no retract: the commit finishes and the put returns
            assert await observer.get(timeout=5) == "x"
            observer.task_done()
    finally:
        await queue.aclose()
        await observer.aclose()


async def test_a_cancelled_put_many_is_retracted_all_or_none(
    durable_url: str, queue_name: str
) -> None:
    queue = await _open(durable_url, queue_name)
    observer = await _open(durable_url, queue_name)
    try:
        await queue.put("before")
        with _commits_held(durable_url):
            task = asyncio.create_task(queue.put_many(["a", "b", "c"]))
            await wait_until(lambda: bool(queue._inflight_entries), "the put_many is in flight")
            task.cancel()
            await asyncio.sleep(0)
        try:
            await task
            stored = True
        except asyncio.CancelledError:
            stored = False
        assert stored is not _can_retract(durable_url)
        expected = ["before", "a", "b", "c"] if stored else ["before"]
        assert await observer.aqsize() == len(expected)
        assert [await observer.get(timeout=5) for _ in expected] == expected
    finally:
        await queue.aclose()
        await observer.aclose()


async def test_a_cancelled_put_whose_item_was_claimed_returns(
    durable_url: str, queue_name: str
) -> None:
    queue = await _open(durable_url, queue_name)
    consumer = await _open(durable_url, queue_name)
    try:
        getter = asyncio.create_task(consumer.get())
        await wait_until(lambda: consumer.statistics().tasks_waiting_get == 1, "the get waits")
        with _commits_held(durable_url):
            task = asyncio.create_task(queue.put("x"))
            await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
            task.cancel()
            await asyncio.sleep(0)
        # The consumer may claim the item before the retract runs, or not: either way
        # the put's outcome matches the store (never raised with the item delivered).
        try:
            await task
            stored = True
        except asyncio.CancelledError:
            stored = False
        if stored:
            assert await getter == "x"
            consumer.task_done()
        else:
            assert _can_retract(durable_url)
            assert not getter.done()
            getter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await getter
            assert await consumer.aqsize() == 0
    finally:
        await queue.aclose()
        await consumer.aclose()


async def test_a_task_group_shutting_down_is_not_kept_running_by_a_put(
    durable_url: str, queue_name: str
) -> None:
    task_group: Any = getattr(asyncio, "TaskGroup", None)
    if task_group is None:
        pytest.skip("asyncio.TaskGroup needs Python 3.11")
    queue = await _open(durable_url, queue_name)
    observer = await _open(durable_url, queue_name)
    ran_on = False

    async def producer() -> None:
        nonlocal ran_on
        await queue.put("x")
        ran_on = True  # only if the put swallowed the cancellation

    async def failing() -> None:
        raise RuntimeError("boom")

    try:
        errors: tuple[BaseException, ...] = ()
        try:
            async with task_group() as group:
                with _commits_held(durable_url):
                    group.create_task(producer())
                    await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
                    group.create_task(failing())
                    # Cancelled by the group once failing() fails, the producer with it;
                    # only then does leaving the block let the commit finish.
                    await asyncio.sleep(30)
        except Exception as exc:  # an ExceptionGroup: the name needs Python 3.11
            errors = tuple(getattr(exc, "exceptions", (exc,)))
        assert [type(exc) for exc in errors] == [RuntimeError]
        if _can_retract(durable_url):
            assert not ran_on
            assert await observer.aqsize() == 0
        else:
            assert ran_on
            assert await observer.aqsize() == 1
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


async def test_the_store_retracts_all_or_none_and_only_undelivered_items(
    durable_url: str, queue_name: str
) -> None:
    queue = await _open(durable_url, queue_name)
    store = queue._store
    try:
        stored, ids = await store.put_returning_ids([b'"a"', b'"b"'], 0)
        assert stored
        if not _can_retract(durable_url):
            assert ids is None  # the default: no ids, and nothing can be retracted
            assert await store.retract(["1", "2"]) == [False, False]
            assert (await store.counts()).ready == 2
            return
        assert ids is not None
        assert len(ids) == 2
        (delivery,) = await store.claim(1, 30.0, None)
        assert ids[0].startswith(delivery.item_id + ":")  # the id, then the put's token
        # One of them is delivered already: neither is retracted.
        assert await store.retract(ids) == [False, False]
        assert await store.retract(ids[1:]) == [True]
        assert await store.retract(ids[1:]) == [False]  # gone already
        assert await store.retract(["not-an-id"]) == [False]
        # An id with another put's token names another item (SQLite reuses ids).
        assert await store.retract([ids[0].partition(":")[0] + ":0000"]) == [False]
        counts = await store.counts()
        assert (counts.ready, counts.leased) == (0, 1)
        assert await store.ack([delivery.receipt]) == [True]
    finally:
        await queue.aclose()
