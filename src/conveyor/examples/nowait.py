"""Program 2: the consumer polls with get_nowait() instead of waiting.

The producer is program 1's.  The consumer never blocks in the queue: when
``get_nowait()`` raises ``QueueEmpty`` it says so and sleeps half a second.

Run it: ``python -m conveyor.examples.nowait [--speed 50] [--backend URL] [--role ROLE]``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import conveyor

from ._common import Run, sentinel_main, standalone

NAME = "nowait"
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
    """Poll for items without blocking, sleeping when there is none, until ``None``."""
    run.say("Consumer: Running")
    while True:
        try:
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            run.say("Consumer: got nothing, waiting a while...")
            await run.sleep(0.5)
            continue
        # Not in the lesson: on a durable queue task_done() acknowledges the item, which
        # would otherwise be delivered again once its lease runs out.
        queue.task_done()
        if item is None:
            break
        run.got("Consumer", item)
        run.say(f">got {item}")
    run.say("Consumer: Done")


# The lesson's main(): asyncio.gather(producer(queue), consumer(queue)) on a queue that
# open_queue() opens; _common adds closing it and the --role split over processes.
main = sentinel_main(NAME, MAXSIZE, producer, consumer)


if __name__ == "__main__":
    sys.exit(standalone(main, __doc__))
