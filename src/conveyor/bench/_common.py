"""The wiring the scenario modules share: event loops, contender lists, split workloads.

Each scenario module (``thread``, ``sqlite``, ``redis``) keeps its own queues and
workloads; what is the same in all of them (how a round gets its event loop, how the
contenders that are installed are picked, how N items are shared out among tasks) is
written once here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import multiprocessing
import queue
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from ._scenario import BenchOptions, Contender, Scenario

__all__ = [
    "Consumer",
    "Putter",
    "get_workload",
    "installed",
    "new_loop",
    "put_workload",
    "run_in_loop",
    "run_processes",
    "scenario",
    "split",
]

Workload = Callable[[str], Callable[[int], float]]
"""``workload(contender_name)`` returns that contender's ``run(n)``."""


def installed(module: str) -> bool:
    """Return whether *module* can be imported, without importing it."""
    return importlib.util.find_spec(module) is not None


def new_loop(options: BenchOptions) -> asyncio.AbstractEventLoop:
    """Return a new event loop of the kind *options* names (``asyncio`` or ``uvloop``)."""
    if options.loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_in_loop(options: BenchOptions, main: Callable[[], Awaitable[float]]) -> float:
    """Run *main* in a new event loop, close the loop, and return what *main* returned."""
    loop = new_loop(options)
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def split(n: int, tasks: int) -> list[int]:
    """Return how many of *n* items each of *tasks* tasks handles (the first take the rest)."""
    return [n // tasks + (1 if i < n % tasks else 0) for i in range(tasks)]


def scenario(
    group: str,
    name: str,
    n: int,
    workload: Workload,
    others: Mapping[str, str | None],
    goals: Mapping[str, float] | None = None,
) -> Scenario:
    """Build a scenario with conveyor first, then each other contender that is installed.

    Args:
        group: The scenario's group (``"thread"``, ``"sqlite"``, ...).
        name: What is measured.
        n: Items per round before the run's scale is applied.
        workload: ``workload(contender_name)`` returns that contender's ``run(n)``.
        others: Contender name -> the module it needs, or ``None`` when it is always there.
        goals: Contender name -> the throughput ratio conveyor aims for against it.

    Returns:
        The scenario; the contenders not installed are listed in its ``missing``.
    """
    contenders = [Contender("conveyor", workload("conveyor"))]
    missing: dict[str, str] = {}
    for other, module in others.items():
        if module is None or installed(module):
            contenders.append(Contender(other, workload(other)))
        else:
            missing[other] = f"not installed (pip install {other})"
    return Scenario(
        group=group,
        name=name,
        n=n,
        contenders=contenders,
        goals=dict(goals or {}),
        missing=missing,
    )


class _Closing(Protocol):
    async def close(self) -> None: ...


Q = TypeVar("Q", bound=_Closing)


class Putter(Protocol):
    """A contender's queue as the put workload sees it."""

    async def put(self, item: int) -> None:
        """Put *item*."""

    async def settle(self) -> None:
        """Wait until every write is where the contender promises it is (disk, server)."""

    async def close(self) -> None:
        """Close the queue."""


def put_workload(
    options: BenchOptions, open_queue: Callable[[], Awaitable[Putter]], tasks: int
) -> Callable[[int], float]:
    """Return ``run(n)``: *tasks* tasks put items ``0 .. n - 1`` between them, timed.

    Args:
        options: The run's settings (the event loop kind).
        open_queue: Opens a fresh queue for one round.
        tasks: How many producer tasks share the items.

    Returns:
        A contender's ``run``: the seconds from the first put until the queue settled.
    """

    async def measure(queue: Putter, n: int) -> float:
        async def produce(start: int, count: int) -> None:
            for i in range(start, start + count):
                await queue.put(i)

        counts = split(n, tasks)
        starts = list(itertools.accumulate([0, *counts[:-1]]))
        start = time.perf_counter()
        await asyncio.gather(*(produce(s, c) for s, c in zip(starts, counts, strict=True)))
        await queue.settle()
        return time.perf_counter() - start

    return _rounds(options, open_queue, measure)


class Consumer(Protocol):
    """A contender's queue as the get workload sees it."""

    async def fill(self, n: int) -> None:
        """Put items ``0 .. n - 1`` and wait until they are settled."""

    async def consume(self, n: int, tasks: int) -> float:
        """Get and acknowledge *n* items with *tasks* concurrent consumers.

        Returns:
            ``time.perf_counter()`` once the last acknowledgement is settled (before any
            teardown).
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Close the queue."""


def get_workload(
    options: BenchOptions, open_queue: Callable[[], Awaitable[Consumer]], tasks: int
) -> Callable[[int], float]:
    """Return ``run(n)``: fill a fresh queue with *n* items, then time getting them all.

    Args:
        options: The run's settings (the event loop kind).
        open_queue: Opens a fresh queue for one round.
        tasks: How many consumer tasks share the items.

    Returns:
        A contender's ``run``: the seconds from the first get until the last
        acknowledgement was settled.
    """

    async def measure(queue: Consumer, n: int) -> float:
        await queue.fill(n)
        start = time.perf_counter()
        return await queue.consume(n, tasks) - start

    return _rounds(options, open_queue, measure)


def _rounds(
    options: BenchOptions,
    open_queue: Callable[[], Awaitable[Q]],
    measure: Callable[[Q, int], Awaitable[float]],
) -> Callable[[int], float]:
    # A contender's run(n): in a new loop, open a fresh queue, measure, close the queue
    # (the closing is not timed).
    def run(n: int) -> float:
        async def main() -> float:
            queue = await open_queue()
            try:
                return await measure(queue, n)
            finally:
                await queue.close()

        return run_in_loop(options, main)

    return run


def process_context() -> Any:
    """Return the multiprocessing context of the scenarios across processes.

    Fork where there is fork: 16 children start in milliseconds, not seconds.
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def time_processes(target: Callable[..., None], args: tuple[Any, ...], count: int) -> float:
    """Run *count* processes of ``target(*args, go, out)`` together; return their span.

    Each child puts one message on ``out`` once ready, waits for ``go``, then puts
    ``(anything, start, end)`` when done: all start at once, and the span is from the
    first start to the last end, in seconds.  A child still alive after its work is
    killed, and all of them when one failed.
    """
    spans = run_processes(target, [args] * count)
    return float(max(end for _, _, end in spans) - min(start for _, start, _ in spans))


def run_processes(
    target: Callable[..., None],
    each: Sequence[tuple[Any, ...]],
    around: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
) -> list[Any]:
    """Run one process of ``target(*args, go, out)`` for each *args* of *each*, together.

    As ``time_processes()``, with arguments of its own for each child: each puts one
    message on ``out`` once ready, waits for ``go``, then puts its last message when done.

    Args:
        target: What each child runs.
        each: One child's arguments, for each child.
        around: A context entered just before ``go`` is set and left once every child
            sent its last message (e.g. to read the servers' CPU time around the work).

    Returns:
        The last message of each child, in the order they came.
    """
    context = process_context()
    go, out = context.Event(), context.Queue()
    children = [context.Process(target=target, args=(*args, go, out)) for args in each]
    for child in children:
        child.start()
    try:
        for _ in children:
            _receive(out, children, 60)
        with around() if around is not None else contextlib.nullcontext():
            go.set()
            return [_receive(out, children, 300) for _ in children]
    except BaseException:
        # A failed child, or a failed *around*: the others are not waited for (those
        # still waiting for go would never end).
        for child in children:
            if child.is_alive():
                child.kill()
        raise
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()


def _receive(out: Any, children: list[Any], timeout: float) -> Any:
    # A child that failed (its traceback is on standard error) never sends: say so at
    # once instead of waiting out the timeout.
    deadline = time.monotonic() + timeout
    while True:
        try:
            return out.get(timeout=0.5)
        except queue.Empty:
            failed = [c.exitcode for c in children if c.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(
                    f"a benchmark process failed (exit code {failed[0]}): see its traceback"
                ) from None
            if time.monotonic() >= deadline:
                raise


def litequeue_done(queue: Any, message: Any) -> None:
    """Mark litequeue *message*, popped from *queue*, done, with whichever API it has.

    litequeue 0.14 (the lock's version on Python 3.12+) fences a delivery with a claim
    id that ``done()`` requires; 0.9 (before 3.12) knows the message id alone.
    """
    claim = getattr(message, "claim_id", None)
    if claim is None:
        queue.done(message.message_id)
    else:
        queue.done(message.message_id, claim_id=claim)
