"""Program 2: the consumer polls with get_nowait() and sleeps when nothing is there.

The producer is program 1's.  The consumer never waits inside the queue: when
``get_nowait()`` raises ``QueueEmpty`` it says so and sleeps half a second.

Run it: ``python -m conveyor.examples.nowait``, or watch it with ``conveyor demo nowait``.
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
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            print("Consumer: got nothing, waiting a while...")
            await asyncio.sleep(0.5)
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
