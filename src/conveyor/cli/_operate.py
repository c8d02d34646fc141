"""``conveyor shutdown|resume|maxsize URL NAME``: operate a durable queue from outside.

Each command opens the queue through ``conveyor.open_queue()`` (without ``maxsize``, so
it uses the bound stored with the queue), changes it for every process, prints one plain
line and closes it.  URLs are shown with their password hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys

from .._durable import DurableQueue
from .._exceptions import ConveyorError
from .._open import open_queue, redacted

__all__ = ["OPERATIONS", "bound", "run_operation"]

OPERATIONS = ("shutdown", "resume", "maxsize")


def bound(text: str) -> int | float:
    """Parse a ``maxsize`` given on the command line: a number ``>= 0`` (``0``: unbounded).

    Raises:
        argparse.ArgumentTypeError: *text* is not such a number.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (0: unbounded), not {text!r}")
    return int(value) if value.is_integer() else value


def _shown(maxsize: float) -> str:
    if maxsize <= 0 or math.isinf(maxsize):
        return "unbounded"
    return f"{maxsize:g}"


def run_operation(args: argparse.Namespace) -> int:
    """Run ``conveyor shutdown``, ``resume`` or ``maxsize`` as *args* say.

    Args:
        args: The parsed command line (``command``, ``url``, ``name``, and ``immediate``
            or ``n``).

    Returns:
        0 when the queue was changed (or, for ``maxsize`` without ``N``, read); 1 when
        it could not be, with the reason on standard error.
    """
    try:
        print(asyncio.run(_operate(args)), flush=True)
    except (ConveyorError, ValueError, TypeError, ImportError) as exc:
        print(f"conveyor {args.command}: error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


async def _operate(args: argparse.Namespace) -> str:
    where = f"queue {args.name!r} at {redacted(args.url)}"
    async with open_queue(args.url, name=args.name) as queue:
        if not isinstance(queue, DurableQueue):
            raise ValueError(
                f"{redacted(args.url)} is an in-memory queue, which lives inside one program:"
                " give the URL of a durable one (sqlite:///file.db, redis://host:6379/0)"
            )
        if args.command == "shutdown":
            await queue.ashutdown(immediate=args.immediate)
            how = (
                "shut down immediately (its waiting items deleted)"
                if args.immediate
                else "shut down"
            )
            return (
                f"{where}: {how} for every process; `conveyor resume {redacted(args.url)}"
                f" {args.name}` undoes it"
            )
        if args.command == "resume":
            was = queue.statistics().is_shutdown
            await queue.resume()
            return f"{where}: resumed (it was {'shut down' if was else 'not shut down'})"
        old = queue.maxsize
        if args.n is None:
            return f"{where}: maxsize {_shown(old)}"
        await queue.set_maxsize(args.n)
        return f"{where}: maxsize {_shown(args.n)} (was {_shown(old)})"
