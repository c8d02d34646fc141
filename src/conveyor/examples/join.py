"""Program 4: no sentinel; the consumer marks each item done and main waits with join().

The producer puts ten random values, sleeping each value's seconds first.  The consumer
runs forever in its own task, sleeping each item's seconds to "process" it and then
calling ``task_done()``.  Once the producer is done, ``main`` waits on ``queue.join()``
for every item to be processed.

Run it: ``python -m conveyor.examples.join [--speed 50] [--backend URL] [--role ROLE]``.
With ``--role consumer`` the consumer stops after the ten items instead of running forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

import conveyor

from ._common import Run, check_role, standalone

NAME = "join"
MAXSIZE = 0
ITEMS = 10


async def producer(queue: conveyor.AsyncQueue[Any], run: Run) -> None:
    """Put ten random values, each after sleeping its value in seconds."""
    run.say("Producer: Running")
    for _ in range(ITEMS):
        value = run.random()
        await run.sleep(value)
        await queue.put(value)
        run.put_done("Producer", value)
    run.say("Producer: Done")


async def consumer(queue: conveyor.AsyncQueue[Any], run: Run, items: int | None = None) -> None:
    """Process items (sleep their value) and mark each done; stop after *items* if given."""
    run.say("Consumer: Running")
    count = 0
    while items is None or count < items:
        item = await queue.get()
        run.got("Consumer", item)
        run.say(f">got {item}")
        if item:
            await run.sleep(item)
        queue.task_done()
        count += 1
    run.say("Consumer: Done")


async def main(
    queue_url: str = "memory://",
    *,
    speed: float = 1.0,
    role: str = "both",
    run: Run | None = None,
    queue: conveyor.AsyncQueue[Any] | None = None,
) -> Run:
    """Run the program and return what it did.

    Args:
        queue_url: The queue to run on (ignored when *queue* is given).
        speed: Divides every sleep (ignored when *run* is given).
        role: ``"producer"`` (puts, then joins), ``"consumer"`` (processes the ten
            items, then stops) or ``"both"``.
        run: Where the output goes and what is recorded; a new one by default.
        queue: An already open queue to run on, left open afterwards.

    Returns:
        The :class:`Run`, with every message and item recorded.
    """
    role = check_role(role)
    run = run if run is not None else Run(speed=speed)
    own = queue is None
    if queue is None:
        queue = await conveyor.open_queue(queue_url, name=NAME, maxsize=MAXSIZE)
    run.attach(queue)
    try:
        if role == "consumer":
            await consumer(queue, run, items=ITEMS)
            return run
        worker = asyncio.create_task(consumer(queue, run)) if role == "both" else None
        try:
            await producer(queue, run)
            await queue.join()
        finally:
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
    finally:
        if own:
            await queue.aclose()
    return run


if __name__ == "__main__":
    sys.exit(standalone(main, __doc__))
