"""The job options of durable puts (``delay``, ``priority``, ``key``, ``ttl``), on SQLite and Redis.

One body per behaviour, run on SQLite and Redis through ``durable_fixtures``; the
cross-process ones start real processes (``tests.backends.jobs_worker``) and SIGKILL them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor._durable import DurableQueue
from tests.backends._processes import ROOT, run_cli
from tests.backends.durable_fixtures import OpenDurable, durable_url, open_durable, queue_name
from tests.backends.redis_backend import RedisServer, private_server
from tests.backends.test_durable_cancel import _commits_held, _notes, _on_next_commit
from tests.conformance._helpers import wait_until

__all__ = ["durable_url", "open_durable", "private_server", "queue_name"]

pytestmark = pytest.mark.timeout(120)


async def _take(queue: DurableQueue[Any], n: int) -> list[Any]:
    """Get and acknowledge *n* items, in the order gets return them."""
    got = []
    for _ in range(n):
        got.append(await queue.get(timeout=10))
        queue.task_done()
    return got


# -- delay -------------------------------------------------------------------------------


async def test_a_delayed_item_is_got_only_after_its_delay(open_durable: OpenDurable) -> None:
    queue = await open_durable()
    start = time.time()
    assert await queue.put("later", delay=0.3) is True
    await queue.put("now")
    assert await _take(queue, 1) == ["now"]
    assert await queue.get(timeout=10) == "later"
    # The store's clock: the machine's for SQLite, the server's (on this machine) for Redis.
    assert time.time() - start >= 0.29
    queue.task_done()
    await queue.join()


async def test_a_delayed_item_counts_until_done(open_durable: OpenDurable) -> None:
    queue = await open_durable(maxsize=1)
    await queue.put("later", delay=30)
    # maxsize bounds ready + delayed items, and join() waits for a delayed one.
    with pytest.raises(TimeoutError):
        await queue.put("more", timeout=0.2)
    with pytest.raises(TimeoutError):
        await queue.join(timeout=0.2)
    assert (await queue.refresh()).unfinished_tasks == 1


async def test_a_put_with_a_delay_cancelled_during_its_commit_is_retracted(
    durable_url: str, open_durable: OpenDurable
) -> None:
    queue = await open_durable()
    observer = await open_durable()
    async with _commits_held(durable_url):
        task = asyncio.create_task(queue.put("x", delay=30, key="k"))
        await wait_until(lambda: bool(queue._inflight_entries), "the put is in flight")
        _on_next_commit(queue, task.cancel)
    with pytest.raises(asyncio.CancelledError) as caught:
        await task
    assert _notes(caught.value) == ""
    assert (await observer.refresh()).unfinished_tasks == 0
    # Retracted, it freed its key too.
    assert await observer.put("y", key="k") is True


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.backends.jobs_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


async def test_a_delayed_item_survives_its_process_killed(
    durable_url: str, queue_name: str, open_durable: OpenDurable
) -> None:
    putter = _spawn("delayed", durable_url, queue_name, "0.5")
    try:
        assert await asyncio.to_thread(_line, putter) == "put"
    finally:
        putter.send_signal(signal.SIGKILL)
        putter.wait()
    queue = await open_durable()
    assert await queue.get(timeout=10) == "later"
    queue.task_done()
    await queue.join()


async def test_a_delayed_item_survives_a_restart_of_redis(private_server: RedisServer) -> None:
    async with conveyor.open_queue(private_server.url, name="jobs") as queue:
        assert isinstance(queue, DurableQueue)
        await queue.put("later", delay=0.5)
    private_server.kill()  # SIGKILL: what is left is what the AOF (fsync always) kept
    private_server.start()
    async with conveyor.open_queue(private_server.url, name="jobs") as queue:
        assert await queue.get(timeout=10) == "later"
        queue.task_done()
        await queue.join(timeout=10)


# -- priority ----------------------------------------------------------------------------


async def test_lower_priorities_are_got_first_fifo_within_one(open_durable: OpenDurable) -> None:
    queue = await open_durable()
    for item, priority in [("a5", 5), ("b-1", -1), ("c", None), ("d5", 5), ("e-1", -1)]:
        await queue.put(item, priority=priority)
    await queue.put("f")  # no options: priority 0
    await queue.put("g2", priority=2)
    await queue.put_many(["h-3", "i-3"], priority=-3)
    assert await _take(queue, 9) == ["h-3", "i-3", "b-1", "e-1", "c", "f", "g2", "a5", "d5"]


async def test_peek_shows_the_priority_order(
    durable_url: str, queue_name: str, open_durable: OpenDurable
) -> None:
    queue = await open_durable()
    await queue.put("late", priority=9)
    await queue.put("plain")
    await queue.put("first", priority=-9)
    await queue.put("due", priority=-5, delay=0.01)
    await asyncio.sleep(0.02)  # the delay itself
    shown = (await asyncio.to_thread(run_cli, "peek", durable_url, queue_name)).stdout
    places = [shown.index(item) for item in ("first", "due", "plain", "late")]
    assert places == sorted(places), shown


async def test_a_retried_or_requeued_item_keeps_its_priority(open_durable: OpenDurable) -> None:
    # Each step in a queue of its own, closed after it: a getter's process may claim an
    # item ahead (see put()), which aclose() gives back, in place.
    queue = await open_durable()
    await queue.put("low", priority=3)
    await queue.put("high", priority=1)
    receipt = await queue.get_with_receipt(timeout=10)
    assert receipt.item == "high"
    await queue.retry(receipt)
    await queue.aclose()
    queue = await open_durable()
    await queue.put("middle", priority=2)
    assert await _take(queue, 3) == ["high", "middle", "low"]
    await queue.put("plain")
    await queue.put("back", priority=-1)
    receipt = await queue.get_with_receipt(timeout=10)
    assert receipt.item == "back"
    await queue.fail(receipt, "boom")
    await queue.aclose()
    queue = await open_durable()
    assert await queue.requeue_dead() == 1
    assert await _take(queue, 2) == ["back", "plain"]


async def test_claims_at_a_backlog_of_1e5_take_the_lowest_priority(
    open_durable: OpenDurable, record_property: Any
) -> None:
    # Claim time at backlog 0 and 1e5, logged (no timed assertion: speed is the
    # benchmark's, `conveyor bench --group sqlite,redis`, "priority claims").
    queue = await open_durable()

    async def claim_time() -> float:
        # 20 urgent items got one by one: each get is a claim (of one or two items).
        await queue.put_many([f"urgent {i}" for i in range(20)], priority=-1)
        start = time.perf_counter()
        got = await _take(queue, 20)
        elapsed = (time.perf_counter() - start) / 20
        assert got == [f"urgent {i}" for i in range(20)]
        return elapsed

    await claim_time()  # warm-up
    empty = await claim_time()
    for start in range(0, 100_000, 5_000):
        await queue.put_many(range(start, start + 5_000), priority=start % 7)
    full = await claim_time()
    backend = queue.statistics().backend
    print(f"\n{backend}: get + ack of a priority item, backlog 0: {empty * 1e3:.3f} ms,", end="")
    print(f" backlog 1e5: {full * 1e3:.3f} ms")
    record_property("get_ms_backlog_0", round(empty * 1e3, 3))
    record_property("get_ms_backlog_1e5", round(full * 1e3, 3))
    # The backlog's own order: lowest priority first, FIFO within.
    assert await _take(queue, 3) == [0, 1, 2]


# -- key ---------------------------------------------------------------------------------


async def test_a_put_whose_key_an_unfinished_item_holds_stores_nothing(
    open_durable: OpenDurable,
) -> None:
    queue = await open_durable()
    other = await open_durable()
    assert await queue.put("first", key="k") is True
    assert await other.put("second", key="k") is False
    assert other.statistics().total_deduplicated == 1
    assert other.statistics().total_put == 0
    assert await queue.put("plain") is True
    assert await other.aqsize() == 2
    # Leased still holds it.
    receipt = await queue.get_with_receipt(timeout=10)
    assert await other.put("third", key="k") is False
    await queue.ack(receipt)
    # Acknowledged, the key is free.
    assert await other.put("fourth", key="k") is True
    assert await _take(queue, 2) == ["plain", "fourth"]


async def test_a_dead_item_frees_its_key(open_durable: OpenDurable) -> None:
    queue = await open_durable()
    await queue.put("first", key="k", delay=0.1)
    receipt = await queue.get_with_receipt(timeout=10)
    await queue.fail(receipt, "boom")
    assert await queue.put("second", key="k") is True
    # A requeued dead letter does not take its key back: two items, one key.
    assert await queue.requeue_dead() == 1
    assert await queue.put("third", key="k") is False
    assert sorted(await _take(queue, 2)) == ["first", "second"]


async def test_purged_and_shut_down_items_free_their_keys(
    durable_url: str, queue_name: str, open_durable: OpenDurable
) -> None:
    queue = await open_durable()
    await queue.put("ready", key="a", priority=4)
    await queue.put("delayed", key="b", delay=60)
    done = await asyncio.to_thread(run_cli, "purge", durable_url, queue_name, "--ready", "-y")
    assert done.returncode == 0, done.stderr
    assert await queue.put("again", key="a", priority=4) is True
    assert await queue.put("again", key="b") is True
    await queue.ashutdown(immediate=True)
    await queue.resume()
    assert await queue.put("third", key="a") is True
    assert (await queue.refresh()).unfinished_tasks == 1


async def test_a_full_queue_refuses_a_duplicate_at_once(open_durable: OpenDurable) -> None:
    queue = await open_durable(maxsize=1)
    await queue.put("first", key="k")
    assert await queue.put("again", key="k", timeout=5) is False


async def test_put_many_takes_a_key_function_and_says_what_it_stored(
    open_durable: OpenDurable,
) -> None:
    queue = await open_durable()
    await queue.put({"id": 2}, key="2")
    jobs = [{"id": 1}, {"id": 1}, {"id": 2}, {"id": 3}, {"id": None}]
    stored = await queue.put_many(
        jobs, key=lambda job: None if job["id"] is None else str(job["id"])
    )
    assert stored == [True, False, False, True, True]
    assert queue.statistics().total_deduplicated == 2
    assert await queue.put_many(["a", "b"]) == [True, True]
    assert await _take(queue, 6) == [{"id": 2}, {"id": 1}, {"id": 3}, {"id": None}, "a", "b"]


async def test_put_nowait_with_a_key_is_decided_at_the_write(open_durable: OpenDurable) -> None:
    queue = await open_durable()
    queue.put_nowait("first", key="k")
    queue.put_nowait("second", key="k")
    await queue.flush()
    assert queue.statistics().total_deduplicated == 1
    assert await _take(queue, 1) == ["first"]
    await queue.join()


async def test_two_processes_racing_the_same_keys_store_each_once(
    durable_url: str, queue_name: str, open_durable: OpenDurable
) -> None:
    keys = 50
    go = Path(tempfile.mkdtemp()) / "go"
    racers = [_spawn("race", durable_url, queue_name, str(go), str(keys)) for _ in range(2)]
    try:
        for racer in racers:
            assert await asyncio.to_thread(_line, racer) == "ready"
        go.touch()
        lines = [await asyncio.to_thread(_line, racer) for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
            racer.wait()
    assert sum(int(line.split()[1]) for line in lines) == keys, lines
    queue = await open_durable()
    assert await queue.aqsize() == keys


# -- ttl ---------------------------------------------------------------------------------


async def test_an_item_not_got_within_its_ttl_goes_dead_as_expired(
    open_durable: OpenDurable,
) -> None:
    queue = await open_durable()
    await queue.put("stale", ttl=0.2, key="k")
    await queue.put("kept", ttl=60)
    await asyncio.sleep(0.3)  # the ttl itself: the item must outlive it unclaimed
    await queue.put("fresh")
    assert await _take(queue, 2) == ["kept", "fresh"]
    (letter,) = await queue.dead_letters()
    assert (letter.item, letter.error) == ("stale", "expired")
    await queue.join()
    # Dead, it freed its key.
    assert await queue.put("again", key="k") is True


async def test_a_claimed_item_outlives_its_ttl(open_durable: OpenDurable) -> None:
    queue = await open_durable(lease_timeout=0.3)
    await queue.put("slow", ttl=0.2)
    receipt = await queue.get_with_receipt(timeout=10)
    await queue.retry(receipt, delay=0.3)
    assert await queue.get(timeout=10) == "slow"
    queue.task_done()
    assert await queue.dead_letters() == []


# -- mistakes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"delay": -1}, ValueError, "delay"),
        ({"ttl": -0.5}, ValueError, "ttl"),
        ({"delay": float("inf")}, ValueError, "delay"),
        ({"delay": "1"}, TypeError, "delay"),
        ({"priority": "1"}, TypeError, "priority must be an int"),
        ({"priority": 1.0}, TypeError, "priority must be an int"),
        ({"priority": True}, TypeError, "priority must be an int"),
        ({"priority": 2**60}, ValueError, "priority"),
        ({"key": 5}, TypeError, "key must be a str"),
        ({"key": b"k"}, TypeError, "key must be a str"),
    ],
)
async def test_a_bad_option_is_a_clear_error_and_puts_nothing(
    open_durable: OpenDurable, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    queue = await open_durable()
    with pytest.raises(error, match=match):
        await queue.put("x", **options)
    with pytest.raises(error, match=match):
        queue.put_nowait("x", **options)
    if "key" not in options:
        with pytest.raises(error, match=match):
            await queue.put_many(["x"], **options)
    assert await queue.aqsize() == 0


async def test_put_many_refuses_a_key_that_is_not_a_function(open_durable: OpenDurable) -> None:
    queue = await open_durable()
    with pytest.raises(TypeError, match="function of the item"):
        await queue.put_many(["x"], key="k")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key must be a str"):
        await queue.put_many(["x"], key=lambda item: 5)  # type: ignore[arg-type,return-value]
    assert await queue.aqsize() == 0
