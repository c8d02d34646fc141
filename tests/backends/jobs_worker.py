"""A process for the job options' cross-process tests (``test_durable_jobs``).

``python -m tests.backends.jobs_worker race URL NAME GO KEYS``: waits until the file GO
exists, then puts one item per key ``k0``..``k<KEYS-1>`` (each with that key) and prints
one line ``stored <n>``: how many of its puts returned ``True``.

``python -m tests.backends.jobs_worker delayed URL NAME DELAY``: puts the item
``"later"`` with that delay, prints ``put`` once the put returned, and waits to be killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import conveyor


def _wait_for(path: str) -> None:
    while not os.path.exists(path):
        time.sleep(0.001)  # a tight wait, so that both processes start together


async def _open(url: str, name: str) -> conveyor.DurableQueue[Any]:
    queue = await conveyor.open_queue(url, name=name)
    assert isinstance(queue, conveyor.DurableQueue)
    return queue


async def race(url: str, name: str, go: str, keys: int) -> None:
    async with await _open(url, name) as queue:
        print("ready", flush=True)
        # Not on the loop: nothing else of this process runs meanwhile anyway.
        await asyncio.to_thread(_wait_for, go)
        results = await asyncio.gather(
            *(queue.put(f"from {os.getpid()}", key=f"k{i}") for i in range(keys))
        )
        print(f"stored {sum(results)}", flush=True)


async def delayed(url: str, name: str, delay: float) -> None:
    queue = await _open(url, name)
    await queue.put("later", delay=delay)
    print("put", flush=True)
    await asyncio.sleep(3600)


def main() -> None:
    mode, url, name, *rest = sys.argv[1:]
    if mode == "race":
        asyncio.run(race(url, name, rest[0], int(rest[1])))
    else:
        asyncio.run(delayed(url, name, float(rest[0])))


if __name__ == "__main__":
    main()
