"""A producer, consumer or joiner process for the cross-process and crash tests.

Run as ``python -m tests.backends.durable_worker ROLE URL NAME [options]``.  Every line it
prints is flushed at once, so a test that SIGKILLs it knows exactly which operations
returned before the kill:

* ``produce``: puts ``START..START+COUNT-1``, printing ``trying N`` before and ``put N``
  after each ``put()`` (with ``--many K``: ``put_many`` of K at a time, printing ``many
  FIRST LAST``); stops with ``shut down`` when a put raises ``QueueShutDown``.
* ``consume``: gets items, printing ``got N`` for each, then ``task_done()``; stops at
  ``QueueShutDown`` or, with ``--idle S``, after S seconds without an item.
* ``join``: prints ``joined`` once ``join()`` returned.

Every role first prints ``maxsize N`` (the queue's bound once opened), then ``ready``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

import conveyor


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _produce(q: conveyor.DurableQueue[int], args: argparse.Namespace) -> None:
    end = args.start + args.count
    if args.many:
        for first in range(args.start, end, args.many):
            batch = list(range(first, min(first + args.many, end)))
            await q.put_many(batch)
            _say(f"many {batch[0]} {batch[-1]}")
        return
    for i in range(args.start, end):
        _say(f"trying {i}")
        try:
            await q.put(i)
        except conveyor.QueueShutDown:
            _say("shut down")
            return
        _say(f"put {i}")


async def _consume(q: conveyor.DurableQueue[int], args: argparse.Namespace) -> None:
    while True:
        try:
            item = await q.get(timeout=args.idle)
        except (conveyor.QueueShutDown, TimeoutError):
            break
        _say(f"got {item}")
        if args.work:
            await asyncio.sleep(random.uniform(0, args.work))
        q.task_done()
    await q.flush()
    _say("finished")


async def _main(args: argparse.Namespace) -> None:
    queue = await conveyor.open_queue(
        args.url, name=args.name, maxsize=args.maxsize, lease_timeout=args.lease
    )
    assert isinstance(queue, conveyor.DurableQueue)
    try:
        _say(f"maxsize {queue.maxsize}")
        _say("ready")
        if args.role == "produce":
            await _produce(queue, args)
        elif args.role == "consume":
            await _consume(queue, args)
        else:
            await queue.join()
            _say("joined")
    finally:
        await queue.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["produce", "consume", "join"])
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--many", type=int, default=0)
    parser.add_argument("--maxsize", type=int, default=None)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--idle", type=float, default=None)
    parser.add_argument("--work", type=float, default=0.0)
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
