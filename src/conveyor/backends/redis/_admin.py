"""The Redis queue as a whole: its counts, shutdown mark, bound and dead letters.

Reads and changes that concern the queue rather than an item or a lease: what
``statistics()``, ``shutdown()``, ``resume()``, the maxsize and the command line's
dead-letter commands come down to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._base import DeadLetter, StoreCounts
from ._connection import _Coalescer
from ._replies import read_bound
from ._runner import OperationContext
from ._scripts import (
    _BIND_MAXSIZE,
    _COUNTS,
    _DEAD_LETTERS,
    _REQUEUE,
    _RESUME,
    _SET_MAXSIZE,
    _SHUTDOWN,
    job_keys,
)


class QueueAdmin:
    """Read the queue's counts and dead letters; shut it down, resume it, bound it.

    Args:
        context: Runs its scripts; its identity checks each count's epoch, keeps the last.
    """

    def __init__(self, context: OperationContext) -> None:
        self._runner, self._identity, self._listener, keys = context
        self._counts_script = self._runner.script(_COUNTS)
        self._shutdown_script = self._runner.script(_SHUTDOWN)
        self._resume_script = self._runner.script(_RESUME)
        self._bind_maxsize_script = self._runner.script(_BIND_MAXSIZE)
        self._set_maxsize_script = self._runner.script(_SET_MAXSIZE)
        self._dead_script = self._runner.script(_DEAD_LETTERS)
        self._requeue_script = self._runner.script(_REQUEUE)
        self._counts_keys = [
            *(
                keys[role]
                for role in ("meta", "ready", "delayed", "leased", "dead", "fresh", "holes")
            ),
            *job_keys(keys),
        ]
        self._shutdown_keys = [
            keys[role]
            for role in ("meta", "ops", "items", "ready", "delayed", "attempts", "fresh", "holes")
        ] + job_keys(keys)
        self._meta_keys = [keys["meta"], keys["ops"]]
        self._dead_keys = [keys[role] for role in ("dead", "deadinfo", "items", "attempts")]
        self._requeue_keys = [
            keys[role] for role in ("meta", "ops", "ready", "dead", "deadinfo", "attempts")
        ] + job_keys(keys)
        self._bound_keys = [keys["meta"]]
        self._counts: _Coalescer[None, StoreCounts] = _Coalescer(self._flush_counts)

    async def counts(self) -> StoreCounts:
        """Read the shared counters in one atomic step.

        Delayed items whose delay has passed count as ready.  Concurrent calls share
        one round trip.

        Raises:
            BackendError: The store failed.
        """
        self._listener.touch()
        return await self._counts.submit(None)

    async def _flush_counts(self, batch: list[None]) -> list[StoreCounts]:
        reply = await self._runner.read(self._counts_script, self._counts_keys, [])
        epoch = reply.pop().decode()
        if epoch != self._identity.epoch:
            raise await self._identity.reset(epoch)
        ready, due, delayed, leased, dead, shut = (int(x) for x in reply[:6])
        counts = StoreCounts(
            ready=ready + due,
            delayed=delayed - due,
            leased=leased,
            dead=dead,
            is_shutdown=bool(shut),
            maxsize=read_bound(reply[6]) or 0,
        )
        self._identity.saw(counts)
        return [counts] * len(batch)

    async def shutdown(self, immediate: bool) -> int:
        """Mark the queue shut down for every process.

        Args:
            immediate: Also delete every ready and delayed item (they count as done).

        Returns:
            How many items were deleted.

        Raises:
            BackendError: The store failed.
        """
        args: list[Any] = [*self._runner.head(), int(immediate)]
        reply = await self._runner.change(
            self._shutdown_script,
            self._shutdown_keys,
            args,
            "the shutdown may or may not have been recorded",
        )
        return int(reply[0])

    async def resume(self) -> None:
        """Clear the queue's shutdown mark for every process, and wake their waiters.

        Raises:
            BackendError: The store failed; the mark is unchanged, unless the message
                says that the resume may have been recorded.
        """
        await self._runner.change(
            self._resume_script,
            self._meta_keys,
            self._runner.head(),
            "the resume may or may not have been recorded",
        )

    async def bind_maxsize(self, maxsize: float | None) -> float | None:
        """Set meta's ``maxsize`` if absent, then read it (see ``Store.bind_maxsize()``)."""
        # Set-if-absent is idempotent: a resend after a lost reply is harmless.
        arg = "" if maxsize is None else repr(maxsize)
        reply = await self._runner.read(self._bind_maxsize_script, self._bound_keys, [arg])
        return read_bound(reply)

    async def set_maxsize(self, maxsize: float) -> None:
        """Overwrite meta's ``maxsize`` and wake putters (see ``Store.set_maxsize()``)."""
        await self._runner.change(
            self._set_maxsize_script,
            self._meta_keys,
            [*self._runner.head(), repr(maxsize)],
            "the new maxsize may or may not have been stored",
        )

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Return up to *limit* dead items, oldest first.

        Args:
            limit: The most dead letters to return.

        Raises:
            BackendError: The store failed.
        """
        if limit <= 0:
            return []
        reply = await self._runner.read(self._dead_script, self._dead_keys, [limit])
        letters = []
        for i in range(0, len(reply), 4):
            failed_at, _, error = reply[i + 3].decode("utf-8", "replace").partition("|")
            letters.append(
                DeadLetter(
                    item_id=reply[i].decode(),
                    payload=reply[i + 1],
                    attempts=int(reply[i + 2]),
                    error=error,
                    failed_at=float(failed_at),
                )
            )
        return letters

    async def requeue_dead(self, item_ids: Sequence[str] | None) -> int:
        """Make dead items ready again, with their attempts reset.

        Args:
            item_ids: The dead items to requeue; ``None`` means all.

        Returns:
            How many items were requeued.

        Raises:
            BackendError: The store failed.
        """
        args: list[Any] = self._runner.head()
        args += ["*"] if item_ids is None else ["", *item_ids]
        reply = await self._runner.change(
            self._requeue_script,
            self._requeue_keys,
            args,
            "the dead items may or may not have been requeued",
        )
        return int(reply[0])
