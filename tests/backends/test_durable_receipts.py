"""The durable layer's own behaviour: receipts, leases, dead letters, task_done per task, input.

Runs for every durable backend in ``durable_fixtures``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import conveyor
from conveyor import LeaseExpiredError, SerializationError
from tests.backends.durable_fixtures import durable_url, open_durable, queue_name

__all__ = ["durable_url", "open_durable", "queue_name"]


async def test_ack_removes_and_a_second_ack_is_refused(open_durable: Any) -> None:
    q = await open_durable()
    await q.put("job")
    receipt = await q.get_with_receipt()
    assert (receipt.item, receipt.attempts) == ("job", 1)
    assert receipt.lease_deadline > time.time()
    await q.ack(receipt)
    assert await q.aqsize() == 0
    await q.join(timeout=30)
    with pytest.raises(LeaseExpiredError):
        await q.ack(receipt)


async def test_expired_receipt_cannot_ack_the_newer_delivery(open_durable: Any) -> None:
    q = await open_durable(lease_timeout=0.2, renew_leases=False)  # the expiry is under test
    await q.put("job")
    first = await q.get_with_receipt()
    second = await q.get_with_receipt(timeout=30)  # redelivered once the lease expired
    assert second.item == "job"
    assert second.attempts == 2
    assert second.item_id == first.item_id
    with pytest.raises(LeaseExpiredError):
        await q.ack(first)
    with pytest.raises(LeaseExpiredError):
        await q.extend(first, 10)
    await q.ack(second)
    await q.join(timeout=30)


async def test_extend_keeps_the_lease(open_durable: Any) -> None:
    q = await open_durable(lease_timeout=0.3)
    await q.put("long job")
    receipt = await q.get_with_receipt()
    extended = await q.extend(receipt, 30)
    assert extended.lease_deadline > receipt.lease_deadline
    with pytest.raises(TimeoutError):
        await q.get(timeout=0.8)  # past the original lease: still not redelivered
    await q.ack(receipt)
    await q.join(timeout=30)


async def test_retry_with_delay(open_durable: Any) -> None:
    q = await open_durable()
    await q.put("flaky")
    receipt = await q.get_with_receipt()
    await q.retry(receipt, delay=0.5)
    assert (await q.refresh()).unfinished_tasks == 1
    with pytest.raises(TimeoutError):
        await q.get(timeout=0.1)
    again = await q.get_with_receipt(timeout=30)
    assert (again.item, again.attempts) == ("flaky", 2)
    await q.ack(again)
    await q.join(timeout=30)


async def test_fail_then_dead_letters_then_requeue(open_durable: Any) -> None:
    q = await open_durable()
    await q.put({"n": 1})
    receipt = await q.get_with_receipt()
    await q.fail(receipt, ValueError("bad input"))
    await q.join(timeout=30)  # dead items are finished
    (dead,) = await q.dead_letters()
    assert dead.item == {"n": 1}
    assert "bad input" in dead.error
    assert dead.attempts == 1
    assert (await q.refresh()).current_dead == 1
    assert await q.requeue_dead([dead.item_id]) == 1
    again = await q.get_with_receipt(timeout=30)
    assert (again.item, again.attempts) == ({"n": 1}, 1)
    await q.ack(again)
    assert await q.dead_letters() == []


async def test_max_attempts_moves_an_expired_item_to_dead_letters(open_durable: Any) -> None:
    q = await open_durable(
        lease_timeout=0.2, max_attempts=2, renew_leases=False
    )  # the expiry is under test
    await q.put("poison")
    first = await q.get_with_receipt()
    second = await q.get_with_receipt(timeout=30)
    assert (first.attempts, second.attempts) == (1, 2)
    with pytest.raises(TimeoutError):
        await q.get(timeout=0.6)  # the second lease expires: dead, not delivered
    (dead,) = await q.dead_letters()
    assert dead.item == "poison"
    assert "expired" in dead.error
    await q.join(timeout=30)
    assert await q.requeue_dead() == 1
    assert await q.get(timeout=30) == "poison"
    q.task_done()
    await q.join(timeout=30)


async def test_retry_after_max_attempts_goes_dead(open_durable: Any) -> None:
    q = await open_durable(max_attempts=1)
    await q.put("once")
    receipt = await q.get_with_receipt()
    await q.retry(receipt)
    (dead,) = await q.dead_letters()
    assert dead.item == "once"
    await q.join(timeout=30)


async def test_task_done_acknowledges_the_calling_tasks_item(open_durable: Any) -> None:
    q = await open_durable(lease_timeout=0.3, renew_leases=False)  # the expiry is under test
    await q.put_many(["a", "b"])
    a_got = asyncio.Event()
    a_release = asyncio.Event()

    async def holder() -> None:
        assert await q.get() == "a"
        a_got.set()
        await a_release.wait()

    async def finisher() -> None:
        await a_got.wait()
        assert await q.get() == "b"
        q.task_done()  # "b", the item of this task, not the older "a"

    holding = asyncio.create_task(holder())
    await finisher()
    await q.flush()
    # "a" was never acknowledged: it comes back once its lease expires.
    assert await q.get(timeout=30) == "a"
    q.task_done()
    a_release.set()
    await holding
    await q.join(timeout=30)


async def test_unencodable_item_is_refused_and_nothing_is_stored(open_durable: Any) -> None:
    q = await open_durable()
    with pytest.raises(SerializationError, match="JSON"):
        await q.put(object())
    with pytest.raises(SerializationError):
        await q.put_many([1, 2, {3}])
    with pytest.raises(SerializationError):
        q.put_nowait(float("nan"))
    assert await q.aqsize() == 0
    assert (await q.refresh()).unfinished_tasks == 0
    await q.join(timeout=30)


async def test_pickle_only_when_asked(open_durable: Any) -> None:
    q = await open_durable(serializer="pickle")
    await q.put(("tuple", {1, 2}))
    assert await q.get() == ("tuple", {1, 2})
    q.task_done()
    await q.join(timeout=30)


async def test_state_is_shared_by_two_queue_objects(open_durable: Any) -> None:
    first = await open_durable(maxsize=2)
    second = await open_durable(maxsize=2)
    await first.put(1)
    await first.put(2)
    assert await second.aqsize() == 2
    assert await second.afull()
    with pytest.raises(TimeoutError):
        await second.put(3, timeout=0.05)
    getter = asyncio.create_task(first.join())
    assert await second.get() == 1
    second.task_done()
    assert await second.get() == 2
    second.task_done()
    await asyncio.wait_for(getter, 30)
    second.shutdown()
    await second.flush()
    with pytest.raises(conveyor.QueueShutDown):
        await first.get(timeout=30)
    with pytest.raises(conveyor.QueueShutDown):
        await first.put(4)


async def test_blocked_getter_is_woken_by_another_queue_object(open_durable: Any) -> None:
    consumer = await open_durable()
    producer = await open_durable()
    getter = asyncio.create_task(consumer.get())
    await asyncio.sleep(0)
    await producer.put("wake")
    assert await asyncio.wait_for(getter, 30) == "wake"
    consumer.task_done()
    await producer.join(timeout=30)


async def test_idle_blocked_consumers_burn_no_cpu(open_durable: Any) -> None:
    q = await open_durable()
    getters = [asyncio.create_task(q.get()) for _ in range(4)]
    await asyncio.sleep(0.2)
    wall, cpu = time.monotonic(), time.process_time()
    await asyncio.sleep(1.0)
    used = time.process_time() - cpu
    elapsed = time.monotonic() - wall
    for getter in getters:
        getter.cancel()
    await asyncio.gather(*getters, return_exceptions=True)
    assert used < 0.1 * elapsed, f"blocked getters used {used:.3f}s of CPU in {elapsed:.2f}s"


async def _wait_until(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.005)


async def test_items_claimed_for_nobody_go_back_to_other_processes(open_durable: Any) -> None:
    first = await open_durable(lease_timeout=60)
    second = await open_durable(lease_timeout=60)
    await second.put("shared")
    await first.refresh()
    with pytest.raises(conveyor.QueueEmpty):
        first.get_nowait()  # starts claiming in the background
    await _wait_until(lambda: first.statistics().current_leased == 1, "first holds the item")
    # Nobody in the first process takes it: it is given back long before its lease ends.
    assert await second.get(timeout=30) == "shared"
    second.task_done()
    await second.join(timeout=30)


async def test_get_nowait_serves_what_a_background_claim_brought(open_durable: Any) -> None:
    q = await open_durable()
    other = await open_durable()
    await other.put("from elsewhere")
    await q.refresh()
    with pytest.raises(conveyor.QueueEmpty):
        q.get_nowait()
    await _wait_until(lambda: q.statistics().current_leased == 1, "the claim arrived")
    assert q.get_nowait() == "from elsewhere"
    q.task_done()
    await q.join(timeout=30)


async def test_aclose_gives_back_undelivered_items(open_durable: Any) -> None:
    first = await open_durable(lease_timeout=60)
    second = await open_durable(lease_timeout=60)
    await second.put_many([1, 2])
    await first.refresh()
    with pytest.raises(conveyor.QueueEmpty):
        first.get_nowait()
    await _wait_until(lambda: first.statistics().current_leased >= 1, "first holds items")
    await first.aclose()
    assert await second.get_many(2, timeout=30) in ([1, 2], [1])
    assert (await second.refresh()).current_leased == second.statistics().total_got


async def test_put_nowait_is_committed_by_flush(open_durable: Any) -> None:
    q = await open_durable()
    other = await open_durable()
    for i in range(5):
        q.put_nowait(i)
    assert q.qsize() == 5
    await q.flush()
    assert await other.aqsize() == 5
    assert await other.get_many(10) == [0, 1, 2, 3, 4]


async def test_cancelled_getters_lose_and_duplicate_nothing(open_durable: Any) -> None:
    q = await open_durable()
    producer = await open_durable()
    got: list[int] = []

    async def consume() -> None:
        while True:
            got.append(await q.get())
            q.task_done()

    for round_ in range(20):
        getters = [asyncio.create_task(q.get(timeout=0.001 * (i % 3))) for i in range(4)]
        await producer.put(round_)
        results = await asyncio.gather(*getters, return_exceptions=True)
        got.extend(r for r in results if isinstance(r, int))
        for r in results:
            if isinstance(r, int):
                q.task_done()
    consumer = asyncio.create_task(consume())
    await _wait_until(lambda: len(got) >= 20, "every item is got")
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    assert sorted(got) == list(range(20))
    await q.join(timeout=30)


async def test_undecodable_item_goes_dead_instead_of_blocking_the_queue(
    open_durable: Any,
) -> None:
    writer = await open_durable(serializer="pickle")
    reader = await open_durable()
    await writer.put({"not", "json"})
    await reader.put("fine")
    with pytest.raises(SerializationError):
        await reader.get(timeout=30)
    assert await reader.get(timeout=30) == "fine"
    reader.task_done()
    await _wait_until(lambda: reader.statistics().current_leased == 0, "the bad item is buried")
    (dead,) = await reader.dead_letters()
    assert isinstance(dead.item, bytes)
    assert "decode" in dead.error
    await reader.join(timeout=30)
