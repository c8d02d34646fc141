"""Program 5: a bounded queue (maxsize=2), five producers and one slow consumer.

Each producer puts ten random values, sleeping ``(id + 1) * 0.1`` seconds before each
put, so ``put()`` waits whenever both places are taken.  The consumer spends each
item's value in seconds on it (about half a second), so the producers spend most of
their time waiting for room.  ``main`` waits for the producers, then on
``queue.join()``.

Run it: ``python -m conveyor.examples.bounded`` (about 25 seconds), or watch it with
``conveyor demo`` (this program, 2.5 times faster).
"""

import asyncio
import random

import conveyor


async def producer(queue: conveyor.AsyncQueue[float], id: int) -> None:
    print(f"Producer {id}: Running")
    for _ in range(10):
        value = random.random()
        await asyncio.sleep((id + 1) * 0.1)
        await queue.put(value)  # waits while the queue is full
    print(f"Producer {id}: Done")


async def consumer(queue: conveyor.AsyncQueue[float]) -> None:
    print("Consumer: Running")
    while True:
        item = await queue.get()
        print(f">got {item}")
        if item:
            await asyncio.sleep(item)  # the work of processing it
        queue.task_done()


async def main(queue: conveyor.AsyncQueue[float] | None = None) -> None:
    if queue is None:  # conveyor demo passes its own queue in
        queue = conveyor.Queue(maxsize=2)
    worker = asyncio.create_task(consumer(queue))
    producers = [asyncio.create_task(producer(queue, i)) for i in range(5)]
    await asyncio.wait(producers)
    await queue.join()
    print("Main: every item is processed")
    worker.cancel()  # it would wait forever for one more item


if __name__ == "__main__":
    asyncio.run(main())
