"""A thread of a store's own that runs its blocking work, and hands results to the loop.

The SQLite store does every statement here, so that no disk I/O ever blocks the event
loop.  The worker knows nothing of SQL: it runs the functions it is given, one at a time,
in order, and while someone watches (:attr:`ThreadWorker.watching`) it also calls a
check between jobs, every *interval* seconds.  When no job waits it calls *idle*, for
housekeeping in bounded steps (the SQLite store gives free pages back to the file system
there): a step that says more is left runs again as long as no job comes.

Results come back through a pipe the loop watches: one byte per batch of results, written
only when the loop has not been told yet, so one read wakes it for many results (cheaper
than ``call_soon_threadsafe``'s self-pipe per result).  Where the loop cannot watch a pipe
(Windows' selector), each result goes through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["ThreadWorker", "resolve"]

R = TypeVar("R")


class _Stop:
    pass


_STOP = _Stop()


class ThreadWorker:
    """Run functions on one thread, in order; deliver their results to the event loop.

    Args:
        name: The thread's name.
        check: Called on the thread between jobs while :attr:`watching` is non-zero.
        interval: Seconds between two calls of *check*.
        finish: Called on the thread once, when it stops (e.g. to close a connection).
        idle: Called on the thread when no job waits; returns whether it has more to do.

    Attributes:
        watching: How many callers want *check* called (each adds 1, then takes it back).
    """

    def __init__(
        self,
        name: str,
        *,
        check: Callable[[], None],
        interval: float,
        finish: Callable[[], None],
        idle: Callable[[], bool] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._check = check
        self._interval = interval
        self._finish = finish
        self._idle = idle
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.watching = 0
        self._stopped: asyncio.Future[None] = self._loop.create_future()
        self._results: collections.deque[tuple[Any, ...]] = collections.deque()
        self._signalled = False
        self._pipe: tuple[int, int] | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (and watch the result pipe)."""
        self._open_pipe()
        self._thread.start()

    async def call(
        self, fn: Callable[..., R], *args: Any, orphan: Callable[[R], None] | None = None
    ) -> R:
        """Run ``fn(*args)`` on the thread and return its result (or raise its exception).

        Args:
            fn: The work; it runs after every job submitted before it.
            args: Its arguments.
            orphan: Called on the loop with the result when the caller was cancelled
                meanwhile, to undo what nobody will use.
        """
        future: asyncio.Future[R] = self._loop.create_future()
        self._jobs.put((fn, args, future, orphan))
        return await future

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the thread, and let its result go."""
        self._jobs.put((fn, args, self._loop.create_future(), None))

    def wake(self) -> None:
        """Wake the thread, so that it starts calling *check* if someone now watches."""
        self._jobs.put(None)

    async def stop(self) -> None:
        """Finish the jobs already submitted, stop the thread and settle every result."""
        if self._thread.is_alive():
            self._jobs.put(_STOP)
            await self._stopped
        self._close_pipe()  # after the thread: every result it sent is settled

    def _run(self) -> None:
        last_check = 0.0
        idle = self._idle
        more = False  # idle work left: run it while no job comes
        while True:
            try:
                if more:
                    job = self._jobs.get_nowait()
                else:
                    job = self._jobs.get(timeout=self._interval if self.watching else None)
            except queue.Empty:
                job = None
                if more and idle is not None:
                    more = idle()
            if job is _STOP:
                break
            if job is not None:
                fn, args, future, orphan = job
                try:
                    result, ok = fn(*args), True
                except BaseException as exc:
                    result, ok = exc, False
                self._deliver(future, ok, result, orphan)
                if idle is not None and self._jobs.empty():
                    more = idle()
            if self.watching:
                now = time.monotonic()
                if now - last_check >= self._interval:
                    last_check = now
                    self._check()
        self._finish()
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(resolve, self._stopped, None)

    def _deliver(
        self,
        future: asyncio.Future[Any],
        ok: bool,
        result: Any,
        orphan: Callable[[Any], None] | None,
    ) -> None:
        if self._pipe is None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(_settle, future, ok, result, orphan)
            return
        self._results.append((future, ok, result, orphan))
        if not self._signalled:
            self._signalled = True
            # OSError: full (a loop that stopped reading): nobody is waiting.
            with contextlib.suppress(OSError):
                os.write(self._pipe[1], b"\0")

    def _take_results(self) -> None:
        # On the loop, when the pipe is readable.  Cleared before draining, so that a
        # result appended meanwhile either is drained here or writes a new byte.
        assert self._pipe is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            os.read(self._pipe[0], 4096)
        self._signalled = False
        results = self._results
        while results:
            try:
                _settle(*results.popleft())
            except Exception as exc:  # as the loop does for a failing callback
                self._loop.call_exception_handler(
                    {"message": f"{self._thread.name}: settling a result failed", "exception": exc}
                )

    def _open_pipe(self) -> None:
        if sys.platform == "win32":  # select() on Windows watches sockets only
            return
        read_fd, write_fd = os.pipe()
        try:
            os.set_blocking(read_fd, False)
            os.set_blocking(write_fd, False)
            self._loop.add_reader(read_fd, self._take_results)
        except (NotImplementedError, AttributeError, OSError):
            os.close(read_fd)
            os.close(write_fd)
            return
        self._pipe = (read_fd, write_fd)

    def _close_pipe(self) -> None:
        if self._pipe is None:
            return
        read_fd, write_fd = self._pipe
        with contextlib.suppress(Exception):
            self._loop.remove_reader(read_fd)
        self._take_results()
        self._pipe = None
        os.close(read_fd)
        os.close(write_fd)


def _settle(
    future: asyncio.Future[Any], ok: bool, result: Any, orphan: Callable[[Any], None] | None
) -> None:
    # On the loop: hand a worker thread's result to the task awaiting it.
    if future.done():
        # The caller was cancelled while the work ran: undo what it won't use.
        if ok and orphan is not None:
            orphan(result)
        return
    if ok:
        future.set_result(result)
    else:
        future.set_exception(result)


def resolve(future: asyncio.Future[Any], value: Any) -> None:
    """Set *future*'s result to *value*, unless it is done already."""
    if not future.done():
        future.set_result(value)
