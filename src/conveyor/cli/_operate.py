"""Operate a durable queue from outside: look at it, and change it when the command says so.

``conveyor queues|stats|peek|dead`` only read.  ``requeue``, ``purge``, ``shutdown``,
``resume`` and ``maxsize N`` change the queue, for every process (``maxsize`` without
``N`` reads).  Every command reaches the queue's store through ``conveyor._stores``
(the ``Store`` interface, on any backend) and creates nothing: a store or queue that does
not exist is a one-line error.  Output is a table on a terminal, plain text otherwise,
one JSON document with ``--json``.  URLs are shown with their password hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from .._exceptions import ConveyorError, QueueNotFoundError
from .._stores import QueueSnapshot, list_queues, open_existing_store, read_snapshot
from .._urls import redacted
from ..backends._base import Purgeable
from ._output import (
    Printer,
    age,
    bound,
    one_line,
    payload_json,
    payload_text,
    per_minute,
    when,
)

__all__ = ["OPERATIONS", "bound_argument", "run_operation"]

OPERATIONS = (
    "queues",
    "stats",
    "peek",
    "dead",
    "requeue",
    "purge",
    "shutdown",
    "resume",
    "maxsize",
)

_PURGED = {
    "ready": "waiting items (ready and delayed)",
    "dead": "dead letters",
    "all": "waiting items and dead letters",
}


class _RefusedError(Exception):
    """The command will not run as asked (e.g. purge without ``--yes`` off a terminal)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def bound_argument(text: str) -> int | float:
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


def run_operation(args: argparse.Namespace) -> int:
    """Run the operating command *args* name.

    Args:
        args: The parsed command line: ``command``, ``url``, ``name`` (but for
            ``queues``), ``json`` and the command's own options.

    Returns:
        0 on success; 1 when the command failed (no such store or queue, a bad URL, an
        unreachable server), with one line on standard error; 2 when it refused to run
        as asked (``purge`` without ``--yes`` off a terminal); 130 on Ctrl-C.
    """
    printer = Printer(getattr(args, "json", False))
    command: Callable[[argparse.Namespace, Printer], Coroutine[Any, Any, None]] = _COMMANDS[
        args.command
    ]
    try:
        asyncio.run(command(args, printer))
    except KeyboardInterrupt:
        return 130
    except _RefusedError as exc:
        print(f"conveyor {args.command}: {exc}", file=sys.stderr, flush=True)
        return exc.status
    except BrokenPipeError:
        # The reader went away (`conveyor dead ... | head`): stop quietly, as a command
        # killed by SIGPIPE does, with nothing left for the interpreter to flush there.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ConveyorError, ValueError, TypeError, ImportError, OSError) as exc:
        print(f"conveyor {args.command}: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return 1
    return 0


def _where(args: argparse.Namespace) -> str:
    return f"queue {args.name!r} at {redacted(args.url)}"


def _row(snapshot: QueueSnapshot) -> list[str]:
    counts = snapshot.counts
    return [
        snapshot.name,
        str(counts.ready),
        str(counts.delayed),
        str(counts.leased),
        str(counts.dead),
        bound(counts.maxsize),
        "yes" if counts.is_shutdown else "no",
        age(snapshot.oldest_ready_age),
        per_minute(snapshot.totals.put_per_minute),
        per_minute(snapshot.totals.finished_per_minute),
    ]


_QUEUE_COLUMNS = (
    "queue",
    "ready",
    "delayed",
    "leased",
    "dead",
    "maxsize",
    "shutdown",
    "oldest",
    "in/min",
    "out/min",
)
_NUMBERS = (
    "ready",
    "delayed",
    "leased",
    "dead",
    "maxsize",
    "oldest",
    "in/min",
    "out/min",
    "attempts",
    "id",
)


async def _queues(args: argparse.Namespace, printer: Printer) -> None:
    snapshots: list[QueueSnapshot] = []
    failed: dict[str, str] = {}
    for name in await list_queues(args.url):
        # One queue that cannot be read (another conveyor's layout, a permission) must
        # not hide the others: it is named, with why, and the exit status says so.
        try:
            async with open_existing_store(args.url, name) as store:
                snapshots.append(await read_snapshot(store, name))
        except (ConveyorError, ValueError) as exc:
            failed[name] = one_line(exc)
    if printer.as_json:
        printer.json(
            [s.as_json() for s in snapshots]
            + [{"queue": name, "error": error} for name, error in failed.items()]
        )
    elif not snapshots and not failed:
        printer.line(f"no queues at {redacted(args.url)}")
    elif snapshots:
        printer.table(
            _QUEUE_COLUMNS,
            [_row(s) for s in snapshots],
            title=f"queues at {redacted(args.url)}",
            right=_NUMBERS,
        )
    if failed:
        for name, error in failed.items():
            print(f"conveyor queues: queue {name!r}: {error}", file=sys.stderr, flush=True)
        raise _RefusedError(f"{len(failed)} queue(s) could not be read", 1)


async def _stats(args: argparse.Namespace, printer: Printer) -> None:
    async with open_existing_store(args.url, args.name) as store:
        snapshot = await read_snapshot(store, args.name)
    if printer.as_json:
        printer.json(snapshot.as_json())
        return
    counts, totals = snapshot.counts, snapshot.totals

    def counted(value: int | None) -> str:
        return "-" if value is None else str(value)

    printer.fields(
        [
            ("backend", snapshot.backend),
            ("ready", str(counts.ready)),
            ("delayed", str(counts.delayed)),
            ("leased", str(counts.leased)),
            ("dead", str(counts.dead)),
            ("unfinished", str(counts.unfinished)),
            ("maxsize", bound(counts.maxsize)),
            ("shutdown", "yes" if counts.is_shutdown else "no"),
            ("oldest ready", age(snapshot.oldest_ready_age)),
            ("in/min", per_minute(totals.put_per_minute)),
            ("out/min", per_minute(totals.finished_per_minute)),
            ("put (ever)", counted(totals.put)),
            ("delivered (ever)", counted(totals.delivered)),
            ("finished (ever)", counted(totals.finished)),
        ],
        title=_where(args),
    )


async def _peek(args: argparse.Namespace, printer: Printer) -> None:
    async with open_existing_store(args.url, args.name) as store:
        items = await store.peek(args.n)
    if printer.as_json:
        printer.json(
            [
                {"id": item.item_id, "attempts": item.attempts, **payload_json(item.payload)}
                for item in items
            ]
        )
    elif not items:
        printer.line(f"{_where(args)}: no ready items")
    else:
        printer.table(
            ("id", "attempts", "item"),
            [[item.item_id, str(item.attempts), payload_text(item.payload)] for item in items],
            title=f"{_where(args)}: the next {len(items)} ready item(s), not claimed",
            right=_NUMBERS,
        )


async def _dead(args: argparse.Namespace, printer: Printer) -> None:
    async with open_existing_store(args.url, args.name) as store:
        letters = await store.dead_letters(args.n)
    if printer.as_json:
        printer.json(
            [
                {
                    "id": letter.item_id,
                    "attempts": letter.attempts,
                    "error": letter.error,
                    "failed_at": letter.failed_at,
                    **payload_json(letter.payload),
                }
                for letter in letters
            ]
        )
    elif not letters:
        printer.line(f"{_where(args)}: no dead letters")
    else:
        printer.table(
            ("id", "attempts", "failed at", "error", "item"),
            [
                [
                    letter.item_id,
                    str(letter.attempts),
                    when(letter.failed_at),
                    payload_text(letter.error.encode(), 40),
                    payload_text(letter.payload, 40),
                ]
                for letter in letters
            ],
            title=f"{_where(args)}: {len(letters)} dead letter(s), oldest first",
            right=_NUMBERS,
        )


async def _requeue(args: argparse.Namespace, printer: Printer) -> None:
    ids = None if args.all else list(args.ids)
    async with open_existing_store(args.url, args.name) as store:
        moved = await store.requeue_dead(ids)
    if printer.as_json:
        printer.json({"requeued": moved})
        return
    asked = "all dead letters" if ids is None else f"{len(ids)} id(s) given"
    printer.line(f"{_where(args)}: requeued {moved} dead letter(s) ({asked})")


async def _purge(args: argparse.Namespace, printer: Printer) -> None:
    which: Purgeable = "all" if args.all else "dead" if args.dead else "ready"
    async with open_existing_store(args.url, args.name) as store:
        if not args.yes:
            if not sys.stdin.isatty():
                raise _RefusedError(
                    "refusing to purge without --yes when not on a terminal (nothing was deleted)",
                    2,
                )
            counts = await store.counts()
            now = {
                "ready": counts.ready + counts.delayed,
                "dead": counts.dead,
                "all": counts.ready + counts.delayed + counts.dead,
            }[which]
            # The question goes to standard error, so that it never mixes with the
            # output a script reads.
            print(
                f"Delete the {now} {_PURGED[which]} of {_where(args)}? This cannot be"
                " undone. [y/N] ",
                end="",
                file=sys.stderr,
                flush=True,
            )
            answer = await asyncio.to_thread(sys.stdin.readline)
            if answer.strip().lower() not in ("y", "yes"):
                raise _RefusedError("nothing was deleted", 1)
        removed = await store.purge(which)
    if printer.as_json:
        printer.json({"purged": removed, "which": which})
        return
    printer.line(f"{_where(args)}: purged {removed} {_PURGED[which]}")


async def _shutdown(args: argparse.Namespace, printer: Printer) -> None:
    async with open_existing_store(args.url, args.name) as store:
        deleted = await store.shutdown(args.immediate)
    if printer.as_json:
        printer.json({"shutdown": True, "deleted": deleted})
        return
    how = "shut down immediately (its waiting items deleted)" if args.immediate else "shut down"
    printer.line(
        f"{_where(args)}: {how} for every process; `conveyor resume {redacted(args.url)}"
        f" {args.name}` undoes it"
    )


async def _resume(args: argparse.Namespace, printer: Printer) -> None:
    try:
        async with open_existing_store(args.url, args.name) as store:
            was = (await store.counts()).is_shutdown
            await store.resume()
    except QueueNotFoundError as exc:
        if not args.missing_ok:
            raise
        if printer.as_json:
            printer.json({"resumed": False, "was_shutdown": False})
        else:
            printer.line(f"{_where(args)}: nothing to resume ({one_line(exc)})")
        return
    if printer.as_json:
        printer.json({"resumed": True, "was_shutdown": was})
        return
    printer.line(f"{_where(args)}: resumed (it was {'shut down' if was else 'not shut down'})")


async def _maxsize(args: argparse.Namespace, printer: Printer) -> None:
    async with open_existing_store(args.url, args.name) as store:
        old = await store.bind_maxsize(None) or 0
        if args.n is not None:
            await store.set_maxsize(args.n)
    if printer.as_json:
        document: dict[str, Any] = {"maxsize": old if args.n is None else args.n}
        if args.n is not None:
            document["was"] = old
        printer.json(document)
    elif args.n is None:
        printer.line(f"{_where(args)}: maxsize {bound(old)}")
    else:
        printer.line(f"{_where(args)}: maxsize {bound(args.n)} (was {bound(old)})")


_Command = Callable[[argparse.Namespace, Printer], Coroutine[Any, Any, None]]

_COMMANDS: dict[str, _Command] = {
    "queues": _queues,
    "stats": _stats,
    "peek": _peek,
    "dead": _dead,
    "requeue": _requeue,
    "purge": _purge,
    "shutdown": _shutdown,
    "resume": _resume,
    "maxsize": _maxsize,
}
