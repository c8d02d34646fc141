"""How fast can any asyncio queue ping-pong?  Measure the floor with bare futures.

Two tasks strictly alternating through two ``maxsize=1`` queues need two task switches
per round trip, whatever the queue.  This script runs that exchange with nothing but
futures (the least any queue can do) next to ``asyncio.Queue`` and ``conveyor.Queue``,
so the "ping-pong" goal can be judged against what the event loop allows.

Run: ``python benchmarks/pingpong_floor.py [--uvloop]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import conveyor
from conveyor.bench.memory import ping_pong_floor

ROUND_TRIPS = 50_000


def through(make: Callable[[int], Any]) -> Callable[[int], Awaitable[float]]:
    """Return a ping-pong workload through two queues made by *make*."""

    async def run(n: int) -> float:
        ping, pong = make(1), make(1)

        async def server() -> None:
            for _ in range(n):
                await pong.put(await ping.get())

        async def client() -> None:
            for i in range(n):
                await ping.put(i)
                await pong.get()

        start = time.perf_counter()
        await asyncio.gather(server(), client())
        return time.perf_counter() - start

    return run


def main() -> None:
    """Print round trips per second of each contender, median of 5 alternating rounds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    runner: Callable[[Awaitable[float]], float] = asyncio.run  # type: ignore[assignment]
    if args.uvloop:
        import uvloop

        runner = uvloop.run  # type: ignore[assignment]
    contenders: dict[str, Callable[[int], Awaitable[float]]] = {
        "bare futures (floor)": ping_pong_floor,
        "asyncio.Queue": through(asyncio.Queue),
        "conveyor.Queue": through(conveyor.Queue),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(5):
        for name, work in contenders.items():
            rates[name].append(ROUND_TRIPS / runner(work(ROUND_TRIPS)))
    base = statistics.median(rates["asyncio.Queue"])
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"{name:22s} {rate:10,.0f} round trips/s  {rate / base:5.2f}x asyncio.Queue")


if __name__ == "__main__":
    main()
