"""The Redis backend: one durable queue shared by every machine that reaches the server.

``open_queue("redis://[user:password@]host:port/db", name=...)`` (``rediss://`` for TLS)
lands here through :func:`open_store`.  The queue named *name* lives in these keys, e.g.
``conveyor:{jobs}:ready`` for the queue "jobs": the braces are literal, a hash tag that
would keep all of a queue's keys in one slot of a Redis Cluster.  In prefix and name,
``%``, ``{`` and ``}`` are written ``%25``, ``%7B`` and ``%7D`` (:func:`queue_keys`), so
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
:class:`~conveyor.StoreResetError` once, with a warning naming the counts last seen.  Its
receipts of before acknowledge nothing; another queue's receipts raise
:class:`~conveyor.ForeignReceiptError`.  Both checks read the receipt's text: no round trip.

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
after the call began, then raise :class:`~conveyor.BackendUnavailableError` naming the
server.  The last attempt's connect and reads are cut too, so no call (``open_queue``
included) takes longer than ``retry_timeout`` plus one ``socket_timeout`` (default 5).
A change that was sent and got no reply (a timeout, a dropped connection) may still run
(a stopped server runs it when it resumes): its error then says so ("the put may or may
not have been stored"); one that never left this process says that it never reached the
server.  A connection whose reply was not read whole is closed, never used again, so a
late reply is never taken for the answer to a later command.

A put cancelled while its commit runs is taken back with :meth:`RedisStore.retract`, all
or none, when its items are still ready and were never claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import importlib.resources
import itertools
import logging
import math
import secrets
import ssl
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .._exceptions import (
    BackendError,
    BackendUnavailableError,
    ForeignReceiptError,
    IncompatibleStoreError,
    InvalidURLError,
    QueueShutDown,
    StoreResetError,
)
from .._urls import redacted
from ._base import DeadLetter, Delivery, Store, StoreCounts, last_seen

__all__ = ["RedisStore", "open_store", "queue_keys"]

_log = logging.getLogger("conveyor")

FORMAT = 1
"""Version of the key layout above; a store written by a newer layout is refused."""

_DEFAULT_PORT = 6379
_SECONDS_OPTIONS = ("retry_timeout", "socket_timeout", "connect_timeout")
_TLS_OPTIONS = (
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_check_hostname",
)
_OPTIONS = {"prefix", *_SECONDS_OPTIONS, *_TLS_OPTIONS}
_CERT_REQS = ("none", "optional", "required")
_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}

# The leased zset's pin.  A zset of up to 128 short members is kept by Redis as a listpack,
# whose every insert scans the members, parsing each score: a claim of 50 items then costs
# about 0.5-1.3 ms in Redis.  One member longer than zset-max-listpack-value (64 bytes)
# keeps the zset a skiplist instead (about 40 us).  Scored +inf, it is never due, never
# counted (ZCOUNT up to "(inf") and never anybody's lease; it is not an id (not digits).
_LEASED_PIN = "~pin:" + "~" * 70

# The Lua scripts live in lua/*.lua, one a file; a script's first lines may name the
# shared parts it starts with ("--! include prelude current"), and "$LEASED_PIN$" stands
# for _LEASED_PIN.  Each file says which KEYS and ARGV it takes and what it replies.
_LUA = importlib.resources.files(__package__).joinpath("lua")


@functools.cache
def lua_script(name: str) -> str:
    """Return the Lua source of script *name*, the parts it includes first.

    Args:
        name: A file name in ``backends/lua/`` without ``.lua`` (``"put"``, ``"claim"``).
    """
    text = _LUA.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    included = []
    for line in text.splitlines():
        if not line.startswith("--! include "):
            break
        included += [lua_script(part) for part in line.split()[2:]]
    return "".join(included) + text.replace("$LEASED_PIN$", _LEASED_PIN)


_PUT = lua_script("put")
_CLAIM = lua_script("claim")
_CLAIM_IDS = lua_script("claim_ids")
_ACK = lua_script("ack")
_RETRY = lua_script("retry")
_RELEASE = lua_script("release")
_FAIL = lua_script("fail")
_EXTEND = lua_script("extend")
_SHUTDOWN = lua_script("shutdown")
_RESUME = lua_script("resume")
_SET_MAXSIZE = lua_script("set_maxsize")
_BIND_MAXSIZE = lua_script("bind_maxsize")
_REQUEUE = lua_script("requeue")
_RETRACT = lua_script("retract")
_COUNTS = lua_script("counts")
_DEAD_LETTERS = lua_script("dead_letters")
_CHECK_FORMAT = lua_script("check_format")

# (store id, generation) at the start of the calling context's last operation on a store.
# A context variable, not a per-task record, because callers may run wait_changed() in a
# task of its own, which inherits the context of the task that made the operation.
_LOOKED: contextvars.ContextVar[tuple[int, int]] = contextvars.ContextVar(
    "conveyor_redis_looked", default=(0, -1)
)


# time.monotonic() at which the calling context's current Redis call runs out of time (its
# retry_timeout plus one socket_timeout); inf outside a call.  A context variable, so that
# the reads deep in one call see its own budget while other calls run concurrently.
_CUTOFF: contextvars.ContextVar[float] = contextvars.ContextVar(
    "conveyor_redis_cutoff", default=math.inf
)


class _SentError(rexc.ConnectionError):
    """The connection failed after a command was sent: it may have run, or may still."""


def _pack(*args: Any) -> bytes:
    """Encode one command in RESP; leaner than the client's general encoder for scripts."""
    return b"*%d\r\n" % len(args) + _pack_args(args)


def _pack_args(args: Sequence[Any]) -> bytes:
    """Encode *args* as the RESP bulk strings of a command, without its header."""
    parts: list[bytes] = []
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


class _Script:
    """A Lua script, run by its SHA1 and loaded on the server when it does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


In = TypeVar("In")
Out = TypeVar("Out")
T = TypeVar("T")


class _Coalescer(Generic[In, Out]):
    """Merge the calls that arrive while a round trip of one kind is in flight.

    The first caller starts a runner task; callers that come while it waits on Redis queue
    up and go together in the next round trip.  Redis commands therefore run in the
    runner, never in a caller that may be cancelled half-way through a reply, unless
    *inline* is set: then a call that finds nothing in flight makes its round trip itself
    (one task and two loop turns less), and a caller cancelled mid-command leaves that
    command's outcome unknown, as for any cancelled request.
    """

    def __init__(
        self,
        flush: Callable[[list[In]], Awaitable[list[Out]]],
        same_kind: Callable[[In, In], bool] | None = None,
        orphaned: Callable[[Out], Awaitable[None]] | None = None,
        inline: bool = False,
    ) -> None:
        self._flush = flush
        self._same_kind = same_kind
        self._orphaned = orphaned
        self._inline = inline
        self._busy = False  # a caller is making its round trip itself
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, arg: In) -> Out:
        """Queue *arg* for the next round trip and return its share of the reply."""
        if self._inline and self._runner is None and not self._busy:
            self._busy = True
            try:
                (result,) = await self._flush([arg])
            finally:
                self._busy = False
                # Calls that came meanwhile go next, in order, as with a runner.
                if self._pending and self._runner is None:
                    self._runner = asyncio.get_running_loop().create_task(self._run())
            return result
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        self._pending.append((arg, future))
        if self._runner is None and not self._busy:
            self._runner = loop.create_task(self._run())
        return await future

    def _take(self) -> list[tuple[In, asyncio.Future[Out]]]:
        # A caller cancelled before its round trip started simply never happened.
        pending = [(arg, fut) for arg, fut in self._pending if not fut.cancelled()]
        if self._same_kind is None or not pending:
            self._pending = []
            return pending
        first = pending[0][0]
        batch = [(a, f) for a, f in pending if self._same_kind(first, a)]
        self._pending = [(a, f) for a, f in pending if not self._same_kind(first, a)]
        return batch

    async def _run(self) -> None:
        try:
            while self._pending:
                batch = self._take()
                if not batch:
                    continue
                try:
                    results = await self._flush([arg for arg, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.cancelled():
                        future.set_result(result)
                    elif self._orphaned is not None:
                        await self._orphaned(result)
        finally:
            self._runner = None
            # The runner itself was cancelled (the loop is closing): fail who still waits.
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(BackendError("the Redis store was closed"))
            self._pending = []


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
        self._idle: list[Any] = []  # connections of this store's own, not in use
        self._tokens = itertools.count(1)
        self._used_ops = False  # whether a batch may have written the ops key

    @property
    def backend(self) -> str:
        """The backend's name, ``"redis"``."""
        return "redis"

    # -- plumbing ----------------------------------------------------------------------

    async def _call(self, operation: Callable[[], Awaitable[T]], doubt: str = "") -> T:
        """Run *operation*, retrying connection errors within the retry budget.

        Args:
            operation: Runs the command(s) once.
            doubt: For a change, what may have happened when it was sent and no reply
                came (e.g. "the put may or may not have been stored"); the error says
                it then, since the change may still be applied, and otherwise says that
                the change never reached the server.

        Raises:
            BackendUnavailableError: Redis stayed unreachable for ``retry_timeout`` seconds.
            IncompatibleStoreError: The keys hold something that is not a conveyor queue.
            BackendError: Redis refused the operation (authentication, memory, ...).
        """
        if self._closed:
            raise BackendError(f"the Redis queue {self._name!r} is closed")
        # The budget runs from the call's start, not from its first failure: no attempt
        # starts after it, and _eval cuts the reads of the last one at one socket_timeout
        # past it, so a stopped server costs at most retry_timeout + socket_timeout.  A
        # call inside a larger one (open_queue's steps) keeps within the larger budget.
        now = time.monotonic()
        outer = _CUTOFF.get()
        deadline = min(now + self._retry_timeout, outer - self._socket_timeout)
        cutoff = _CUTOFF.set(min(now + self._retry_timeout + self._socket_timeout, outer))
        try:
            return await self._retrying(operation, doubt, deadline)
        finally:
            _CUTOFF.reset(cutoff)

    async def _retrying(
        self, operation: Callable[[], Awaitable[T]], doubt: str, deadline: float
    ) -> T:
        pause = 0.02
        in_doubt = False
        while True:
            try:
                return await operation()
            except rexc.AuthenticationError as exc:
                raise BackendError(
                    f"Redis at {self._where} refused the credentials: {exc} "
                    "(check the password in the URL)"
                ) from exc
            except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
                if _certificate_error(exc):
                    # Retrying cannot help: the server's certificate is not trusted.
                    raise BackendError(
                        f"Redis at {self._where}: TLS certificate verification failed: {exc}"
                        " (give the CA with ssl_ca_certs, or check the host name)"
                    ) from exc
                now = time.monotonic()
                # Once sent, a change may run even after this gives up: the server may
                # be stopped rather than gone, and run it when it resumes.
                in_doubt = in_doubt or isinstance(exc, _SentError)
                if now >= deadline:
                    outcome = ""
                    if doubt:
                        outcome = f"; {doubt}" if in_doubt else "; it never reached the server"
                    error = BackendUnavailableError(
                        f"Redis at {self._where} is unreachable: {exc or type(exc).__name__}"
                        f" (gave up after retrying for {self._retry_timeout:g} s;"
                        f" the retry_timeout option sets this budget){outcome}"
                    )
                    # What the durable layer checks, e.g. before a retract.
                    error.outcome_unknown = bool(doubt and in_doubt)
                    raise error from exc
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, 0.5)
            except rexc.ResponseError as exc:
                if str(exc).startswith("EPOCH"):
                    raise await self._reset(str(exc)[6:].strip()) from exc
                denied = _denied_command(exc)
                if denied:
                    raise self.permission_error([denied], f" ({exc})") from exc
                if str(exc).startswith("WRONGTYPE"):
                    raise IncompatibleStoreError(
                        f"Redis at {self._where}: the keys of queue {self._name!r} hold data"
                        " that is not a conveyor queue"
                    ) from exc
                raise BackendError(f"Redis at {self._where} failed: {exc}") from exc
            except rexc.RedisError as exc:
                raise BackendError(f"Redis at {self._where} failed: {exc}") from exc

    async def _eval(
        self, script: _Script, keys: Sequence[str], args: Sequence[Any], command: bytes = b""
    ) -> Any:
        """Run *script* on a connection of this store's own.

        *command* is the script's ``EVALSHA`` encoded already, if the caller did it.

        The store keeps its idle connections itself and talks to them directly: the
        client's per-command machinery costs more than the round trip on a fast network.
        Only a connection whose reply was read whole goes back to the idle list; one that
        failed, timed out or whose caller was cancelled mid-command is disconnected, so
        that a late reply can never be read as the answer to a later command.

        Raises:
            _SentError: The connection failed after the command was sent: it may have
                run, or may still run, on the server.
        """
        pool = self._client.connection_pool
        conn = self._idle.pop() if self._idle else pool.make_connection()  # type: ignore[no-untyped-call]
        sent = False
        try:
            if not conn.is_connected:
                await self._connect(conn)
            if not command:
                command = _pack("EVALSHA", script.sha, len(keys), *keys, *args)
            sent = True
            await self._send(conn, command)
            timeout = self._socket_timeout
            left = _CUTOFF.get() - time.monotonic()
            if left < timeout:
                timeout = max(left, 0.001)
            try:
                # Written out rather than through _read: the hot path, one frame less.
                reply = await conn.read_response(timeout=timeout)
                if reply is None:
                    raise rexc.TimeoutError(f"no reply within {timeout:g} s")
            except rexc.NoScriptError:  # a new or restarted server: load, then run
                await self._send(conn, _pack("SCRIPT", "LOAD", script.source))
                await self._read(conn)
                await self._send(conn, command)
                reply = await self._read(conn)
        except rexc.ResponseError:
            self._idle.append(conn)  # the reply was read whole: the connection is sound
            raise
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await conn.disconnect()
            # A refused password is an answer, not a lost connection (redis-py before 5.1
            # can report it only once the first command is sent).
            if (
                sent
                and isinstance(exc, (rexc.ConnectionError, rexc.TimeoutError, OSError))
                and not isinstance(exc, rexc.AuthenticationError)
            ):
                raise _SentError(str(exc) or type(exc).__name__) from exc
            raise
        self._idle.append(conn)
        return reply

    def _time_left(self) -> float:
        """Seconds one more wait may take: socket_timeout, cut at the call's budget."""
        return max(min(self._socket_timeout, _CUTOFF.get() - time.monotonic()), 0.001)

    async def _connect(self, conn: Any) -> None:
        # A stopped server accepts connections and never answers the handshake: bound the
        # whole of it by what is left of the call's budget, not by a timeout a step.
        limit = self._time_left()
        conn.socket_timeout = limit  # for the handshake
        try:
            await asyncio.wait_for(conn.connect(), limit)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise rexc.TimeoutError(f"no answer to the connection within {limit:g} s") from exc
        # Reads get their timeout per call; a small write never blocks, and without a
        # socket timeout the client writes it without a helper task.
        conn.socket_timeout = None

    async def _read(self, conn: Any) -> Any:
        # With an explicit timeout, redis-py returns None when it passes, leaving the
        # connection open with the reply still due.  No script of this module replies
        # nil, so None can only mean that the time ran out (_eval writes this out too).
        timeout = self._time_left()
        reply = await conn.read_response(timeout=timeout)
        if reply is None:
            raise rexc.TimeoutError(f"no reply within {timeout:g} s")
        return reply

    async def _send(self, conn: Any, command: bytes) -> None:
        if len(command) < 65536:  # fits the transport's buffer: written at once
            await conn.send_packed_command(command, check_health=False)
            return
        try:
            await asyncio.wait_for(
                conn.send_packed_command(command, check_health=False), self._time_left()
            )
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise rexc.TimeoutError("Timeout writing to socket") from exc

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
            reply = await self._command("CONFIG", "GET", "maxmemory-policy")
            if isinstance(reply, list) and len(reply) == 2:
                return bytes(reply[1]).decode()
            if isinstance(reply, dict):  # RESP3
                for value in reply.values():
                    return bytes(value).decode()
        except rexc.ResponseError:  # disabled, renamed or forbidden: try INFO
            pass
        try:
            info = await self._command("INFO", "memory")
        except rexc.ResponseError:
            return None
        for line in bytes(info).decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key == "maxmemory_policy":
                return value.strip()
        return None

    async def _command(self, *args: Any) -> Any:
        """Run one plain command on a connection of this store's own, as _eval does."""
        pool = self._client.connection_pool
        conn = self._idle.pop() if self._idle else pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            if not conn.is_connected:
                await self._connect(conn)
            await self._send(conn, _pack(*args))
            reply = await self._read(conn)
        except rexc.ResponseError:
            self._idle.append(conn)
            raise
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.disconnect()
            raise
        self._idle.append(conn)
        return reply

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
        """Append *payloads* as :meth:`put` does, and name the items it stored.

        Ids come from a counter that only grows, so a name never means another item.

        Args:
            payloads: Serialized items, in order; never empty.

        Returns:
            Whether the items were stored, and their ids in the order of *payloads*
            (``None`` when nothing was stored).

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: As for :meth:`put`.
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
            item_ids: Ids from :meth:`put_returning_ids`.

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
            item_ids: Ids from :meth:`put_returning_ids`.
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
            receipts: Receipts from :meth:`claim`.

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
            receipts: Receipts from :meth:`claim`.

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
        """Set meta's ``maxsize`` if absent, then read it (see :meth:`Store.bind_maxsize`)."""
        # Set-if-absent is idempotent: a resend after a lost reply is harmless.
        arg = "" if maxsize is None else repr(maxsize)
        reply = await self._call(lambda: self._eval(self._bind_maxsize_script, [self._meta], [arg]))
        return _bound(reply)

    async def set_maxsize(self, maxsize: float) -> None:
        """Overwrite meta's ``maxsize`` and wake putters (see :meth:`Store.set_maxsize`)."""
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

        :func:`open_store` does it, and waits for the subscription, so that its
        confirmation (which counts as a change) never wakes a waiter later on.

        Args:
            wait: Return only once subscribed, refused, or after one socket_timeout.
        """
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        if wait and not self._subscribed.is_set():
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), self._time_left())

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
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.disconnect()
        await self._client.aclose()


def _certificate_error(exc: BaseException) -> bool:
    """Whether *exc* was caused by a TLS certificate that failed verification."""
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain of causes; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _bound(stored: bytes | str | None) -> float | None:
    """Read a stored bound: ``None`` when none is stored, an ``int`` when it is whole."""
    if not stored:
        return None
    value = float(stored)
    return int(value) if value.is_integer() else value


_KEY_PARTS = ("meta", "items", "attempts", "ready", "delayed", "leased", "lease", "dead",
              "deadinfo", "changed", "probe")  # fmt: skip
# Braces decide a key's hash tag and "%" is the escape itself: with these three escaped, a
# key holds exactly one "{", so prefix, name and suffix read back unambiguously.  Colons
# need no escaping for that, and names without any of the three keep the keys they had.
_KEY_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D"})


def queue_keys(prefix: str, name: str, client: str = "") -> dict[str, str]:
    """Return the Redis keys of queue *name* under *prefix*, by role (see the module docstring).

    Every key is ``<prefix>:{<name>}:<role>`` with ``%``, ``{`` and ``}`` percent-escaped
    in prefix and name, so that distinct (prefix, name) pairs never share a key, and the
    hash tag of every key of one queue is its escaped name.

    Args:
        prefix: The key prefix (option ``prefix``).
        name: The queue's name.
        client: The id of one client, for its ``ops`` key (given only when non-empty).
    """
    base = f"{prefix.translate(_KEY_ESCAPES)}:{{{name.translate(_KEY_ESCAPES)}}}"
    keys = {part: f"{base}:{part}" for part in _KEY_PARTS}
    if client:
        keys["ops"] = f"{base}:ops:{client}"
    return keys


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


async def open_store(url: urllib.parse.SplitResult, name: str, **options: Any) -> Store:
    """Open the queue *name* in the Redis database that *url* names.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db][?option=value&...]``, or
            ``rediss://`` for TLS.  The query may carry any option below, as redis-py's
            ``from_url`` accepts it, e.g. ``rediss://host:6380/0?ssl_ca_certs=/etc/ca.pem``.
        name: The queue's name; many queues share one database.
        options: ``prefix`` (key prefix, default ``"conveyor"``), ``retry_timeout``
            (seconds to keep retrying a lost connection, default 10), ``socket_timeout``
            (seconds to wait for one reply, default 5), ``connect_timeout`` (default 5),
            and for ``rediss://`` only: ``ssl_ca_certs`` (CA file to trust instead of the
            system's), ``ssl_certfile`` and ``ssl_keyfile`` (a client certificate),
            ``ssl_cert_reqs`` (``"required"``, the default, ``"optional"`` or ``"none"``),
            ``ssl_check_hostname`` (default true).  An option may be given in the URL or
            as a keyword, not both.

    Returns:
        The open store; the server was reached and the queue's layout checked.

    Raises:
        InvalidURLError: The URL is malformed, or its query names an unknown option or
            gives a bad value.
        TypeError: An option is unknown.
        ValueError: An option has a bad value or is given twice, a TLS option comes with
            a ``redis://`` URL, or *name* is empty.
        BackendUnavailableError: The server cannot be reached within ``retry_timeout``.
        BackendError: The server refused the credentials, its ``maxmemory-policy`` is an
            ``allkeys-*`` one (it would evict the queue's keys), or the user lacks a
            permission the queue needs (the message names them).
        IncompatibleStoreError: The keys are not a conveyor queue of a readable layout.
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(
            f"unknown option(s) for a Redis queue: {', '.join(sorted(unknown))}"
            f" (known: {', '.join(sorted(_OPTIONS))})"
        )
    if url.scheme not in ("redis", "rediss"):
        raise InvalidURLError(f"not a Redis URL: {redacted(url.geturl())!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a queue name must be a non-empty string, not {name!r}")
    try:
        host = url.hostname or "localhost"
        port = url.port or _DEFAULT_PORT
    except ValueError:
        # Not chained: urllib's message quotes what it took for the port.
        raise InvalidURLError(
            f"bad host or port in Redis URL {redacted(url.geturl())!r}: the port must be a"
            " number from 0 to 65535"
        ) from None
    db_text = url.path.strip("/") or "0"
    if not db_text.isdigit():
        raise InvalidURLError(
            f"the path of a Redis URL is the database number (e.g. redis://{host}:{port}/0),"
            f" not that of {redacted(url.geturl())!r}"
        )
    in_url = _url_options(url)
    twice = set(in_url) & set(options)
    if twice:
        raise ValueError(
            f"option(s) {', '.join(sorted(twice))} given both in the Redis URL and as keywords"
        )
    options = {**options, **in_url}
    retry_timeout = _seconds(options, "retry_timeout", 10.0)
    tls: dict[str, Any] = {}
    if url.scheme == "rediss":
        tls["ssl"] = True
        for key in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"):
            if key in options:
                tls[key] = options[key]
        reqs = tls.get("ssl_cert_reqs")
        if isinstance(reqs, str) and reqs not in _CERT_REQS:
            raise ValueError(
                f"option ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, not {reqs!r}"
            )
        # Given explicitly: redis-py's own default changed (off before 6.0, on since).
        check_hostname = options.get("ssl_check_hostname", reqs not in ("none", ssl.CERT_NONE))
        if not isinstance(check_hostname, bool):
            raise TypeError(f"ssl_check_hostname must be True or False, not {check_hostname!r}")
        tls["ssl_check_hostname"] = check_hostname
    elif any(key in options for key in _TLS_OPTIONS):
        # Silently talking in plain text to a server the user meant to reach over TLS
        # would be worse than refusing.
        raise ValueError(
            f"TLS options ({', '.join(k for k in _TLS_OPTIONS if k in options)}) need a"
            f" rediss:// URL, not {url.scheme}://"
        )
    where = f"{host}:{port}"
    socket_timeout = _seconds(options, "socket_timeout", 5.0)
    if socket_timeout <= 0:
        raise ValueError("option socket_timeout must be a positive number of seconds")
    user = urllib.parse.unquote(url.username) if url.username else None
    client = aioredis.Redis(
        host=host,
        port=port,
        db=int(db_text),
        username=user,
        password=urllib.parse.unquote(url.password) if url.password is not None else None,
        socket_timeout=socket_timeout,
        socket_connect_timeout=_seconds(options, "connect_timeout", 5.0),
        # conveyor's own budget decides, in _call (NoBackoff is untyped in redis-py 5.0).
        retry=Retry(NoBackoff(), 0),  # type: ignore[no-untyped-call,unused-ignore]
        decode_responses=False,
        **tls,
    )
    store = RedisStore(
        client,
        name,
        where=where,
        prefix=str(options.get("prefix", "conveyor")),
        retry_timeout=retry_timeout,
        socket_timeout=socket_timeout,
        user=user,
    )
    # One budget for all the steps: opening takes retry_timeout + socket_timeout at most.
    budget = _CUTOFF.set(time.monotonic() + retry_timeout + socket_timeout)
    try:
        await store.check_eviction()
        missing = await store.check_format()
        await store.listen(wait=True)
        refused = store.subscribe_error()
        if refused is not None:
            denied = _denied_command(refused) or "subscribe"
            missing.append(denied if denied in ("subscribe", "ssubscribe") else "subscribe")
        if missing:
            raise store.permission_error(missing)
    except BaseException:
        await store.aclose()
        raise
    finally:
        _CUTOFF.reset(budget)
    return store


def _url_options(url: urllib.parse.SplitResult) -> dict[str, Any]:
    """Return the options in *url*'s query, typed as the keyword options would be.

    Raises:
        InvalidURLError: The query is malformed, names an unknown option, names one
            twice, or gives a value of the wrong form.
    """
    if not url.query:
        return {}
    # Messages quote the query, never the whole URL: it may hold a password.
    try:
        pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        # Not chained, and the query not quoted: it may hold a password.
        raise InvalidURLError(
            f"malformed query in Redis URL {redacted(url.geturl())!r}: give options as "
            "name=value pairs joined by '&', values percent-encoded"
        ) from None
    found: dict[str, Any] = {}
    for key, text in pairs:
        if key not in _OPTIONS:
            raise InvalidURLError(
                f"unknown option {key!r} in the query of a Redis URL"
                f" (known: {', '.join(sorted(_OPTIONS))})"
            )
        if key in found:
            raise InvalidURLError(f"option {key} is given twice in the query of a Redis URL")
        value: Any = text
        if key in _SECONDS_OPTIONS:
            try:
                value = float(text)
            except ValueError:
                value = None
        elif key == "ssl_check_hostname":
            value = _BOOLS.get(text.lower())
        if value is None:
            raise InvalidURLError(f"bad value {text!r} for option {key} in a Redis URL")
        found[key] = value
    return found


def _seconds(options: dict[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"option {key} must be a non-negative number of seconds, not {value!r}")
    return float(value)
