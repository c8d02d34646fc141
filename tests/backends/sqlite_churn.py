"""A process that works a queue of an SQLite file in every way, for the counter tests.

Run as ``python -m tests.backends.sqlite_churn URL NAME SEED``: it puts, gets, acknowledges,
retries (at once and with a delay), fails, extends, releases (a get timing out) and
requeues, at random, forever; it prints ``working`` once it has gone round a few times, so
that a test can SIGKILL it in the middle of its work.
"""

from __future__ import annotations

import asyncio
import random
import sys

import conveyor


async def _churn(url: str, name: str, seed: int) -> None:
    rng = random.Random(seed)
    # Not renewed: the leases it leaves are meant to expire.
    async with conveyor.open_queue(
        url, name=name, lease_timeout=0.2, max_attempts=3, renew_leases=False
    ) as q:
        assert isinstance(q, conveyor.DurableQueue)
        rounds = 0
        while True:
            rounds += 1
            if rounds == 20:
                print("working", flush=True)
            await q.put_many(range(rng.randint(1, 40)))
            for _ in range(rng.randint(0, 30)):
                try:
                    receipt = await q.get_with_receipt(timeout=0.05)
                except conveyor.QueueTimeoutError:
                    break
                action = rng.random()
                if action < 0.5:
                    await q.ack(receipt)
                elif action < 0.6:
                    await q.retry(receipt, delay=rng.choice([0.0, 0.05, 30.0]))
                elif action < 0.7:
                    await q.fail(receipt, "churned")
                elif action < 0.8:
                    await q.extend(receipt, 5.0)
                # else: left leased, to expire (and go dead after 3 attempts)
            if rng.random() < 0.1:
                await q.requeue_dead()
            try:
                got = await q.get_many(rng.randint(1, 100), timeout=0.01)
            except conveyor.QueueTimeoutError:
                got = []
            for _ in got:
                q.task_done()


if __name__ == "__main__":
    asyncio.run(_churn(sys.argv[1], sys.argv[2], int(sys.argv[3])))
