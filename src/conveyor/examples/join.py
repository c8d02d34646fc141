"""Program 4: no sentinel; the consumer marks each item done and main waits with join().

The producer puts ten random values, sleeping each value's seconds first.  The consumer
runs forever in its own task, sleeping each item's seconds to "process" it and then
calling ``task_done()``.  Once the producer is done, ``main`` waits on ``queue.join()``
for every item to be processed.

Run it: ``python -m conveyor.examples.join [--speed 50] [--backend URL] [--role ROLE]``.
With ``--role consumer`` the consumer stops after the ten items instead of running forever.
"""

from __future__ import annotations

import sys
from typing import Any

import conveyor

from ._common import Run, join_main, standalone

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


# The lesson's main(): the consumer in its own task, then the producer, then
# queue.join(); _common adds opening and closing the queue and the --role split.
main = join_main(NAME, MAXSIZE, ITEMS, producer, consumer)


if __name__ == "__main__":
    sys.exit(standalone(main, __doc__))
