"""Waking the tasks that wait for a queue file to change, in this process or another.

Wake-ups across processes: while a task waits in ``SQLiteStore.wait_changed()``, the
worker thread checks ``PRAGMA data_version`` (which changes when another connection
commits) every 20 ms; with nobody waiting it sleeps.  Changes made through stores of this
process wake their waiters at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading

from .._worker import ThreadWorker, resolve

__all__ = ["WATCH_INTERVAL", "Waiters"]

WATCH_INTERVAL = 0.02

# Stores of this process by database file, so that a commit wakes the waiters of every
# store on the same file at once instead of at their next data_version check.  Tuples
# replaced under the lock, so that the worker threads read them without taking it.
_peers: dict[str, tuple[Waiters, ...]] = {}
_peers_lock = threading.Lock()


class Waiters:
    """The tasks of one store waiting for a change of the file at *path*.

    Created on the event loop the store runs on; the other stores of this process on the
    same file wake them (see ``join()``).
    """

    def __init__(self, path: str) -> None:
        self._key = os.path.realpath(path)
        self._loop = asyncio.get_running_loop()
        self._waiters: set[asyncio.Future[None]] = set()

    def join(self) -> None:
        """From now on, be woken by the commits of this process's other stores on the file."""
        with _peers_lock:
            _peers[self._key] = (*_peers.get(self._key, ()), self)

    def leave(self) -> None:
        """Wake every waiter, and stop being woken by the other stores.  Idempotent."""
        self._wake()
        with _peers_lock:
            peers = tuple(p for p in _peers.get(self._key, ()) if p is not self)
            if peers:
                _peers[self._key] = peers
            else:
                _peers.pop(self._key, None)

    def committed(self) -> None:
        """Wake the waiters of this process's other stores on the file (from any thread)."""
        # Called on the worker thread after a commit.  The queue on top of this store
        # knows its own changes; only the other stores on the file need telling, and
        # only those with someone waiting (the rest re-check before they wait).
        for peer in _peers.get(self._key, ()):
            if peer is not self and peer._waiters:
                peer.changed()

    def changed(self) -> None:
        """Wake every waiter soon (from any thread)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._wake)

    async def wait(self, worker: ThreadWorker, timeout: float) -> None:
        """Wait for a wake-up, or *timeout* seconds, with *worker* checking for changes."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.add(future)
        worker.watching += 1
        if worker.watching == 1:
            worker.wake()  # so that it starts checking
        handle = self._loop.call_later(max(0.0, timeout), resolve, future, None)
        try:
            await future
        finally:
            handle.cancel()
            self._waiters.discard(future)
            worker.watching -= 1

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            resolve(waiter, None)
