"""The stage the five programs run on under ``conveyor demo`` and the tests.

The programs are plain asyncio programs: they ``print``, ``await asyncio.sleep(...)``,
draw ``random.random()`` and make their own ``conveyor.Queue``.  Nothing in them knows
about the demo.  A ``Stage`` runs a fresh copy of a program's module with three of
its names pointed elsewhere, and hands its ``main()`` (or only its producers, or only its
consumer) a queue of the stage's choosing:

* ``asyncio``: the real module, except that ``sleep`` and ``wait_for`` divide their
  seconds by the stage's speed (``--speed 50`` runs the lesson 50 times faster);
* ``print``: each line goes to the stage's listener (timestamped lines, or the live
  view) and to ``Stage.lines``;
* ``random``: a generator of the stage's own, seeded for a repeatable run, that also
  keeps every value drawn in ``Stage.values``.

What the queue does (its depth, who is blocked, what went through) the stage reads from
the queue's own ``statistics()``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

from .._abc import AsyncQueue
from .._open import open_queue
from .._urls import redacted

__all__ = ["ROLES", "Role", "Stage", "check_role", "check_role_fits", "positive_float"]

Role = Literal["producer", "consumer", "both"]
ROLES: tuple[Role, ...] = ("both", "producer", "consumer")


def check_role(role: str) -> Role:
    """Return *role* if it names a part a process can play.

    Raises:
        ValueError: *role* is not ``"producer"``, ``"consumer"`` or ``"both"``.
    """
    for known in ROLES:
        if role == known:
            return known
    raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


def check_role_fits(url: str, role: str) -> None:
    """Refuse to split producers and consumer over a queue that lives in one process.

    Raises:
        ValueError: *role* is not ``"both"`` and *url* is an in-memory queue, which
            another process can never see (the producer would wait forever).
    """
    if role != "both" and url.split(":", 1)[0].lower() == "memory":
        raise ValueError(
            f"--role {role} needs a queue other processes can reach (sqlite:///file.db or"
            f" redis://host:6379/0); {redacted(url)} lives and dies with one process"
        )


def positive_float(text: str) -> float:
    """Parse a command-line number that must be greater than zero.

    Raises:
        argparse.ArgumentTypeError: *text* is not a positive number.
    """
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


class _PacedAsyncio:
    """``asyncio`` as a program on the stage sees it: its sleeps and timeouts scaled."""

    def __init__(self, speed: float) -> None:
        self._speed = speed

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        return await asyncio.sleep(delay / self._speed, result)

    async def wait_for(self, awaitable: Any, timeout: float | None) -> Any:
        scaled = None if timeout is None else timeout / self._speed
        return await asyncio.wait_for(awaitable, scaled)


class _KeptRandom(random.Random):
    """A seeded generator that keeps every value it draws, in order."""

    # Python 3.10's random.Random.__new__ takes the seed alone: the list is set after.
    _kept: list[float]

    def random(self) -> float:
        value = super().random()
        self._kept.append(value)
        return value


class Stage:
    """One run of one of the five programs, paced, listened to and watched.

    Args:
        name: The program's module name in ``conveyor.examples`` (``"basic"``...).
        speed: Divides every sleep and timeout of the program.
        seed: Seeds the program's random values, for a repeatable run.
        on_line: Called with each line the program prints, as it prints it.

    Attributes:
        lines: Every line the program printed, in order.
        values: Every random value the program drew, in order (what its producers put).
        queue: The queue the program runs on, once ``play()`` has it.
    """

    def __init__(
        self,
        name: str,
        *,
        speed: float = 1.0,
        seed: int | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        from . import find

        self.example = find(name)
        self.speed = float(speed)
        self.lines: list[str] = []
        self.values: list[float] = []
        self.queue: AsyncQueue[Any] | None = None
        self._seed = seed
        self._on_line = on_line
        self._started = time.monotonic()
        self._got = 0
        self._got_all = asyncio.Event()

    def elapsed(self) -> float:
        """Return the seconds since the stage was set up."""
        return time.monotonic() - self._started

    def load(self) -> ModuleType:
        """Return a fresh copy of the program's module, its names pointed at the stage.

        A copy of its own, so that two stages (a producer and a consumer side by side in
        one test) never share what their programs print or draw.
        """
        spec = importlib.util.find_spec(f"{__package__}.{self.example.name}")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        # After the module ran its own imports, which would have put the real ones back.
        module.asyncio = _PacedAsyncio(self.speed)  # type: ignore[attr-defined]
        generator = _KeptRandom(self._seed)
        generator._kept = self.values
        module.random = generator  # type: ignore[attr-defined]
        module.print = self._print  # type: ignore[attr-defined]
        return module

    def _print(self, *args: Any, sep: str | None = " ", **_: Any) -> None:
        text = (" " if sep is None else sep).join(map(str, args))
        self.lines.append(text)
        # Every program reports each item it got this way, as the lesson's do.
        if text.startswith(">got "):
            self._got += 1
            if self._got >= self.example.items:
                self._got_all.set()
        if self._on_line is not None:
            self._on_line(text)

    async def play(
        self,
        url: str = "memory://",
        role: str = "both",
        queue: AsyncQueue[Any] | None = None,
    ) -> None:
        """Run the program, or the part of it that *role* names, to its end.

        Args:
            url: The queue to open (``memory://``, ``sqlite:///...``, ``redis://...``),
                named after the program, with the program's ``maxsize``.
            role: ``"both"`` runs the program's ``main()``; ``"producer"`` its producers
                (then ``join()``, for the programs that join); ``"consumer"`` its
                consumer, until the program's last item is processed.
            queue: An open queue to run on instead of *url*, left open afterwards.

        Raises:
            ValueError: *role* is not ``"producer"``, ``"consumer"`` or ``"both"``.
        """
        checked = check_role(role)
        own = queue is None
        if queue is None:
            queue = await open_queue(url, name=self.example.name, maxsize=self.example.maxsize)
        self.queue = queue
        program = self.load()
        try:
            if checked == "both":
                await program.main(queue)
            elif checked == "producer":
                await self._produce(program, queue)
            else:
                await self._consume(program, queue)
        finally:
            if own:
                await queue.aclose()

    async def _produce(self, program: ModuleType, queue: AsyncQueue[Any]) -> None:
        producers = self.example.producers
        if producers == 1:
            await program.producer(queue)
        else:
            await asyncio.gather(*(program.producer(queue, i) for i in range(producers)))
        if self.example.joins:
            await queue.join()

    async def _consume(self, program: ModuleType, queue: AsyncQueue[Any]) -> None:
        if not self.example.joins:
            await program.consumer(queue)  # returns at the producer's None
            return
        # The consumer of a joining program runs forever, as in the lesson: alone in a
        # process, it is stopped once the program's items are all got and processed.
        consumer: asyncio.Task[None] = asyncio.ensure_future(program.consumer(queue))
        got_all = asyncio.ensure_future(self._got_all.wait())
        try:
            await asyncio.wait({consumer, got_all}, return_when=asyncio.FIRST_COMPLETED)
            if consumer.done():
                consumer.result()  # it failed: say why
            await queue.join()
        finally:
            for task in (consumer, got_all):
                task.cancel()
            await asyncio.gather(consumer, got_all, return_exceptions=True)
