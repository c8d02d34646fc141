"""Program 3: the consumer waits at most half a second for each item.

The producer is program 1's.  The consumer wraps ``get()`` in ``asyncio.wait_for()``
with a 0.5 second timeout and says it gave up when the time runs out.

Run it: ``python -m conveyor.examples.wait_for [--speed 50] [--backend URL] [--role ROLE]``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import conveyor

from ._common import Run, check_role, standalone

NAME = "wait_for"
MAXSIZE = 0
ITEMS = 10


async def producer(queue: conveyor.AsyncQueue[Any], run: Run) -> None:
    """Put ten random values, each after sleeping its value in seconds, then ``None``."""
    run.say("Producer: Running")
    for _ in range(ITEMS):
        value = run.random()
        await run.sleep(value)
        await queue.put(value)
        run.put_done("Producer", value)
    await queue.put(None)
    run.say("Producer: Done")


async def consumer(queue: conveyor.AsyncQueue[Any], run: Run) -> None:
    """Wait up to half a second for each item, saying so on a timeout, until ``None``."""
    run.say("Consumer: Running")
    while True:
        try:
            item = await asyncio.wait_for(queue.get(), run.scaled(0.5))
        except asyncio.TimeoutError:
            run.say("Consumer: gave up waiting...")
            continue
        # Not in the lesson: on a durable queue task_done() acknowledges the item, which
        # would otherwise be delivered again once its lease runs out.
        queue.task_done()
        if item is None:
            break
        run.got("Consumer", item)
        run.say(f">got {item}")
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
        role: ``"producer"``, ``"consumer"`` or ``"both"``.
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
        parts = []
        if role in ("both", "producer"):
            parts.append(producer(queue, run))
        if role in ("both", "consumer"):
            parts.append(consumer(queue, run))
        await asyncio.gather(*parts)
    finally:
        if own:
            await queue.aclose()
    return run


if __name__ == "__main__":
    sys.exit(standalone(main, __doc__))
