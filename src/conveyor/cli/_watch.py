"""``conveyor watch URL NAME``: the demo's live view, for a real queue in a real store.

Every update (each second by default) reads the store through ``read_snapshot()``: the
counts, the oldest ready item's age and the totals, one read each.  So a watch costs 3
store reads a second (on Redis three ``EVALSHA`` round trips, on SQLite three short read
transactions), whatever the queue holds, each of a cost that does not grow with the
backlog; it never polls faster.  Rates in (items put) and out (items finished:
acknowledged or dead) come from the totals between two updates.

On a terminal (with ``rich``) the view is redrawn in place; otherwise each update is one
plain line, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from .._exceptions import ConveyorError
from .._stores import QueueSnapshot, open_existing_store, read_snapshot
from .._urls import redacted
from ._output import Printer, age, bound, one_line

__all__ = ["rates", "run_watch"]


def run_watch(args: argparse.Namespace) -> int:
    """Run ``conveyor watch`` as *args* say, until Ctrl-C or ``--count`` updates.

    Returns:
        0 when stopped by Ctrl-C or after ``--count`` updates; 1 when the queue cannot
        be read (the reason on standard error, one line).
    """
    live = not (args.plain or args.json) and sys.stdout.isatty()
    if live:
        try:
            import rich  # noqa: F401
        except ImportError:
            live = False
    try:
        asyncio.run(_watch(args, live))
    except KeyboardInterrupt:
        return 0
    except (ConveyorError, ValueError, TypeError, ImportError, OSError) as exc:
        print(f"conveyor watch: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return 1
    return 0


def rates(before: QueueSnapshot | None, after: QueueSnapshot) -> tuple[float | None, float | None]:
    """Return items put and items finished (acknowledged, dead) per second between two reads.

    ``None`` for a rate the store does not count, before a second snapshot, and across a
    reset of the store's counters (they went down).
    """
    if before is None:
        return None, None
    elapsed = after.read_at - before.read_at
    if elapsed <= 0:
        return None, None

    def rate(old: int | None, new: int | None) -> float | None:
        if old is None or new is None or new < old:
            return None
        return (new - old) / elapsed

    return (
        rate(before.totals.put, after.totals.put),
        rate(before.totals.finished, after.totals.finished),
    )


def _per_second(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}/s"


async def _watch(args: argparse.Namespace, live: bool) -> None:
    where = f"queue {args.name!r} at {redacted(args.url)}"
    printer = Printer(args.json)
    async with open_existing_store(args.url, args.name) as store:
        previous: QueueSnapshot | None = None
        updates = 0
        view = _LiveView(where, args.interval) if live else None
        try:
            while True:
                snapshot = await read_snapshot(store, args.name)
                put_rate, out_rate = rates(previous, snapshot)
                if view is not None:
                    view.show(snapshot, put_rate, out_rate)
                elif args.json:
                    printer.json(
                        {
                            **snapshot.as_json(),
                            "time": snapshot.read_at,
                            "rate_in": put_rate,
                            "rate_out": out_rate,
                        }
                    )
                else:
                    printer.line(_plain(where, snapshot, put_rate, out_rate))
                previous = snapshot
                updates += 1
                if args.count is not None and updates >= args.count:
                    return
                await asyncio.sleep(args.interval)
        finally:
            if view is not None:
                view.close()


def _plain(
    where: str, snapshot: QueueSnapshot, put_rate: float | None, out_rate: float | None
) -> str:
    counts = snapshot.counts
    stamp = time.strftime("%H:%M:%S", time.localtime(snapshot.read_at))
    depth = str(counts.ready)
    if bound(counts.maxsize) != "unbounded":
        depth += f"/{bound(counts.maxsize)}"
    text = (
        f"{stamp} {where}: ready {depth} delayed {counts.delayed} leased {counts.leased}"
        f" dead {counts.dead} | in {_per_second(put_rate)} out {_per_second(out_rate)}"
        f" | oldest {age(snapshot.oldest_ready_age)}"
    )
    return text + (" | shut down" if counts.is_shutdown else "")


class _LiveView:
    """The view redrawn in place on a terminal (``rich``), as ``conveyor demo`` draws its own."""

    def __init__(self, where: str, interval: float) -> None:
        from rich.live import Live

        self._where = where
        self._interval = interval
        self._peak = 1
        self._live = Live(auto_refresh=False)
        self._live.start()

    def show(self, snapshot: QueueSnapshot, put_rate: float | None, out_rate: float | None) -> None:
        self._live.update(self._render(snapshot, put_rate, out_rate), refresh=True)

    def close(self) -> None:
        self._live.stop()

    def _render(
        self, snapshot: QueueSnapshot, put_rate: float | None, out_rate: float | None
    ) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.text import Text

        from ._live import _bar

        counts = snapshot.counts
        self._peak = max(self._peak, counts.ready)
        depth = Text("queue depth  ")
        if bound(counts.maxsize) != "unbounded":
            depth.append_text(_bar(counts.ready, counts.maxsize))
            depth.append(f"  {counts.ready}/{bound(counts.maxsize)}")
        else:
            depth.append_text(_bar(counts.ready, self._peak))
            depth.append(f"  {counts.ready} (unbounded, peak seen {self._peak})")
        held = Text("held         ")
        held.append(f"{counts.leased} leased", style="cyan")
        held.append(f"   {counts.delayed} delayed   ")
        held.append(f"{counts.dead} dead", style="red" if counts.dead else "")
        flow = Text("rates        ")
        flow.append(f"in {_per_second(put_rate)}", style="green")
        flow.append(f"   out {_per_second(out_rate)}", style="yellow")
        if snapshot.totals.put is None:
            flow.append("   (this store keeps no totals)", style="dim")
        oldest = Text(f"oldest ready {age(snapshot.oldest_ready_age)}")
        if snapshot.oldest_ready_age is None:
            oldest.append("   (this store does not record put times)", style="dim")
        parts: list[Any] = [depth, held, flow, oldest]
        if counts.is_shutdown:
            parts.append(Text("shut down: puts are refused", style="bold red"))
        stamp = time.strftime("%H:%M:%S", time.localtime(snapshot.read_at))
        parts.append(
            Text(f"\nupdated {stamp}, every {self._interval:g} s; Ctrl-C stops", style="bold")
        )
        return Panel(Group(*parts), title=f"conveyor watch | {self._where}", expand=False)
