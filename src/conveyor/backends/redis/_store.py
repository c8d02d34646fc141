"""The Redis backend: one durable queue shared by every machine that reaches the server.

``open_queue("redis://[user:password@]host:port/db", name=...)`` (``rediss://`` for TLS)
lands here through ``open_store()``.  The queue named *name* lives in these keys, e.g.
``conveyor:{jobs}:ready`` for the queue "jobs": the braces are literal, a hash tag that
keeps all of a queue's keys in one slot of a Redis Cluster (``redis+cluster://``: the
queue lives on that slot's primary, and its scripts run there whole).  In prefix and name,
``%``, ``{`` and ``}`` are written ``%25``, ``%7B`` and ``%7D`` (``queue_keys()``), so
that no two (prefix, name) pairs share a key and the hash tag is always the name; names
and prefixes without those characters keep the keys they always had::

    {prefix}:{name}:meta      hash: "format" (layout version, 3; a queue of format 1 or 2
                              is marked 3 on open, its items kept where they are: see
                              lua/check_format.lua), "epoch" (random, written
                              with the keys: the queue's incarnation), "seq" (last item
                              id), "dseq" (last delivery number), "deadseq" (dead-letter
                              order), "shutdown" ("1" once any process shut the queue
                              down, until one resumes it), "maxsize" (the queue's bound, as
                              a number, "0" unbounded; absent until an opener or
                              set_maxsize stores one, so queues of earlier versions need
                              no migration), "acked" (items ever acknowledged),
                              "putnext" (when the next put-time checkpoint is due),
                              "snapat" and "snaps" (the totals' snapshots, for rates:
                              see lua/rates.lua)
    {prefix}:{name}:fresh     list: the payload of every item never claimed and put with
                              no job options, in put order (one put with options takes an
                              id, an empty element and a hole here, its payload in items);
                              the last element is item "seq", so an element's id follows
                              from its place and costs no memory (a queued small item takes
                              about 7 bytes, not the 160 of a hash and zset entry each)
    {prefix}:{name}:holes     set: ids of fresh items taken out of turn (retracted, claimed
                              by id), whose elements are left empty until a claim reaches
                              them and skips them
    {prefix}:{name}:items     hash: item id -> payload, for every item claimed at least once
                              or put with job options, and not yet acknowledged (a claim
                              moves it here from fresh)
    {prefix}:{name}:attempts  hash: item id -> deliveries so far, for the same items; "0"
                              after a claim given back or a requeue
    {prefix}:{name}:ready     zset: the ready items of priority 0 that were claimed before
                              (back from a lease, a retry, the dead letters) or put with
                              job options, scored by id; claims merge
                              them with the fresh list by id, so that claims are FIFO by put
                              order even for items that come back
    {prefix}:{name}:delayed   zset: item id scored by the time its retry delay (or the
                              delay it was put with) ends
    {prefix}:{name}:leased    zset: item id scored by its lease deadline, plus a pin (a
                              member of over 64 bytes scored +inf: see _LEASED_PIN)
    {prefix}:{name}:lease     hash: item id -> number of its current delivery; a receipt is
                              "epoch:id:delivery", so one from an expired lease matches
                              nothing, and one of another queue or incarnation is told apart
    {prefix}:{name}:putat     zset: put times, at most one a second (fewer behind a long
                              backlog): the id of the first item of a put scored by that
                              id, its member the server's time then (see lua/oldest.lua
                              and put.lua), for the oldest item's age
    {prefix}:{name}:dead      zset: dead item id scored by the order of death
    {prefix}:{name}:deadinfo  hash: dead item id -> "failed_at|reason"
    {prefix}:{name}:prio      zset: the ready items put with a priority other than 0,
                              scored by it, members their ids padded to 16 digits (equal
                              scores order by member: FIFO within a priority); claims take
                              those below 0 first, then the fresh list and ready (priority
                              0), then those above 0
    {prefix}:{name}:priority  hash: item id -> priority, for the items of a priority other
                              than 0 (a retry, release or requeue puts them back in prio)
    {prefix}:{name}:dedup     hash: dedup key -> id of the unfinished item holding it
    {prefix}:{name}:keyof     hash: item id -> its dedup key (ack, death, retract and purge
                              free the key through it)
    {prefix}:{name}:expires   zset: ids of items put with a ttl and never claimed, scored by
                              when they expire; a claim's maintenance moves those still
                              waiting to the dead letters ("expired")
    {prefix}:{name}:ops:{client}  hash with a TTL: per client, the token and reply of its
                              last batched change, so that a batch resent after a lost reply
                              (a dropped connection, a restarted server) is not applied twice
    {prefix}:{name}:waiters   hash: a client's own channel -> "<until> <lease timeout>",
                              set by a claim that found nothing: the next put into the
                              empty queue leases its first item to that client and
                              publishes it there (see lua/put.lua), so that a getter waiting
                              in another process has it without a claim's round trip
    {prefix}:{name}:inbox:{client}  pub/sub channel of one client: the items handed to it;
                              one its getters do not claim within 0.5 s is given back
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
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis
import redis.exceptions as rexc

from ..._exceptions import BackendError
from .._base import (
    DeadLetter,
    Delivery,
    PeekedItem,
    Purgeable,
    PutOptions,
    Store,
    StoreCounts,
    StoreTotals,
)
from ._admin import QueueAdmin
from ._claims import ItemClaims
from ._cluster import ClusterRouter
from ._connection import RedisConnection
from ._identity import QueueIdentity
from ._leases import LeaseChanges
from ._operate import QueueOperations
from ._puts import ItemPuts
from ._runner import OperationContext, ScriptRunner
from ._scripts import queue_keys
from ._wakeups import ChangeListener


class RedisStore(Store):
    """One named queue in a Redis database; see the module docstring for its keys.

    The store composes parts that each own one job and their own state:

    * ``QueueIdentity`` (``_identity.py``): the epoch, reset detection, the checks made at
      open, what an error reply means;
    * ``ChangeListener`` (``_wakeups.py``): the pub/sub connection, the change counter,
      ``wait_changed()``;
    * ``ScriptRunner`` (``_runner.py``): runs scripts over the connection layer, with the
      head every change sends;
    * ``ItemPuts`` (``_puts.py``) and ``ItemClaims`` (``_claims.py``): the batched put,
      retract, claim and ack paths;
    * ``LeaseChanges`` (``_leases.py``): retry, release, fail and extend by receipt;
    * ``QueueAdmin`` (``_admin.py``): counts, shutdown and resume, the bound, dead letters.

    Its methods hand each operation to the part that does it; their docstrings are there.
    """

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
        replicas: int = 0,
        follow_failover: bool = False,
        router: ClusterRouter | None = None,
    ) -> None:
        self._client = client
        self._router = router
        self._socket_timeout = socket_timeout
        keys = queue_keys(prefix, name, client=uuid.uuid4().hex)
        self._ops = keys["ops"]
        self._waiters, self._inbox = keys["waiters"], keys["inbox"]
        self._link = RedisConnection(
            client,
            name=name,
            where=where,
            retry_timeout=retry_timeout,
            socket_timeout=socket_timeout,
            reply_error=self._reply_error,
            replicas=replicas,
            follow_failover=follow_failover or router is not None,
            router=router,
        )
        self._identity = QueueIdentity(self._link, keys, name=name, where=where, user=user)
        self._listener = ChangeListener(
            self._link.subscription,
            keys["changed"],
            own_ops=self._ops,
            time_left=self._link.time_left,
            inbox=keys["inbox"],
        )
        self._runner = ScriptRunner(
            self._link,
            self._identity,
            self._listener,
            channel=keys["changed"],
            retry_timeout=retry_timeout,
        )
        context = OperationContext(self._runner, self._identity, self._listener, keys)
        self._puts = ItemPuts(context)
        self._leases = LeaseChanges(context)
        self._claims = ItemClaims(context, give_back=self._leases.release, name=name, where=where)
        self._admin = QueueAdmin(context)
        self._operations = QueueOperations(context, self._link)
        self._listener.handed = self._claims.take_handed
        self._closed = False

    @property
    def backend(self) -> str:
        """The backend's name, ``"redis"``."""
        return "redis"

    async def _reply_error(self, exc: rexc.ResponseError) -> BaseException:
        # The connection layer is made before the identity that reads its replies.
        return await self._identity.reply_error(exc)

    # -- identity and checks at open (QueueIdentity) -------------------------------------

    async def check_format(self) -> list[str]:
        """Check the queue's key layout and take its epoch (``QueueIdentity.check_format()``)."""
        return await self._identity.check_format()

    async def check_version(self) -> None:
        """In a Redis Cluster, refuse a node older than 7 (``QueueIdentity.check_version()``)."""
        if self._router is not None:
            await self._identity.check_version(
                (7, 0), "a queue in a Redis Cluster (sharded pub/sub)"
            )

    async def check_eviction(self) -> None:
        """Refuse an ``allkeys-*`` eviction policy (``QueueIdentity.check_eviction()``)."""
        await self._identity.check_eviction()

    def permission_error(self, missing: Sequence[str], detail: str = "") -> BackendError:
        """Return the error that names the permissions the user lacks for this queue."""
        return self._identity.permission_error(missing, detail)

    # -- put (ItemPuts) ------------------------------------------------------------------

    async def put(self, payloads: Sequence[bytes]) -> bool:
        """Append *payloads* as ready items, all or none (``ItemPuts.put()``)."""
        return await self._puts.put(payloads)

    async def put_jobs(
        self, payloads: Sequence[bytes], options: Sequence[PutOptions]
    ) -> list[str | None] | None:
        """Store *payloads* with per-item job options (see ``ItemPuts.put_jobs``)."""
        return await self._puts.put_jobs(payloads, options)

    async def put_returning_ids(self, payloads: Sequence[bytes]) -> tuple[bool, list[str] | None]:
        """Append *payloads* and name the items (``ItemPuts.put_returning_ids()``)."""
        return await self._puts.put_returning_ids(payloads)

    async def retract(self, item_ids: Sequence[str]) -> list[bool]:
        """Delete items just put, all or none (``ItemPuts.retract()``)."""
        return await self._puts.retract(item_ids)

    # -- claim and ack (ItemClaims) ------------------------------------------------------

    async def claim(
        self, max_items: int, lease_timeout: float, max_attempts: int | None
    ) -> list[Delivery]:
        """Lease up to *max_items* of the oldest ready items (``ItemClaims.claim()``)."""
        return await self._claims.claim(max_items, lease_timeout, max_attempts)

    claims_by_id = True

    put_depth = 4  # applied in order, a refused one overtaken by none (ItemPuts)

    # get_many(100) in one claim, not two (64 + 36): a claim's round trip costs the client
    # more than its items do (12 -> 9 us of client CPU an item with put_many + get_many(100)).
    # Not more: the replies of a client's last 8 claims stay in Redis for replay (see
    # lua/head.lua), payloads included (1000 would keep about 0.6 MB of 40-byte items).
    max_claim = 128

    async def claim_ids(
        self, item_ids: Sequence[str], lease_timeout: float
    ) -> list[Delivery | None]:
        """Lease the items named, if ready and never claimed (``ItemClaims.claim_ids()``)."""
        return await self._claims.claim_ids(item_ids, lease_timeout)

    async def ack(self, receipts: Sequence[str]) -> list[bool]:
        """Acknowledge deliveries: their items are done (``ItemClaims.ack()``)."""
        return await self._claims.ack(receipts)

    # -- retry, release, fail, extend (LeaseChanges) -------------------------------------

    async def retry(self, receipt: str, delay: float) -> bool:
        """Deliver the item again after *delay* seconds (``LeaseChanges.retry()``)."""
        return await self._leases.retry(receipt, delay)

    async def release(self, receipts: Sequence[str]) -> list[bool]:
        """Give back leases never handed to a user (``LeaseChanges.release()``)."""
        return await self._leases.release(receipts)

    async def fail(self, receipt: str, error: str) -> bool:
        """Move a leased item to the dead letters (``LeaseChanges.fail()``)."""
        return await self._leases.fail(receipt, error)

    async def extend(self, receipt: str, lease_timeout: float) -> float | None:
        """Push a lease's deadline (``LeaseChanges.extend()``)."""
        return await self._leases.extend(receipt, lease_timeout)

    async def extend_many(
        self, receipts: Sequence[str], lease_timeout: float
    ) -> list[float | None]:
        """Push the deadlines of many leases at once (``LeaseChanges.extend_many()``)."""
        return await self._leases.extend_many(receipts, lease_timeout)

    # -- shared state (QueueAdmin) -------------------------------------------------------

    async def counts(self) -> StoreCounts:
        """Read the shared counters in one atomic step (``QueueAdmin.counts()``)."""
        return await self._admin.counts()

    async def shutdown(self, immediate: bool) -> int:
        """Mark the queue shut down for every process (``QueueAdmin.shutdown()``)."""
        return await self._admin.shutdown(immediate)

    async def resume(self) -> None:
        """Clear the queue's shutdown mark for every process (``QueueAdmin.resume()``)."""
        await self._admin.resume()

    async def bind_maxsize(self, maxsize: float | None) -> float | None:
        """Set meta's ``maxsize`` if absent, then read it (``QueueAdmin.bind_maxsize()``)."""
        return await self._admin.bind_maxsize(maxsize)

    async def set_maxsize(self, maxsize: float) -> None:
        """Overwrite meta's ``maxsize`` and wake putters (``QueueAdmin.set_maxsize()``)."""
        await self._admin.set_maxsize(maxsize)

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Return up to *limit* dead items, oldest first (``QueueAdmin.dead_letters()``)."""
        return await self._admin.dead_letters(limit)

    async def requeue_dead(self, item_ids: Sequence[str] | None) -> int:
        """Make dead items ready again (``QueueAdmin.requeue_dead()``)."""
        return await self._admin.requeue_dead(item_ids)

    # -- operating from outside (QueueOperations) ----------------------------------------

    async def peek(self, limit: int) -> list[PeekedItem]:
        """Return up to *limit* ready items, changing nothing (``QueueOperations.peek()``)."""
        return await self._operations.peek(limit)

    async def purge(self, which: Purgeable) -> int:
        """Delete waiting items, dead letters or both (``QueueOperations.purge()``)."""
        return await self._operations.purge(which)

    async def oldest_ready_age(self) -> float | None:
        """Return the oldest ready item's age (``QueueOperations.oldest_ready_age()``)."""
        return await self._operations.oldest_ready_age()

    async def totals(self) -> StoreTotals:
        """Return the totals and rates of the last minute (``QueueOperations.totals()``)."""
        return await self._operations.totals()

    async def exists(self) -> bool:
        """Return whether the queue's keys exist (``QueueOperations.exists()``)."""
        return await self._operations.exists()

    async def queue_names(self) -> list[str]:
        """Return the queues under this queue's prefix (``QueueOperations.queue_names()``)."""
        return await self._operations.queue_names()

    # -- waiting for other processes (ChangeListener) ------------------------------------

    async def wait_changed(self, timeout: float) -> None:
        """Return once the queue may have changed (``ChangeListener.wait_changed()``)."""
        await self._listener.wait_changed(timeout)

    async def listen(self, wait: bool = False) -> None:
        """Subscribe to the queue's changes, if not yet (``ChangeListener.listen()``)."""
        await self._listener.listen(wait)

    def subscribe_error(self) -> rexc.ResponseError | None:
        """Return why the server refused the subscription, if it did (e.g. ``NOPERM``)."""
        return self._listener.subscribe_error()

    async def _forget_client(self) -> None:
        await self._link.command("HDEL", self._waiters, self._inbox)
        await self._link.command("DEL", self._ops)

    async def aclose(self) -> None:
        """Release the connections and stop listening for changes.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._runner.used_ops:
            # No put hands an item to this client from now on (see _claims.take_handed:
            # one already on its way is given back below, or its lease expires), and its
            # replay record goes (else it expires on its own).  Bounded, so that closing a
            # queue on a stopped server (or one that failed to open) takes one
            # socket_timeout at most.
            with contextlib.suppress(rexc.RedisError, OSError, asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(self._forget_client(), self._socket_timeout)
        await self._listener.aclose()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._claims.aclose(), self._socket_timeout)
        await self._link.aclose()
        await self._client.aclose()
