"""``conveyor demo``: run a classic program and show the queue at work."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from .._durable import DurableQueue
from .._exceptions import ConveyorError
from .._urls import redacted
from ..examples import Example, Run, find
from ..examples._common import check_role_fits

__all__ = ["run_demo"]


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
    header = (
        f"conveyor demo: program {example.number} ({example.name}): {example.summary}"
        f" | backend {shown} | role {args.role} | speed {speed:g}x"
    )
    try:
        if live:
            from ._live import run_live

            title = (
                f"conveyor demo {example.number} ({example.name}) | {shown}"
                f" | {args.role} | {speed:g}x"
            )
            run = asyncio.run(
                run_live(example, args.backend, args.role, speed, args.seed, title, example.summary)
            )
            print(summary(run), flush=True)
        else:
            print(header, flush=True)
            if rich_missing:
                print("(for the live view: pip install 'conveyor[cli]')", flush=True)
            plain = Run(speed=speed, seed=args.seed, timestamps=True)
            asyncio.run(_play(example, args.backend, args.role, plain))
            print(summary(plain), flush=True)
    except KeyboardInterrupt:
        return 130
    except (ConveyorError, ValueError, ImportError, OSError) as exc:
        # Bad URL, missing optional dependency, unreachable server: say what, not where.
        print(f"conveyor demo: error: {exc}", file=sys.stderr)
        return 1
    return 0


async def _play(example: Example, url: str, role: str, run: Run) -> Run:
    main: Any = example.load().main
    result: Run = await main(url, role=role, run=run)
    return result


def summary(run: Run) -> str:
    """Return the closing line of a demo: what moved, how long it took, how full it got."""
    put = sum(run.produced.values())
    got = sum(run.consumed.values())
    text = f"done in {run.elapsed():.1f} s: {put} items put, {got} got"
    if run.queue is None or isinstance(run.queue, DurableQueue):
        # A durable queue's sizes are this process's last view of a shared count (and
        # include items it claimed ahead): a peak made of them would claim too much.
        return text
    maxsize = run.queue.maxsize
    peak = max(run.peak_size, run.queue.statistics().peak_size)
    capacity = f"/{maxsize:g}" if maxsize > 0 else " (unbounded)"
    return f"{text}, peak depth {peak}{capacity}"
