"""The five classic asyncio-queue programs, as the lesson writes them, on conveyor.

Each program is a plain asyncio program whose one conveyor line makes the queue
(``conveyor.Queue()`` where the lesson has ``asyncio.Queue()``), plus ``task_done()``
where a durable queue needs its items acknowledged.  Run one as it is with
``python -m conveyor.examples.NAME``, or watch it with ``conveyor demo NAME``, which can
also pace it (``--speed 50``) and run it on a durable queue (``--backend
sqlite:///demo.db``), its producers and its consumer in separate processes (``--role``).
The demo does that from outside the program: see ``conveyor.examples._stage``.

========  ==========  ============================================================
number    name        what it shows
========  ==========  ============================================================
1         basic       a producer, a consumer, ``None`` as the "no more" signal
2         nowait      polling with ``get_nowait()`` and ``QueueEmpty``
3         wait_for    ``asyncio.wait_for(queue.get(), 0.5)`` and its timeout
4         join        ``task_done()`` and ``queue.join()`` instead of a sentinel
5         bounded     ``maxsize=2``, five producers, one slow consumer
========  ==========  ============================================================
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

__all__ = ["EXAMPLES", "Example", "find"]


@dataclasses.dataclass(frozen=True)
class Example:
    """One of the five programs.

    Attributes:
        number: Its place in the lesson, 1 to 5.
        name: Its module name in this package.
        summary: What it shows, in a few words.
        maxsize: The bound of the program's queue (``0``: unbounded).
        items: How many values its producers put in all (``None`` sentinels aside).
        producers: How many producer tasks it runs (``producer(queue, id)`` when more
            than one).
        joins: Whether it ends with ``queue.join()`` (its consumer then runs forever)
            rather than with a ``None`` its producer puts.
        demo_speed: The ``--speed`` that ``conveyor demo`` uses unless told otherwise,
            chosen so that every demo ends within 15 seconds.
    """

    number: int
    name: str
    summary: str
    maxsize: int = 0
    items: int = 10
    producers: int = 1
    joins: bool = False
    demo_speed: float = 1.0

    def load(self) -> ModuleType:
        """Import and return the program's module."""
        return importlib.import_module(f"{__name__}.{self.name}")


EXAMPLES: tuple[Example, ...] = (
    Example(1, "basic", "a producer, a consumer, None as the last item"),
    Example(2, "nowait", "the consumer polls with get_nowait() and sleeps on QueueEmpty"),
    Example(3, "wait_for", "the consumer waits at most 0.5 s with asyncio.wait_for()"),
    Example(4, "join", "no sentinel: task_done() and queue.join()", joins=True),
    # About 25 s at the lesson's pace (fifty items of ~0.5 s each): 2.5 times faster
    # ends in ~10 s, and beyond 15 s only if the random values are wildly unlucky.
    Example(
        5,
        "bounded",
        "maxsize=2, five producers, one slow consumer",
        maxsize=2,
        items=50,
        producers=5,
        joins=True,
        demo_speed=2.5,
    ),
)


def find(name: str) -> Example:
    """Return the program called *name* (or numbered *name*, ``"1"`` to ``"5"``).

    Raises:
        ValueError: No program has that name or number.
    """
    for example in EXAMPLES:
        if name in (example.name, str(example.number)):
            return example
    known = ", ".join(f"{e.number}/{e.name}" for e in EXAMPLES)
    raise ValueError(f"no example called {name!r}; choose one of {known}")
