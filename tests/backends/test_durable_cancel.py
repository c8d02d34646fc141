"""Cancellation and bounds of the durable layer, on every durable backend.

A cancelled put always raises ``CancelledError``, as with ``asyncio.Queue``: items its
commit stored are taken back (every durable backend can retract), and those a consumer
claimed first stay stored, which a note on the exception says; a bounded queue must
never let the shared queue pass ``maxsize`` because this process claimed items ahead of
its getters.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

import conveyor
from tests.backends.durable_fixtures import OpenDurable, durable_url, open_durable, queue_name
from tests.conformance._helpers import wait_until

__all__ = ["durable_url", "open_durable", "queue_name"]


@contextlib.asynccontextmanager
async def _commits_held(url: str) -> AsyncIterator[None]:
    """Keep every commit in the store's hands until the block exits.

    On SQLite the file's write lock is held (the store's writer waits for it, within its
    busy timeout); on Redis the server is paused for writes (``CLIENT PAUSE ... WRITE``
    holds scripts that write).  A cancellation inside the block therefore lands while
    the commit is surely under way.
    """
    servers = [url]
    if url.startswith("redis+sentinel:"):
        from tests.backends.sentinel_backend import primary_url

        servers = [primary_url()]  # the pause is the primary's own
    elif url.startswith("redis+cluster:"):
        from tests.backends.cluster_backend import primary_urls

        servers = primary_urls()  # each primary's: the queue's slot is on one of them
    if servers[0].startswith("redis:"):
        clients: list[Any] = [aioredis.Redis.from_url(server) for server in servers]
        try:
            # The pause ends by itself after 10 s should the test die within it.
            for client in clients:
                await client.client_pause(10_000, all=False)
            try:
                yield
            finally:
                for client in clients:
                    await client.client_unpause()
        finally:
            for client in clients:
                await client.aclose()
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


def _get_elsewhere(url: str, name: str, maxsize: int = 0) -> Any:
    """Get and acknowledge one item as another process would: own loop, own connections.

    It blocks the calling thread (and its event loop) until done, which is the point: a
    test calls it where nothing else of its own loop may run in between.
    """
    got: list[Any] = []
    failed: list[BaseException] = []

    async def consume() -> None:
        async with conveyor.open_queue(url, name=name, maxsize=maxsize) as queue:
            got.append(await queue.get(timeout=10))
            queue.task_done()  # written by aclose(), on leaving the block

    def run() -> None:
        try:
            asyncio.run(consume())
        except BaseException as exc:  # re-raised in the test's thread
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return got[0]


def _on_next_commit(queue: Any, action: Callable[[], object]) -> None:
    """Run *action* once the commit in flight is over, before any putter runs again.

    The writer resolves the commit's marker first and the putters' futures after it, so
    a callback on the marker runs ahead of the putters' wake-ups: a cancellation it
    makes lands on a put whose item is stored, and whatever it does happens before the
    put can take its item back.
    """
    assert queue._inflight_done is not None
    queue._inflight_done.add_done_callback(lambda _: action())


def _notes(exc: BaseException | None) -> str:
    """The notes of *exc*, and of the exceptions it was raised in the handling of.

    Before 3.11 awaiting a cancelled task raises a new ``CancelledError`` whose context
    is the one the task raised, the one with the notes.
    """
    notes: list[str] = []
    while exc is not None:
        notes += getattr(exc, "__notes__", ())
        exc = exc.__context__
    return "\n".join(notes)


async def _outcome(task: asyncio.Task[Any]) -> bool:
    """Await a cancelled put's task: ``True`` if it returned (stored), ``False`` if not."""
    try:
        await task
    except asyncio.CancelledError:
        return False
    return True


async def test_a_put_cancelled_during_its_commit_is_retracted(
    durable_url: str, open_durable: OpenDurable
) -> None:
    queue = await open_durable()
    observer = await open_durable()
    async with _commits_held(durable_url):
        task = asyncio.create_task(queue.put("x"))
        # Wait (on state) until the writer has handed the item to the store.
        await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
        task.cancel()
        await asyncio.sleep(0)
    # The commit finished, then the item was retracted: the cancellation holds.
    assert not await _outcome(task)
    assert task.cancelled()
    assert await observer.aqsize() == 0
    assert queue.qsize() == 0
    assert queue.statistics().total_put == 0
    with pytest.raises(TimeoutError):
        await observer.get(timeout=0.2)


async def test_a_cancelled_put_many_is_retracted_all_or_none(
    durable_url: str, open_durable: OpenDurable
) -> None:
    queue = await open_durable()
    observer = await open_durable()
    await queue.put("before")
    async with _commits_held(durable_url):
        task = asyncio.create_task(queue.put_many(["a", "b", "c"]))
        await wait_until(lambda: bool(queue._inflight_entries), "the put_many is in flight")
        task.cancel()
        await asyncio.sleep(0)
    assert not await _outcome(task)
    assert await observer.aqsize() == 1
    assert await observer.get(timeout=5) == "before"
    observer.task_done()
    with pytest.raises(TimeoutError):
        await observer.get(timeout=0.2)


async def test_a_cancelled_put_whose_item_was_claimed_raises_with_a_note(
    durable_url: str, queue_name: str, open_durable: OpenDurable
) -> None:
    queue = await open_durable()
    observer = await open_durable()
    got: list[Any] = []
    async with _commits_held(durable_url):
        task = asyncio.create_task(queue.put("x"))
        await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")

        def cancel_after_a_consumer_claimed() -> None:
            task.cancel()
            got.append(_get_elsewhere(durable_url, queue_name))

        _on_next_commit(queue, cancel_after_a_consumer_claimed)
    # The item was delivered before the put could take it back: the put still raises,
    # as asyncio's does when cancelled, and says that the item stays put.
    with pytest.raises(asyncio.CancelledError) as caught:
        await task
    assert got == ["x"]
    assert "the item was stored before the cancellation and a consumer already claimed it" in (
        _notes(caught.value)
    )
    assert await observer.aqsize() == 0
    assert (await observer.refresh()).unfinished_tasks == 0


async def test_a_cancelled_put_whose_item_was_not_claimed_raises_without_a_note(
    durable_url: str, open_durable: OpenDurable
) -> None:
    queue = await open_durable()
    observer = await open_durable()
    async with _commits_held(durable_url):
        task = asyncio.create_task(queue.put("x"))
        await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
        # Cancelled after its commit stored the item, before the put saw it stored.
        _on_next_commit(queue, task.cancel)
    with pytest.raises(asyncio.CancelledError) as caught:
        await task
    assert _notes(caught.value) == ""
    assert await observer.aqsize() == 0


async def test_a_cancelled_bounded_put_many_puts_none_of_its_items(
    open_durable: OpenDurable,
) -> None:
    queue = await open_durable(maxsize=3)
    observer = await open_durable()
    await queue.put_many(["old1", "old2"])
    task = asyncio.create_task(queue.put_many(["a", "b", "c"]))
    # "a" found room and was stored; "b" and "c" wait for room.
    await wait_until(
        lambda: queue.statistics().total_put == 3 and queue.statistics().tasks_waiting_put == 2,
        "the put_many stored its first item and waits",
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as caught:
        await task
    assert _notes(caught.value) == ""
    assert await observer.aqsize() == 2
    assert queue.qsize() == 2
    assert queue.statistics().total_put == 2
    assert [await observer.get(timeout=5) for _ in range(2)] == ["old1", "old2"]
    with pytest.raises(TimeoutError):
        await observer.get(timeout=0.2)


async def test_a_cancelled_bounded_put_many_keeps_only_what_was_claimed(
    durable_url: str, queue_name: str, open_durable: OpenDurable
) -> None:
    queue = await open_durable(maxsize=2)
    observer = await open_durable()
    task = asyncio.create_task(queue.put_many(["a", "b", "c", "d"]))
    await wait_until(
        lambda: queue.statistics().total_put == 2 and queue.statistics().tasks_waiting_put == 2,
        "the put_many stored two items and waits",
    )
    # Another process takes "a", which makes room for "c"; "b" and "c" are undelivered
    # when the put_many is cancelled.
    assert await asyncio.to_thread(_get_elsewhere, durable_url, queue_name, 2) == "a"
    await wait_until(
        lambda: queue.statistics().total_put == 3 and queue.statistics().tasks_waiting_put == 1,
        "the put_many stored its third item and waits",
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as caught:
        await task
    assert "1 of the 4 items were stored" in _notes(caught.value)
    assert await observer.aqsize() == 0
    assert (await observer.refresh()).unfinished_tasks == 0


async def test_a_task_group_shutting_down_is_not_kept_running_by_a_put(
    durable_url: str, open_durable: OpenDurable
) -> None:
    task_group: Any = getattr(asyncio, "TaskGroup", None)
    if task_group is None:
        pytest.skip("asyncio.TaskGroup needs Python 3.11")
    queue = await open_durable()
    observer = await open_durable()
    ran_on = False

    async def producer() -> None:
        nonlocal ran_on
        await queue.put("x")
        ran_on = True  # only if the put swallowed the cancellation

    async def failing() -> None:
        raise RuntimeError("boom")

    errors: tuple[BaseException, ...] = ()
    try:
        async with task_group() as group, _commits_held(durable_url):
            group.create_task(producer())
            await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
            group.create_task(failing())
            # Cancelled by the group once failing() fails, the producer with it;
            # only then does leaving the block let the commit finish.
            await asyncio.sleep(30)
    except Exception as exc:  # an ExceptionGroup: the name needs Python 3.11
        errors = tuple(getattr(exc, "exceptions", (exc,)))
    assert [type(exc) for exc in errors] == [RuntimeError]
    assert not ran_on
    assert await observer.aqsize() == 0


async def test_a_task_group_is_not_kept_running_by_a_put_whose_item_was_claimed(
    durable_url: str, queue_name: str, open_durable: OpenDurable
) -> None:
    task_group: Any = getattr(asyncio, "TaskGroup", None)
    if task_group is None:
        pytest.skip("asyncio.TaskGroup needs Python 3.11")
    queue = await open_durable()
    ran_on = False
    got: list[Any] = []

    async def producer() -> None:
        nonlocal ran_on
        await queue.put("x")
        ran_on = True  # only if the put swallowed the cancellation

    async def failing() -> None:
        raise RuntimeError("boom")

    errors: tuple[BaseException, ...] = ()
    try:
        async with task_group() as group, _commits_held(durable_url):
            group.create_task(producer())
            await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
            # A consumer elsewhere claims the item as soon as it is committed, before
            # the cancelled put can take it back.
            _on_next_commit(queue, lambda: got.append(_get_elsewhere(durable_url, queue_name)))
            group.create_task(failing())
            await asyncio.sleep(30)
    except Exception as exc:  # an ExceptionGroup: the name needs Python 3.11
        errors = tuple(getattr(exc, "exceptions", (exc,)))
    assert [type(exc) for exc in errors] == [RuntimeError]
    assert not ran_on
    assert got == ["x"]


async def test_a_put_cancelled_before_its_commit_is_not_stored(open_durable: OpenDurable) -> None:
    queue = await open_durable(maxsize=1)
    observer = await open_durable()
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


async def test_a_bounded_queue_claims_no_item_ahead_of_its_getters(
    open_durable: OpenDurable,
) -> None:
    consumer = await open_durable(maxsize=2)
    producer = await open_durable(maxsize=2)
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


async def test_closing_during_a_claim_strands_no_item(open_durable: OpenDurable) -> None:
    producer = await open_durable()
    consumer = await open_durable(lease_timeout=60)
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


async def test_the_store_retracts_all_or_none_and_only_undelivered_items(
    durable_url: str, open_durable: OpenDurable
) -> None:
    store = (await open_durable())._store
    stored, ids = await store.put_returning_ids([b'"a"', b'"b"'])
    assert stored
    assert ids is not None
    assert len(ids) == 2
    (delivery,) = await store.claim(1, 30.0, None)
    assert ids[0].partition(":")[0] == delivery.item_id  # SQLite adds the put's token
    # One of them is delivered already: neither is retracted.
    assert await store.retract(ids) == [False, False]
    assert await store.retract(ids[1:]) == [True]
    assert await store.retract(ids[1:]) == [False]  # gone already
    assert await store.retract(["not-an-id"]) == [False]
    if durable_url.startswith("sqlite:"):
        # An id with another put's token names another item (SQLite reuses ids).
        assert await store.retract([ids[0].partition(":")[0] + ":0000"]) == [False]
    counts = await store.counts()
    assert (counts.ready, counts.leased) == (0, 1)
    assert await store.ack([delivery.receipt]) == [True]


async def test_an_item_once_claimed_is_never_retracted(open_durable: OpenDurable) -> None:
    store = (await open_durable())._store
    stored, ids = await store.put_returning_ids([b'"a"'])
    assert stored
    assert ids is not None
    (delivery,) = await store.claim(1, 30.0, None)
    # Given back unseen, the item is ready again, but a claim had it: it may have been
    # handed on in the meantime, so the put that made it can no longer take it back.
    assert await store.release([delivery.receipt]) == [True]
    assert await store.retract(ids) == [False]
    (again,) = await store.claim(1, 30.0, None)
    assert again.item_id == delivery.item_id
    assert again.attempts == 1  # the release uncounted the first delivery
    assert await store.ack([again.receipt]) == [True]


# -- several commits under way at once (Store.put_depth) ------------------------------


async def _started_in_flight(queue: Any, put: Any, entries: int) -> asyncio.Task[None]:
    """Start *put* in a task; on a store with ``put_depth > 1`` wait until it is sent.

    ``entries`` is how many put entries are then in flight, this one's included; with
    one commit at a time the put waits behind the one under way instead.
    """
    task = asyncio.create_task(put)
    if queue._store.put_depth > 1:
        await wait_until(lambda: len(queue._inflight_entries) == entries, "the put is sent")
    else:
        await asyncio.sleep(0)
    return task


async def test_puts_made_while_a_commit_is_under_way_are_stored_after_it_in_order(
    durable_url: str, open_durable: OpenDurable
) -> None:
    queue = await open_durable()
    observer = await open_durable()
    async with _commits_held(durable_url):
        first = asyncio.create_task(queue.put("a"))
        await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
        second = await _started_in_flight(queue, queue.put_many(["b", "c"]), 2)
        third = await _started_in_flight(queue, queue.put("d"), 3)
        assert [task.done() for task in (first, second, third)] == [False] * 3
    await asyncio.gather(first, second, third)
    assert [await observer.get(timeout=5) for _ in range(4)] == ["a", "b", "c", "d"]
    assert queue.statistics().total_put == 4


@pytest.mark.parametrize("cancelled", ["older", "newer"])
async def test_a_put_cancelled_while_another_commit_is_under_way_is_retracted_alone(
    durable_url: str, open_durable: OpenDurable, cancelled: str
) -> None:
    queue = await open_durable()
    observer = await open_durable()
    async with _commits_held(durable_url):
        older = asyncio.create_task(queue.put("older"))
        await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
        newer = await _started_in_flight(queue, queue.put_many(["newer", "newest"]), 2)
        (older if cancelled == "older" else newer).cancel()
        await asyncio.sleep(0)
    kept = newer if cancelled == "older" else older
    assert not await _outcome(older if cancelled == "older" else newer)
    await kept
    expected = ["newer", "newest"] if cancelled == "older" else ["older"]
    assert await observer.aqsize() == len(expected)
    assert [await observer.get(timeout=5) for _ in expected] == expected
    with pytest.raises(TimeoutError):
        await observer.get(timeout=0.2)
    assert queue.statistics().total_put == len(expected)


async def test_puts_of_many_tasks_keep_each_tasks_order_with_commits_in_flight_together(
    durable_url: str, open_durable: OpenDurable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tasks that put one at a time, and one that streams put_nowait() items.  Puts that
    # pile up while a commit is held go as the next commits at once (relays), up to
    # put_depth, and more relays follow while those are under way.
    queue = await open_durable()
    observer = await open_durable()
    store = queue._store
    under_way = peak = 0
    put_returning_ids = store.put_returning_ids
    put = store.put

    async def counted(call: Any, payloads: Any) -> Any:
        nonlocal under_way, peak
        under_way += 1
        peak = max(peak, under_way)
        try:
            return await call(payloads)
        finally:
            under_way -= 1

    monkeypatch.setattr(store, "put_returning_ids", lambda p: counted(put_returning_ids, p))
    monkeypatch.setattr(store, "put", lambda p: counted(put, p))

    async def putter(name: str, count: int) -> None:
        for i in range(count):
            await queue.put((name, i))
            for _ in range(int(name[1:])):  # each task at a pace of its own
                await asyncio.sleep(0)

    async def streamer(count: int) -> None:
        for i in range(count):
            queue.put_nowait(("nowait", i))
            await asyncio.sleep(0)

    async with _commits_held(durable_url):
        first = asyncio.create_task(queue.put(("first", 0)))
        await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
        tasks = [asyncio.create_task(putter(f"t{t}", 150)) for t in range(4)]
        tasks.append(asyncio.create_task(streamer(600)))
        if store.put_depth > 1:
            await wait_until(lambda: peak >= 2, "a second commit is under way")
    await asyncio.gather(first, *tasks)
    await queue.flush()
    got = await observer.get_many(2000)
    while len(got) < 1201:
        got += await observer.get_many(2000, timeout=5)
    seen: dict[str, list[int]] = {}
    for name, i in got:
        seen.setdefault(name, []).append(i)
    assert seen == {
        "first": [0],
        **{f"t{t}": list(range(150)) for t in range(4)},
        "nowait": list(range(600)),
    }
    assert list(got[0]) == ["first", 0]
    assert peak <= store.put_depth
