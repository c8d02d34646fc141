"""What the five classic programs share: their main(), the pace of their sleeps, their output.

The programs stay as close to the lesson as possible; everything that is not the lesson
(scaling the sleeps for tests, timestamps, the live view's counters, the checks the
tests make) lives in :class:`Run`, which each program receives.  The lesson's ``main()``
comes in two shapes, built here: :func:`sentinel_main` (producer and consumer side by
side, ``None`` ends it) and :func:`join_main` (the consumer in its own task, ``join()``
ends it); both add the queue's opening and closing and the ``--role`` split.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, Literal, Protocol, TextIO

from .._abc import AsyncQueue
from .._exceptions import ConveyorError
from .._open import open_queue
from .._urls import redacted

__all__ = [
    "ROLES",
    "Role",
    "Run",
    "add_run_arguments",
    "check_role",
    "check_role_fits",
    "join_main",
    "positive_float",
    "sentinel_main",
    "standalone",
]

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


class Run:
    """One run of a program: its pace, its output, and what it put and got.

    Args:
        speed: Divides every sleep of the lesson (``50`` runs 50 times faster).
        stream: Where the lesson's messages go; ``None`` means ``sys.stdout``.
        timestamps: Prefix every message with the wall-clock time.
        seed: Seed for the random values, for a repeatable run.
        quiet: Keep the messages to :attr:`lines` only, print nothing.

    Attributes:
        lines: Every message said, in order, without timestamps.
        put_order: Every item put, in the order the puts returned.
        got_order: Every item got, in the order the gets returned.
        produced: Items put, per producer name.
        consumed: Items got, per consumer name.
        peak_size: The largest ``qsize()`` seen after any put or get.
        queue: The queue the program runs on, once :meth:`attach` was called.
    """

    def __init__(
        self,
        *,
        speed: float = 1.0,
        stream: TextIO | None = None,
        timestamps: bool = False,
        seed: int | None = None,
        quiet: bool = False,
    ) -> None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        self.speed = float(speed)
        self._stream = stream
        self._timestamps = timestamps
        self._quiet = quiet
        self._random = random.Random(seed)
        self.lines: list[str] = []
        self.put_order: list[Any] = []
        self.got_order: list[Any] = []
        self.produced: Counter[str] = Counter()
        self.consumed: Counter[str] = Counter()
        self.peak_size = 0
        self.queue: AsyncQueue[Any] | None = None
        self.started = time.monotonic()

    def attach(self, queue: AsyncQueue[Any]) -> None:
        """Remember the queue the program runs on, so that sizes can be watched."""
        self.queue = queue

    def random(self) -> float:
        """Return the next random value in ``[0, 1)``, as the lesson's ``random()`` does."""
        return self._random.random()

    def scaled(self, seconds: float) -> float:
        """Return the lesson's *seconds* divided by :attr:`speed`."""
        return seconds / self.speed

    async def sleep(self, seconds: float) -> None:
        """Sleep the lesson's *seconds*, divided by :attr:`speed`."""
        await asyncio.sleep(seconds / self.speed)

    def say(self, text: str) -> None:
        """Report one of the lesson's messages."""
        self.lines.append(text)
        if self._quiet:
            return
        if self._timestamps:
            now = time.time()
            stamp = time.strftime("%H:%M:%S", time.localtime(now))
            text = f"{stamp}.{int(now % 1 * 1000):03d} {text}"
        stream = self._stream if self._stream is not None else sys.stdout
        print(text, file=stream, flush=True)

    def put_done(self, who: str, item: Any) -> None:
        """Record that *who* has put *item* (the put returned)."""
        self.put_order.append(item)
        self.produced[who] += 1
        self._watch()

    def got(self, who: str, item: Any) -> None:
        """Record that *who* has got *item*."""
        self.got_order.append(item)
        self.consumed[who] += 1
        self._watch()

    def elapsed(self) -> float:
        """Return the seconds since this run was created."""
        return time.monotonic() - self.started

    def _watch(self) -> None:
        if self.queue is not None:
            self.peak_size = max(self.peak_size, self.queue.qsize())


class ExampleMain(Protocol):
    """The ``main`` of a program: what the tests, ``conveyor demo`` and the live view call."""

    def __call__(
        self,
        queue_url: str = "memory://",
        *,
        speed: float = 1.0,
        role: str = "both",
        run: Run | None = None,
        queue: AsyncQueue[Any] | None = None,
    ) -> Coroutine[Any, Any, Run]: ...


Part = Callable[[AsyncQueue[Any], Run], Coroutine[Any, Any, None]]
"""A producer or consumer of the lesson: ``part(queue, run)``."""

CountedPart = Callable[[AsyncQueue[Any], Run, "int | None"], Coroutine[Any, Any, None]]
"""A consumer that stops after the given number of items, or never when ``None``."""

Play = Callable[[AsyncQueue[Any], Run, Role], Coroutine[Any, Any, None]]

_MAIN_DOC = """Run the program and return what it did.

    Args:
        queue_url: The queue to run on (ignored when *queue* is given).
        speed: Divides every sleep (ignored when *run* is given).
        role: {roles}.
        run: Where the output goes and what is recorded; a new one by default.
        queue: An already open queue to run on, left open afterwards.

    Returns:
        The :class:`Run`, with every message and item recorded.

    Raises:
        ValueError: *role* is not ``"producer"``, ``"consumer"`` or ``"both"``.
    """


def sentinel_main(name: str, maxsize: int, producer: Part, consumer: Part) -> ExampleMain:
    """Build the ``main`` of a program whose producer ends the run by putting ``None``.

    Args:
        name: The queue's name (the program's ``NAME``).
        maxsize: The queue's bound (the program's ``MAXSIZE``).
        producer: The lesson's producer.
        consumer: The lesson's consumer, which returns once it gets ``None``.

    Returns:
        The lesson's ``main()``: both parts side by side (or the one *role* names).
    """

    async def play(queue: AsyncQueue[Any], run: Run, role: Role) -> None:
        parts = []
        if role in ("both", "producer"):
            parts.append(producer(queue, run))
        if role in ("both", "consumer"):
            parts.append(consumer(queue, run))
        await asyncio.gather(*parts)

    roles = '``"producer"``, ``"consumer"`` or ``"both"``'
    return _main(name, maxsize, play, roles, producer.__module__)


def join_main(
    name: str, maxsize: int, items: int, producers: Part, consumer: CountedPart
) -> ExampleMain:
    """Build the ``main`` of a program that waits on ``queue.join()`` instead of a sentinel.

    Args:
        name: The queue's name (the program's ``NAME``).
        maxsize: The queue's bound (the program's ``MAXSIZE``).
        items: How many items the producers put in all (the program's ``ITEMS``).
        producers: The lesson's producers, all of them: returns once every item is put.
        consumer: The lesson's consumer, which runs forever when given ``None``.

    Returns:
        The lesson's ``main()``: the consumer in its own task, the producers, then
        ``join()``; with role ``"consumer"`` the consumer alone, stopping after *items*.
    """

    async def play(queue: AsyncQueue[Any], run: Run, role: Role) -> None:
        if role == "consumer":
            await consumer(queue, run, items)
            return
        worker = asyncio.create_task(consumer(queue, run, None)) if role == "both" else None
        try:
            await producers(queue, run)
            await queue.join()
        finally:
            if worker is not None:
                # The lesson's consumer runs forever: the program ends by cancelling it.
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    roles = (
        f'``"producer"`` (puts, then joins), ``"consumer"`` (processes the {items}'
        ' items, then stops) or ``"both"``'
    )
    return _main(name, maxsize, play, roles, producers.__module__)


def _main(name: str, maxsize: int, play: Play, roles: str, module: str) -> ExampleMain:
    # *module* is the program's, so that help(program.main) names the program, not _common.
    async def main(
        queue_url: str = "memory://",
        *,
        speed: float = 1.0,
        role: str = "both",
        run: Run | None = None,
        queue: AsyncQueue[Any] | None = None,
    ) -> Run:
        checked = check_role(role)
        run = run if run is not None else Run(speed=speed)
        own = queue is None
        if queue is None:
            queue = await open_queue(queue_url, name=name, maxsize=maxsize)
        run.attach(queue)
        try:
            await play(queue, run, checked)
        finally:
            if own:
                await queue.aclose()
        return run

    main.__doc__ = _MAIN_DOC.format(roles=roles)
    main.__qualname__ = main.__name__
    main.__module__ = module
    return main


def standalone(main: ExampleMain, description: str | None, argv: list[str] | None = None) -> int:
    """Run a program from the command line (``python -m conveyor.examples.NAME``).

    Args:
        main: The program's ``main`` coroutine function.
        description: The text ``--help`` shows (the program's docstring).
        argv: The arguments, without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit status.
    """
    import argparse

    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_run_arguments(parser, default_speed=1.0)
    args = parser.parse_args(argv)
    try:
        check_role_fits(args.backend, args.role)
    except ValueError as exc:
        parser.error(str(exc))
    run = Run(speed=args.speed, seed=args.seed)
    try:
        asyncio.run(main(args.backend, role=args.role, run=run))
    except KeyboardInterrupt:
        return 130
    except (ConveyorError, ValueError, ImportError, OSError) as exc:
        # Bad URL, missing optional dependency, unreachable server: say what, not where.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def add_run_arguments(parser: Any, *, default_speed: float | None) -> None:
    """Add the options every program takes (``--backend``, ``--speed``, ``--role``, ``--seed``)."""
    parser.add_argument(
        "--backend",
        metavar="URL",
        default="memory://",
        help="the queue to run on: memory:// (default), sqlite:///file.db, redis://host:6379/0",
    )
    parser.add_argument(
        "--speed",
        type=positive_float,
        default=default_speed,
        metavar="X",
        help="divide every sleep by X (default: the lesson's timing"
        + (")" if default_speed == 1.0 else ", except where the demo says otherwise)"),
    )
    parser.add_argument(
        "--role",
        choices=ROLES,
        default="both",
        help="run the producers, the consumer, or both (separate processes need a durable"
        " --backend)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed the random values")


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
