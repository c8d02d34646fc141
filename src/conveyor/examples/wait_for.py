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

from ._common import Run, sentinel_main, standalone

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


# The lesson's main(): asyncio.gather(producer(queue), consumer(queue)) on a queue that
# open_queue() opens; _common adds closing it and the --role split over processes.
main = sentinel_main(NAME, MAXSIZE, producer, consumer)


if __name__ == "__main__":
    sys.exit(standalone(main, __doc__))
