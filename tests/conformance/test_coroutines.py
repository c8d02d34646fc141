"""``put()`` and ``get()`` behave as coroutines in every way asyncio code relies on.

conveyor's in-memory ``put``/``get`` return a coroutine object written in C (where the
accelerator is built) instead of an ``async def`` coroutine.  These bodies, run against
asyncio's own queue as the oracle, pin what users can observe: they are coroutines to
``asyncio.iscoroutine`` and ``create_task``; nothing happens until they are awaited; a
coroutine closed, thrown into or dropped while it waits leaves the queue and passes on a
wake-up it had received; an awaited one cannot be awaited again; and tasks show its name.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from tests.conformance._helpers import settle
from tests.conftest import MakeQueue


async def test_put_and_get_return_coroutines(make_queue: MakeQueue) -> None:
    q = await make_queue()
    for coro in (q.put(1), q.get()):
        assert asyncio.iscoroutine(coro)
        assert inspect.isawaitable(coro)
        assert isinstance(coro, Coroutine)
        coro.close()
    assert q.empty()


@pytest.mark.needs("exact_sync_view")
async def test_a_get_never_awaited_takes_nothing_and_warns(make_queue: MakeQueue) -> None:
    q = await make_queue()
    q.put_nowait("kept")
    with pytest.warns(RuntimeWarning, match="was never awaited"):
        q.get()  # dropped at once
    assert q.qsize() == 1
    assert await q.get() == "kept"


@pytest.mark.needs("exact_sync_view")
async def test_a_put_never_awaited_puts_nothing_and_warns(make_queue: MakeQueue) -> None:
    q = await make_queue()
    with pytest.warns(RuntimeWarning, match="was never awaited"):
        q.put("dropped")  # dropped at once
    assert q.empty()


async def test_a_closed_coroutine_never_ran(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put("kept")
    q.get().close()
    q.put("never").close()
    assert await q.get() == "kept"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(q.get(), 0.05)


async def test_a_get_task_cancelled_before_it_ran_takes_nothing(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put("kept")
    task = asyncio.create_task(q.get())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await q.get() == "kept"


async def test_create_task_and_gather_take_them(make_queue: MakeQueue) -> None:
    q = await make_queue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.gather(q.put(1), q.put(2), q.put(3))
    assert sorted(await asyncio.gather(*getters)) == [1, 2, 3]


async def test_arguments_by_keyword(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(item="by keyword")
    assert await q.get() == "by keyword"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda q: q.put(), id="put()"),
        pytest.param(lambda q: q.put(1, item=2), id="put(1, item=2)"),
        pytest.param(lambda q: q.put(1, bogus=2), id="put(1, bogus=2)"),
        pytest.param(lambda q: q.get(1, 2, 3), id="get(1, 2, 3)"),
        pytest.param(lambda q: q.get(bogus=2), id="get(bogus=2)"),
    ],
)
async def test_wrong_arguments_raise_type_error_at_the_call(
    make_queue: MakeQueue, call: Callable[[Any], Any]
) -> None:
    q = await make_queue()
    with pytest.raises(TypeError):
        call(q)


async def test_an_awaited_coroutine_cannot_be_awaited_again(make_queue: MakeQueue) -> None:
    q = await make_queue()
    await q.put(1)
    coro = q.get()
    assert await coro == 1
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        await coro


async def test_a_task_shows_the_method_it_waits_in(make_queue: MakeQueue) -> None:
    q = await make_queue()
    task = asyncio.create_task(q.get())
    await settle()
    assert "get()" in repr(task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- a coroutine driven by hand, as a task does ------------------------------------------


async def _park_by_hand(q: Any) -> Coroutine[Any, Any, Any]:
    # Start a get() the way a task would, and return it parked on the empty queue.
    coro = q.get()
    yielded = coro.send(None)
    assert asyncio.isfuture(yielded)
    return coro  # type: ignore[no-any-return]


async def _woken_then(leave: Callable[[Coroutine[Any, Any, Any]], None], q: Any) -> None:
    # A getter parked by hand is woken for an item, then leaves without taking it: the
    # other getter must get the item (a lost wake-up would leave it waiting).
    parked = await _park_by_hand(q)
    other = asyncio.create_task(q.get())
    await settle()
    q.put_nowait("item")
    leave(parked)
    assert await asyncio.wait_for(other, 10) == "item"


@pytest.mark.needs("exact_sync_view")
async def test_closing_a_woken_getter_passes_the_item_on(make_queue: MakeQueue) -> None:
    await _woken_then(lambda coro: coro.close(), await make_queue())


@pytest.mark.needs("exact_sync_view")
async def test_throwing_into_a_woken_getter_passes_the_item_on(make_queue: MakeQueue) -> None:
    def throw(coro: Coroutine[Any, Any, Any]) -> None:
        with pytest.raises(KeyError):
            coro.throw(KeyError("thrown in"))

    await _woken_then(throw, await make_queue())


@pytest.mark.needs("exact_sync_view")
async def test_dropping_a_woken_getter_passes_the_item_on(make_queue: MakeQueue) -> None:
    q = await make_queue()
    parked = await _park_by_hand(q)
    other = asyncio.create_task(q.get())
    await settle()
    q.put_nowait("item")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # leaving must not fail in the finalizer
        del parked
        gc.collect()
    assert await asyncio.wait_for(other, 10) == "item"


@pytest.mark.needs("exact_sync_view")
async def test_a_coroutine_closed_while_waiting_leaves_the_waiters(
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    parked = await _park_by_hand(q)
    parked.close()
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        parked.send(None)
    # No one waits any more: an item put now stays for the next get.
    q.put_nowait("item")
    await settle()
    assert q.qsize() == 1
    assert q.get_nowait() == "item"
