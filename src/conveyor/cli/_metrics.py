"""``conveyor metrics URL``: serve a store's queues as Prometheus metrics.

``prometheus_client`` serves ``/metrics`` from its own thread; the stores live on this
process's event loop, and each scrape asks the loop to read them (``read_snapshot()``:
at most three reads a queue, two on Redis and one on SQLite today) and waits for the
answer.  Nothing is read between scrapes.  Without ``--queue``, every queue of the store
is exported, listed again at each scrape so that new queues appear.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
from typing import Any

from .._exceptions import ConveyorError, MissingDependencyError, QueueNotFoundError
from .._stores import QueueSnapshot, list_queues, open_existing_store, read_snapshot
from .._urls import redacted
from ..backends._base import Store
from ._output import one_line

__all__ = ["run_metrics"]

# A scrape waits this long for the stores; Prometheus' own default scrape timeout is 10 s.
_READ_TIMEOUT = 20.0


def run_metrics(args: argparse.Namespace) -> int:
    """Run ``conveyor metrics`` until Ctrl-C or SIGTERM.

    Returns:
        0 when stopped by Ctrl-C or SIGTERM; 1 when it cannot start (the extra is missing, a store
        or queue does not exist, the port is taken), with one line on standard error.
    """
    try:
        import conveyor.metrics  # noqa: F401
    except ImportError as exc:
        print(f"conveyor metrics: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return 1
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0
    except (ConveyorError, ValueError, TypeError, OSError, MissingDependencyError) as exc:
        print(f"conveyor metrics: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return 1
    return 0


class _Stores:
    """The stores of the exported queues, opened once and kept open, on the event loop."""

    def __init__(self, url: str, names: list[str] | None) -> None:
        self._url = url
        self._names = names
        self._open: dict[str, tuple[Any, Store]] = {}

    async def start(self) -> None:
        """Check the store (and the queues named) exist, opening them."""
        names = self._names if self._names is not None else await list_queues(self._url)
        for name in names:
            await self._store(name)

    async def _store(self, name: str) -> Store:
        if name not in self._open:
            opening = open_existing_store(self._url, name)
            store = await opening.__aenter__()
            self._open[name] = (opening, store)
        return self._open[name][1]

    async def read(self) -> list[QueueSnapshot]:
        """Read every exported queue; a queue gone since (wiped) is left out."""
        names = self._names if self._names is not None else await list_queues(self._url)
        snapshots = []
        for name in names:
            try:
                store = await self._store(name)
            except QueueNotFoundError:
                continue
            snapshots.append(await read_snapshot(store, name))
        return snapshots

    async def aclose(self) -> None:
        """Close every store."""
        for opening, _ in self._open.values():
            await opening.__aexit__(None, None, None)
        self._open.clear()


async def _serve(args: argparse.Namespace) -> None:
    from prometheus_client import CollectorRegistry, start_http_server

    from ..metrics import StoreCollector

    loop = asyncio.get_running_loop()
    stores = _Stores(args.url, args.queue)
    # Reads of one scrape at a time: scrapes that overlap wait their turn.
    turn = threading.Lock()

    def read() -> list[QueueSnapshot]:
        with turn:
            return asyncio.run_coroutine_threadsafe(stores.read(), loop).result(_READ_TIMEOUT)

    try:
        await stores.start()
        registry = CollectorRegistry()
        registry.register(StoreCollector(read))
        server, thread = start_http_server(args.port, addr=args.host, registry=registry)
        try:
            host, port = str(server.server_address[0]), server.server_address[1]
            shown = f"[{host}]" if ":" in host else host
            which = ", ".join(args.queue) if args.queue else "every queue"
            print(
                f"conveyor metrics: serving http://{shown}:{port}/metrics ({which} at"
                f" {redacted(args.url)}); Ctrl-C stops",
                flush=True,
            )
            stop = asyncio.Event()
            # An exporter is stopped by its service manager with SIGTERM: close cleanly.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
    finally:
        await stores.aclose()
