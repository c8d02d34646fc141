"""The Redis store's connection layer: connections, deadlines, retries, batching."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import math
import ssl
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import redis.asyncio as aioredis
import redis.exceptions as rexc

from ..._exceptions import (
    BackendError,
    BackendUnavailableError,
)
from ._wire import REDIRECTIONS, _pack, _Subscription, _Wire

if TYPE_CHECKING:
    from ._cluster import ClusterRouter

# time.monotonic() at which the calling context's current Redis call runs out of time (its
# retry_timeout plus one socket_timeout); inf outside a call.  A context variable, so that
# the reads deep in one call see its own budget while other calls run concurrently.
_CUTOFF: contextvars.ContextVar[float] = contextvars.ContextVar(
    "conveyor_redis_cutoff", default=math.inf
)


# How many replicas must confirm the changes of the calling context's Redis call (0 for a
# read, or with durability="primary"): set by call(), read by the eval that sends them.
_REPLICAS: contextvars.ContextVar[int] = contextvars.ContextVar(
    "conveyor_redis_replicas", default=0
)


class _SentError(rexc.ConnectionError):
    """The connection failed after a command was sent: it may have run, or may still."""


class _UnreplicatedError(_SentError):
    """The primary applied a change and no replica confirmed it (``WAIT``) in time.

    Retried like a lost reply: the change is sent again and replays its stored reply
    (see lua/head.lua), then waits for the replicas again.
    """


class _Script:
    """A Lua script, run by its SHA1 and loaded on the server when it does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class _Gap(Exception):  # noqa: N818 - a signal within the lane, never raised to callers
    """The server refused a chained batch: the one before it was not applied (yet)."""


class _LaneEntry:
    """One batch of a lane: how to encode it, and the connection it was last sent on."""

    __slots__ = ("encode", "sent_on")

    def __init__(self, encode: Callable[[bool], bytes]) -> None:
        self.encode = encode
        """Returns the command; chained (its token ending in "+") when given True."""
        self.sent_on: _Wire | None = None


class _Lane:
    """Batches of one kind sent one behind the other on one connection, applied in order.

    Each batch carries a token of its own (see lua/head.lua).  A batch is sent once every
    older batch still unanswered was sent on the same connection, and chained to the one
    before it (the server runs a chained batch only right after the batch before it), so
    that several batches are in flight at once and the server applies them in the order
    they were made even when one fails on its way (a lost connection, NOSCRIPT after a
    restart): the ones after it are refused ("GAP") and sent again, in order, after it.
    A batch resent after a lost reply replays its stored reply.
    """

    def __init__(self) -> None:
        self.wire: _Wire | None = None
        self.entries: list[_LaneEntry] = []  # unanswered, oldest first
        self.connecting = asyncio.Lock()
        self._changed = asyncio.Event()

    def join(self, encode: Callable[[bool], bytes]) -> _LaneEntry:
        """Queue a batch behind those unanswered: call before anything is awaited."""
        entry = _LaneEntry(encode)
        self.entries.append(entry)
        return entry

    def leave(self, entry: _LaneEntry) -> None:
        """The batch is answered (or given up on): those after it may go."""
        self.entries.remove(entry)
        self.notify()

    def notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def changed(self) -> None:
        await self._changed.wait()


T = TypeVar("T")
In = TypeVar("In")
Out = TypeVar("Out")


class _Coalescer(Generic[In, Out]):
    """Merge the calls that arrive while a round trip of one kind is in flight.

    The first caller starts a runner task; callers that come while it waits on Redis queue
    up and go together in the next round trip.  Redis commands therefore run in the
    runner, never in a caller that may be cancelled half-way through a reply, unless
    *inline* is set: then a call that finds nothing in flight makes its round trip itself
    (one task and two loop turns less), and a caller cancelled mid-command leaves that
    command's outcome unknown, as for any cancelled request.

    With *depth* above 1, up to that many round trips are in flight at once, each started
    as soon as the one before it was sent rather than answered: *flush* must then keep
    them in order itself (see ``_Lane``).  Batches are taken, and so started, in the order
    the calls came.
    """

    def __init__(
        self,
        flush: Callable[[list[In]], Awaitable[list[Out]]],
        same_kind: Callable[[In, In], bool] | None = None,
        orphaned: Callable[[Out], Awaitable[None]] | None = None,
        inline: bool = False,
        depth: int = 1,
    ) -> None:
        self._flush = flush
        self._same_kind = same_kind
        self._orphaned = orphaned
        self._inline = inline
        self._depth = depth
        self._flights = 0  # round trips under way (inline ones included)
        self._landed: asyncio.Event | None = None  # set when one of them ends
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._runner: asyncio.Task[None] | None = None
        self._flying: set[asyncio.Task[None]] = set()

    async def submit(self, arg: In) -> Out:
        """Queue *arg* for the next round trip and return its share of the reply."""
        if self._inline and self._runner is None and not self._flights and not self._pending:
            self._flights += 1
            try:
                (result,) = await self._flush([arg])
            finally:
                self._land()
            return result
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        self._pending.append((arg, future))
        if self._runner is None and self._flights < self._depth:
            self._runner = loop.create_task(self._run())
        return await future

    def _land(self) -> None:
        self._flights -= 1
        if self._landed is not None:
            self._landed.set()
        # Calls that came meanwhile go next, in order, as with a runner.
        if self._pending and self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())

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

    async def _fly(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            results = await self._flush([arg for arg, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.cancelled():
                future.set_result(result)
            elif self._orphaned is not None:
                await self._orphaned(result)

    async def _run(self) -> None:
        try:
            while self._pending:
                if self._flights >= self._depth:
                    self._landed = asyncio.Event()
                    await self._landed.wait()
                    continue
                batch = self._take()
                if not batch:
                    continue
                if self._depth == 1:
                    self._flights += 1
                    try:
                        await self._fly(batch)
                    finally:
                        self._flights -= 1
                    continue
                self._flights += 1
                task = asyncio.get_running_loop().create_task(self._fly(batch))
                self._flying.add(task)
                task.add_done_callback(self._flown)
                await asyncio.sleep(0)  # its command is sent before the next batch is taken
        finally:
            self._runner = None
            # The runner itself was cancelled (the loop is closing): fail who still waits.
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(BackendError("the Redis store was closed"))
            self._pending = []

    def _flown(self, task: asyncio.Task[None]) -> None:
        self._flying.discard(task)
        self._land()


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


class RedisConnection:
    """How the Redis store reaches its server: connections, deadlines, retries, doubt.

    It knows nothing of queues.  It keeps connections of its own (idle ones in a list,
    one command at a time on each), gives every call a budget (``retry_timeout`` from its
    start, reads cut at one ``socket_timeout`` past it), retries lost connections within
    it, discards a connection whose reply was not read whole, and says when a change was
    sent and no reply came (``outcome_unknown``).  What a refusal by the server means (a
    wiped queue, a missing permission) the store decides: *reply_error* turns a Redis
    error reply into the exception to raise.  Behind Sentinel (*follow_failover*), the
    client's pool asks the sentinels for the primary as each connection is made, and a
    ``READONLY`` reply (a primary since demoted) drops the connection like a lost one, so
    the retry reaches the new primary.  With *replicas*, each change is followed by
    ``WAIT`` on its connection.  In a Redis Cluster (*router*), connections go to the
    primary of the queue's slot, wherever the router says it is; ``MOVED`` tells the
    router where it went, ``ASK`` is followed for the one command, ``TRYAGAIN`` and
    ``CLUSTERDOWN`` are retried like a lost connection (none of them ran anything), and
    the scripts publish with ``SPUBLISH`` (see ``script()``).

    Args:
        client: The redis-py client whose connection pool makes the connections.
        name: The queue's name, for messages.
        where: ``host:port``, for messages (never the password).
        retry_timeout: Seconds a call may keep retrying.
        socket_timeout: Seconds to wait for one reply.
        reply_error: Turns an error reply into the exception the call raises.
        replicas: How many replicas must confirm each change (``WAIT``) before the call
            returns; 0 returns once the primary applied it.
        follow_failover: Whether a primary demoted to a replica is a lost connection
            (behind Sentinel, or in a Cluster), rather than an error to raise.
        router: In a Redis Cluster, what knows which node serves the queue's slot.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        name: str,
        where: str,
        retry_timeout: float,
        socket_timeout: float,
        reply_error: Callable[[rexc.ResponseError], Awaitable[BaseException]],
        replicas: int = 0,
        follow_failover: bool = False,
        router: ClusterRouter | None = None,
    ) -> None:
        self._client = client
        self._router = router
        self._replicas = replicas
        self._follow_failover = follow_failover
        self._name = name
        self._where = where
        self._retry_timeout = retry_timeout
        self._socket_timeout = socket_timeout
        self._reply_error = reply_error
        self._idle: list[_Wire] = []  # connections of this store's own, not in use
        self._lanes: list[_Lane] = []
        self._closed = False
        # Behind Sentinel: every connection made, to drop them all when the primary moves.
        self._wires: weakref.WeakSet[_Wire] = weakref.WeakSet()
        self._watch: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Refuse further calls and disconnect the idle connections.  Idempotent."""
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.wait([self._watch])
            self._watch = None
        idle, self._idle = self._idle, []
        idle += [lane.wire for lane in self._lanes if lane.wire is not None]
        for wire in idle:
            await wire.disconnect()

    @property
    def sharded(self) -> bool:
        """Whether wake-ups use sharded pub/sub (``SSUBSCRIBE``, ``SPUBLISH``): in a Cluster."""
        return self._router is not None

    def script(self, source: str) -> _Script:
        """Return the script of *source* as this server runs it.

        In a Redis Cluster, scripts publish with ``SPUBLISH`` (sharded pub/sub: the
        message stays on the nodes of the queue's slot, where its subscribers listen).
        """
        if self._router is not None:
            source = source.replace("'PUBLISH'", "'SPUBLISH'")
        return _Script(source)

    def lane(self) -> _Lane:
        """Return a new lane (see ``_Lane``), whose connection closes with this layer."""
        lane = _Lane()
        self._lanes.append(lane)
        return lane

    async def call(self, operation: Callable[[], Awaitable[T]], doubt: str = "") -> T:
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
        replicas = _REPLICAS.set(self._replicas if doubt else 0)
        try:
            return await self._retrying(operation, doubt, deadline)
        finally:
            _REPLICAS.reset(replicas)
            _CUTOFF.reset(cutoff)

    async def _retrying(
        self, operation: Callable[[], Awaitable[T]], doubt: str, deadline: float
    ) -> T:
        pause = 0.02
        in_doubt = False
        unreplicated = False  # a change was applied and no replica confirmed it
        moved = False  # a Cluster's slot moved once: the first retry goes at once
        while True:
            try:
                return await operation()
            except rexc.AuthenticationError as exc:
                raise BackendError(
                    f"Redis at {self._where} refused the credentials: {exc} "
                    "(check the password in the URL)"
                ) from exc
            except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
                if self._router is not None:
                    self._router.lost()  # the node may be gone: ask where the slot is
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
                unreplicated = unreplicated or isinstance(exc, _UnreplicatedError)
                if now >= deadline:
                    outcome = ""
                    if doubt:
                        outcome = f"; {doubt}" if in_doubt else "; it never reached the server"
                    what = "is unreachable"
                    if unreplicated:
                        what = 'has no replica to confirm the change (durability="replicated")'
                    error = BackendUnavailableError(
                        f"Redis at {self._where} {what}: {exc or type(exc).__name__}"
                        f" (gave up after retrying for {self._retry_timeout:g} s;"
                        f" the retry_timeout option sets this budget){outcome}"
                    )
                    # What the durable layer checks, e.g. before a retract.
                    error.outcome_unknown = bool(doubt and in_doubt)
                    raise error from exc
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, 0.5)
            except REDIRECTIONS as exc:
                if self._router is None:
                    if isinstance(exc, rexc.MovedError):
                        raise BackendError(
                            f"Redis at {self._where} is a node of a Redis Cluster (it"
                            f" answered MOVED {exc}): give the cluster's nodes in a"
                            " redis+cluster:// URL"
                        ) from exc
                    raise await self._reply_error(exc) from exc
                now = time.monotonic()
                if now >= deadline:
                    outcome = ""
                    if doubt:
                        outcome = f"; {doubt}" if in_doubt else "; it was not applied"
                    error = BackendUnavailableError(
                        f"{self._where}: slot {self._router.slot} was not served:"
                        f" {type(exc).__name__} {exc} (gave up after retrying for"
                        f" {self._retry_timeout:g} s; the retry_timeout option sets this"
                        f" budget){outcome}"
                    )
                    error.outcome_unknown = bool(doubt and in_doubt)
                    raise error from exc
                if isinstance(exc, rexc.MovedError):
                    # The slot moved (a resharding, a replica promoted): go there now.
                    self._router.moved(exc.host, exc.port)
                    idle, self._idle = self._idle, []
                    for wire in idle:
                        wire.retire()
                    if not moved:
                        moved = True
                        continue
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, 0.5)
            except rexc.ResponseError as exc:
                raise await self._reply_error(exc) from exc
            except rexc.RedisError as exc:
                raise BackendError(f"Redis at {self._where} failed: {exc}") from exc

    async def eval(
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
        wire = self._idle.pop() if self._idle else None
        sent = False
        try:
            if wire is None or not wire.usable:
                wire = await self._connect()
            if not command:
                command = _pack("EVALSHA", script.sha, len(keys), *keys, *args)
            sent = True
            timeout = self._socket_timeout
            left = _CUTOFF.get() - time.monotonic()
            if left < timeout:
                timeout = max(left, 0.001)
            try:
                reply = await wire.reply(command, timeout)
            except rexc.NoScriptError:  # a new or restarted server: load, then run
                await wire.reply(_pack("SCRIPT", "LOAD", script.source), self.time_left())
                reply = await wire.reply(command, self.time_left())
            except rexc.AskError as exc:
                if isinstance(exc, rexc.MovedError) or self._router is None:
                    raise
                self._idle.append(wire)  # sound: its reply was read whole
                wire = None
                return await self._asking(exc, script, command)
            if _REPLICAS.get():
                await self._replicated(wire)
        except rexc.ResponseError:
            if wire is not None:  # None: the reply came from the node ASK named
                self._idle.append(wire)  # the reply was read whole: the connection is sound
            raise
        except BaseException as exc:
            if wire is not None:
                await wire.disconnect()
            # A refused password is an answer, not a lost connection (redis-py before 5.1
            # can report it only once the first command is sent).
            if (
                sent
                and not isinstance(exc, _SentError)
                and isinstance(exc, (rexc.ConnectionError, rexc.TimeoutError, OSError))
                and not isinstance(exc, rexc.AuthenticationError)
            ):
                raise _SentError(str(exc) or type(exc).__name__) from exc
            raise
        self._idle.append(wire)
        return reply

    async def lane_eval(self, lane: _Lane, entry: _LaneEntry, script: _Script) -> Any:
        """Send *entry* on *lane*'s connection in its turn and return its reply.

        Run inside ``call()``, like ``eval``: a lost connection raises ``_SentError`` (or a
        plain connection error before the send) and ``call()`` tries again, in turn again.

        Raises:
            _SentError: The connection failed after the command was sent.
        """
        sent = False
        wire: _Wire | None = None
        try:
            while True:
                wire = lane.wire
                if wire is None or not wire.usable:
                    async with lane.connecting:  # one connection a lane, made once
                        wire = lane.wire
                        if wire is None or not wire.usable:
                            # An idle connection of the store's, if one is sound: no
                            # handshake on the way of the first put.
                            while self._idle and not self._idle[-1].usable:
                                await self._idle.pop().disconnect()
                            wire = self._idle.pop() if self._idle else await self._connect()
                            lane.wire = wire
                older = lane.entries[: lane.entries.index(entry)]
                if any(other.sent_on is not wire for other in older):
                    # An older batch is yet to be (re)sent here: it goes first.
                    await asyncio.wait_for(lane.changed(), self.time_left())
                    continue
                entry.sent_on = wire
                lane.notify()
                sent = True
                command = entry.encode(bool(older))
                timeout = self.time_left()
                try:
                    reply = await wire.reply(command, timeout)
                    if _REPLICAS.get():
                        await self._replicated(wire)
                    return reply
                except rexc.NoScriptError:  # a new or restarted server: load, go again
                    await wire.reply(_pack("SCRIPT", "LOAD", script.source), self.time_left())
                except rexc.AskError as exc:
                    # The slot is being migrated and the keys left: followed for this
                    # batch alone, once every batch before it was answered (on another
                    # connection, the order would be lost).
                    if isinstance(exc, rexc.MovedError) or self._router is None:
                        raise
                    if not older:
                        return await self._asking(exc, script, command)
                    entry.sent_on = None
                    await asyncio.wait_for(lane.changed(), self.time_left())
                    continue
                except rexc.ResponseError as exc:
                    if not str(exc).startswith("GAP"):
                        raise
                entry.sent_on = None  # in turn again, behind what went before it
        except rexc.ResponseError:
            entry.sent_on = None  # not on any connection now: those behind wait for it
            raise
        except BaseException as exc:
            if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
                exc = rexc.TimeoutError("no turn to send within the time left")
            entry.sent_on = None
            if wire is not None and sent:
                await wire.disconnect()  # the batches after it fail, and go again in turn
            if (
                sent
                and isinstance(exc, (rexc.ConnectionError, rexc.TimeoutError, OSError))
                and not isinstance(exc, _SentError)
            ):
                raise _SentError(str(exc) or type(exc).__name__) from exc
            if exc is not sys.exc_info()[1]:
                raise exc from None
            raise

    async def _asking(self, ask: rexc.AskError, script: _Script, command: bytes) -> Any:
        """Run *command* on the node an ``ASK`` names, once, on a connection of its own.

        Raises:
            redis.exceptions.ResponseError: The node's answer, ``TRYAGAIN`` among them
                (the keys of the command are split between the two nodes for now).
        """
        wire = _Wire(await self._handshake((ask.host, ask.port)), demoted_is_lost=True)
        asking: asyncio.Future[Any] | None = None
        try:
            for _ in range(2):
                asking = wire.request(_pack("ASKING"))  # for the next command only
                try:
                    reply = await wire.reply(command, self.time_left())
                except rexc.NoScriptError:
                    await wire.reply(_pack("SCRIPT", "LOAD", script.source), self.time_left())
                    continue
                if _REPLICAS.get():
                    await self._replicated(wire)
                return reply
            raise rexc.TryAgainError("the script was not loaded on the node ASK named")  # type: ignore[no-untyped-call,unused-ignore]
        finally:
            if asking is not None and asking.done() and not asking.cancelled():
                asking.exception()  # read, so that asyncio never reports it unread
            await wire.disconnect()

    async def _replicated(self, wire: _Wire) -> None:
        """Wait until the replicas asked for have every change sent on *wire* so far.

        Raises:
            _UnreplicatedError: Fewer replicas confirmed within the time left.
        """
        left = self.time_left()
        # WAIT's own timeout ends before the read's, so that its reply (how many
        # replicas have the changes) comes back, rather than a timeout: the server checks
        # timeouts some 10 times a second.  0 would mean "wait forever".
        wait_ms = max(int((left - max(left * 0.1, 0.2)) * 1000), 1)
        acked = await wire.reply(_pack("WAIT", self._replicas, wait_ms), left)
        if acked < self._replicas:
            raise _UnreplicatedError(
                f"{acked} of {self._replicas} replica(s) confirmed the change within"
                f" {wait_ms / 1000:g} s"
            )

    def time_left(self) -> float:
        """Seconds one more wait may take: socket_timeout, cut at the call's budget."""
        return max(min(self._socket_timeout, _CUTOFF.get() - time.monotonic()), 0.001)

    async def subscription(self, heard: Callable[[Any], None]) -> _Subscription:
        """Open a connection of its own for pub/sub, its messages handed to *heard*.

        In a Redis Cluster, to the primary of the queue's slot, sharded (see
        ``_Subscription.subscribe``).
        """
        conn = await self._handshake()
        redirected = self._redirected if self._router is not None else None
        subscription = _Subscription(conn, heard, redirected)
        if self._follow_failover:
            self._wires.add(subscription)
        return subscription

    async def _connect(self) -> _Wire:
        wire = _Wire(await self._handshake(), demoted_is_lost=self._follow_failover)
        if self._follow_failover:
            self._wires.add(wire)
            watch = getattr(self._client, "watch_failovers", None)
            if self._watch is None and watch is not None and not self._closed:
                self._watch = asyncio.get_running_loop().create_task(watch(self._switched))
        return wire

    def _redirected(self, error: rexc.ResponseError) -> None:
        # A sharded subscription was refused where the router pointed: learn from it.
        # (ASK and TRYAGAIN: the slot is being moved from there, which is still right.)
        assert self._router is not None
        if isinstance(error, rexc.MovedError):
            self._router.moved(error.host, error.port)
        elif isinstance(error, rexc.ClusterDownError):
            self._router.lost()  # nobody serves the slot: ask again who does, later

    async def primaries(self) -> list[tuple[str, int] | None]:
        """Return the nodes that hold keys: every primary of a Cluster, else ``[None]``."""
        if self._router is None:
            return [None]
        return list(await self._router.primaries())

    def _switched(self) -> None:
        # A sentinel announced a new primary: the old one may still run and take writes
        # until Sentinel demotes it, seconds later, and those would be lost.  Every
        # connection goes; what was in flight on one is retried, on the new primary.
        for wire in list(self._wires):
            wire.abort("the primary moved (Sentinel announced a failover)")

    async def _handshake(self, address: tuple[str, int] | None = None) -> Any:
        # A stopped server accepts connections and never answers the handshake: bound the
        # whole of it by what is left of the call's budget, not by a timeout a step.
        # The client's pool makes connections to the primary (in a Cluster, to the slot's:
        # see _cluster.py); a node an ASK named is reached by its address.
        conn: Any
        if address is not None:
            assert self._router is not None  # addresses come from a Cluster's replies
            conn = self._router.connection(address)
        else:
            conn = self._client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        limit = self.time_left()
        conn.socket_timeout = limit  # for the handshake
        try:
            await asyncio.wait_for(conn.connect(), limit)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await conn.disconnect()
            raise rexc.TimeoutError(f"no answer to the connection within {limit:g} s") from exc
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.disconnect()
            raise
        # Handshake done: from now on this module reads the connection (see _Wire).
        return conn

    async def command(self, *args: Any, node: tuple[str, int] | None = None) -> Any:
        """Run one plain command on a connection of this store's own, as ``eval`` does.

        With *node* (an address ``primaries()`` gave), on a connection to that node of a
        Redis Cluster, made for the command and closed after it.
        """
        if node is not None:
            once = _Wire(await self._handshake(node))
            try:
                return await once.reply(_pack(*args), self.time_left())
            finally:
                await once.disconnect()
        wire = self._idle.pop() if self._idle else None
        try:
            if wire is None or not wire.usable:
                wire = await self._connect()
            reply = await wire.reply(_pack(*args), self.time_left())
        except rexc.ResponseError:
            assert wire is not None  # only a reply raises it
            self._idle.append(wire)
            raise
        except BaseException:
            if wire is not None:
                await wire.disconnect()
            raise
        self._idle.append(wire)
        return reply
