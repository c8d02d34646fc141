"""Leases that renew themselves while their holder lives, and ``processing_timeout``.

On every durable backend: an item held three times ``lease_timeout`` by a live process
is not delivered to another; a consumer SIGKILLed while holding items gives them back
within ``lease_timeout``; a live holder past ``processing_timeout`` loses its item, and
its acknowledgement then fails as for any expired lease.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

import conveyor
from conveyor.backends._base import Store
from tests.backends._processes import ROOT
from tests.backends.durable_fixtures import OpenDurable, durable_url, open_durable, queue_name
from tests.backends.redis_backend import RedisServer, private_server

__all__ = ["durable_url", "open_durable", "private_server", "queue_name"]

LEASE = 0.6


async def test_a_live_holder_keeps_its_item_past_the_lease(open_durable: OpenDurable) -> None:
    holder = await open_durable(lease_timeout=LEASE)
    other = await open_durable(lease_timeout=LEASE)
    await holder.put_many(["by get", "by receipt"])
    assert await holder.get() == "by get"
    receipt = await holder.get_with_receipt()
    assert receipt.item == "by receipt"
    # Three leases long, another consumer finds nothing: the leases were renewed.
    with pytest.raises(TimeoutError):
        await other.get(timeout=3 * LEASE)
    await holder.ack(receipt)  # its receipt still names the current lease
    holder.task_done()
    await holder.join(timeout=10)
    await other.join(timeout=10)


async def test_without_renewal_a_lease_ends_after_lease_timeout(open_durable: OpenDurable) -> None:
    holder = await open_durable(lease_timeout=LEASE, renew_leases=False)
    other = await open_durable(lease_timeout=LEASE)
    await holder.put("x")
    receipt = await holder.get_with_receipt()
    again = await other.get_with_receipt(timeout=10)
    assert again.item == "x"
    with pytest.raises(conveyor.LeaseExpiredError):
        await holder.ack(receipt)
    with pytest.raises(conveyor.LeaseExpiredError):
        await holder.release(receipt)
    await other.release(again)  # back at once, the attempt not counted
    assert (await other.get_with_receipt(timeout=10)).attempts == 2


async def test_a_hung_holder_loses_its_item_after_processing_timeout(
    open_durable: OpenDurable,
) -> None:
    hung = await open_durable(lease_timeout=LEASE, processing_timeout=2 * LEASE)
    other = await open_durable(lease_timeout=LEASE)
    assert hung.processing_timeout == 2 * LEASE
    await hung.put("stuck")
    receipt = await hung.get_with_receipt()
    started = time.monotonic()
    again = await other.get_with_receipt(timeout=30)
    # Renewed up to processing_timeout, then left to expire within one more lease.
    assert again.item == "stuck"
    assert again.attempts == 2
    assert time.monotonic() - started >= 2 * LEASE
    with pytest.raises(conveyor.LeaseExpiredError):
        await hung.ack(receipt)  # what the hung holder sees once it wakes up
    await other.ack(again)


async def test_renewal_stops_with_the_queue(open_durable: OpenDurable) -> None:
    holder = await open_durable(lease_timeout=LEASE)
    other = await open_durable(lease_timeout=LEASE)
    await holder.put("left")
    await holder.get()
    await holder.aclose()  # held, not acknowledged: the lease is no longer renewed
    assert await other.get(timeout=30) == "left"
    other.task_done()


async def test_renewal_options_are_checked(durable_url: str) -> None:
    with pytest.raises(ValueError, match="processing_timeout"):
        await conveyor.open_queue(durable_url, processing_timeout=0)
    with pytest.raises(TypeError, match="processing_timeout"):
        await conveyor.open_queue(durable_url, processing_timeout="5")
    with pytest.raises(TypeError, match="renew_leases"):
        await conveyor.open_queue(durable_url, renew_leases="no")
    with pytest.raises(ValueError, match="renew_leases=False"):
        await conveyor.open_queue(durable_url, renew_leases=False, processing_timeout=5)


async def test_extend_many_extends_current_leases_only(open_durable: OpenDurable) -> None:
    queue = await open_durable(lease_timeout=LEASE, renew_leases=False)
    store: Store = queue._store  # the Store interface itself, under the queue
    await queue.put_many([1, 2])
    first = await queue.get_with_receipt()
    second = await queue.get_with_receipt()
    await queue.ack(second)
    before = time.time()
    deadlines = await store.extend_many([first.token, second.token], 60.0)
    assert deadlines[1] is None
    assert deadlines[0] is not None
    assert deadlines[0] >= before + 59
    assert await store.extend_many([], 60.0) == []
    await queue.ack(first)


KILLED_LEASE = 2.0


def _consumer(url: str, name: str, count: int) -> subprocess.Popen[str]:
    # A real process that gets *count* items, says so, and holds them (renewing) forever.
    code = (
        "import asyncio, sys, conveyor\n"
        "async def main():\n"
        f"    q = await conveyor.open_queue({url!r}, name={name!r}, lease_timeout={KILLED_LEASE})\n"
        f"    for _ in range({count}):\n"
        "        print('got', await q.get(), flush=True)\n"
        "    print('holding', flush=True)\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


async def test_a_killed_holder_gives_its_items_back_within_the_lease(
    durable_url: str, queue_name: str
) -> None:
    lease = KILLED_LEASE
    async with conveyor.open_queue(durable_url, name=queue_name, lease_timeout=lease) as queue:
        assert isinstance(queue, conveyor.DurableQueue)
        await queue.put_many([1, 2, 3])
        consumer = _consumer(durable_url, queue_name, 3)
        stdout = consumer.stdout
        assert stdout is not None
        try:
            lines = await asyncio.to_thread(lambda: [stdout.readline() for _ in range(4)])
            assert lines[-1].strip() == "holding", lines
            # Alive, it keeps them past their first lease (renewed)...
            with pytest.raises(TimeoutError):
                await queue.get(timeout=2 * lease)
        finally:
            consumer.send_signal(signal.SIGKILL)
            consumer.wait(30)
        killed = time.monotonic()
        # ...dead, it renews nothing: all three come back within lease_timeout (and the
        # poll a blocked get() waits between looks at the store).
        got = sorted([await queue.get(timeout=30) for _ in range(3)])
        elapsed = time.monotonic() - killed
        assert got == [1, 2, 3]
        # (Slack for a loaded machine; renewed, they would never come back.)
        assert elapsed <= lease + 1.5, f"the items came back {elapsed:.2f}s after the kill"
        for _ in got:
            queue.task_done()
        await queue.join(timeout=10)


def _holder(url: str, name: str) -> subprocess.Popen[str]:
    # A real process that gets one item, then waits in join() for it to be done.
    code = (
        "import asyncio, conveyor\n"
        "async def main():\n"
        f"    q = await conveyor.open_queue({url!r}, name={name!r}, lease_timeout={LEASE})\n"
        "    print('got', await q.get(), flush=True)\n"
        "    try:\n"
        "        await q.join()\n"
        "    except conveyor.LeaseExpiredError as exc:\n"
        "        print('lost:', exc, flush=True)\n"
        "    await q.aclose()\n"
        "asyncio.run(main())\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


async def test_a_holder_whose_lease_ran_out_unrenewed_is_told(
    durable_url: str, queue_name: str
) -> None:
    # A process stopped (SIGSTOP) for longer than the lease renews nothing; once it runs
    # again its renewal is refused, and join() says so instead of only logging it.
    async with conveyor.open_queue(durable_url, name=queue_name, lease_timeout=LEASE) as queue:
        assert isinstance(queue, conveyor.DurableQueue)
        await queue.put("job")
        holder = _holder(durable_url, queue_name)
        stdout = holder.stdout
        assert stdout is not None
        try:
            assert (await asyncio.to_thread(stdout.readline)).strip() == "got job"
            holder.send_signal(signal.SIGSTOP)
            again = await queue.get_with_receipt(timeout=30)
            assert again.attempts == 2
            holder.send_signal(signal.SIGCONT)
            told = await asyncio.to_thread(stdout.readline)
            assert told.startswith("lost:"), told
            assert "may have been delivered again" in told
            await queue.ack(again)
            assert holder.wait(30) == 0
        finally:
            if holder.poll() is None:
                holder.send_signal(signal.SIGKILL)
                holder.wait(30)


async def test_redis_out_of_reach_past_the_lease_is_reported_by_join(
    private_server: RedisServer,
) -> None:
    # Redis stopped (SIGSTOP) for longer than the lease: the rounds meanwhile fail (and
    # are retried), the first one after it is refused, and join() says so.
    async with conveyor.open_queue(
        private_server.url,
        name="renewal",
        lease_timeout=LEASE,
        retry_timeout=0.3,
        socket_timeout=0.2,
    ) as queue:
        assert isinstance(queue, conveyor.DurableQueue)
        await queue.put("job")
        assert await queue.get() == "job"
        private_server.pause()
        try:
            await asyncio.sleep(4 * LEASE)  # the outage under test, not a wait for a state
        finally:
            private_server.resume()
        with pytest.raises(conveyor.LeaseExpiredError, match="may have been delivered again"):
            await queue.join(timeout=30)
        queue.task_done()  # acknowledges nothing now (the lease is gone), and says so
        assert await queue.get(timeout=30) == "job"  # delivered again
        queue.task_done()
        await queue.join(timeout=30)
