"""The live view of ``conveyor demo`` (needs ``rich``, the ``cli`` extra)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..examples import Example, Run

__all__ = ["LiveRun", "render", "run_live"]

_BAR_WIDTH = 30
_REFRESH_SECONDS = 0.1
_SHARED_REFRESH_SECONDS = 0.5


class LiveRun(Run):
    """A :class:`Run` that keeps its last messages for the view instead of printing them."""

    def __init__(self, *, speed: float, seed: int | None, keep: int = 8) -> None:
        super().__init__(speed=speed, seed=seed, quiet=True)
        self.recent: deque[str] = deque(maxlen=keep)

    def say(self, text: str) -> None:
        """Keep one of the lesson's messages for the view."""
        super().say(text)
        self.recent.append(f"{self.elapsed():6.2f}s  {text}")


def _bar(value: float, full: float, width: int = _BAR_WIDTH) -> Text:
    filled = 0 if full <= 0 else round(width * min(value, full) / full)
    bar = Text("█" * filled, style="green")
    bar.append("░" * (width - filled), style="grey37")
    return bar


def render(run: LiveRun, title: str, subtitle: str = "", finished: bool = False) -> Panel:
    """Build one frame of the live view from *run* and its queue's statistics.

    Args:
        run: The run being shown; its queue must be attached.
        title: The panel's title.
        subtitle: A line under the title (what the program shows).
        finished: Whether the program has ended (changes the status line).

    Returns:
        A renderable panel.
    """
    parts: list[Any] = [Text(subtitle, style="italic")] if subtitle else []
    queue = run.queue
    if queue is None:
        parts.append(Text("opening the queue..."))
    else:
        stats = queue.statistics()
        maxsize = stats.max_size
        depth = Text("queue depth  ")
        if maxsize > 0:
            depth.append_text(_bar(stats.current_size, maxsize))
            depth.append(f"  {stats.current_size}/{maxsize:g}")
        else:
            depth.append_text(_bar(stats.current_size, max(stats.peak_size, 1)))
            depth.append(f"  {stats.current_size} (unbounded, peak {stats.peak_size})")
        parts.append(depth)
        waiting = Text("waiting      ")
        waiting.append(f"{stats.tasks_waiting_put} blocked in put()", style="yellow")
        waiting.append("   ")
        waiting.append(f"{stats.tasks_waiting_get} blocked in get()", style="cyan")
        waiting.append(f"   unfinished tasks {stats.unfinished_tasks}")
        parts.append(waiting)
        most_put = max([*run.produced.values(), 1])
        all_put = max(sum(run.produced.values()), *run.consumed.values(), 1)
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        table.add_column("task")
        table.add_column("items", justify="right")
        table.add_column("")
        for who, count in sorted(run.produced.items()):
            table.add_row(f"{who} put", str(count), _bar(count, most_put, 20))
        for who, count in sorted(run.consumed.items()):
            table.add_row(f"{who} got", str(count), _bar(count, all_put, 20))
        parts.append(Text(""))
        parts.append(table)
    parts.append(Text(""))
    parts.append(Text("\n".join(run.recent), style="dim"))
    status = "finished" if finished else "running"
    parts.append(Text(f"\n{status}, elapsed {run.elapsed():.1f} s", style="bold"))
    return Panel(Group(*parts), title=title, expand=False)


async def _refresh_shared_counts(run: LiveRun) -> None:
    """Re-read a durable queue's shared counters now and then, so the view shows them.

    Other processes change a durable queue; its ``statistics()`` only knows what this
    process last read, and ``refresh()`` (durable queues only) reads the store.
    """
    while True:
        await asyncio.sleep(_SHARED_REFRESH_SECONDS)
        refresh = getattr(run.queue, "refresh", None)
        if refresh is not None:
            # A failed read only leaves the view stale; the program reports real errors.
            with contextlib.suppress(Exception):
                await refresh()


async def run_live(
    example: Example,
    url: str,
    role: str,
    speed: float,
    seed: int | None,
    title: str,
    subtitle: str = "",
    console: Console | None = None,
) -> LiveRun:
    """Run *example* while redrawing the live view about ten times a second.

    Args:
        example: The program to run.
        url: The queue's URL.
        role: ``"producer"``, ``"consumer"`` or ``"both"``.
        speed: Divides every sleep of the lesson.
        seed: Seed for the random values, or ``None``.
        title: The view's title.
        subtitle: A line under the title.
        console: Where to draw; a console on standard output by default.

    Returns:
        The finished run.
    """
    run = LiveRun(speed=speed, seed=seed)
    main: Any = example.load().main
    console = console if console is not None else Console()
    # The view is redrawn from the event loop, not from rich's refresh thread: the queue
    # and the counters are not meant to be read from another thread.
    with Live(render(run, title, subtitle), console=console, auto_refresh=False) as live:
        program = asyncio.ensure_future(main(url, role=role, run=run))
        refresher = asyncio.ensure_future(_refresh_shared_counts(run))
        try:
            while not program.done():
                await asyncio.wait({program}, timeout=_REFRESH_SECONDS)
                live.update(render(run, title, subtitle, finished=program.done()), refresh=True)
            program.result()
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            if not program.done():
                program.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await program
    if not console.is_terminal:
        # Off a terminal, rich leaves the cursor after the last frame's border.
        console.line()
    return run
