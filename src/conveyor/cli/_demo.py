"""``conveyor demo``: run a classic program and show the queue at work."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from .._durable import DurableQueue
from .._exceptions import ConveyorError
from .._urls import redacted
from ..examples import find
from ..examples._stage import Stage, check_role_fits

__all__ = ["run_demo", "summary"]


def run_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``conveyor demo`` with parsed *args*.

    Returns:
        The exit status.
    """
    try:
        example = find(args.example)
        check_role_fits(args.backend, args.role)
    except ValueError as exc:
        parser.error(str(exc))
    speed = args.speed if args.speed is not None else example.demo_speed
    live = args.live or (not args.plain and sys.stdout.isatty())
    rich_missing = False
    if live:
        try:
            import rich  # noqa: F401
        except ImportError:
            live, rich_missing = False, True
    shown = redacted(args.backend)
    stage: Stage
    try:
        if live:
            from ._live import run_live

            title = (
                f"conveyor demo {example.number} ({example.name}) | {shown}"
                f" | {args.role} | {speed:g}x"
            )
            stage = asyncio.run(
                run_live(example.name, args.backend, args.role, speed, args.seed, title)
            )
        else:
            print(
                f"conveyor demo: program {example.number} ({example.name}): {example.summary}"
                f" | backend {shown} | role {args.role} | speed {speed:g}x",
                flush=True,
            )
            if rich_missing:
                print("(for the live view: pip install 'conveyor[cli]')", flush=True)
            stage = Stage(example.name, speed=speed, seed=args.seed, on_line=_timestamped)
            asyncio.run(stage.play(args.backend, args.role))
        print(summary(stage), flush=True)
    except KeyboardInterrupt:
        return 130
    except (ConveyorError, ValueError, ImportError, OSError) as exc:
        # Bad URL, missing optional dependency, unreachable server: say what, not where.
        print(f"conveyor demo: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _timestamped(line: str) -> None:
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    print(f"{stamp}.{int(now % 1 * 1000):03d} {line}", flush=True)


def summary(stage: Stage) -> str:
    """Return the closing line of a demo: what moved, how long it took, how full it got."""
    text = f"done in {stage.elapsed():.1f} s"
    if stage.queue is None:
        return text
    stats = stage.queue.statistics()
    text += f": {stats.total_put} items put, {stats.total_got} got"
    if isinstance(stage.queue, DurableQueue):
        # A durable queue's sizes are this process's last view of a shared count (and
        # include items it claimed ahead): a peak made of them would claim too much.
        return text
    capacity = f"/{stats.max_size:g}" if stats.max_size > 0 else " (unbounded)"
    return f"{text}, peak depth {stats.peak_size}{capacity}"
