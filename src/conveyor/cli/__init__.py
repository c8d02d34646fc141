"""The ``conveyor`` command line: ``demo``, ``bench``, and ``shutdown|resume|maxsize``.

The core never imports this package; ``rich`` (the ``cli`` extra) is imported only when
the live view is shown, and the benchmark's contenders only when ``bench`` runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._urls import redacted

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors never quote a password of a URL argument."""

    def error(self, message: str) -> NoReturn:
        """Print a usage error, with URLs redacted, and exit with status 2."""
        # e.g. "unrecognized arguments: redis://:secret@host" for a mistyped option.
        super().error(" ".join(redacted(word) for word in message.split(" ")))


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every ``conveyor`` command."""
    from .. import __version__
    from ..examples import EXAMPLES
    from ..examples._stage import ROLES, positive_float
    from ._dashboard import add_dashboard_parser
    from ._operate import bound

    parser = _Parser(
        prog="conveyor",
        description="asyncio.Queue, drop-in and faster: see it work, and measure it.",
    )
    parser.add_argument("--version", action="version", version=f"conveyor {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    listing = "\n".join(f"  {e.number}  {e.name:<9} {e.summary}" for e in EXAMPLES)
    demo = commands.add_parser(
        "demo",
        help="run one of the five classic producer/consumer programs and watch the queue",
        description="Run one of the five classic producer/consumer programs and show the\n"
        "queue at work: a live view on a terminal, timestamped lines otherwise.",
        epilog=f"examples (by number or name):\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "example",
        nargs="?",
        default="bounded",
        metavar="EXAMPLE",
        help="which program to run (default: 5, bounded)",
    )
    demo.add_argument(
        "--backend",
        metavar="URL",
        default="memory://",
        help="the queue to run on: memory:// (default), sqlite:///file.db, redis://host:6379/0",
    )
    demo.add_argument(
        "--speed",
        type=positive_float,
        default=None,
        metavar="X",
        help="divide every sleep of the lesson by X (default: 1, and 2.5 for program 5 so"
        " that it ends within 15 seconds)",
    )
    demo.add_argument(
        "--role",
        choices=ROLES,
        default="both",
        help="run the producers, the consumer, or both (default); separate processes need"
        " a durable --backend",
    )
    demo.add_argument("--seed", type=int, default=None, help="seed the random values")
    view = demo.add_mutually_exclusive_group()
    view.add_argument(
        "--plain", action="store_true", help="print timestamped lines even on a terminal"
    )
    view.add_argument(
        "--live", action="store_true", help="show the live view even when not on a terminal"
    )

    bench = commands.add_parser(
        "bench",
        help="measure conveyor against asyncio.Queue and the other queues users pick",
        description="Run the side-by-side benchmark: contenders alternate round by round in"
        " this process; the table shows median throughput and the median per-round ratio.",
    )
    bench.add_argument(
        "--quick", action="store_true", help="fewer items and rounds (about a minute in all)"
    )
    bench.add_argument(
        "--loop",
        choices=("asyncio", "uvloop", "both"),
        default="asyncio",
        help="the event loop to run on (default: asyncio)",
    )
    bench.add_argument(
        "--group",
        default="memory,thread,sqlite,redis",
        metavar="GROUPS",
        help="comma-separated groups to run (default: memory,thread,sqlite,redis)",
    )
    bench.add_argument(
        "--redis-url",
        metavar="URL",
        default=None,
        help="a Redis server to use (default: start a private redis-server if installed)",
    )
    bench.add_argument(
        "--markdown", metavar="FILE", default=None, help="also write the table as Markdown"
    )
    bench.add_argument("--rounds", type=int, default=None, help=argparse.SUPPRESS)
    bench.add_argument("--scale", type=positive_float, default=1.0, help=argparse.SUPPRESS)

    shutdown = commands.add_parser(
        "shutdown",
        help="shut a durable queue down for every process, until `conveyor resume`",
        description="Shut the queue down for every process: puts are refused, and getters"
        " drain what is left, then stop.  It is stored with the queue, so it also refuses"
        " programs started later, until `conveyor resume URL NAME`.",
    )
    _queue_arguments(shutdown)
    shutdown.add_argument(
        "--immediate",
        action="store_true",
        help="also delete the items waiting in the queue (getters stop at once)",
    )
    resume = commands.add_parser(
        "resume",
        help="undo a shutdown: the queue takes items again, for every process",
        description="Undo a stored shutdown: the queue takes items again, for every process"
        " (running ones see it at their next put or get).",
    )
    _queue_arguments(resume)
    maxsize = commands.add_parser(
        "maxsize",
        help="show or change the bound stored with a durable queue",
        description="Show the queue's bound, or change it for every process at once:"
        " blocked puts re-check against the new bound.",
    )
    _queue_arguments(maxsize)
    maxsize.add_argument(
        "n",
        nargs="?",
        type=bound,
        default=None,
        metavar="N",
        help="the new bound, 0 for unbounded (default: show the current one)",
    )
    add_dashboard_parser(commands)
    return parser


def _queue_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "url", metavar="URL", help="where the queue lives: sqlite:///file.db, redis://host:6379/0"
    )
    command.add_argument("name", metavar="NAME", help="the queue's name")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``conveyor`` command line.

    Args:
        argv: The arguments, without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit status: 0 on success, 1 when the command failed, 2 on bad usage.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(args, parser)
    if args.command == "bench":
        from ..bench import run_benchmarks

        groups = [g.strip() for g in args.group.split(",") if g.strip()]
        loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
        return run_benchmarks(
            groups=groups,
            loops=loops,
            quick=args.quick,
            redis_url=args.redis_url,
            markdown=args.markdown,
            rounds=args.rounds,
            scale=args.scale,
            # Quoted in the Markdown file: --redis-url may carry a password.
            command=" ".join(["conveyor", *map(redacted, sys.argv[1:] if argv is None else argv)]),
        )
    if args.command in ("shutdown", "resume", "maxsize"):
        from ._operate import run_operation

        return run_operation(args)
    if args.command == "dashboard":
        from ._dashboard import run_dashboard

        return run_dashboard(args)
    parser.print_help(sys.stderr)
    return 2
