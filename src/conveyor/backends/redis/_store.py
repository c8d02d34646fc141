"""The Redis backend: one durable queue shared by every machine that reaches the server.

``open_queue("redis://[user:password@]host:port/db", name=...)`` (``rediss://`` for TLS)
lands here through ``open_store()``.  The queue named *name* lives in these keys, e.g.
``conveyor:{jobs}:ready`` for the queue "jobs": the braces are literal, a hash tag that
would keep all of a queue's keys in one slot of a Redis Cluster.  In prefix and name,
``%``, ``{`` and ``}`` are written ``%25``, ``%7B`` and ``%7D`` (``queue_keys()``), so
that no two (prefix, name) pairs share a key and the hash tag is always the name; names
and prefixes without those characters keep the keys they always had::

    {prefix}:{name}:meta      hash: "format" (layout version), "epoch" (random, written
                              with the keys: the queue's incarnation), "seq" (last item
                              id), "dseq" (last delivery number), "deadseq" (dead-letter
                              order), "shutdown" ("1" once any process shut the queue
                              down, until one resumes it), "maxsize" (the queue's bound, as
                              a number, "0" unbounded; absent until an opener or
                              set_maxsize stores one, so queues of earlier versions need
                              no migration)
    {prefix}:{name}:items     hash: item id -> payload, for every item not yet acknowledged
    {prefix}:{name}:attempts  hash: item id -> deliveries so far; absent until the item is
                              first claimed, and "0" (not absent) after a claim given back or
                              a requeue, so that absence means "never claimed" (retract)
    {prefix}:{name}:ready     zset: item id, scored by the id itself, so claims are FIFO by
                              put order even for items that come back from a lease or a retry
    {prefix}:{name}:delayed   zset: item id scored by the time its retry delay ends
    {prefix}:{name}:leased    zset: item id scored by its lease deadline, plus a pin (a
                              member of over 64 bytes scored +inf: see _LEASED_PIN)
    {prefix}:{name}:lease     hash: item id -> number of its current delivery; a receipt is
                              "epoch:id:delivery", so one from an expired lease matches
                              nothing, and one of another queue or incarnation is told apart
    {prefix}:{name}:dead      zset: dead item id scored by the order of death
    {prefix}:{name}:deadinfo  hash: dead item id -> "failed_at|reason"
    {prefix}:{name}:ops:{client}  hash with a TTL: per client, the token and reply of its
                              last batched change, so that a batch resent after a lost reply
                              (a dropped connection, a restarted server) is not applied twice
    {prefix}:{name}:changed   pub/sub channel: a message (naming the changing client's ops
                              key) after every change someone may be blocked on: a put into
                              an empty queue (getters), a claim (putters), the last ack
                              (join), and every retry, failure, requeue and shutdown
    {prefix}:{name}:probe     never kept: open_queue tries each command the scripts run on
                              it, so that a permission the ACL user lacks is named at once

``open_queue`` refuses a server whose ``maxmemory-policy`` is ``allkeys-*`` (it would evict
these keys) and a user that may not run what the queue needs: ``EVALSHA``, ``SCRIPT LOAD``,
the commands of the scripts, ``PUBLISH`` and ``SUBSCRIBE``, on keys and channels
``{prefix}:{name}:*``; the error names what is missing.

Keys that vanish while a queue is open (``FLUSHALL``, a restart without persistence) take
the epoch with them, and ids and delivery numbers start again from 1.  Every script first
checks that meta holds the epoch the client knows, and otherwise changes nothing: the client
then moves to the new incarnation (making it, if nobody did) and raises
``StoreResetError`` once, with a warning naming the counts last seen.  Its
receipts of before acknowledge nothing; another queue's receipts raise
``ForeignReceiptError``.  Both checks read the receipt's text: no round trip.

An acknowledged item is deleted from every key: memory follows the items in flight, not
the items ever processed.  Every change is one Lua script, so it is atomic and a crash of
the client or the server (with AOF on) leaves each item wholly in one state.  Times are the
server's clock (``TIME``), so leases mean the same on every machine.  A lease is over at
its deadline: from then on its receipt acknowledges, retries, fails and extends nothing,
even before the next claim hands the item out again.

Throughput comes from batching: concurrent ``put``, ``claim``, ``ack`` and ``counts`` calls of
one store that arrive while a round trip of the same kind is in flight are merged into the
next round trip (group commit), so a busy queue pays one round trip per batch, not per item.

Connection errors are retried, with backoff, until ``retry_timeout`` seconds (default 10)
after the call began, then raise ``BackendUnavailableError`` naming the
server.  The last attempt's connect and reads are cut too, so no call (``open_queue``
included) takes longer than ``retry_timeout`` plus one ``socket_timeout`` (default 5).
A change that was sent and got no reply (a timeout, a dropped connection) may still run
(a stopped server runs it when it resumes): its error then says so ("the put may or may
not have been stored"); one that never left this process says that it never reached the
server.  A connection whose reply was not read whole is closed, never used again, so a
late reply is never taken for the answer to a later command.

A put cancelled while its commit runs is taken back with ``RedisStore.retract()``, all
or none, when its items are still ready and were never claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import itertools
import logging
import math
import secrets
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc

from ..._exceptions import (
    BackendError,
    ForeignReceiptError,
    IncompatibleStoreError,
    QueueShutDown,
    StoreResetError,
)
from .._base import DeadLetter, Delivery, Store, StoreCounts, last_seen
from ._connection import RedisConnection, _Coalescer, _pack_args, _Script
from ._scripts import (
    _ACK,
    _BIND_MAXSIZE,
    _CHECK_FORMAT,
    _CLAIM,
    _CLAIM_IDS,
    _COUNTS,
    _DEAD_LETTERS,
    _EXTEND,
    _FAIL,
    _PUT,
    _RELEASE,
    _REQUEUE,
    _RESUME,
    _RETRACT,
    _RETRY,
    _SET_MAXSIZE,
    _SHUTDOWN,
    queue_keys,
)

_log = logging.getLogger("conveyor")


FORMAT = 1


"""Version of the key layout above; a store written by a newer layout is refused."""


# (store id, generation) at the start of the calling context's last operation on a store.
# A context variable, not a per-task record, because callers may run wait_changed() in a
# task of its own, which inherits the context of the task that made the operation.
_LOOKED: contextvars.ContextVar[tuple[int, int]] = contextvars.ContextVar(
    "conveyor_redis_looked", default=(0, -1)
)


@dataclasses.dataclass(frozen=True)
class _ClaimArgs:
    max_items: int
    lease_timeout: float
    max_attempts: int | None


class RedisStore(Store):
    """One named queue in a Redis database; see the module docstring for its keys."""

    def __init__(
        self,
        client: aioredis.Redis,
        name: str,
        *,
        where: str,
        prefix: str,
        retry_timeout: float,
        socket_timeout: float = 5.0,
        user: str | None = None,
    ) -> None:
        self._client = client
        self._socket_timeout = socket_timeout
        self._name = name
        self._where = where
        self._retry_timeout = retry_timeout
        keys = queue_keys(prefix, name, client=uuid.uuid4().hex)
        self._meta = keys["meta"]
        self._items = keys["items"]
        self._attempts = keys["attempts"]
        self._ready = keys["ready"]
        self._delayed = keys["delayed"]
        self._leased = keys["leased"]
        self._lease = keys["lease"]
        self._dead = keys["dead"]
        self._deadinfo = keys["deadinfo"]
        self._ops = keys["ops"]
        self._channel = keys["changed"]
        self._probe = keys["probe"]
        self._pattern = keys["meta"][: -len("meta")] + "*"
        self._user = user
        self._ops_bytes = self._ops.encode()
        self._ops_ttl = str(int(retry_timeout) + 120)
        register = _Script
        self._put_script = register(_PUT)
        self._claim_script = register(_CLAIM)
        self._ack_script = register(_ACK)
        self._retry_script = register(_RETRY)
        self._fail_script = register(_FAIL)
        self._extend_script = register(_EXTEND)
        self._shutdown_script = register(_SHUTDOWN)
        self._resume_script = register(_RESUME)
        self._set_maxsize_script = register(_SET_MAXSIZE)
        self._bind_maxsize_script = register(_BIND_MAXSIZE)
        self._requeue_script = register(_REQUEUE)
        self._release_script = register(_RELEASE)
        self._counts_script = register(_COUNTS)
        self._dead_script = register(_DEAD_LETTERS)
        self._format_script = register(_CHECK_FORMAT)
        self._retract_script = register(_RETRACT)
        self._claim_ids_script = register(_CLAIM_IDS)
        # The parts of a put's EVALSHA that never change, encoded once: before the batch
        # token, and after it (see _put_groups).
        self._put_keys = [self._meta, self._ops, self._items, self._ready, self._delayed]
        self._put_before = b""  # set with the epoch, by _adopt
        # The queue's incarnation, a random epoch written with its keys; receipts name it.
        self._epoch = ""
        self._past_epochs: set[str] = set()
        self._last_counts: StoreCounts | None = None
        self._put_after = _pack_args([self._ops_ttl, self._channel])
        # A put's result: the id of its first item (stored), 0 (no room) or None (shut down).
        # The durable layer's writer is the only caller of put(), one batch at a time, and
        # is never cancelled mid-commit: its round trips run in it, with no runner task.
        self._puts: _Coalescer[Sequence[bytes], int | None] = _Coalescer(
            self._flush_puts, inline=True
        )
        self._retracts: _Coalescer[list[str], bool] = _Coalescer(self._flush_retracts)
        self._claims: _Coalescer[_ClaimArgs, tuple[list[Delivery], bool]] = _Coalescer(
            self._flush_claims,
            same_kind=lambda a, b: (
                (a.lease_timeout, a.max_attempts) == (b.lease_timeout, b.max_attempts)
            ),
            orphaned=self._give_back,
        )
        self._acks: _Coalescer[tuple[str, list[list[str]]], list[bool]] = _Coalescer(
            self._flush_acks
        )
        self._counts: _Coalescer[None, StoreCounts] = _Coalescer(self._flush_counts)
        # Change notifications: a generation number bumped by every message on the channel
        # (and on every (re)subscription, since messages may have been missed meanwhile).
        self._generation = 0
        self._changed = asyncio.Event()
        self._subscribed = asyncio.Event()  # or refused: see _refused
        self._refused: rexc.ResponseError | None = None
        self._listener: asyncio.Task[None] | None = None
        self._next_due: float | None = None  # loop.time() of the next lease/retry deadline
        self._closed = False
        self._link = RedisConnection(
            client,
            name=name,
            where=where,
            retry_timeout=retry_timeout,
            socket_timeout=socket_timeout,
            reply_error=self._reply_error,
        )
        # The connection layer's calls, under the names this class has always used.
        self._call = self._link.call
        self._eval = self._link.eval
        self._tokens = itertools.count(1)
        self._used_ops = False  # whether a batch may have written the ops key

    @property
    def backend(self) -> str:
        """The backend's name, ``"redis"``."""
        return "redis"

    async def _reply_error(self, exc: rexc.ResponseError) -> BaseException:
        """Return the exception a Redis error reply means for this queue."""
        if str(exc).startswith("EPOCH"):
            return await self._reset(str(exc)[6:].strip())
        denied = _denied_command(exc)
        if denied:
            return self.permission_error([denied], f" ({exc})")
        if str(exc).startswith("WRONGTYPE"):
            return IncompatibleStoreError(
                f"Redis at {self._where}: the keys of queue {self._name!r} hold data"
                " that is not a conveyor queue"
            )
        return BackendError(f"Redis at {self._where} failed: {exc}")

    async def _change(
        self, script: _Script, keys: Sequence[str], args: Sequence[Any], command: bytes = b""
    ) -> Any:
        """Run a changing script and return its reply without the "published" flag."""
        reply = await self._eval(script, keys, args, command)
        if reply.pop():
            # Wake this store's own waiters here, after the reply reached its caller
            # (call_soon), rather than by our own pub/sub message: that one can arrive
            # before the reply and wake a waiter ahead of the task that made the change.
            asyncio.get_running_loop().call_soon(self._bump)
        return reply

    def _lease_of(self, receipt: str) -> list[str]:
        """Return the [item id, delivery number] a receipt names in this incarnation.

        A receipt is "<epoch>:<item id>:<delivery number>".  One of an earlier incarnation
        of this queue names nothing ([]): the same numbers may belong to other items now.

        Raises:
            ForeignReceiptError: The receipt is not one of this queue's.
        """
        epoch, _, lease = receipt.partition(":")
        if epoch == self._epoch:
            item_id, _, delivery = lease.partition(":")
            return [item_id, delivery]
        if epoch in self._past_epochs:
            return []
        raise ForeignReceiptError(
            f"this receipt is not one of queue {self._name!r} in Redis at {self._where}:"
            " it comes from another queue (or from this one before its keys were wiped)"
            " and acknowledges nothing here; nothing was changed"
        )

    def _token(self) -> str:
        # Unique within this client's ops key, which is all a replay record needs.
        self._used_ops = True
        return str(next(self._tokens))

    def _head(self, field: str, token: str, epoch: str = "") -> list[str]:
        return [f"{field}@{epoch or self._epoch}", token, self._ops_ttl, self._channel]

    def _touch(self) -> None:
        """Note, in the caller's context, the generation its look at the queue starts at."""
        _LOOKED.set((id(self), self._generation))

    def _note_due(self, server_now: bytes, next_due: bytes) -> None:
        if next_due:
            delay = float(next_due) - float(server_now)
            self._next_due = asyncio.get_running_loop().time() + max(delay, 0.0)

    async def check_format(self) -> list[str]:
        """Check that the queue's keys are a conveyor queue of a layout this code reads.

        Returns:
            The commands the queue's scripts run that the user may not run (the layout
            was then not checked); empty when all are allowed.

        Raises:
            IncompatibleStoreError: They are not, or were written by a newer conveyor.
            BackendError: The server is older than Redis 6.2, or the user may not run
                scripts at all.
            BackendUnavailableError: Redis is unreachable.
        """
        keys = [self._meta, self._leased, self._probe]
        args = [FORMAT, self._channel, secrets.token_hex(8)]
        stored, epoch, *denied = await self._call(
            lambda: self._eval(self._format_script, keys, args)
        )
        if stored == b"old server":
            raise BackendError(
                f"Redis at {self._where} lacks the ZMSCORE command: conveyor needs Redis 6.2"
                " or later (or a server that has not renamed or disabled ZMSCORE)"
            )
        if denied:
            return [command.decode() for command in denied]
        try:
            version = int(stored)
        except (TypeError, ValueError):
            version = -1
        if version != FORMAT:
            raise IncompatibleStoreError(
                f"Redis at {self._where}: queue {self._name!r} has layout {stored!r}; this"
                f" conveyor reads layout {FORMAT} (upgrade conveyor, or use another name)"
            )
        self._adopt(epoch.decode())
        return []

    def _adopt(self, epoch: str) -> bool:
        """Make *epoch* the incarnation this store works in; return whether it changed."""
        if epoch == self._epoch:
            return False
        if self._epoch:
            self._past_epochs.add(self._epoch)
        self._epoch = epoch
        self._put_before = _pack_args(
            ["EVALSHA", self._put_script.sha, 5, *self._put_keys, f"put@{epoch}"]
        )
        return True

    async def _reset(self, found: str) -> StoreResetError:
        """Move to the queue's new incarnation, and return the error that reports the loss.

        Args:
            found: The epoch in meta when a script refused to run ("" if there was none).
        """
        before = self._epoch
        if not found:
            # The keys vanished: make the new incarnation, or take the one that another
            # client made meanwhile (the script sets the epoch only if there is none).
            missing = await self.check_format()
            if missing:
                raise self.permission_error(missing)
        else:
            self._adopt(found)
        seen = last_seen(self._last_counts)
        text = (
            f"Redis at {self._where}: the keys of queue {self._name!r} vanished while it was"
            " open (the database was flushed, the server restarted without persistence, or"
            f" the keys were deleted or evicted): the items it held are lost ({seen}), and"
            " receipts of earlier deliveries acknowledge nothing; this call changed nothing,"
            " and the queue goes on, empty"
        )
        if self._epoch != before:
            _log.warning("conveyor: %s", text)
        return StoreResetError(text)

    async def check_eviction(self) -> None:
        """Refuse a server that may evict any key under memory pressure (``allkeys-*``).

        The policy is read with ``CONFIG GET``, or from ``INFO memory`` when that is
        disabled, renamed or not allowed to this user.  When neither can be read, the
        queue opens and a warning is logged: refusing would lock out every least-privilege
        user, and the policy is then the operator's to keep at ``noeviction``.

        Raises:
            BackendError: The server's ``maxmemory-policy`` is an ``allkeys-*`` one.
            BackendUnavailableError: Redis is unreachable.
        """
        policy = await self._call(self._read_eviction_policy)
        if policy is None:
            _log.warning(
                "conveyor: cannot read the maxmemory-policy of Redis at %s (CONFIG GET and"
                " INFO are not allowed): make sure it is noeviction, or evicted keys lose"
                " items of queue %r without a trace",
                self._where,
                self._name,
            )
        elif policy.startswith("allkeys-"):
            raise BackendError(
                f"Redis at {self._where} has maxmemory-policy {policy}: under memory"
                " pressure it deletes any key, the items of queues included, which are then"
                " lost without a trace; set maxmemory-policy noeviction (CONFIG SET"
                " maxmemory-policy noeviction, and in redis.conf), or use a Redis of its own"
                " for queues"
            )

    async def _read_eviction_policy(self) -> str | None:
        try:
            reply = await self._link.command("CONFIG", "GET", "maxmemory-policy")
            if isinstance(reply, list) and len(reply) == 2:
                return bytes(reply[1]).decode()
            if isinstance(reply, dict):  # RESP3
                for value in reply.values():
                    return bytes(value).decode()
        except rexc.ResponseError:  # disabled, renamed or forbidden: try INFO
            pass
        try:
            info = await self._link.command("INFO", "memory")
        except rexc.ResponseError:
            return None
        for line in bytes(info).decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key == "maxmemory_policy":
                return value.strip()
        return None

    def permission_error(self, missing: Sequence[str], detail: str = "") -> BackendError:
        """Return the error that names the permissions the user lacks for this queue."""
        user = self._user or "default"
        grants = " ".join(f"+{command}" for command in missing)
        return BackendError(
            f"Redis at {self._where}: user {user!r} may not run {', '.join(missing)}, which"
            f" queue {self._name!r} needs{detail} (grant it: ACL SETUSER {user} {grants};"
            " a queue needs +evalsha +script|load, the commands its scripts run, +publish and"
            f" +subscribe, on keys ~{self._pattern} and channels &{self._pattern})"
        )

    # -- put ---------------------------------------------------------------------------

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
        self._touch()
        first = await self._puts.submit(payloads)
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
        self._touch()
        first = await self._puts.submit(payloads)
        if first is None:
            raise QueueShutDown
        if first <= 0:
            return False, None
        return True, [str(item_id) for item_id in range(first, first + len(payloads))]

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
        args: list[Any] = [*self._head("retract", self._token()), len(batch)]
        args += [len(ids) for ids in batch]
        for ids in batch:
            args += ids
        keys = [self._meta, self._ops, self._items, self._ready, self._attempts]
        reply = await self._call(
            lambda: self._change(self._retract_script, keys, args),
            "the put's items may or may not have been taken back after its cancellation",
        )
        return [bool(flag) for flag in reply]

    async def _flush_puts(self, groups: list[Sequence[bytes]]) -> list[int | None]:
        # Encoded here rather than by _pack, as the hot path: only the token, the shape
        # and the payloads vary.
        token = self._token().encode()
        parts = [b"", self._put_before, b"$%d\r\n%b\r\n" % (len(token), token), self._put_after]
        count = sum(len(group) for group in groups)
        if count == len(groups):  # every group holds one item: no sizes
            shape = [-len(groups)]
        else:
            shape = [len(groups), *(len(group) for group in groups)]
        parts.append(_pack_args(shape))
        parts += [b"$%d\r\n%b\r\n" % (len(p), p) for group in groups for p in group]
        # EVALSHA, sha, 5, five keys, field, token, ttl, channel: 12 arguments.
        parts[0] = b"*%d\r\n" % (12 + len(shape) + count)
        command = b"".join(parts)
        keys = self._put_keys
        args: list[Any] = []  # in command already; _eval packs them only when it is empty
        reply = await self._call(
            lambda: self._eval(self._put_script, keys, args, command),
            "the put may or may not have been stored",
        )
        if reply == b"shutdown":
            return [None] * len(groups)
        first, flags, published = reply.split()
        if published == b"1":  # see _change
            asyncio.get_running_loop().call_soon(self._bump)
        next_id = int(first)
        results: list[int | None] = []
        for group, flag in zip(groups, flags, strict=True):
            if flag == 49:  # b"1"
                results.append(next_id)
                next_id += len(group)
            else:
                results.append(0)
        return results

    # -- claim -------------------------------------------------------------------------

    async def claim(
        self, max_items: int, lease_timeout: float, max_attempts: int | None
    ) -> list[Delivery]:
        """Lease up to *max_items* of the oldest ready items, in FIFO order.

        Leases that expired are made ready again first (or dead, when the item already
        had *max_attempts* deliveries); delayed items whose delay passed become ready.
        Concurrent calls share one round trip; the items of a caller cancelled meanwhile
        are given back at once, their delivery uncounted.

        Args:
            max_items: The most items to lease, ``>= 1``.
            lease_timeout: Seconds until each lease expires unless acknowledged.
            max_attempts: Deliveries before an item goes dead; ``None`` for no limit.

        Returns:
            The leased items, oldest first; empty when none is ready.

        Raises:
            QueueShutDown: The queue is shut down and no item is ready.
            BackendError: The store failed; nothing was leased.
        """
        self._touch()
        deliveries, shut = await self._claims.submit(
            _ClaimArgs(max_items, lease_timeout, max_attempts)
        )
        if shut:
            raise QueueShutDown
        return deliveries

    claims_by_id = True

    async def claim_ids(
        self, item_ids: Sequence[str], lease_timeout: float
    ) -> list[Delivery | None]:
        """Lease the items named, each one if it is still ready and was never claimed.

        One call at a time (the durable layer makes them from one task): calls are not
        merged, and each is replayed, not applied twice, when resent after a lost reply.

        Args:
            item_ids: Ids from ``put_returning_ids()``.
            lease_timeout: Seconds until each lease expires unless acknowledged.

        Returns:
            For each id, the delivery of its item, or ``None`` if it was not leased.

        Raises:
            BackendError: The store failed; nothing was leased, unless the message says
                that the items may have been leased.
        """
        ids = list(item_ids)
        named = [item_id for item_id in ids if item_id.isdigit()]
        if not named:
            return [None] * len(ids)
        self._touch()
        keys = [
            self._meta,
            self._ops,
            self._items,
            self._ready,
            self._leased,
            self._lease,
            self._attempts,
        ]
        epoch = self._epoch
        args = [*self._head("claim_ids", self._token(), epoch), repr(float(lease_timeout)), *named]
        reply = await self._call(
            lambda: self._change(self._claim_ids_script, keys, args),
            "items may have been leased unseen; they come back once their lease expires",
        )
        server_now, deadline_text, numbers, payloads = reply
        deadline = time.time() + (float(deadline_text) - float(server_now))
        found = {d.item_id: d for d in _deliveries(epoch, deadline, numbers, payloads)}
        return [found.get(item_id) for item_id in ids]

    async def _flush_claims(self, batch: list[_ClaimArgs]) -> list[tuple[list[Delivery], bool]]:
        first = batch[0]
        total = sum(args.max_items for args in batch)
        keys = [
            self._meta,
            self._ops,
            self._items,
            self._ready,
            self._delayed,
            self._leased,
            self._lease,
            self._attempts,
            self._dead,
            self._deadinfo,
        ]
        epoch = self._epoch
        args: list[Any] = [
            *self._head("claim", self._token(), epoch),
            total,
            repr(float(first.lease_timeout)),
            first.max_attempts or 0,
        ]
        reply = await self._call(
            lambda: self._change(self._claim_script, keys, args),
            "items may have been leased unseen; they come back once their lease expires",
        )
        status, server_now, deadline_text, next_due, numbers, payloads, lost = reply
        self._note_due(server_now, next_due)
        if lost:
            _log.warning(
                "conveyor: Redis at %s: %d items of queue %r had lost their payloads (keys"
                " deleted or evicted: is maxmemory-policy noeviction?); they went to the dead"
                " letters",
                self._where,
                lost,
                self._name,
            )
        if status == -1:
            return [([], True)] * len(batch)
        # Client-side wall-clock deadline: the server's deadline shifted by the clock skew.
        deadline = time.time() + (float(deadline_text) - float(server_now))
        deliveries = _deliveries(epoch, deadline, numbers, payloads)
        results: list[tuple[list[Delivery], bool]] = []
        start = 0
        for args_ in batch:
            results.append((deliveries[start : start + args_.max_items], False))
            start += args_.max_items
        return results

    async def _give_back(self, result: tuple[list[Delivery], bool]) -> None:
        # On failure the leases expire and the items come back then.
        with contextlib.suppress(BackendError):
            await self.release([delivery.receipt for delivery in result[0]])

    # -- ack, retry, fail, extend ------------------------------------------------------

    async def ack(self, receipts: Sequence[str]) -> list[bool]:
        """Acknowledge deliveries: their items are done and removed.

        Concurrent calls share one round trip.

        Args:
            receipts: Receipts from ``claim()``.

        Returns:
            For each receipt, ``True`` if it named the current lease of its item;
            ``False`` if the lease expired (and the item may be redelivered) or the
            item is already gone.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see the module docstring).
            BackendError: The store failed.
        """
        self._touch()
        if not receipts:
            return []
        epoch = self._epoch
        pairs = [self._lease_of(receipt) for receipt in receipts]
        if all(pairs):
            return await self._acks.submit((epoch, pairs))
        # Receipts of an earlier incarnation acknowledge nothing and need no round trip.
        current = [pair for pair in pairs if pair]
        flags = iter(await self._acks.submit((epoch, current)) if current else [])
        return [bool(pair) and next(flags) for pair in pairs]

    async def _flush_acks(self, batch: list[tuple[str, list[list[str]]]]) -> list[list[bool]]:
        epoch = self._epoch
        args: list[Any] = self._head("ack", self._token(), epoch)
        for sent_as, pairs in batch:
            # Checked against an epoch given up since (the keys vanished meanwhile): the
            # same ids may name other items now.
            if sent_as == epoch:
                for pair in pairs:
                    args += pair
        keys = [
            self._meta,
            self._ops,
            self._items,
            self._leased,
            self._lease,
            self._attempts,
            self._ready,
            self._delayed,
        ]
        reply = await self._call(
            lambda: self._change(self._ack_script, keys, args),
            "the acknowledgement may or may not have been recorded (if not, the item"
            " is delivered again once its lease expires)",
        )
        flags = [flag == 49 for flag in reply[0]]  # b"1"
        results: list[list[bool]] = []
        start = 0
        for sent_as, pairs in batch:
            if sent_as != epoch:
                results.append([False] * len(pairs))
                continue
            results.append(flags[start : start + len(pairs)])
            start += len(pairs)
        return results

    async def retry(self, receipt: str, delay: float) -> bool:
        """Release a lease so the item is delivered again after *delay* seconds.

        Args:
            receipt: The delivery's receipt.
            delay: Seconds before the item is ready again; ``0`` for at once.

        Returns:
            ``False`` if the receipt no longer names the current lease.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see the module docstring).
            BackendError: The store failed.
        """
        self._touch()
        pair = self._lease_of(receipt)
        if not pair:
            return False
        keys = [self._meta, self._ops, self._ready, self._delayed, self._leased, self._lease]
        args: list[Any] = [*self._head("", ""), *pair, repr(float(delay))]
        reply = await self._call(
            lambda: self._change(self._retry_script, keys, args),
            "the retry may or may not have been recorded",
        )
        return bool(reply[0])

    async def release(self, receipts: Sequence[str]) -> list[bool]:
        """Give back leases whose items were never handed to a user, ready at once.

        The delivery the claim counted is undone, so the item's attempts are as before.

        Args:
            receipts: Receipts from ``claim()``.

        Returns:
            For each receipt, ``False`` if it no longer names the current lease.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see the module docstring).
            BackendError: The store failed.
        """
        self._touch()
        if not receipts:
            return []
        pairs = [self._lease_of(receipt) for receipt in receipts]
        current = [pair for pair in pairs if pair]
        if not current:
            return [False] * len(pairs)
        keys = [self._meta, self._ops, self._ready, self._leased, self._lease, self._attempts]
        args: list[Any] = self._head("", "")
        for pair in current:
            args += pair
        reply = await self._call(
            lambda: self._change(self._release_script, keys, args),
            "the leases may or may not have been given back (those kept expire)",
        )
        flags = iter(reply)
        return [bool(pair) and bool(next(flags)) for pair in pairs]

    async def fail(self, receipt: str, error: str) -> bool:
        """Move a leased item to the dead-letter list with *error* as the reason.

        Args:
            receipt: The delivery's receipt.
            error: Why the item failed, kept with the dead letter.

        Returns:
            ``False`` if the receipt no longer names the current lease.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see the module docstring).
            BackendError: The store failed.
        """
        self._touch()
        pair = self._lease_of(receipt)
        if not pair:
            return False
        keys = [self._meta, self._ops, self._leased, self._lease, self._dead, self._deadinfo]
        args: list[Any] = [*self._head("", ""), *pair, error]
        reply = await self._call(
            lambda: self._change(self._fail_script, keys, args),
            "the item may or may not have been moved to the dead letters",
        )
        return bool(reply[0])

    async def extend(self, receipt: str, lease_timeout: float) -> float | None:
        """Push a lease's deadline to *lease_timeout* seconds from now.

        Args:
            receipt: The delivery's receipt.
            lease_timeout: Seconds from now until the lease expires.

        Returns:
            The new deadline (``time.time()`` based), or ``None`` if the receipt no longer
            names the current lease.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see the module docstring).
            BackendError: The store failed.
        """
        self._touch()
        pair = self._lease_of(receipt)
        if not pair:
            return None
        keys = [self._meta, self._ops, self._leased, self._lease]
        args = [*self._head("", ""), *pair, repr(float(lease_timeout))]
        reply = await self._call(
            lambda: self._change(self._extend_script, keys, args),
            "the lease may or may not have been extended",
        )
        if not reply[0]:
            return None
        return time.time() + float(lease_timeout)

    # -- shared state ------------------------------------------------------------------

    async def counts(self) -> StoreCounts:
        """Read the shared counters in one atomic step.

        Delayed items whose delay has passed count as ready.  Concurrent calls share
        one round trip.

        Raises:
            BackendError: The store failed.
        """
        self._touch()
        return await self._counts.submit(None)

    async def _flush_counts(self, batch: list[None]) -> list[StoreCounts]:
        keys = [self._meta, self._ready, self._delayed, self._leased, self._dead]
        reply = await self._call(lambda: self._eval(self._counts_script, keys, []))
        epoch = reply.pop().decode()
        if epoch != self._epoch:
            raise await self._reset(epoch)
        ready, due, delayed, leased, dead, shut = (int(x) for x in reply[:6])
        counts = StoreCounts(
            ready=ready + due,
            delayed=delayed - due,
            leased=leased,
            dead=dead,
            is_shutdown=bool(shut),
            maxsize=_bound(reply[6]) or 0,
        )
        self._last_counts = counts
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
        keys = [self._meta, self._ops, self._items, self._ready, self._delayed, self._attempts]
        args: list[Any] = [*self._head("", ""), int(immediate)]
        reply = await self._call(
            lambda: self._change(self._shutdown_script, keys, args),
            "the shutdown may or may not have been recorded",
        )
        return int(reply[0])

    async def resume(self) -> None:
        """Clear the queue's shutdown mark for every process, and wake their waiters.

        Raises:
            BackendError: The store failed; the mark is unchanged, unless the message
                says that the resume may have been recorded.
        """
        keys = [self._meta, self._ops]
        args = self._head("", "")
        await self._call(
            lambda: self._change(self._resume_script, keys, args),
            "the resume may or may not have been recorded",
        )

    async def bind_maxsize(self, maxsize: float | None) -> float | None:
        """Set meta's ``maxsize`` if absent, then read it (see ``Store.bind_maxsize()``)."""
        # Set-if-absent is idempotent: a resend after a lost reply is harmless.
        arg = "" if maxsize is None else repr(maxsize)
        reply = await self._call(lambda: self._eval(self._bind_maxsize_script, [self._meta], [arg]))
        return _bound(reply)

    async def set_maxsize(self, maxsize: float) -> None:
        """Overwrite meta's ``maxsize`` and wake putters (see ``Store.set_maxsize()``)."""
        keys = [self._meta, self._ops]
        args: list[Any] = [*self._head("", ""), repr(maxsize)]
        await self._call(
            lambda: self._change(self._set_maxsize_script, keys, args),
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
        keys = [self._dead, self._deadinfo, self._items, self._attempts]
        reply = await self._call(lambda: self._eval(self._dead_script, keys, [limit]))
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
        keys = [self._meta, self._ops, self._ready, self._dead, self._deadinfo, self._attempts]
        args: list[Any] = self._head("", "")
        args += ["*"] if item_ids is None else ["", *item_ids]
        reply = await self._call(
            lambda: self._change(self._requeue_script, keys, args),
            "the dead items may or may not have been requeued",
        )
        return int(reply[0])

    # -- waiting for other processes ---------------------------------------------------

    async def wait_changed(self, timeout: float) -> None:
        """Return once this queue may have changed in any process, or after *timeout*.

        Changes arrive over pub/sub.  When a change was published since the calling
        context's last operation on this store began, it returns at once, so none is missed
        between a look and a wait; callers therefore look (``claim``, ``put``, ``counts``...)
        between waits.  The wait also ends at the next lease or retry deadline this store
        knows of.

        Args:
            timeout: The most seconds to wait.
        """
        if self._closed:
            return
        await self.listen()
        if _LOOKED.get() != (id(self), self._generation):
            # Something changed since the caller last looked (or it never did): report
            # it now, before waiting, so that no change slips between a look and a wait.
            _LOOKED.set((id(self), self._generation))
            return
        loop = asyncio.get_running_loop()
        if self._next_due is not None:
            remaining = self._next_due - loop.time()
            if remaining > 0:
                timeout = min(timeout, remaining + 0.005)
            else:
                self._next_due = None
        if timeout > 0:
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait([changed], timeout=None if math.isinf(timeout) else timeout)
            finally:
                changed.cancel()
        _LOOKED.set((id(self), self._generation))

    async def listen(self, wait: bool = False) -> None:
        """Subscribe to the queue's change notifications, in the background, if not yet.

        ``open_store()`` does it, and waits for the subscription, so that its
        confirmation (which counts as a change) never wakes a waiter later on.

        Args:
            wait: Return only once subscribed, refused, or after one socket_timeout.
        """
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        if wait and not self._subscribed.is_set():
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), self._link.time_left())

    def subscribe_error(self) -> rexc.ResponseError | None:
        """Return why the server refused the subscription, if it did (e.g. ``NOPERM``)."""
        return self._refused

    def _bump(self) -> None:
        self._generation += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _listen(self) -> None:
        pause = 0.02
        while not self._closed:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while not self._closed:
                    # Every message counts, the subscribe confirmation included: from it
                    # on nothing is missed, and what happened before is re-read by callers.
                    message = await pubsub.get_message(timeout=30.0)
                    # This store's own changes woke its waiters already (see _change).
                    if message is not None and message.get("data") != self._ops_bytes:
                        self._bump()
                        self._refused = None
                        self._subscribed.set()
                        pause = 0.02
            except (rexc.ConnectionError, rexc.TimeoutError, OSError):
                self._bump()
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.5)
            except rexc.RedisError as exc:
                if isinstance(exc, rexc.ResponseError):
                    # Refused (e.g. no permission): open_store reports it rather than
                    # letting waiters miss every change in silence.
                    self._refused = exc
                    self._subscribed.set()
                await asyncio.sleep(1.0)  # e.g. authentication: commands report it
            finally:
                with contextlib.suppress(rexc.RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]

    async def aclose(self) -> None:
        """Release the connections and stop listening for changes.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._bump()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener])
            self._listener = None
        if self._used_ops:
            # Else the key expires on its own; bounded, so that closing a queue on a stopped
            # server (or one that failed to open) takes one socket_timeout at most.
            with contextlib.suppress(rexc.RedisError, OSError, asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(self._client.delete(self._ops), self._socket_timeout)
        await self._link.aclose()
        await self._client.aclose()


def _bound(stored: bytes | str | None) -> float | None:
    """Read a stored bound: ``None`` when none is stored, an ``int`` when it is whole."""
    if not stored:
        return None
    value = float(stored)
    return int(value) if value.is_integer() else value


def _deliveries(epoch: str, deadline: float, numbers: bytes, payloads: bytes) -> list[Delivery]:
    """Read a claim script's reply: per item "id delivery attempts length", payloads joined."""
    fields = numbers.decode().split()
    deliveries: list[Delivery] = []
    offset = 0
    for i in range(0, len(fields), 4):
        item_id, length = fields[i], int(fields[i + 3])
        deliveries.append(
            Delivery(
                item_id=item_id,
                payload=payloads[offset : offset + length],
                receipt=f"{epoch}:{item_id}:{fields[i + 1]}",
                attempts=int(fields[i + 2]),
                lease_deadline=deadline,
            )
        )
        offset += length
    return deliveries


def _denied_command(exc: rexc.ResponseError) -> str:
    """Name the command an ACL refused in *exc*, or return "" if it is another error."""
    text = str(exc)
    # "NOPERM this user has no permissions to run the 'evalsha' command"; redis-py
    # strips the code as it raises NoPermissionError.
    if isinstance(exc, rexc.NoPermissionError) or text.startswith("NOPERM"):
        quoted = text.split("'")
        return quoted[1] if len(quoted) >= 3 else "the command"
    if "can't run this command" in text:  # inside a script: the probe at open names it
        return "a command of the queue's scripts"
    return ""
