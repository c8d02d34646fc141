"""Putting items into a Redis queue, and taking back the items of a cancelled put.

Concurrent puts (and retracts) of one store are merged into one round trip each (group
commit).  The put is the hottest path of all, so its ``EVALSHA`` is encoded here, from
parts encoded once per incarnation, rather than by the connection layer's encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._exceptions import QueueShutDown
from .._base import PutOptions
from ._connection import _Coalescer
from ._runner import OperationContext
from ._scripts import _PUT, _PUT_JOBS, _RETRACT, job_keys
from ._wire import _pack_args


class ItemPuts:
    """Put items into the queue in merged batches, and retract those of a cancelled put.

    Args:
        context: Runs its scripts; its identity names the epoch a put is encoded for.
    """

    def __init__(self, context: OperationContext) -> None:
        self._runner, self._identity, self._listener, keys = context
        self._put_script = self._runner.script(_PUT)
        self._retract_script = self._runner.script(_RETRACT)
        self._retract_keys = [
            keys[role]
            for role in ("meta", "ops", "fresh", "holes", "items", "attempts", "ready", "delayed")
        ] + job_keys(keys)
        self._put_jobs_script = self._runner.script(_PUT_JOBS)
        self._put_jobs_keys = [
            keys[role]
            for role in ("meta", "ops", "fresh", "holes", "ready", "delayed", "items", "putat")
        ] + job_keys(keys)
        # The parts of a put's EVALSHA that never change, encoded once: before the batch
        # token (once per incarnation: see _command_before_token), and after it.
        self._put_keys = [
            keys[role]
            for role in (
                "meta",
                "ops",
                "fresh",
                "holes",
                "ready",
                "delayed",
                "waiters",
                "items",
                "leased",
                "lease",
                "attempts",
                "putat",
            )
        ] + job_keys(keys)
        self._put_epoch: str | None = None
        self._put_before = b""
        self._put_after = _pack_args(self._runner.after_token)
        # A put's result: the id of its first item (stored), 0 (no room) or None (shut down).
        # The durable layer's writer is the only caller of put(), with up to put_depth
        # calls under way, and is never cancelled mid-commit: the first call's round trip
        # runs in its caller, with no runner task.  Up to four batches in flight on the
        # put lane's connection, applied in order.
        self._lane = self._runner.lane()
        self._puts: _Coalescer[Sequence[bytes], int | None] = _Coalescer(
            self._flush_puts, inline=True, depth=4
        )
        self._retracts: _Coalescer[list[str], bool] = _Coalescer(self._flush_retracts)
        # Calls under way, and whether one of them was refused for room: a call under way
        # meanwhile was made before its caller knew, and must not overtake it (put.lua
        # refuses those sent before the refusal, chained; this, those sent after it).
        self._open = 0
        self._refused = False

    async def put(self, payloads: Sequence[bytes]) -> bool:
        """Append *payloads* as ready items, all or none, if the queue has room for all.

        Concurrent calls share one round trip.  A call whose caller is cancelled before
        its round trip starts stores nothing.  A call that finds no round trip in flight
        makes its own in the calling task: cancelled during it, its items may or may not
        be stored (the durable layer's writer, the one caller there, is not cancelled
        mid-commit).  Calls that queued behind it go together in a round trip of their
        own, which stores them even if their callers are cancelled meanwhile.

        Room is judged against the queue's stored bound, read by the put's script.

        Args:
            payloads: Serialized items, in order; never empty.

        Returns:
            ``True`` if every payload was stored; ``False`` if there was no room.

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: The store failed; nothing was stored, unless the message says
                that the put may have been stored (it was sent and no reply came).
        """
        self._listener.touch()
        first = await self._submit(payloads)
        if first is None:
            raise QueueShutDown
        return first > 0

    async def put_returning_ids(self, payloads: Sequence[bytes]) -> tuple[bool, list[str] | None]:
        """Append *payloads* as ``put()`` does, and name the items it stored.

        Ids come from a counter that only grows, so a name never means another item.

        Args:
            payloads: Serialized items, in order; never empty.

        Returns:
            Whether the items were stored, and their ids in the order of *payloads*
            (``None`` when nothing was stored).

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: As for ``put()``.
        """
        self._listener.touch()
        first = await self._submit(payloads)
        if first is None:
            raise QueueShutDown
        if first <= 0:
            return False, None
        return True, [str(item_id) for item_id in range(first, first + len(payloads))]

    async def put_jobs(
        self, payloads: Sequence[bytes], options: Sequence[PutOptions]
    ) -> list[str | None] | None:
        """Store *payloads* with per-item job options, all or none (see ``Store.put_jobs``).

        One script run, one round trip, replayed (not run twice) if resent after a lost
        reply; the dedup check and the writes are atomic on the server.

        Args:
            payloads: Serialized items, in order; never empty.
            options: One ``PutOptions`` per payload.

        Returns:
            ``None`` when there was no room; else per payload its id, or ``None`` where
            a duplicate key skipped it.

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: As for ``put()``.
        """
        self._listener.touch()
        args: list[Any] = [*self._runner.head("put_jobs"), len(payloads)]
        for payload, option in zip(payloads, options, strict=True):
            args += [
                repr(float(option.delay)),
                str(option.priority),
                "-" if option.key is None else "k" + option.key,
                "" if option.ttl is None else repr(float(option.ttl)),
                bytes(payload),
            ]
        reply = await self._runner.change(
            self._put_jobs_script,
            self._put_jobs_keys,
            args,
            "the put may or may not have been stored",
        )
        if reply[0] == b"shutdown":
            raise QueueShutDown
        if reply[0] == 0:
            return None
        return [str(item_id) if item_id else None for item_id in reply[1:]]

    async def _submit(self, payloads: Sequence[bytes]) -> int | None:
        self._open += 1
        try:
            return await self._puts.submit(payloads)
        finally:
            self._open -= 1
            if not self._open:
                self._refused = False

    async def retract(self, item_ids: Sequence[str]) -> list[bool]:
        """Delete items just put, all or none, if every one is still ready and unclaimed.

        An item counts as claimed once any claim leased it, even if the lease was given
        back since.  Concurrent calls share one round trip; each call is all or none.

        Args:
            item_ids: Ids from ``put_returning_ids()``.

        Returns:
            For each id, ``True`` if its item was deleted: all ``True`` or all ``False``.

        Raises:
            BackendError: The store failed; nothing was retracted, unless the message
                says that the retract may have run.
        """
        ids = list(item_ids)
        if not ids or not all(item_id.isdigit() for item_id in ids):
            return [False] * len(ids)
        return [await self._retracts.submit(ids)] * len(ids)

    async def _flush_retracts(self, batch: list[list[str]]) -> list[bool]:
        args: list[Any] = [*self._runner.head("retract"), len(batch)]
        args += [len(ids) for ids in batch]
        for ids in batch:
            args += ids
        reply = await self._runner.change(
            self._retract_script,
            self._retract_keys,
            args,
            "the put's items may or may not have been taken back after its cancellation",
        )
        return [bool(flag) for flag in reply]

    def _command_before_token(self) -> bytes:
        epoch = self._identity.epoch
        if epoch != self._put_epoch:
            self._put_before = _pack_args(
                [
                    "EVALSHA",
                    self._put_script.sha,
                    len(self._put_keys),
                    *self._put_keys,
                    f"put@{epoch}",
                ]
            )
            self._put_epoch = epoch
        return self._put_before

    async def _flush_puts(self, groups: list[Sequence[bytes]]) -> list[int | None]:
        if self._refused:  # behind a put refused for room: refused too, unsent
            return [0] * len(groups)
        # Encoded here rather than by _pack, as the hot path: only the token, the shape
        # and the payloads vary.
        token = self._runner.token("put").encode()
        before = self._command_before_token()
        parts = [b"", before, b"", self._put_after]
        count = sum(len(group) for group in groups)
        if count == len(groups):  # every group holds one item: no sizes
            shape = [-len(groups)]
        else:
            shape = [len(groups), *(len(group) for group in groups)]
        parts.append(_pack_args(shape))
        parts += [b"$%d\r\n%b\r\n" % (len(p), p) for group in groups for p in group]
        # EVALSHA, sha, the number of keys, the keys, field, token, ttl, channel.
        parts[0] = b"*%d\r\n" % (7 + len(self._put_keys) + len(shape) + count)

        def encode(chained: bool) -> bytes:
            # Chained ("+"): the server runs it only right after the batch before it.
            text = token + b"+" if chained else token
            parts[2] = b"$%d\r\n%b\r\n" % (len(text), text)
            return b"".join(parts)

        reply = await self._runner.send_in_lane(
            self._lane, self._put_script, encode, "the put may or may not have been stored"
        )
        if reply == b"shutdown":
            return [None] * len(groups)
        first, flags, published = reply.split()
        if published == b"1":  # see ChangeListener.wake_soon
            self._listener.wake_soon()
        next_id = int(first)
        results: list[int | None] = []
        for group, flag in zip(groups, flags, strict=True):
            if flag == 49:  # b"1"
                results.append(next_id)
                next_id += len(group)
            else:
                results.append(0)
                self._refused = True
        return results
