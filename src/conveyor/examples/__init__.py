"""The five classic asyncio-queue programs, runnable on every conveyor backend.

Each program is the lesson's producer/consumer program with one change: the queue comes
from ``await conveyor.open_queue(url, ...)`` instead of ``asyncio.Queue(...)``, so the same
code runs in memory (``memory://``), on SQLite and on Redis.  Run one with
``python -m conveyor.examples.NAME`` or ``conveyor demo NAME``; ``--speed 50`` divides
every sleep by 50.

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

from ._common import Run

__all__ = ["EXAMPLES", "Example", "Run", "find"]


@dataclasses.dataclass(frozen=True)
class Example:
    """One of the five programs.

    Attributes:
        number: Its place in the lesson, 1 to 5.
        name: Its module name in this package.
        summary: What it shows, in a few words.
        demo_speed: The ``--speed`` that ``conveyor demo`` uses unless told otherwise,
            chosen so that every demo ends within 15 seconds.
    """

    number: int
    name: str
    summary: str
    demo_speed: float = 1.0

    def load(self) -> ModuleType:
        """Import and return the program's module."""
        return importlib.import_module(f"{__name__}.{self.name}")


EXAMPLES: tuple[Example, ...] = (
    Example(1, "basic", "a producer, a consumer, None as the last item"),
    Example(2, "nowait", "the consumer polls with get_nowait() and sleeps on QueueEmpty"),
    Example(3, "wait_for", "the consumer waits at most 0.5 s with asyncio.wait_for()"),
    Example(4, "join", "no sentinel: task_done() and queue.join()"),
    # About 25 s at the lesson's pace (fifty items of ~0.5 s each): 2.5 times faster
    # ends in ~10 s, and beyond 15 s only if the random values are wildly unlucky.
    Example(5, "bounded", "maxsize=2, five producers, one slow consumer", demo_speed=2.5),
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
