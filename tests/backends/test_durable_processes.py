"""Durable queues across real processes: SIGKILLed producers and consumers, maxsize and join.

Every process is a real ``python`` running ``tests.backends.durable_worker``; kills are
SIGKILL at random moments (seeded, so a failure can be replayed).  Runs for every durable
backend in ``durable_fixtures``.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable

import conveyor
from tests.backends._processes import Worker, run_cli
from tests.backends.durable_fixtures import durable_url, queue_name

__all__ = ["durable_url", "queue_name"]

LEASE = 0.5
SEED = int(os.environ.get("CONVEYOR_CRASH_SEED", "20261124"))
ROUNDS = int(os.environ.get("CONVEYOR_CRASH_ROUNDS", "3"))


def _at_least(n: int, tag: str) -> Callable[[list[str]], bool]:
    return lambda lines: sum(line.startswith(tag) for line in lines) >= n


def _drain(url: str, name: str) -> list[int]:
    # A fresh consumer takes everything left, waiting out the leases of killed consumers.
    worker = Worker("consume", url, name, "--lease", str(LEASE), "--idle", str(LEASE * 4))
    worker.finish()
    return worker.values("got")


def test_killed_producers_and_consumers_lose_no_put_item(durable_url: str, queue_name: str) -> None:
    rng = random.Random(SEED)
    confirmed: set[int] = set()
    got: set[int] = set()
    for round_ in range(ROUNDS):
        start = round_ * 1000
        producer = Worker(
            "produce", durable_url, queue_name, "--start", str(start), "--count", "1000"
        )
        consumer = Worker(
            "consume", durable_url, queue_name, "--lease", str(LEASE), "--work", "0.003"
        )
        at_put = rng.randint(5, 200)
        producer.wait_for(_at_least(at_put, "put"))
        producer.kill()
        at_got = rng.randint(1, 20)
        consumer.wait_for(_at_least(at_got, "got"))
        consumer.kill()
        confirmed.update(producer.values("put"))
        got.update(consumer.values("got"))
    got.update(_drain(durable_url, queue_name))
    assert confirmed, "no put returned before the kills"
    lost = confirmed - got
    assert not lost, f"{len(lost)} items whose put() returned were lost: {sorted(lost)[:10]}"
    joiner = Worker("join", durable_url, queue_name)
    assert "joined" in joiner.finish(timeout=60)


def test_killed_consumer_items_come_back_after_the_lease(durable_url: str, queue_name: str) -> None:
    producer = Worker("produce", durable_url, queue_name, "--count", "20")
    producer.finish()
    consumer = Worker("consume", durable_url, queue_name, "--lease", str(LEASE), "--work", "5")
    consumer.wait_for(lambda lines: any(x.startswith("got") for x in lines))
    consumer.kill()
    leased = consumer.values("got")
    assert leased
    # The killed consumer acknowledged nothing (its work took 5 s), so all 20 come back.
    assert sorted(set(_drain(durable_url, queue_name))) == list(range(20))
    assert "joined" in Worker("join", durable_url, queue_name).finish(timeout=60)


def test_killed_put_many_leaves_all_or_nothing(durable_url: str, queue_name: str) -> None:
    rng = random.Random(SEED + 1)
    batch = 50
    confirmed: set[int] = set()
    for round_ in range(ROUNDS):
        producer = Worker(
            "produce",
            durable_url,
            queue_name,
            "--start",
            str(round_ * 100_000),
            "--count",
            "100000",
            "--many",
            str(batch),
        )
        at = rng.randint(1, 40)
        producer.wait_for(_at_least(at, "many"))
        producer.kill()
        for line in producer.lines:
            if line.startswith("many"):
                first, last = map(int, line.split()[1:])
                confirmed.update(range(first, last + 1))
    got = set(_drain(durable_url, queue_name))
    assert confirmed <= got
    sizes: dict[int, int] = {}
    for item in got:
        sizes[item // batch] = sizes.get(item // batch, 0) + 1
    torn = {b: n for b, n in sizes.items() if n != batch}
    assert not torn, f"put_many batches stored in part: {torn}"


async def test_producers_and_consumer_in_separate_processes(
    durable_url: str, queue_name: str
) -> None:
    maxsize = 5
    async with conveyor.open_queue(durable_url, name=queue_name, maxsize=maxsize) as q:
        assert isinstance(q, conveyor.DurableQueue)
        producers = [
            Worker(
                "produce",
                durable_url,
                queue_name,
                "--maxsize",
                str(maxsize),
                "--start",
                str(i * 100),
                "--count",
                "100",
            )
            for i in range(3)
        ]
        consumer = Worker(
            "consume", durable_url, queue_name, "--maxsize", str(maxsize), "--work", "0.002"
        )
        largest = 0
        while any(p.process.poll() is None for p in producers):
            largest = max(largest, await q.aqsize())
            await asyncio.sleep(0.01)
        for producer in producers:
            await asyncio.to_thread(producer.finish)
        assert largest <= maxsize
        joiner = Worker("join", durable_url, queue_name)
        await asyncio.wait_for(q.join(), 60)
        await asyncio.to_thread(joiner.finish)
        assert sorted(consumer.values("got")) == list(range(300))
        assert (await q.refresh()).unfinished_tasks == 0
        q.shutdown()
    await asyncio.to_thread(consumer.finish)
    assert consumer.lines[-1] == "finished"


async def test_blocked_putter_in_one_process_waits_for_a_get_in_another(
    durable_url: str, queue_name: str
) -> None:
    async with conveyor.open_queue(durable_url, name=queue_name, maxsize=1) as q:
        await q.put(0)
        producer = Worker(
            "produce", durable_url, queue_name, "--maxsize", "1", "--start", "1", "--count", "1"
        )
        producer.wait_for(lambda lines: "ready" in lines)
        # Nothing to synchronise on for "still blocked": give the put time to try.
        await asyncio.sleep(0.3)
        assert "put 1" not in producer.lines
        assert await q.get() == 0
        q.task_done()
        await asyncio.to_thread(producer.wait_for, lambda lines: "put 1" in lines)
        assert await q.get(timeout=30) == 1
        q.task_done()
        await asyncio.to_thread(producer.finish)


async def test_the_bound_and_the_shutdown_belong_to_the_queue_across_processes(
    durable_url: str, queue_name: str
) -> None:
    # One process opens with maxsize=10 and fills the queue.
    filler = Worker("produce", durable_url, queue_name, "--maxsize", "10", "--count", "10")
    await asyncio.to_thread(filler.finish)
    assert filler.values("put") == list(range(10))
    # Another opens without maxsize: it uses the stored bound, and its put blocks.
    late = Worker("produce", durable_url, queue_name, "--start", "10", "--count", "1")
    await asyncio.to_thread(late.wait_for, lambda lines: "trying 10" in lines)
    assert "maxsize 10" in late.lines
    async with conveyor.open_queue(durable_url, name=queue_name) as q:
        assert isinstance(q, conveyor.DurableQueue)
        # Nothing to synchronise on for "still blocked": give the put time to try.
        await asyncio.sleep(0.3)
        assert "put 10" not in late.lines
        assert await q.aqsize() == 10
        # A third process changes the bound: the blocked put goes through.
        done = await asyncio.to_thread(run_cli, "maxsize", durable_url, queue_name, "11")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith("maxsize 11 (was 10)")
        await asyncio.to_thread(late.finish)
        assert late.values("put") == [10]
        assert await q.aqsize() == 11
        assert q.maxsize == 11

    # Shut down by one process: a fleet of consumers drains the queue and stops.
    done = await asyncio.to_thread(run_cli, "shutdown", durable_url, queue_name)
    assert done.returncode == 0, done.stderr
    assert "shut down for every process" in done.stdout
    consumer = Worker("consume", durable_url, queue_name)
    await asyncio.to_thread(consumer.finish)
    assert consumer.values("got") == list(range(11))
    # A rerun of a producer is refused at once: the shutdown is stored.
    rerun = Worker("produce", durable_url, queue_name, "--start", "11", "--count", "1")
    await asyncio.to_thread(rerun.finish)
    assert "shut down" in rerun.lines
    assert rerun.values("put") == []
    # Resumed from the command line, the same rerun works.
    done = await asyncio.to_thread(run_cli, "resume", durable_url, queue_name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("resumed (it was shut down)")
    rerun = Worker("produce", durable_url, queue_name, "--start", "11", "--count", "1")
    await asyncio.to_thread(rerun.finish)
    assert rerun.values("put") == [11]
    async with conveyor.open_queue(durable_url, name=queue_name) as q:
        assert isinstance(q, conveyor.DurableQueue)
        assert await q.get(timeout=10) == 11
        q.task_done()
        await q.join(timeout=30)
