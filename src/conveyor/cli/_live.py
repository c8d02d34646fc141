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

from ..examples import find
from ..examples._stage import Stage

__all__ = ["LiveStage", "render", "run_live"]

_BAR_WIDTH = 30
_REFRESH_SECONDS = 0.1
_SHARED_REFRESH_SECONDS = 0.5


class LiveStage(Stage):
    """A ``Stage`` that keeps the program's last lines for the view instead of printing."""

    def __init__(self, name: str, *, speed: float, seed: int | None, keep: int = 8) -> None:
        super().__init__(name, speed=speed, seed=seed, on_line=self._keep)
        self.recent: deque[str] = deque(maxlen=keep)

    def _keep(self, line: str) -> None:
        self.recent.append(f"{self.elapsed():6.2f}s  {line}")


def _bar(value: float, full: float, width: int = _BAR_WIDTH) -> Text:
    filled = 0 if full <= 0 else round(width * min(value, full) / full)
    bar = Text("█" * filled, style="green")
    bar.append("░" * (width - filled), style="grey37")
    return bar


def render(stage: LiveStage, title: str, subtitle: str = "", finished: bool = False) -> Panel:
    """Build one frame of the live view from *stage* and its queue's statistics.

    Args:
        stage: The run being shown.
        title: The panel's title.
        subtitle: A line under the title (what the program shows).
        finished: Whether the program has ended (changes the status line).

    Returns:
        A renderable panel.
    """
    parts: list[Any] = [Text(subtitle, style="italic")] if subtitle else []
    queue = stage.queue
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
        # The program's items, None sentinels included, as this process moved them.
        planned = max(stage.example.items, stats.total_put, stats.total_got, 1)
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        table.add_column("items")
        table.add_column("", justify="right")
        table.add_column("")
        table.add_row("put", str(stats.total_put), _bar(stats.total_put, planned, 20))
        table.add_row("got", str(stats.total_got), _bar(stats.total_got, planned, 20))
        parts.append(Text(""))
        parts.append(table)
    parts.append(Text(""))
    parts.append(Text("\n".join(stage.recent), style="dim"))
    status = "finished" if finished else "running"
    parts.append(Text(f"\n{status}, elapsed {stage.elapsed():.1f} s", style="bold"))
    return Panel(Group(*parts), title=title, expand=False)


async def _refresh_shared_counts(stage: LiveStage) -> None:
    """Re-read a durable queue's shared counters now and then, so the view shows them.

    Other processes change a durable queue; its ``statistics()`` only knows what this
    process last read, and ``refresh()`` (durable queues only) reads the store.
    """
    while True:
        await asyncio.sleep(_SHARED_REFRESH_SECONDS)
        refresh = getattr(stage.queue, "refresh", None)
        if refresh is not None:
            # A failed read only leaves the view stale; the program reports real errors.
            with contextlib.suppress(Exception):
                await refresh()


async def run_live(
    name: str,
    url: str,
    role: str,
    speed: float,
    seed: int | None,
    title: str,
    console: Console | None = None,
) -> LiveStage:
    """Run the program *name* while redrawing the live view about ten times a second.

    Args:
        name: The program to run (``"bounded"``...).
        url: The queue's URL.
        role: ``"producer"``, ``"consumer"`` or ``"both"``.
        speed: Divides every sleep of the lesson.
        seed: Seed for the random values, or ``None``.
        title: The view's title.
        console: Where to draw; a console on standard output by default.

    Returns:
        The finished stage.
    """
    stage = LiveStage(name, speed=speed, seed=seed)
    subtitle = find(name).summary
    console = console if console is not None else Console()
    # The view is redrawn from the event loop, not from rich's refresh thread: the queue
    # and the counters are not meant to be read from another thread.
    with Live(render(stage, title, subtitle), console=console, auto_refresh=False) as live:
        program = asyncio.ensure_future(stage.play(url, role))
        refresher = asyncio.ensure_future(_refresh_shared_counts(stage))
        try:
            while not program.done():
                await asyncio.wait({program}, timeout=_REFRESH_SECONDS)
                live.update(render(stage, title, subtitle, finished=program.done()), refresh=True)
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
    return stage
