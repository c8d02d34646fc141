"""The ``conveyor`` command line: ``demo``, ``bench``, the operating commands, ``metrics``.

Operating commands (``_operate.py``): ``queues``, ``stats``, ``peek``, ``dead``,
``requeue``, ``purge``, ``shutdown``, ``resume``, ``maxsize``; ``watch`` (``_watch.py``);
``metrics`` (``_metrics.py``, a Prometheus exporter).  The core never imports this
package; ``rich`` (the ``cli`` extra) is imported only when a table or the live view is
shown, ``prometheus_client`` only when ``metrics`` runs, and the benchmark's contenders
only when ``bench`` runs.
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
    from ._operate import bound_argument
    from ._worker import add_worker_parser

    parser = _Parser(
        prog="conveyor",
        description="asyncio.Queue, drop-in and faster: see it work, measure it, and operate"
        " durable queues.",
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
        default="memory,thread,sqlite,redis,cluster",
        metavar="GROUPS",
        help="comma-separated groups to run (default: memory,thread,sqlite,redis,cluster;"
        " cluster runs only with --cluster)",
    )
    bench.add_argument(
        "--redis-url",
        metavar="URL",
        default=None,
        help="a Redis server to use (default: start a private redis-server if installed)",
    )
    bench.add_argument(
        "--cluster",
        metavar="URL",
        default=None,
        help="a Redis Cluster for the cluster group (queues on 3 primaries against 1):"
        " redis+cluster://host:port[,host:port,...]; without it the group is left out",
    )
    bench.add_argument(
        "--markdown", metavar="FILE", default=None, help="also write the table as Markdown"
    )
    bench.add_argument(
        "--json",
        metavar="FILE",
        default=None,
        help="also write every row, with each round's figures, as JSON (rewritten after"
        " each scenario)",
    )
    bench.add_argument(
        "--plot",
        metavar="DIR",
        default=None,
        help="draw the growth curves (items/s against backlog and against processes) into"
        " DIR as PNG files; needs matplotlib (the bench extra)",
    )
    bench.add_argument(
        "--from-json",
        metavar="FILE",
        default=None,
        help="run nothing: print the results that --json wrote to FILE, and write"
        " --markdown / --plot from them",
    )
    bench.add_argument("--rounds", type=int, default=None, help=argparse.SUPPRESS)
    bench.add_argument("--scale", type=positive_float, default=1.0, help=argparse.SUPPRESS)

    queues = commands.add_parser(
        "queues",
        help="list the queues of a store, with their counts",
        description="List every queue of the store: ready, delayed, leased and dead items,"
        " the stored maxsize, the shutdown mark and the oldest ready item's age (- where"
        " the store does not record it).  Reads only.",
    )
    _url_argument(queues)
    _json_argument(queues)
    stats = commands.add_parser(
        "stats",
        help="show one queue's counts and the totals its store keeps",
        description="Show one queue's counts, bound and shutdown mark, and the items ever"
        " put and deliveries ever made where the store counts them (- where it does not)."
        "  Reads only.",
    )
    _queue_arguments(stats)
    _json_argument(stats)
    peek = commands.add_parser(
        "peek",
        help="show the next ready items without claiming them",
        description="Show the next ready items, in the order getters will take them,"
        " without claiming or changing anything.",
    )
    _queue_arguments(peek)
    peek.add_argument("-n", type=_positive_int, default=10, help="how many items (default: 10)")
    _json_argument(peek)
    dead = commands.add_parser(
        "dead",
        help="show the dead letters, with attempts, error and time",
        description="Show the queue's dead letters, oldest first: id, deliveries, when and"
        " why each failed, and the item.  Reads only; `conveyor requeue` puts them back.",
    )
    _queue_arguments(dead)
    dead.add_argument("-n", type=_positive_int, default=100, help="how many at most (default: 100)")
    _json_argument(dead)
    requeue = commands.add_parser(
        "requeue",
        help="put dead letters back in the queue",
        description="Make dead letters ready again, with their attempts reset: those whose"
        " ids are given (as `conveyor dead` shows them), or --all.",
    )
    _queue_arguments(requeue)
    requeue.add_argument("ids", nargs="*", metavar="ID", help="ids of dead letters")
    requeue.add_argument("--all", action="store_true", help="requeue every dead letter")
    _json_argument(requeue)
    purge = commands.add_parser(
        "purge",
        help="delete a queue's waiting items, dead letters, or both",
        description="Delete items for good and say how many: --ready (the waiting items,"
        " ready and delayed), --dead (the dead letters) or --all (both).  Leased items stay"
        " with the consumers that hold them.  Asks first on a terminal; otherwise needs"
        " --yes.",
    )
    _queue_arguments(purge)
    which = purge.add_mutually_exclusive_group(required=True)
    which.add_argument("--ready", action="store_true", help="the waiting items")
    which.add_argument("--dead", action="store_true", help="the dead letters")
    which.add_argument("--all", action="store_true", help="both")
    purge.add_argument("--yes", "-y", action="store_true", help="do not ask")
    _json_argument(purge)
    watch = commands.add_parser(
        "watch",
        help="watch a queue live: depth, rates, leased, dead, oldest age",
        description="Show a queue live, updated every second: depth against maxsize,"
        " rates in and out (where the store counts them), leased, dead, the oldest ready"
        " item's age.  A live view on a terminal, one line a second otherwise.  Each"
        " update reads the store twice at most (counts, totals).  Ctrl-C stops.",
    )
    _queue_arguments(watch)
    watch.add_argument(
        "--interval",
        type=positive_float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between updates (default: 1)",
    )
    watch.add_argument(
        "--count", type=_positive_int, default=None, help="stop after this many updates"
    )
    view = watch.add_mutually_exclusive_group()
    view.add_argument("--plain", action="store_true", help="one line an update, even on a terminal")
    view.add_argument("--json", action="store_true", help="one JSON object an update")
    metrics = commands.add_parser(
        "metrics",
        help="serve a store's queues as Prometheus metrics",
        description="Serve /metrics for Prometheus: per queue, gauges of ready, delayed,"
        " leased and dead items, maxsize, the oldest ready item's age and the shutdown"
        " mark, and the counters the store keeps.  The store is read on each scrape."
        "  Needs pip install 'conveyor[metrics]'.",
    )
    _url_argument(metrics)
    metrics.add_argument(
        "--port", type=int, default=9808, help="the port to listen on (default: 9808)"
    )
    metrics.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
    )
    metrics.add_argument(
        "--queue",
        action="append",
        default=None,
        metavar="NAME",
        help="a queue to export (repeat for more; default: every queue of the store)",
    )

    shutdown = commands.add_parser(
        "shutdown",
        help="shut a durable queue down for every process, until `conveyor resume`",
        description="Shut the queue down for every process: puts are refused, and getters"
        " drain what is left, then stop.  It is stored with the queue, so it also refuses"
        " programs started later, until `conveyor resume URL NAME`.",
    )
    _queue_arguments(shutdown)
    _json_argument(shutdown)
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
    resume.add_argument(
        "--missing-ok",
        action="store_true",
        help="succeed when the store or queue does not exist yet (nothing to resume), as"
        " before a first run",
    )
    _json_argument(resume)
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
        type=bound_argument,
        default=None,
        metavar="N",
        help="the new bound, 0 for unbounded (default: show the current one)",
    )
    _json_argument(maxsize)
    add_dashboard_parser(commands)
    add_worker_parser(commands)
    return parser


def _url_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "url", metavar="URL", help="the store: sqlite:///file.db, redis://host:6379/0"
    )


def _json_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", action="store_true", help="print JSON, for scripts")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return value


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
            cluster_url=args.cluster,
            markdown=args.markdown,
            json_file=args.json,
            plot_dir=args.plot,
            from_json=args.from_json,
            rounds=args.rounds,
            scale=args.scale,
            # Quoted in the Markdown file: --redis-url and --cluster may carry a password.
            command=" ".join(["conveyor", *map(redacted, sys.argv[1:] if argv is None else argv)]),
        )
    if args.command == "watch":
        from ._watch import run_watch

        return run_watch(args)
    if args.command == "metrics":
        from ._metrics import run_metrics

        return run_metrics(args)
    from ._operate import OPERATIONS, run_operation

    if args.command == "requeue" and bool(args.ids) == args.all:
        parser.error("requeue: give the ids of dead letters, or --all (not both)")

    if args.command in OPERATIONS:
        return run_operation(args)
    if args.command == "dashboard":
        from ._dashboard import run_dashboard

        return run_dashboard(args)
    if args.command == "worker":
        from ._worker import run_worker

        return run_worker(args)
    parser.print_help(sys.stderr)
    return 2
