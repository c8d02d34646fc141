"""Waking the tasks that wait for a queue file to change, in this process or another.

Wake-ups across processes on one machine go through a directory next to the file,
``<file>-wake/``: a store whose tasks wait binds a Unix datagram socket there (once, on
its first wait, until it closes) and the event loop reads it; every commit that wrote
something sends the id of the queue it changed to each socket of the directory (its
listing is read again only when the directory changes), and only the stores of that
queue wake (a datagram that names no queue, as earlier conveyors send, wakes any
store).  When every commit woke every waiting store of the file, eight processes
waiting on other queues made one task's puts 1.5-1.8 ms each instead of 0.4 ms, the
cores busy with their needless claims.  A socket whose process died refuses the
datagram and is removed.  Where the directory is too deep for a socket's path (a
``sockaddr_un`` holds about 100 bytes), Linux binds the socket to an abstract name
derived from its path instead, and the file at the path only marks it: a queue file in
a deep folder was woken only by the safety net, 11 ms p50 instead of 0.5 ms.  The safety
net for what that misses (another machine on a network file system, a deep path where
there are no abstract names, processes in other network namespaces, a full socket
buffer): while a task
waits, the worker thread checks ``PRAGMA data_version`` (which changes when another
connection commits) every 20 ms; with nobody waiting it sleeps.  Changes made through
stores of this process wake the waiters of the same queue here at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
import sys
import threading
from collections.abc import Callable

from .._worker import ThreadWorker, resolve

__all__ = ["WATCH_INTERVAL", "Channel", "Waiters"]

# sockaddr_un holds 108 bytes on Linux, 104 on macOS.
_MAX_SOCKET_PATH = 100
_HAS_CHANNEL = hasattr(socket, "AF_UNIX") and sys.platform != "win32"
_HAS_ABSTRACT = sys.platform.startswith("linux")


def _address(path: str) -> str | bytes | None:
    """Return where the socket named *path* in a ``-wake`` directory listens.

    The path itself when it fits in a socket address; else, on Linux, an abstract name
    derived from it (the same in every process), the file at the path then only marking
    that it exists; else None: there can be none.
    """
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    if _HAS_ABSTRACT:
        return b"\0conveyor-wake-" + hashlib.sha256(os.fsencode(path)).hexdigest()[:48].encode()
    return None


class Channel:
    """One store's datagram socket in ``<file>-wake/``, and its sending to the others'.

    Every method but ``fileno`` runs on the store's worker thread.
    """

    def __init__(self, path: str) -> None:
        self._dir = os.path.realpath(path) + "-wake"
        self._own: str | None = None
        self._listener: socket.socket | None = None
        self._sender: socket.socket | None = None
        self._listing: tuple[int, tuple[str, ...]] | None = None  # (mtime, sockets)

    def listen(self) -> socket.socket | None:
        """Bind this store's socket; return it, or None where there can be none."""
        if not _HAS_CHANNEL or self._listener is not None:
            return None
        own = os.path.join(self._dir, f"{os.getpid()}-{secrets.token_hex(4)}")
        address = _address(own)
        if address is None:
            return None  # data_version alone, then
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            listener.setblocking(False)
            os.makedirs(self._dir, exist_ok=True)
            listener.bind(address)
            if isinstance(address, bytes):
                # The mark that senders list, made once the name is bound.
                with open(own, "x"):
                    pass
        except OSError:
            listener.close()
            return None
        self._own, self._listener = own, listener
        return listener

    def notify(self, queue: int) -> None:
        """Send the id of the *queue* just changed to every other store's socket."""
        try:
            mtime = os.stat(self._dir).st_mtime_ns
        except OSError:
            return  # nobody ever waited on this file
        if self._listing is None or self._listing[0] != mtime:
            try:
                names = os.listdir(self._dir)
            except OSError:
                return
            peers = (os.path.join(self._dir, name) for name in names)
            self._listing = (mtime, tuple(p for p in peers if p != self._own))
        if not self._listing[1]:
            return
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        message = b"%d" % queue
        for peer in self._listing[1]:
            address = _address(peer)
            if address is None:
                continue
            try:
                self._sender.sendto(message, address)
            except (ConnectionRefusedError, FileNotFoundError):
                # Its process died without removing it: nobody will ever read it.
                with contextlib.suppress(OSError):
                    os.unlink(peer)
            except OSError:
                pass  # a full buffer holds wake-ups already; data_version covers the rest

    def close(self) -> None:
        """Close the sockets and remove this store's.  Idempotent."""
        for sock in (self._listener, self._sender):
            if sock is not None:
                sock.close()
        self._listener = self._sender = None
        if self._own is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._own)
            with contextlib.suppress(OSError):
                os.rmdir(self._dir)  # the last one out
            self._own = None


WATCH_INTERVAL = 0.02

# Stores of this process by database file, so that a commit wakes the waiters of every
# store on the same file at once instead of at their next data_version check.  Tuples
# replaced under the lock, so that the worker threads read them without taking it.
_peers: dict[str, tuple[Waiters, ...]] = {}
_peers_lock = threading.Lock()


class Waiters:
    """The tasks of one store waiting for a change of its queue in the file at *path*.

    Created on the event loop the store runs on; the other stores of this process on the
    same file wake them (see ``join()``).

    Args:
        path: The file's path.
        queue: Returns the id of the store's queue in the file open now.
    """

    def __init__(self, path: str, queue: Callable[[], int]) -> None:
        self._key = os.path.realpath(path)
        self._queue = queue
        self._loop = asyncio.get_running_loop()
        self._waiters: set[asyncio.Future[None]] = set()
        self.channel = Channel(path)
        self._listening: int | None = None  # the descriptor the loop reads, once bound
        self._asked_to_listen = False
        self._left = False

    def join(self) -> None:
        """From now on, be woken by the commits of this process's other stores on the file."""
        with _peers_lock:
            _peers[self._key] = (*_peers.get(self._key, ()), self)

    def leave(self) -> None:
        """Wake every waiter, and stop being woken by the other stores.  Idempotent."""
        self._wake()
        self._left = True
        if self._listening is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._listening)
            self._listening = None  # the socket is closed on the worker thread, last
        with _peers_lock:
            peers = tuple(p for p in _peers.get(self._key, ()) if p is not self)
            if peers:
                _peers[self._key] = peers
            else:
                _peers.pop(self._key, None)

    def committed(self) -> None:
        """Wake the waiters of the queue's other stores, here and elsewhere (any thread)."""
        # Called on the worker thread after a commit.  The queue on top of this store
        # knows its own changes; only the other stores of the queue need telling, and
        # only those with someone waiting (the rest re-check before they wait).
        queue = self._queue()
        for peer in _peers.get(self._key, ()):
            if peer is not self and peer._waiters and peer._queue() == queue:
                peer.changed()
        self.channel.notify(queue)

    def changed(self) -> None:
        """Wake every waiter soon (from any thread)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._wake)

    async def wait(self, worker: ThreadWorker, timeout: float) -> None:
        """Wait for a wake-up, or *timeout* seconds, with *worker* checking for changes."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.add(future)
        if not self._asked_to_listen:
            self._asked_to_listen = True
            worker.submit(self._listen)
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

    def _listen(self) -> None:
        # On the worker thread: binding creates a file.  The loop reads the socket.
        listener = self.channel.listen()
        if listener is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._read_from, listener)

    def _read_from(self, listener: socket.socket) -> None:
        if self._left or listener.fileno() < 0:
            return  # closed meanwhile
        try:
            self._loop.add_reader(listener.fileno(), self._readable, listener)
        except (NotImplementedError, OSError):
            return  # a loop that cannot watch it: data_version alone
        self._listening = listener.fileno()

    def _readable(self, listener: socket.socket) -> None:
        mine = b"%d" % self._queue()
        wake = False
        with contextlib.suppress(OSError):
            while message := listener.recv(64):
                # Another queue's id leaves this one asleep; anything else wakes it.
                wake = wake or message == mine or not message.isdigit()
        if wake:
            self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            resolve(waiter, None)
