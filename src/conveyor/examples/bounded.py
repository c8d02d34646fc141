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
import contextlib
import sys
from typing import Any

import conveyor

from ._common import Run, check_role, standalone

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
        role: ``"producer"`` (the five producers, then join), ``"consumer"`` (processes
            the fifty items, then stops) or ``"both"``.
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
            await asyncio.gather(*(producer(queue, run, i) for i in range(PRODUCERS)))
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
