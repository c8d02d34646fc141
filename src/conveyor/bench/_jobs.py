"""The job options' scenario, for the durable groups: priority claims over a backlog.

Claims take the lowest priority first, through an index (SQLite) or a sorted set (Redis):
their cost must not grow with the backlog.  Conveyor's contender gets items of priority
-1 put on top of a backlog of 1e5 items of priorities 1..7; the other contender gets the
same items from an empty queue.  A ratio near 1 is the flat line.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import conveyor

from ._common import run_in_loop, scenario
from ._scenario import BenchOptions, Scenario

__all__ = ["priority_scenario"]

BACKLOG = 100_000
_CHUNK = 5_000


def _workload(
    options: BenchOptions, url_for: Callable[[], str], backlog: int
) -> Callable[[int], float]:
    def run(n: int) -> float:
        async def main() -> float:
            # A name never used: a server given with --redis-url keeps earlier runs' queues.
            url, name = url_for(), f"bench-priority-{uuid.uuid4().hex[:12]}"
            # The backlog, made before the measured part: priorities 1..7, in chunks.  The
            # queue is closed after it, so that SQLite's checkpoint of its write-ahead log
            # happens then, not in the gets measured.
            async with conveyor.open_queue(url, name=name) as filling:
                assert isinstance(filling, conveyor.DurableQueue)
                for first in range(0, backlog, _CHUNK):
                    count = min(_CHUNK, backlog - first)
                    await filling.put_many(range(first, first + count), priority=1 + first % 7)
            queue = await conveyor.open_queue(url, name=name)
            assert isinstance(queue, conveyor.DurableQueue)
            try:
                await queue.put_many(range(n), priority=-1)
                start = time.perf_counter()
                for _ in range(n):
                    await queue.get()
                    queue.task_done()
                await queue.flush()
                elapsed = time.perf_counter() - start
                # A shared server keeps what rounds leave: the backlog goes.
                await queue.ashutdown(immediate=True)
                return elapsed
            finally:
                await queue.aclose()

        return run_in_loop(options, main)

    return run


def priority_scenario(options: BenchOptions, group: str, url_for: Callable[[], str]) -> Scenario:
    """Return the scenario "priority get + task_done, backlog 1e5 vs 0" of *group*.

    Args:
        options: The run's settings (scale, event loop kind).
        group: ``"sqlite"`` or ``"redis"``.
        url_for: Returns the URL of a store for one round (a fresh file, or the server).
    """
    backlog = int(BACKLOG * min(options.scale, 1.0))
    other = "backlog 0"

    def make(contender: str) -> Callable[[int], float]:
        return _workload(options, url_for, backlog if contender == "conveyor" else 0)

    return scenario(
        group,
        f"priority -1 get + task_done, backlog {backlog:,} of priorities 1..7",
        2_000,
        make,
        {other: None},
        {other: 0.7},
    )
