"""Program 4: no sentinel; the consumer marks each item done and main waits with join().

The producer puts ten random values, sleeping each value's seconds first.  The consumer
runs forever in a task of its own, "processes" each item by sleeping its value, then
calls ``task_done()``.  Once the producer is done, ``main`` waits on ``queue.join()``
until every item is processed; the consumer is still waiting for more when the program
ends.

Run it: ``python -m conveyor.examples.join``, or watch it with ``conveyor demo join``.
"""

import asyncio
import random

import conveyor


async def producer(queue: conveyor.AsyncQueue[float]) -> None:
    print("Producer: Running")
    for _ in range(10):
        value = random.random()
        await asyncio.sleep(value)  # the work of making a value
        await queue.put(value)
    print("Producer: Done")


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
        queue = conveyor.Queue()
    worker = asyncio.create_task(consumer(queue))
    await producer(queue)
    await queue.join()
    print("Main: every item is processed")
    worker.cancel()  # it would wait forever for one more item


if __name__ == "__main__":
    asyncio.run(main())
