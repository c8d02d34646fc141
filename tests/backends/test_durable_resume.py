"""A shutdown is stored with the queue until ``resume()`` undoes it, for every process.

Each queue object opened by ``open_durable`` has connections of its own, as another
process would.  Runs for every durable backend in ``durable_fixtures``; the real
multi-process test is in ``test_durable_processes``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import conveyor
from conveyor import QueueShutDown
from tests.backends.durable_fixtures import durable_url, open_durable, queue_name

__all__ = ["durable_url", "open_durable", "queue_name"]


async def _until(condition: Any, what: str) -> None:
    # Waits on a state another task or process brings about, never on a guessed delay.
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_a_stored_shutdown_refuses_a_rerun_until_resumed(
    durable_url: str, queue_name: str
) -> None:
    async with conveyor.open_queue(durable_url, name=queue_name) as first:
        assert isinstance(first, conveyor.DurableQueue)
        await first.put("left over")
        await first.ashutdown()
    # A rerun of the program: the shutdown outlived it.
    async with conveyor.open_queue(durable_url, name=queue_name) as rerun:
        assert isinstance(rerun, conveyor.DurableQueue)
        assert rerun.statistics().is_shutdown
        with pytest.raises(QueueShutDown):
            await rerun.put("again")
        await rerun.resume()
        assert not rerun.statistics().is_shutdown
        await rerun.put("again")
    async with conveyor.open_queue(durable_url, name=queue_name) as third:
        assert isinstance(third, conveyor.DurableQueue)
        assert not third.statistics().is_shutdown
        assert [await third.get(), await third.get()] == ["left over", "again"]
        third.task_done()
        third.task_done()
        await third.join(timeout=10)


async def test_a_process_that_saw_the_shutdown_works_again_after_a_resume(
    open_durable: Any,
) -> None:
    a = await open_durable()
    b = await open_durable()
    await a.ashutdown()
    with pytest.raises(QueueShutDown):
        await b.put(1)
    with pytest.raises(QueueShutDown):
        await b.get(timeout=5)  # shut down and empty
    assert b.statistics().is_shutdown
    await a.resume()
    # No reopening: b reads the store before refusing on what it saw earlier.
    await b.put(2)
    assert not b.statistics().is_shutdown
    assert await b.get(timeout=10) == 2
    b.task_done()
    await b.join(timeout=10)


async def test_getters_work_again_after_an_immediate_shutdown_is_undone(
    open_durable: Any,
) -> None:
    a = await open_durable()
    b = await open_durable()
    await a.put("deleted")
    await b.ashutdown(immediate=True)
    with pytest.raises(QueueShutDown):
        await b.get(timeout=5)
    await a.resume()
    await a.put("kept")
    assert await b.get(timeout=10) == "kept"  # the deleted item does not come back
    b.task_done()
    await b.join(timeout=10)


async def test_the_nowait_forms_see_a_resume_after_refusing_once(open_durable: Any) -> None:
    a = await open_durable()
    b = await open_durable()
    await a.ashutdown()
    await b.refresh()
    await a.resume()
    # No I/O in put_nowait(): it refuses on the last known state and has it read again.
    with pytest.raises(QueueShutDown):
        b.put_nowait("early")
    await _until(lambda: not b.statistics().is_shutdown, "b to see the resume")
    b.put_nowait("later")
    await b.flush()
    assert await a.aqsize() == 1


async def test_refresh_mirrors_the_stored_shutdown_both_ways(open_durable: Any) -> None:
    a = await open_durable()
    b = await open_durable()
    assert not (await b.refresh()).is_shutdown
    await a.ashutdown()
    assert (await b.refresh()).is_shutdown
    await a.resume()
    assert (await b.refresh()).is_shutdown is False


async def test_resume_after_a_local_shutdown_is_not_undone_by_its_background_write(
    open_durable: Any,
) -> None:
    a = await open_durable()
    b = await open_durable()
    await a.put(0)  # binds the loop, so that shutdown() writes in the background
    a.shutdown()
    await a.resume()  # waits for that write first: it cannot land after the resume
    await a.put(1)
    assert not (await b.refresh()).is_shutdown
    assert await b.aqsize() == 2


async def test_ashutdown_is_stored_when_it_returns(open_durable: Any) -> None:
    a = await open_durable()
    b = await open_durable()
    await a.ashutdown()
    assert (await b.refresh()).is_shutdown
    with pytest.raises(QueueShutDown):
        await b.put("refused")
    # Again, on a view that says shut down already: the store is told once more.
    await b.resume()
    await a.ashutdown()
    assert (await b.refresh()).is_shutdown


async def test_a_fleet_of_consumers_drains_and_stops_then_starts_again(
    open_durable: Any,
) -> None:
    producer = await open_durable()
    workers = [await open_durable() for _ in range(3)]
    await producer.put_many(range(30))

    async def work(q: Any) -> list[int]:
        got = []
        async for item in q:
            got.append(item)
            q.task_done()
        return got

    running = [asyncio.ensure_future(work(w)) for w in workers]
    await producer.ashutdown()
    drained = await asyncio.wait_for(asyncio.gather(*running), 30)
    assert sorted(x for got in drained for x in got) == list(range(30))
    await producer.resume()
    await producer.put(99)
    assert await workers[0].get(timeout=10) == 99
    workers[0].task_done()
    await producer.join(timeout=10)
