"""One Redis queue, the same 8 producer and 8 consumer tasks, in 1, 2 or 4 processes.

Group commit merges the calls of one process: spread over more processes, the same tasks
make smaller batches, so more scripts an item and more CPU an item on both sides.  This
script measures that on a private ``redis-server`` (or the one ``--redis-url`` names): the
items per second, the scripts (``EVALSHA``) per item, and the server's and the clients'
CPU per item, for each split.  README's Speed section quotes it.

Run: ``python benchmarks/one_queue_processes.py [--items 12000] [--redis-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

import conveyor
from conveyor.bench import private_redis
from conveyor.bench._common import run_processes

TASKS = 8  # producers, and as many consumers, in all


def _child(url: str, name: str, tasks: int, per_task: int, go: Any, out: Any) -> None:
    async def main() -> None:
        async with conveyor.open_queue(url, name=name) as queue:
            assert isinstance(queue, conveyor.DurableQueue)
            out.put("ready")
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            cpu = time.process_time()
            start = time.perf_counter()

            async def produce() -> None:
                for i in range(per_task):
                    await queue.put(i)

            async def consume() -> None:
                for _ in range(per_task):
                    await queue.get()
                    queue.task_done()

            workers = [produce() for _ in range(tasks)] + [consume() for _ in range(tasks)]
            await asyncio.gather(*workers)
            await queue.flush()
            out.put((time.process_time() - cpu, start, time.perf_counter()))

    asyncio.run(main())


def _server_cpu_and_scripts(client: Any) -> tuple[float, int]:
    cpu = client.info("cpu")
    scripts = client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    return float(cpu["used_cpu_user"] + cpu["used_cpu_sys"]), int(scripts)


def measure(url: str, processes: int, items: int) -> str:
    """Run one split and return its line."""
    name = f"split-{uuid.uuid4().hex[:8]}"
    per_task = items // TASKS
    client: Any = redis.Redis.from_url(url)
    try:
        before = _server_cpu_and_scripts(client)
        args = (url, name, TASKS // processes, per_task)
        spans = run_processes(_child, [args] * processes)
        after = _server_cpu_and_scripts(client)
        client.delete(*client.keys(f"conveyor:{{{name}}}:*"))
    finally:
        client.close()
    wall = max(end for _, _, end in spans) - min(start for _, start, _ in spans)
    done = per_task * TASKS
    return (
        f"{processes} process(es) of {TASKS // processes} + {TASKS // processes} tasks:"
        f" {done / wall:,.0f} items/s, {(after[1] - before[1]) / done:.2f} scripts an item,"
        f" server {(after[0] - before[0]) / done * 1e6:.0f} us an item,"
        f" clients {sum(cpu for cpu, _, _ in spans) / done * 1e6:.0f} us an item"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12_000)
    parser.add_argument("--redis-url", help="a server to use (default: a private one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        given = contextlib.nullcontext(args.redis_url) if args.redis_url else None
        with given or private_redis(Path(workdir)) as url:
            if url is None:
                raise SystemExit("no redis-server installed: give --redis-url")
            for processes in (1, 2, 4):
                print(measure(url, processes, args.items), flush=True)


if __name__ == "__main__":
    main()
