"""The durable queue's methods that read or change its shared state in the store.

``asyncio.Queue`` has no need for them: ``refresh()``, ``aqsize()``, ``aempty()`` and
``afull()`` read the shared counters exactly (the synchronous methods report the local
view), ``set_maxsize()`` changes the stored bound, ``ashutdown()`` waits for a shutdown
to be stored and ``resume()`` undoes one.  ``SharedStateMethods`` gives them to
``DurableQueue``, over the shared state, its reader and the lifecycle part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._abc import check_maxsize
from .._statistics import QueueStatistics
from ._lifecycle import Lifecycle
from ._state import QueueState
from ._view import ViewReader


class SharedStateMethods:
    """The shared-state methods of ``DurableQueue``."""

    _state: QueueState
    _reader: ViewReader
    _lifecycle: Lifecycle

    if TYPE_CHECKING:

        def statistics(self) -> QueueStatistics: ...

    # -- reading the shared state ---------------------------------------------------

    async def refresh(self) -> QueueStatistics:
        """Read the shared counters from the store, update the local view and return it.

        Returns:
            The same snapshot ``statistics()`` returns from now on.

        Raises:
            BackendError: The store failed.
        """
        await self._reader.refresh()
        return self.statistics()

    async def aqsize(self) -> int:
        """Return the exact number of items waiting in the shared queue.

        Raises:
            BackendError: The store failed.
        """
        return await self._reader.exact_size()

    async def aempty(self) -> bool:
        """Return ``True`` if no item waits in the shared queue (read from the store).

        Raises:
            BackendError: The store failed.
        """
        return await self._reader.exact_size() == 0

    async def afull(self) -> bool:
        """Return ``True`` if the shared queue holds ``maxsize`` items (read from the store).

        Raises:
            BackendError: The store failed.
        """
        return 0 < self._state.maxsize <= await self._reader.exact_size()

    # -- changing it ----------------------------------------------------------------

    async def set_maxsize(self, maxsize: float) -> None:
        """Change the queue's bound, for every process, at once.

        The bound is stored with the queue: openers that give no ``maxsize`` use it, and
        one that gives another is refused.  Every put of every process is checked
        against the stored bound, so the new one holds from the next put on; putters
        blocked on the old one (in any process) re-check at once.  Items already beyond
        a lowered bound stay (``qsize()`` reports at most the bound meanwhile), and puts
        wait until the queue is below it.  The command
        ``conveyor maxsize URL NAME N`` does the same.

        Args:
            maxsize: The new bound; ``<= 0`` means unbounded.

        Raises:
            TypeError: *maxsize* is not a number.
            ValueError: *maxsize* is NaN.
            BackendError: The store failed; the bound is unchanged, unless the message
                says that it may have been stored.
        """
        check_maxsize(maxsize)
        state = self._state
        state.bind_loop()
        await state.store.set_maxsize(maxsize)
        state.bound_epoch += 1
        state.maxsize = maxsize
        state.changed()  # this process's blocked putters re-check against the new bound

    async def ashutdown(self, immediate: bool = False) -> None:
        """Shut the queue down for every process, and wait until the store has it.

        As ``shutdown()``, which acts locally at once and writes in the background;
        this one returns once the shutdown is stored, and raises if it could not be.

        Args:
            immediate: Also delete the items waiting in the shared queue.

        Raises:
            BackendError: The store failed; the shutdown may not be stored.
        """
        await self._lifecycle.ashutdown(immediate)

    async def resume(self) -> None:
        """Undo a shutdown, for every process: the queue takes items again.

        The shutdown mark stored with the queue is cleared.  This process's view is
        cleared at once; every other process's as soon as it next reads the store:
        ``put()`` and ``get()`` read it before refusing on a shutdown seen earlier, so
        they work again without reopening the queue (``put_nowait()`` and
        ``get_nowait()``, which do no I/O, refuse once more and have it read in the
        background).  Calls that already raised ``QueueShutDown`` stay raised.  Items
        deleted by an immediate shutdown do not come back.  The command
        ``conveyor resume URL NAME`` does the same.  Only durable queues have it: an
        in-memory queue's shutdown ends with its program, so a rerun starts afresh.

        Raises:
            BackendError: The store failed; the queue stays shut down, unless the
                message says that the resume may have been stored.
        """
        await self._lifecycle.resume()
