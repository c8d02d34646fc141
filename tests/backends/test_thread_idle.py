"""``ThreadQueue`` waits without polling: blocked threads and tasks use no CPU."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import conveyor

pytestmark = pytest.mark.timeout(60)

WAIT_LIMIT = 10.0
IDLE_CPU_LIMIT = 0.05
"""CPU seconds the whole process may use over the one-second window (a poller at even
1 ms would burn far more once it is multiplied by the waiters)."""


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.001)


def cpu_used_over_one_second() -> float:
    start = time.process_time()
    threading.Event().wait(1.0)
    return time.process_time() - start


@pytest.mark.parametrize("timeout", [None, 30.0], ids=["no timeout", "long timeout"])
def test_blocked_threads_and_tasks_use_no_cpu(timeout: float | None) -> None:
    empty: conveyor.ThreadQueue[int] = conveyor.ThreadQueue()
    full: conveyor.ThreadQueue[int] = conveyor.ThreadQueue(1)
    full.sync_q.put(0)

    def thread_get() -> None:
        with contextlib.suppress(conveyor.SyncQueueShutDown):
            empty.sync_q.get(timeout=timeout)

    def thread_put() -> None:
        with contextlib.suppress(conveyor.SyncQueueShutDown):
            full.sync_q.put(1, timeout=timeout)

    def thread_join() -> None:
        full.sync_q.join()

    async def loop_main() -> None:
        async def get() -> None:
            with contextlib.suppress(conveyor.QueueShutDown):
                await empty.async_q.get(timeout=timeout)

        async def put() -> None:
            with contextlib.suppress(conveyor.QueueShutDown):
                await full.async_q.put(1, timeout=timeout)

        async def join() -> None:
            await full.async_q.join(timeout=timeout)

        join_task = asyncio.ensure_future(join())
        await asyncio.gather(get(), get(), put(), put())
        join_task.cancel()

    threads: list[Any] = [
        *(threading.Thread(target=thread_get) for _ in range(3)),
        *(threading.Thread(target=thread_put) for _ in range(2)),
        threading.Thread(target=thread_join, daemon=True),
        *(threading.Thread(target=asyncio.run, args=(loop_main(),)) for _ in range(2)),
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: empty.statistics().tasks_waiting_get == 3 + 2 * 2, "every getter waits")
    wait_until(lambda: full.statistics().tasks_waiting_put == 2 + 2 * 2, "every putter waits")
    try:
        used = cpu_used_over_one_second()
    finally:
        empty.shutdown()
        full.shutdown(immediate=True)
        for thread in threads:
            thread.join(WAIT_LIMIT)
    assert used < IDLE_CPU_LIMIT, f"blocked waiters used {used:.3f}s of CPU in one second"
