"""``conveyor worker URL NAME module:function``: run a handler over a durable queue.

The handler is imported from the current directory as ``python -m`` would (the directory
comes first on ``sys.path``); ``conveyor.work()`` runs it, with the signals handled:
SIGTERM or SIGINT stop gracefully (exit status 0 after a clean drain), a second SIGINT
stops at once.  Everything it says goes through ``logging`` to standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from .._exceptions import ConveyorError
from .._urls import redacted

__all__ = ["add_worker_parser", "import_handler", "run_worker"]

_log = logging.getLogger("conveyor.worker")


def _count(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, not {text!r}")
    return value


def _seconds(text: str, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 if positive else value >= 0) or value == float("inf"):
        kind = "a positive" if positive else "a non-negative"
        raise argparse.ArgumentTypeError(f"expected {kind} number of seconds, not {text!r}")
    return value


def add_worker_parser(commands: Any) -> None:
    """Add the ``worker`` command to *commands* (the parser's subparsers)."""
    worker = commands.add_parser(
        "worker",
        help="run module:function on every item of a durable queue, with retries",
        description="Run a handler on the queue's items, several at once: an item whose"
        " handler returns is acknowledged; one whose handler raises is retried with"
        " exponential backoff, then moved to the dead letters with its traceback."
        "  SIGTERM or SIGINT stop gracefully (running handlers get --grace seconds, then"
        " their items are given back); a second SIGINT stops at once.",
    )
    worker.add_argument(
        "url", metavar="URL", help="where the queue lives: sqlite:///file.db, redis://host:6379/0"
    )
    worker.add_argument("name", metavar="NAME", help="the queue's name")
    worker.add_argument(
        "handler",
        metavar="module:function",
        help="the handler to import, e.g. myapp.tasks:handle (an async def, or with"
        " --threads a plain function)",
    )
    worker.add_argument(
        "--concurrency",
        type=lambda text: _count(text, 1),
        default=8,
        metavar="N",
        help="handlers running at once (default: 8)",
    )
    worker.add_argument(
        "--threads", action="store_true", help="run a blocking handler in a pool of threads"
    )
    worker.add_argument(
        "--retries",
        type=lambda text: _count(text, 0),
        default=3,
        metavar="N",
        help="retries of a failed item before it goes dead (default: 3)",
    )
    worker.add_argument(
        "--backoff",
        type=lambda text: _seconds(text, False),
        default=1.0,
        metavar="SECONDS",
        help="wait before the first retry, doubled at each next one (default: 1)",
    )
    worker.add_argument(
        "--grace",
        type=lambda text: _seconds(text, False),
        default=30.0,
        metavar="SECONDS",
        help="how long running handlers may finish at a stop (default: 30)",
    )
    worker.add_argument(
        "--lease-timeout",
        type=lambda text: _seconds(text, True),
        default=30.0,
        metavar="SECONDS",
        help="how long a dead worker's items stay away (default: 30)",
    )
    worker.add_argument(
        "--processing-timeout",
        type=lambda text: _seconds(text, True),
        default=None,
        metavar="SECONDS",
        help="how long a handler may hold an item before it is delivered again (default: no bound)",
    )
    worker.add_argument(
        "--summary-every",
        type=lambda text: _seconds(text, True),
        default=60.0,
        help=argparse.SUPPRESS,
    )


def import_handler(target: str) -> Callable[[Any], Any]:
    """Import the callable *target* names, as ``"package.module:function"``.

    Raises:
        ImportError: The text is malformed, the module cannot be imported, or it
            has no such callable.
    """
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise ImportError(
            f"handler {target!r} is not of the form module:function (e.g. myapp.tasks:handle)"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: the project's own modules
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"cannot import module {module_name!r} for handler {target!r}: {exc}"
            f" (run from the directory that holds it, or set PYTHONPATH)"
        ) from exc
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ImportError(
                f"module {module_name!r} has no {attribute!r} (handler {target!r})"
            ) from None
    if not callable(found):
        raise ImportError(f"handler {target!r} is not callable: {found!r}")
    handler: Callable[[Any], Any] = found
    return handler


def run_worker(args: argparse.Namespace) -> int:
    """Run ``conveyor worker``; return the exit status (0 after a clean drain)."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        handler = import_handler(args.handler)
    except ImportError as exc:
        _log.error("conveyor worker: %s", exc)
        return 2
    if args.url.lower().startswith("memory:"):
        _log.error("conveyor worker: a memory:// queue lives in one process: give a durable URL")
        return 2
    try:
        clean = asyncio.run(_work(args, handler))
    except KeyboardInterrupt:  # before the worker took over the signals: nothing held
        return 130
    except (ConveyorError, TypeError, ValueError, OSError) as exc:
        _log.error("conveyor worker: %s: %s", redacted(args.url), exc)
        return 1
    code = 0 if clean else 1
    stuck = [t for t in threading.enumerate() if t.name.startswith("conveyor-work")]
    if any(thread.is_alive() for thread in stuck):
        # A blocking handler cannot be interrupted, and the interpreter would wait for
        # its thread at exit: its item was given back already, so the process ends now.
        _log.warning("conveyor worker: %d handler threads still running are abandoned", len(stuck))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


async def _work(args: argparse.Namespace, handler: Callable[[Any], Any]) -> bool:
    from .. import open_queue, work

    async with open_queue(
        args.url,
        name=args.name,
        lease_timeout=args.lease_timeout,
        processing_timeout=args.processing_timeout,
    ) as queue:
        _log.info(
            "conveyor worker: %s on queue %r at %s, %d at once",
            args.handler,
            args.name,
            redacted(args.url),
            args.concurrency,
        )
        stats = await work(
            queue,
            handler,
            concurrency=args.concurrency,
            retries=args.retries,
            backoff=args.backoff,
            grace=args.grace,
            threads=args.threads,
            signals=True,
            summary_every=args.summary_every,
        )
    return stats.clean
