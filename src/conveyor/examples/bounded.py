"""Program 5: a bounded queue (maxsize=2), five producers and one slow consumer.

Each producer puts ten random values, sleeping ``(id + 1) * 0.1`` seconds before each
put, so ``put()`` blocks whenever the two slots are taken.  The consumer takes about
half a second per item (it sleeps the item's value), so the producers spend most of
their time waiting for room.  ``main`` waits for the producers, then on ``queue.join()``.

Run it: ``python -m conveyor.examples.bounded [--speed 50] [--backend URL] [--role ROLE]``.
At the lesson's pace it takes about 25 seconds; ``conveyor demo`` runs it 2.5 times faster.
With ``--role consumer`` the consumer stops after the fifty items.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import conveyor

from ._common import Run, join_main, standalone

NAME = "bounded"
MAXSIZE = 2
PRODUCERS = 5
ITEMS_EACH = 10
ITEMS = PRODUCERS * ITEMS_EACH


async def producer(queue: conveyor.AsyncQueue[Any], run: Run, id: int) -> None:
    """Put ten random values, sleeping ``(id + 1) * 0.1`` seconds before each."""
    run.say("Producer: Running")
    for _ in range(ITEMS_EACH):
        value = run.random()
        await run.sleep((id + 1) * 0.1)
        await queue.put(value)
        run.put_done(f"Producer {id}", value)
    run.say(f"Producer {id}: Done")


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


async def producers(queue: conveyor.AsyncQueue[Any], run: Run) -> None:
    """Run the five producers at once, returning when all of them are done."""
    await asyncio.gather(*(producer(queue, run, i) for i in range(PRODUCERS)))


# The lesson's main(): the consumer in its own task, then the producers, then
# queue.join(); _common adds opening and closing the queue and the --role split.
main = join_main(NAME, MAXSIZE, ITEMS, producers, consumer)


if __name__ == "__main__":
    sys.exit(standalone(main, __doc__))
