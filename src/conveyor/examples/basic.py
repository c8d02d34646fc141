"""Program 1: a producer, a consumer, and None to say "no more".

The producer makes ten random values, sleeping each value's seconds before putting it,
then puts ``None``.  The consumer reports each item until it gets ``None``.

Run it: ``python -m conveyor.examples.basic [--speed 50] [--backend URL] [--role ROLE]``.
"""

from __future__ import annotations

import sys
from typing import Any

import conveyor

from ._common import Run, sentinel_main, standalone

NAME = "basic"
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
    """Report every item until ``None`` arrives."""
    run.say("Consumer: Running")
    while True:
        item = await queue.get()
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
