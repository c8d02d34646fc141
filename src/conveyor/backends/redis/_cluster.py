"""Reaching the primary of a queue's slot in a Redis Cluster: the URL, the topology, the client.

``redis+cluster://[[user]:password@]host:7000[,host:7001,...]`` names seed nodes of one
cluster (any of them will do; ``rediss+cluster://`` talks TLS).  Every key of a queue
carries the queue's hash tag (``prefix:{name}:...``), so a queue lives in one slot, on the
one primary that serves it: its scripts run there whole, as on a single server.

``ClusterRouter`` knows which primary serves the queue's slot.  It asks every node it knows
at once (``CLUSTER NODES``) and believes the primary of the newest configuration epoch,
as a failover or a resharding raises it; a node learnt of joins those asked next time, so
the seeds may all be gone later.  The connection layer (``_connection.py``) makes each
connection through the client's pool, whose connections ask the router where to go as
they connect, and tells the router what it learns: a ``MOVED`` reply names the new owner
(the slot was resharded, or a replica took over), a lost connection makes the router ask
the nodes again before the next one.  ``ASK`` (the slot is being migrated, and the keys
asked for already left) is followed for that one command; ``TRYAGAIN`` (a multi-key
command while the slot's keys are split between two nodes) and ``CLUSTERDOWN`` (the
slot's primary failed and no replica took over yet) are retried within ``retry_timeout``,
as for a restarting server: none of them ran anything.

Wake-ups use sharded pub/sub (``SSUBSCRIBE``, and ``SPUBLISH`` in the scripts; Redis 7+),
whose messages stay on the slot's own primary and replicas instead of crossing the whole
cluster.  A subscription ends (``sunsubscribe``) when its slot moves away, and the listener
subscribes again where the router then points.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from typing import TYPE_CHECKING, Any, NamedTuple

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from ..._exceptions import BackendError, InvalidURLError
from ..._urls import redacted
from ._hosts import parse_hosts

SCHEMES = ("redis+cluster", "rediss+cluster")
"""The schemes of a Redis Cluster, plain and TLS."""

_DEFAULT_PORT = 6379

_FORMS = "redis+cluster://[[user]:password@]host:port[,host:port,...] (rediss+cluster:// for TLS)"


class ClusterAddress(NamedTuple):
    """What a Cluster URL names: seed nodes of one cluster."""

    seeds: list[tuple[str, int]]

    @property
    def where(self) -> str:
        """For messages: the seeds (never a password)."""
        return "Redis Cluster " + ",".join(f"{host}:{port}" for host, port in self.seeds)


def parse_cluster_url(url: urllib.parse.SplitResult) -> ClusterAddress:
    """Return the seed nodes a Cluster URL names.

    Raises:
        InvalidURLError: No node, a bad port, or a path other than none or ``/0`` (a
            cluster has database 0 only); the message shows the accepted form.
    """
    seeds = parse_hosts(url, _DEFAULT_PORT, each="node", forms=_FORMS)
    if url.path.strip("/") not in ("", "0"):
        raise InvalidURLError(
            f"a Redis Cluster has database 0 only: {redacted(url.geturl())!r} names another;"
            f" accepted: {_FORMS}"
        )
    return ClusterAddress(seeds)


class _Node(NamedTuple):
    """One line of ``CLUSTER NODES``, what the router needs of it."""

    address: tuple[str, int]
    primary: bool
    failed: bool
    epoch: int
    slots: list[tuple[int, int]]
    own: bool
    """Whether this is the answering node's line of itself: what it says first-hand."""


def parse_nodes(text: str, asked: tuple[str, int]) -> list[_Node]:
    """Read ``CLUSTER NODES``: each node's address, role, health, epoch and slot ranges.

    A node that knows no address of its own (a fresh one) reports ``:port``: the host
    that was asked stands in for it.
    """
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        hostport = fields[1].partition("@")[0]
        host, _, port_text = hostport.rpartition(":")
        flags = set(fields[2].split(","))
        if not port_text.isdigit() or "noaddr" in flags or "handshake" in flags:
            continue
        if not host:
            host = asked[0]
        slots = []
        for part in fields[8:]:
            if part.startswith("["):  # a migration under way: [slot->-id] / [slot-<-id]
                continue
            first, _, last = part.partition("-")
            slots.append((int(first), int(last or first)))
        nodes.append(
            _Node(
                (host.strip("[]"), int(port_text)),
                "master" in flags,
                bool(flags & {"fail", "fail?"}),
                int(fields[6]),
                slots,
                "myself" in flags,
            )
        )
    return nodes


def pick_owner(nodes: list[_Node], slot: int) -> _Node | None:
    """Return the live primary that serves *slot* in the newest view among *nodes*.

    *nodes* are the lines of every node asked, each node's view of all.  The newest
    configuration epoch wins (a failover or a resharding raises it); between equals (two
    nodes may share one for a moment after a slot was moved by hand), a node's word of
    itself wins over another's word of it.
    """
    best: _Node | None = None
    for node in nodes:
        if not node.primary or node.failed:
            continue
        if any(first <= slot <= last for first, last in node.slots) and (
            best is None or (node.epoch, node.own) > (best.epoch, best.own)
        ):
            best = node
    return best


class ClusterRouter:
    """Which primary serves one slot now, asked of the cluster's nodes when in doubt.

    Args:
        seeds: The nodes the URL names.
        slot: The slot of the queue's keys.
        connection_kwargs: How to connect to a node (credentials, timeouts, TLS).
        tls: Whether to talk TLS.
        where: The cluster, for messages.
    """

    def __init__(
        self,
        seeds: list[tuple[str, int]],
        slot: int,
        *,
        connection_kwargs: dict[str, Any],
        tls: bool,
        where: str,
    ) -> None:
        self.slot = slot
        self.where = where
        self._known = list(dict.fromkeys(seeds))
        self._kwargs = connection_kwargs
        self._tls = tls
        self._primary: tuple[str, int] | None = None
        self._primaries: list[tuple[str, int]] = []
        self._stale = True
        self._asking: asyncio.Lock | None = None

    def connection(self, address: tuple[str, int] | None = None) -> Connection:
        """Return a new connection (not connected) to *address*, or to the slot's primary.

        One to the slot's primary asks the router where that is as it connects.
        """
        if address is None:
            routed = _RoutedSSLConnection if self._tls else _RoutedConnection
            return routed(self, **self._kwargs)
        host, port = address
        return (SSLConnection if self._tls else Connection)(host=host, port=port, **self._kwargs)

    async def primary(self) -> tuple[str, int]:
        """Return the address of the slot's primary, asking the nodes first when in doubt.

        Raises:
            redis.exceptions.ConnectionError: No node could be asked, or none names a
                primary for the slot (a failover under way): retried by the caller.
            BackendError: A node is not in cluster mode.
        """
        if self._stale or self._primary is None:
            if self._asking is None:
                self._asking = asyncio.Lock()
            async with self._asking:
                if self._stale or self._primary is None:
                    await self.refresh()
        assert self._primary is not None
        return self._primary

    async def primaries(self) -> list[tuple[str, int]]:
        """Return the address of every primary serving slots, as the nodes say now."""
        await self.refresh()
        return list(self._primaries)

    def moved(self, host: str, port: int) -> None:
        """A node answered ``MOVED``: *host*:*port* serves the slot now."""
        address = (host, port)
        self._primary = address
        self._stale = False
        if address not in self._known:
            self._known.append(address)

    def lost(self) -> None:
        """A connection failed: ask the nodes again before the next one."""
        self._stale = True

    async def refresh(self) -> None:
        """Ask every known node at once; believe the primary of the newest epoch.

        Raises:
            redis.exceptions.ConnectionError: No node answered, or none names a live
                primary for the slot.
            BackendError: A node is not in cluster mode, or refused the credentials.
        """
        known = list(self._known)
        answers = await asyncio.gather(*(self._ask(node) for node in known), return_exceptions=True)
        errors = []
        heard: list[_Node] = []
        for asked, answer in zip(known, answers, strict=True):
            if isinstance(answer, rexc.AuthenticationError):
                raise BackendError(
                    f"Redis at {asked[0]}:{asked[1]} ({self.where}) refused the"
                    f" credentials: {answer} (check the password in the URL)"
                ) from answer
            if isinstance(answer, rexc.ResponseError):
                if "cluster support disabled" in str(answer):
                    raise BackendError(
                        f"Redis at {asked[0]}:{asked[1]} is not a cluster node (cluster"
                        " support disabled): give its redis:// URL instead of redis+cluster://"
                    ) from answer
                errors.append(f"{asked[0]}:{asked[1]}: {answer}")
                continue
            if isinstance(answer, BaseException):
                if not isinstance(answer, (rexc.RedisError, OSError, asyncio.TimeoutError)):
                    raise answer
                errors.append(f"{asked[0]}:{asked[1]}: {answer or type(answer).__name__}")
                continue
            heard += answer
            for node in answer:
                if node.address not in self._known:
                    self._known.append(node.address)
        best = pick_owner(heard, self.slot)
        if best is None:
            detail = f" ({'; '.join(errors)})" if errors else ""
            raise rexc.ConnectionError(
                f"no node of {self.where} names a live primary for slot {self.slot}{detail}"
            )
        self._primary = best.address
        self._primaries = sorted(
            {node.address for node in heard if node.primary and not node.failed and node.slots}
        )
        self._stale = False

    async def _ask(self, node: tuple[str, int]) -> list[_Node]:
        conn = self.connection(node)
        try:
            await conn.connect()  # type: ignore[no-untyped-call,unused-ignore]
            await conn.send_command("CLUSTER", "NODES")
            reply = await conn.read_response()
        finally:
            with contextlib.suppress(Exception):
                await conn.disconnect()
        if isinstance(reply, rexc.ResponseError):
            raise reply
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return parse_nodes(text, node)


if TYPE_CHECKING:
    _Base = Connection
else:
    _Base = object


class _Routed(_Base):
    """A connection to the slot's primary, wherever the router says it is as it connects."""

    def __init__(self, router: ClusterRouter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.router = router

    async def connect(self) -> None:
        self.host, self.port = await self.router.primary()
        try:
            await super().connect()  # type: ignore[no-untyped-call,unused-ignore]
        except (rexc.ConnectionError, rexc.TimeoutError, OSError):
            self.router.lost()
            raise


class _RoutedConnection(_Routed, Connection):
    """``_Routed`` in plain text."""


class _RoutedSSLConnection(_Routed, SSLConnection):
    """``_Routed`` over TLS."""


class _SlotPool(aioredis.ConnectionPool):
    """A pool whose connections go to the slot's primary, wherever the router says."""

    def __init__(self, router: ClusterRouter) -> None:
        super().__init__()
        self.router = router

    def make_connection(self) -> Connection:  # type: ignore[override,unused-ignore]
        return self.router.connection()


def cluster_client(
    address: ClusterAddress,
    key: str,
    *,
    username: str | None,
    password: str | None,
    socket_timeout: float,
    connect_timeout: float,
    tls: dict[str, Any],
) -> tuple[aioredis.Redis, ClusterRouter]:
    """Return a client whose connections go to the primary of *key*'s slot, and its router.

    Nothing is reached yet: the first connection asks the nodes where the slot is.

    Args:
        address: What the URL names.
        key: A key of the queue (all of them share its slot).
        username, password: The nodes' credentials.
        socket_timeout, connect_timeout: Seconds.
        tls: The TLS keywords (``ssl=True`` and the ``ssl_*`` options), or empty.
    """
    kwargs: dict[str, Any] = {
        "username": username,
        "password": password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        # conveyor's own budget decides, in RedisConnection.call.
        "retry": Retry(NoBackoff(), 0),  # type: ignore[no-untyped-call,unused-ignore]
        **{k: v for k, v in tls.items() if k != "ssl"},
    }
    router = ClusterRouter(
        address.seeds,
        key_slot(key.encode()),
        connection_kwargs=kwargs,
        tls=bool(tls),
        where=address.where,
    )
    return aioredis.Redis(connection_pool=_SlotPool(router)), router
