"""Program 1: a producer puts ten random values, then None; a consumer reports them.

Run it: ``python -m conveyor.examples.basic`` (about five seconds), or watch it with
``conveyor demo basic``.  On a durable queue, make the queue with
``queue = await conveyor.open_queue("sqlite:///demo.db", name="basic")`` instead.
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
        item = await queue.get()
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
