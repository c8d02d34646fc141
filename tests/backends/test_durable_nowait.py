"""``get_nowait()`` right after this process's own put, on every durable backend.

``qsize()`` is exact in one process after each awaited operation; so ``await put(x)``
then ``get_nowait()`` must return ``x``, as with ``asyncio.Queue``, without any I/O in
``get_nowait()``: the item is handed out at once and leased in the background.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.backends.durable_fixtures import OpenDurable, durable_url, open_durable, queue_name
from tests.backends.test_durable_cancel import _notes
from tests.conformance._helpers import wait_until

__all__ = ["durable_url", "open_durable", "queue_name"]


async def test_get_nowait_returns_the_item_just_put(open_durable: OpenDurable) -> None:
    queue = await open_durable()
    observer = await open_durable()
    await queue.put("x")
    assert queue.qsize() == 1
    assert not queue.empty()
    assert queue.get_nowait() == "x"
    assert queue.qsize() == 0
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    # The item is leased to this process (in the background): nobody else gets it.
    deadline = time.monotonic() + 10
    while (await observer.refresh()).current_leased != 1:
        assert time.monotonic() < deadline, "the item was never leased"
    with pytest.raises(TimeoutError):
        await observer.get(timeout=0.3)
    queue.task_done()
    await queue.join(timeout=10)
    stats = await observer.refresh()
    assert (stats.current_size, stats.unfinished_tasks) == (0, 0)


async def test_get_nowait_returns_what_put_many_and_put_nowait_stored_in_order(
    open_durable: OpenDurable,
) -> None:
    queue = await open_durable()
    await queue.put_many([1, 2])
    queue.put_nowait(3)
    await queue.flush()
    await queue.put(4)
    assert queue.qsize() == 4
    assert [queue.get_nowait() for _ in range(4)] == [1, 2, 3, 4]
    for _ in range(4):
        queue.task_done()
    await queue.join(timeout=10)


async def test_get_nowait_keeps_fifo_order_with_items_of_others_it_knows_of(
    open_durable: OpenDurable,
) -> None:
    queue = await open_durable()
    other = await open_durable()
    await other.put("theirs")
    await queue.put("mine")
    await queue.refresh()  # now it knows of an item that is not its own
    assert queue.qsize() == 2
    # Not "mine" ahead of the older "theirs": nothing at hand, a claim starts.
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    assert [await queue.get(timeout=10) for _ in range(2)] == ["theirs", "mine"]


async def test_an_item_got_with_get_nowait_is_redelivered_if_never_acknowledged(
    open_durable: OpenDurable,
) -> None:
    queue = await open_durable(lease_timeout=0.5, renew_leases=False)  # expiry under test
    observer = await open_durable(lease_timeout=0.5)
    await queue.put("x")
    assert queue.get_nowait() == "x"
    deadline = time.monotonic() + 10
    while (await observer.refresh()).current_leased != 1:
        assert time.monotonic() < deadline, "the item was never leased"
    # Its lease, taken in the background, expires: the item comes back, as for get().
    assert await observer.get(timeout=10) == "x"
    observer.task_done()
    await observer.join(timeout=10)


async def test_get_nowait_hands_out_no_item_before_its_put_returns(
    open_durable: OpenDurable,
) -> None:
    queue = await open_durable()
    observer = await open_durable()
    seen: list[str] = []
    task = asyncio.create_task(queue.put("x"))

    def look_then_cancel() -> None:
        try:
            seen.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            seen.append("empty")
        task.cancel()

    await wait_until(lambda: queue._inflight_done is not None, "the put is in flight")
    assert queue._inflight_done is not None
    # Right after the commit, before the put returns: the item is not at hand yet.
    queue._inflight_done.add_done_callback(lambda _: look_then_cancel())
    with pytest.raises(asyncio.CancelledError) as caught:
        await task
    assert seen == ["empty"]
    if _notes(caught.value):
        # The claim the miss started took the item before the put could take it back:
        # it stays put, claimed by this queue.
        assert await queue.get(timeout=10) == "x"
        queue.task_done()
        await queue.join(timeout=10)
    assert await observer.aqsize() == 0


async def test_the_store_leases_by_id_only_items_never_claimed(open_durable: OpenDurable) -> None:
    store = (await open_durable())._store
    assert store.claims_by_id
    stored, ids = await store.put_returning_ids([b'"a"', b'"b"', b'"c"'])
    assert stored
    assert ids is not None
    (first,) = await store.claim(1, 30.0, None)  # "a", as any consumer would
    assert await store.release([first.receipt]) == [True]
    a, b, missing = await store.claim_ids([ids[0], ids[1], "not-an-id"], 30.0)
    assert a is None  # claimed once already: it may have been handed on
    assert missing is None
    assert b is not None
    assert (b.payload, b.attempts) == (b'"b"', 1)
    assert await store.claim_ids([ids[1]], 30.0) == [None]  # leased already
    counts = await store.counts()
    assert (counts.ready, counts.leased) == (2, 1)
    assert await store.ack([b.receipt]) == [True]
    assert [d.payload for d in await store.claim(5, 30.0, None)] == [b'"a"', b'"c"']
