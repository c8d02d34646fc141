"""``conveyor.work()`` on in-memory queues, and the checks of its arguments.

In memory there is no store to wait in: a failed item is retried in place, then
reported and marked done; ``task_done()`` and ``join()`` keep asyncio's meaning.  The
durable behaviour (receipts, dead letters, signals) is in ``tests/backends/test_durable_work.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import conveyor


async def test_work_drains_an_in_memory_queue_with_retries_in_place(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue: conveyor.Queue[int] = conveyor.Queue()
    calls: list[int] = []

    async def handler(item: int) -> None:
        calls.append(item)
        if item == 3 and calls.count(3) < 2:
            raise RuntimeError("once")
        if item == 4:
            raise RuntimeError("always")

    for i in range(6):
        queue.put_nowait(i)
    queue.shutdown()  # getters drain what is left, then stop
    with caplog.at_level(logging.INFO, logger="conveyor.worker"):
        stats = await conveyor.work(queue, handler, retries=2, backoff=0.001, concurrency=2)
    assert (stats.done, stats.failed, stats.retried) == (5, 1, 3)
    assert calls.count(3) == 2
    assert calls.count(4) == 3
    await queue.join()  # every item was marked done, the failed one included
    failures = [
        r for r in caplog.records if "failed" in r.getMessage() and "item" in r.getMessage()
    ]
    assert len(failures) == 4  # one line per failure: three retries, one for good
    assert any("stopped: 5 done, 1 failed, 3 retried" in r.getMessage() for r in caplog.records)


async def test_work_on_a_thread_queue_and_a_stop_event() -> None:
    queue: conveyor.ThreadQueue[int] = conveyor.ThreadQueue()
    stop = asyncio.Event()
    done: list[int] = []

    async def handler(item: int) -> None:
        done.append(item)
        if len(done) == 3:
            stop.set()

    for i in range(3):
        queue.async_q.put_nowait(i)
    stats = await conveyor.work(queue.async_q, handler, stop=stop)
    assert stats.done == 3
    assert stats.clean
    await queue.async_q.join()


async def test_a_handler_past_the_grace_is_cancelled_and_its_item_put_back() -> None:
    queue: conveyor.Queue[int] = conveyor.Queue()
    stop = asyncio.Event()
    started = asyncio.Event()

    async def handler(item: int) -> None:
        started.set()
        await asyncio.Event().wait()

    queue.put_nowait(1)
    running = asyncio.create_task(conveyor.work(queue, handler, grace=0, stop=stop))
    await started.wait()
    stop.set()
    stats = await running
    assert (stats.released, stats.clean) == (1, False)
    assert queue.get_nowait() == 1  # back in the queue
    queue.task_done()
    await queue.join()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"concurrency": 2.5}, TypeError, "concurrency"),
        ({"retries": -1}, ValueError, "retries"),
        ({"backoff": -1}, ValueError, "backoff"),
        ({"grace": float("inf")}, ValueError, "grace"),
        ({"grace": "1"}, TypeError, "grace"),
    ],
)
async def test_work_checks_its_arguments(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    async def handler(item: object) -> None:
        pass

    with pytest.raises(error, match=match):
        await conveyor.work(conveyor.Queue(), handler, **options)


async def test_work_refuses_what_is_not_a_queue_or_not_a_handler() -> None:
    async def handler(item: object) -> None:
        pass

    with pytest.raises(TypeError, match="AsyncQueue"):
        await conveyor.work(asyncio.Queue(), handler)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        await conveyor.work(conveyor.Queue(), 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="threads=True"):
        await conveyor.work(conveyor.Queue(), print)
