"""Program 3: the consumer waits at most half a second for each item.

The producer is program 1's.  The consumer wraps ``get()`` in ``asyncio.wait_for()``
with a 0.5 second timeout, and says that it gave up when the time runs out (a cancelled
``get()`` loses no item: the next one finds it).

Run it: ``python -m conveyor.examples.wait_for``, or watch it with
``conveyor demo wait_for``.
"""

import asyncio
import random

import conveyor


async def producer(queue: conveyor.AsyncQueue[float | None]) -> None:
    print("Producer: Running")
    for _ in range(10):
        value = random.random()
        await asyncio.sleep(value)  # the work of making a value
        await queue.put(value)
    await queue.put(None)  # tell the consumer there is no more
    print("Producer: Done")


async def consumer(queue: conveyor.AsyncQueue[float | None]) -> None:
    print("Consumer: Running")
    while True:
        try:
            item = await asyncio.wait_for(queue.get(), 0.5)
        except asyncio.TimeoutError:
            print("Consumer: gave up waiting...")
            continue
        # On a durable queue, task_done() acknowledges the item; without it the item
        # is delivered again once its lease runs out.  In memory it changes nothing.
        queue.task_done()
        if item is None:
            break
        print(f">got {item}")
    print("Consumer: Done")


async def main(queue: conveyor.AsyncQueue[float | None] | None = None) -> None:
    if queue is None:  # conveyor demo passes its own queue in
        queue = conveyor.Queue()
    await asyncio.gather(producer(queue), consumer(queue))


if __name__ == "__main__":
    asyncio.run(main())
