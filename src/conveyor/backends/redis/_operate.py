"""Operating a Redis queue from outside: peek, purge, totals and rates, the oldest item's age.

What the command line (``conveyor peek|purge|queues|stats``) and the metrics exporter
come down to; the queue's own work never uses these.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from .._base import PURGEABLE, PeekedItem, Purgeable, StoreTotals
from ._connection import RedisConnection
from ._runner import OperationContext
from ._scripts import job_keys, lua_script

_KEY_UNESCAPES = {"%25": "%", "%7B": "{", "%7D": "}"}
_ESCAPED = re.compile("%(?:25|7B|7D)")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_SCAN_COUNT = 1000
RATE_WINDOW = 60.0  # seconds: rates are over the newest snapshot at least this old


class QueueOperations:
    """Peek at a queue, purge it, read its totals; list the queues beside it.

    Args:
        context: Runs its scripts; its identity checks each reply's epoch.
        link: The connection layer, for the plain commands (``SCAN``).
    """

    def __init__(self, context: OperationContext, link: RedisConnection) -> None:
        self._runner, self._identity, self._listener, keys = context
        self._link = link
        self._peek_script = self._runner.script(lua_script("peek"))
        self._purge_script = self._runner.script(lua_script("purge"))
        self._totals_script = self._runner.script(lua_script("totals"))
        self._oldest_script = self._runner.script(lua_script("oldest"))
        # The fresh list and its holes (never-claimed items, in a layout that keeps them
        # apart): named as every key of the queue is, read as empty where they do not exist.
        base = keys["meta"][: -len("meta")]
        fresh = [keys.get("fresh", base + "fresh"), keys.get("holes", base + "holes")]
        self._peek_keys = [
            *(keys[role] for role in ("meta", "ready", "delayed", "items", "attempts")),
            *fresh,
            *job_keys(keys),
        ]
        purged = ("meta", "ops", "items", "attempts", "ready", "delayed", "dead", "deadinfo")
        self._purge_keys = [*(keys[role] for role in purged), *fresh, *job_keys(keys)]
        self._meta_keys = [keys["meta"]]
        self._oldest_keys = [
            keys["meta"],
            *fresh,
            keys["ready"],
            keys["delayed"],
            keys.get("putat", base + "putat"),
            job_keys(keys)[0],  # prio
        ]
        # "<prefix>:{<name>}:meta": the prefix is what comes before the hash tag, whose
        # escaped name holds no brace.
        self._prefix = keys["meta"][: keys["meta"].rindex(":{")]

    async def peek(self, limit: int) -> list[PeekedItem]:
        """Return up to *limit* ready items in claim order, changing nothing.

        Raises:
            BackendError: The store failed.
        """
        if limit <= 0:
            return []
        reply = await self._runner.read(self._peek_script, self._peek_keys, [limit])
        await self._check_epoch(reply[0])
        return [
            PeekedItem(item_id=reply[i].decode(), payload=reply[i + 1], attempts=int(reply[i + 2]))
            for i in range(1, len(reply), 3)
        ]

    async def purge(self, which: Purgeable) -> int:
        """Delete the waiting items, the dead letters or both, and wake the waiters.

        A purge resent after a lost reply replays the first one's reply instead of
        running again (it would delete items put since).

        Raises:
            ValueError: *which* is not ``"ready"``, ``"dead"`` or ``"all"``.
            BackendError: The store failed.
        """
        if which not in PURGEABLE:
            raise ValueError(f"purge takes one of {', '.join(PURGEABLE)}, not {which!r}")
        reply = await self._runner.change(
            self._purge_script,
            self._purge_keys,
            [*self._runner.head("purge"), which],
            "the purge may or may not have run",
        )
        return int(reply[0])

    async def totals(self) -> StoreTotals:
        """Return the queue's totals (meta's counters) and its rates over the last minute.

        One read: the counters, the snapshots that puts and claims take of them (see
        ``lua/rates.lua``) and the server's time.  The rates are over the newest snapshot
        at least 60 seconds old; ``None`` before there is one.

        Raises:
            BackendError: The store failed.
        """
        put, delivered, acked, dead, snaps, now, epoch = await self._runner.read(
            self._totals_script, self._meta_keys, []
        )
        await self._check_epoch(epoch)
        put_total, finished = int(put), int(acked) + int(dead)
        totals = StoreTotals(put=put_total, delivered=int(delivered), finished=finished)
        clock = float(now)
        before = None
        for entry in bytes(snaps).decode().split(","):
            fields = entry.split()
            if len(fields) == 3 and float(fields[0]) <= clock - RATE_WINDOW:
                before = (float(fields[0]), int(fields[1]), int(fields[2]))
        if before is None:
            return totals
        taken_at, put_then, finished_then = before
        span = clock - taken_at
        return dataclasses.replace(
            totals,
            put_per_minute=max(0, put_total - put_then) * 60.0 / span,
            finished_per_minute=max(0, finished - finished_then) * 60.0 / span,
            rate_span=span,
        )

    async def oldest_ready_age(self) -> float | None:
        """Return how many seconds ago the ready item a claim would take first was put.

        One read (``lua/oldest.lua``), O(log n) whatever the backlog: puts record their time
        (the server's clock, ``TIME``) as a checkpoint at most once a second, so the age is
        that of the checkpoint at or before the item's id: at most one second more than the
        truth (or 1% of the age the oldest waiting item had when this one was put, if that
        is more: behind a long backlog, checkpoints thin out). An item older than every
        checkpoint kept (put by a conveyor that recorded none, or back from a lease, a retry
        or the dead letters over ten minutes after its put) gets the age of the oldest
        checkpoint kept: a lower bound.

        Returns:
            The age; ``0.0`` when no item is ready; ``None`` when the queue has no put
            time recorded at all.

        Raises:
            BackendError: The store failed.
        """
        age, _, epoch = await self._runner.read(self._oldest_script, self._oldest_keys, [])
        await self._check_epoch(epoch)
        return float(age) if age else None

    async def exists(self) -> bool:
        """Return whether the queue's keys exist (it was opened once and not wiped since).

        Raises:
            BackendError: The store failed.
        """
        *_, epoch = await self._runner.read(self._totals_script, self._meta_keys, [])
        return bool(epoch)

    async def queue_names(self) -> list[str]:
        """Return the names of every queue under this queue's prefix, sorted.

        ``SCAN`` walks the database's keyspace in steps, without blocking the server
        (each primary's in turn, in a Redis Cluster); a queue made or wiped during the
        walk may or may not be listed.

        Raises:
            BackendError: The store failed, or the user may not run ``SCAN``.
        """
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self._prefix) + ":{*}:meta"
        start = len(self._prefix) + 2
        names: set[str] = set()
        # A Redis Cluster's keys are spread over its primaries: each is walked in turn.
        for node in await self._link.call(self._link.primaries):
            cursor: bytes | int = 0
            while True:
                scan = functools.partial(
                    self._link.command,
                    "SCAN",
                    cursor,
                    "MATCH",
                    pattern,
                    "COUNT",
                    _SCAN_COUNT,
                    node=node,
                )
                cursor, keys = await self._link.call(scan)
                for key in keys:
                    escaped = bytes(key).decode("utf-8", "replace")[start : -len("}:meta")]
                    if "{" not in escaped and "}" not in escaped:
                        names.add(_ESCAPED.sub(lambda m: _KEY_UNESCAPES[m.group()], escaped))
                if int(cursor) == 0:
                    break
        return sorted(names)

    async def _check_epoch(self, found: bytes | str) -> None:
        epoch = found.decode() if isinstance(found, bytes) else found
        if epoch != self._identity.epoch:
            raise await self._identity.reset(epoch)
