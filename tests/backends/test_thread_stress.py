"""``ThreadQueue`` under load: threads and tasks in two event loops, timeouts, cancellations.

Every producer tags its items ``(producer, seq)`` and retries an item until a put of it
succeeds, so the expected stream is known exactly.  Checked: every item put is got
exactly once (or, after ``shutdown(immediate=True)``, dropped), each consumer sees each
producer's items in order, and nothing deadlocks (the module runs under a timeout).

``CONVEYOR_STRESS_SCALE`` multiplies the item counts for a longer run.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from typing import Any

import pytest

import conveyor

pytestmark = pytest.mark.timeout(120)

SCALE = float(os.environ.get("CONVEYOR_STRESS_SCALE", "1"))
PER_PRODUCER = max(10, int(150 * SCALE))
WAIT_LIMIT = 60.0

Item = tuple[str, int]


class Run:
    """One stress run: what was put and what every consumer got, in its order."""

    def __init__(self, maxsize: int, seed: int) -> None:
        self.q: conveyor.ThreadQueue[Item] = conveyor.ThreadQueue(maxsize)
        self.seed = seed
        self.lock = threading.Lock()
        self.put: list[Item] = []
        self.streams: list[list[Item]] = []
        self.producers_done = 0

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}-{name}")

    def new_stream(self) -> list[Item]:
        stream: list[Item] = []
        with self.lock:
            self.streams.append(stream)
        return stream

    def record_put(self, item: Item) -> None:
        with self.lock:
            self.put.append(item)

    # -- threads ---------------------------------------------------------------------

    def thread_producer(self, name: str, limit: int) -> None:
        rng = self.rng(name)
        sync_q = self.q.sync_q
        seq = 0
        while seq < limit:
            item = (name, seq)
            try:
                if rng.random() < 0.3:
                    sync_q.put(item, timeout=rng.random() * 0.002)
                else:
                    sync_q.put(item)
            except conveyor.QueueFull:
                continue
            except conveyor.SyncQueueShutDown:
                return
            self.record_put(item)
            seq += 1

    def thread_consumer(self, name: str) -> None:
        rng = self.rng(name)
        sync_q = self.q.sync_q
        stream = self.new_stream()
        while True:
            try:
                if rng.random() < 0.3:
                    item = sync_q.get(timeout=rng.random() * 0.002)
                elif rng.random() < 0.1:
                    item = sync_q.get_nowait()
                else:
                    item = sync_q.get()
            except conveyor.QueueEmpty:
                continue
            except conveyor.SyncQueueShutDown:
                return
            stream.append(item)
            sync_q.task_done()

    # -- tasks -----------------------------------------------------------------------

    async def task_producer(self, name: str, limit: int) -> None:
        rng = self.rng(name)
        async_q = self.q.async_q
        seq = 0
        while seq < limit:
            item = (name, seq)
            roll = rng.random()
            try:
                if roll < 0.2:
                    await async_q.put(item, timeout=rng.random() * 0.002)
                elif roll < 0.4:
                    # Cancel a put at a random moment: it either completed or put nothing.
                    task = asyncio.ensure_future(async_q.put(item))
                    await asyncio.wait({task}, timeout=rng.random() * 0.002)
                    task.cancel()
                    try:
                        await task
                    except asyncio.CancelledError:
                        continue
                else:
                    await async_q.put(item)
            except TimeoutError:
                continue
            except conveyor.QueueShutDown:
                return
            self.record_put(item)
            seq += 1

    async def task_consumer(self, name: str) -> None:
        rng = self.rng(name)
        async_q = self.q.async_q
        stream = self.new_stream()
        while True:
            roll = rng.random()
            try:
                if roll < 0.2:
                    items = [await async_q.get(timeout=rng.random() * 0.002)]
                elif roll < 0.4:
                    task = asyncio.ensure_future(async_q.get())
                    await asyncio.wait({task}, timeout=rng.random() * 0.002)
                    task.cancel()
                    try:
                        items = [await task]
                    except asyncio.CancelledError:
                        continue
                elif roll < 0.5:
                    items = await async_q.get_many(rng.randint(1, 4))
                else:
                    items = [await async_q.get()]
            except TimeoutError:
                continue
            except conveyor.QueueShutDown:
                return
            stream.extend(items)
            for _ in items:
                async_q.task_done()

    async def loop_main(self, name: str, limit: int, tasks: int) -> None:
        await asyncio.gather(
            *[self.task_producer(f"{name}-p{i}", limit) for i in range(tasks)],
            *[self.task_consumer(f"{name}-c{i}") for i in range(tasks)],
        )

    # -- checks ----------------------------------------------------------------------

    def check(self, *, dropped_allowed: bool) -> None:
        got = [item for stream in self.streams for item in stream]
        assert len(got) == len(set(got)), "an item was delivered twice"
        put = set(self.put)
        assert len(put) == len(self.put)
        assert set(got) <= put, "an item was got that nobody put"
        stats = self.q.statistics()
        assert stats.total_got == len(got)
        assert stats.total_put == len(self.put), "a put that failed put an item"
        if not dropped_allowed:
            assert set(got) == put, f"{len(put - set(got))} items were lost"
        for stream in self.streams:
            last: dict[str, int] = {}
            for name, seq in stream:
                assert seq > last.get(name, -1), f"{name}'s items out of order"
                last[name] = seq
        assert stats.tasks_waiting_get == stats.tasks_waiting_put == 0


def run_stress(maxsize: int, seed: int, shutdown: str) -> Run:
    """Run 3 producer and 3 consumer threads and 2 loops of 3+3 tasks over one queue.

    *shutdown*: ``"drain"`` shuts the queue down once every producer is done and lets
    consumers drain it; ``"midstream"`` / ``"immediate"`` shut it down while producers
    still put (``immediate=True`` for the latter).
    """
    run = Run(maxsize, seed)
    midstream = shutdown != "drain"
    limit = PER_PRODUCER * (100 if midstream else 1)
    threads = [
        threading.Thread(target=run.thread_producer, args=(f"t-p{i}", limit)) for i in range(3)
    ]
    consumers = [threading.Thread(target=run.thread_consumer, args=(f"t-c{i}",)) for i in range(3)]
    loops = [
        threading.Thread(target=asyncio.run, args=(run.loop_main(f"loop{i}", limit, 3),))
        for i in range(2)
    ]
    for thread in [*consumers, *threads, *loops]:
        thread.start()
    if midstream:
        # Shut down once a good part of the stream went through, with producers still busy.
        wait_for_progress(run.q, PER_PRODUCER * 3)
        run.q.shutdown(immediate=shutdown == "immediate")
    else:
        for thread in threads:
            thread.join(WAIT_LIMIT)
        wait_for_producers(run, limit)
        run.q.shutdown()
    for thread in [*threads, *consumers, *loops]:
        thread.join(WAIT_LIMIT)
        assert not thread.is_alive(), "deadlock: a thread never finished"
    return run


def wait_for_progress(q: conveyor.ThreadQueue[Any], count: int) -> None:
    done = threading.Event()
    while not done.wait(0.005):
        if q.statistics().total_got >= count:
            return


def wait_for_producers(run: Run, limit: int) -> None:
    # Every producer (threads and tasks) has put all of its items.
    producers = 3 + 2 * 3
    done = threading.Event()
    while not done.wait(0.005):
        with run.lock:
            if len(run.put) >= producers * limit:
                return


@pytest.mark.parametrize("maxsize", [1, 8, 0])
def test_everything_delivered_exactly_once_in_order(maxsize: int) -> None:
    run = run_stress(maxsize, seed=maxsize, shutdown="drain")
    run.check(dropped_allowed=False)
    assert len(run.put) == 9 * PER_PRODUCER
    assert run.q.statistics().unfinished_tasks == 0


@pytest.mark.parametrize("shutdown", ["midstream", "immediate"])
def test_shutdown_midstream_loses_and_duplicates_nothing(shutdown: str) -> None:
    run = run_stress(8, seed=len(shutdown), shutdown=shutdown)
    run.check(dropped_allowed=shutdown == "immediate")
    stats = run.q.statistics()
    assert stats.current_size == 0
    assert stats.unfinished_tasks == 0
