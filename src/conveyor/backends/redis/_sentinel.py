"""Reaching the primary that Redis Sentinel names: the URL's hosts and the client.

``redis+sentinel://[[user]:password@]host:26379[,host:26380,...]/SERVICE[/db]`` names the
sentinels and the service they watch; ``rediss+sentinel://`` talks TLS to both.  The
store's connection layer (``_connection.py``) makes each connection through the client's
pool, and redis-py's ``SentinelConnectionPool`` asks the sentinels for the service's
primary as each connection is made: a connection lost in a failover is made again to the
primary the sentinels name then, and one made meanwhile fails and is retried within
``retry_timeout``, as for a restarting server.  A primary demoted while a connection to
it stays open answers writes with ``READONLY``: the connection layer then drops it, so
the next one asks the sentinels again (``RedisConnection``'s *follow_failover*).

A primary that Sentinel replaced while it still runs (``SENTINEL FAILOVER``, or a network
split) is turned into a replica only some seconds later (Sentinel waits 8 s before it
reconfigures an instance that reports the wrong role); every write it takes meanwhile is
lost when it resyncs from the new primary.  So the client also listens to the sentinels'
``+switch-master`` announcements (``watch_failovers()``), and the connection layer drops
every connection it has as soon as one names the service, and the sentinels are asked
all at once, the newest configuration believed (``_NewestSentinel``).  Measured in one
process putting at full speed through a ``SENTINEL FAILOVER``: without these, the puts of
the 8 s until the demotion were lost (346 of 400); with them, only those of the 0.2 s
between the replica's promotion and the announcement (94).  ``durability="replicated"``
loses none (see ``RedisConnection``).

Only the sentinels' addresses come from the URL.  Its password is the data servers'; the
sentinels' own, if they want one, is the ``sentinel_password`` option (a query option is
redacted from messages as any ``...password=`` is).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from typing import Any, NamedTuple

import redis.asyncio as aioredis
import redis.asyncio.sentinel as rsentinel
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff

from ..._exceptions import InvalidURLError
from ..._urls import redacted
from ._hosts import parse_hosts

SCHEMES = ("redis+sentinel", "rediss+sentinel")
"""The schemes of a service behind Sentinel, plain and TLS."""

_DEFAULT_PORT = 26379

_FORMS = (
    "redis+sentinel://[[user]:password@]host:26379[,host:26380,...]/SERVICE[/db]"
    " (rediss+sentinel:// for TLS)"
)


class SentinelAddress(NamedTuple):
    """What a Sentinel URL names: where the sentinels are, which service, which database."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int

    @property
    def where(self) -> str:
        """For messages: the service and its sentinels (never a password)."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"{self.service} (Sentinel {hosts})"


def parse_sentinel_url(url: urllib.parse.SplitResult) -> SentinelAddress:
    """Return the sentinels, the service and the database a Sentinel URL names.

    Raises:
        InvalidURLError: No sentinel, a bad port, no service name, or a path that is not
            ``/SERVICE`` or ``/SERVICE/db``; the message shows the accepted form.
    """
    shown = redacted(url.geturl())
    sentinels = parse_hosts(url, _DEFAULT_PORT, each="sentinel", forms=_FORMS)
    segments = urllib.parse.unquote(url.path).strip("/").split("/")
    service = segments[0]
    if not service or len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise InvalidURLError(
            f"the path of a Sentinel URL is the service's name, then the database number if"
            f" not 0, not that of {shown!r}; accepted: {_FORMS}"
        )
    db = int(segments[1]) if len(segments) == 2 else 0
    return SentinelAddress(sentinels, service, db)


class _NewestSentinel(Sentinel):
    """Sentinels asked all at once, the primary of the newest configuration believed.

    redis-py takes the first sentinel's answer; right after a failover a sentinel that
    has not heard of it yet still names the old primary, which keeps taking writes (lost
    once it is demoted).  The configuration epoch orders the sentinels' views.
    """

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        answers = await asyncio.gather(
            *(sentinel.sentinel_masters() for sentinel in self.sentinels),  # type: ignore[no-untyped-call,unused-ignore]
            return_exceptions=True,
        )
        newest: tuple[int, tuple[str, int]] | None = None
        errors: list[str] = []
        for answer in answers:
            if isinstance(answer, (rexc.ConnectionError, rexc.ResponseError, rexc.TimeoutError)):
                errors.append(f"{type(answer).__name__}: {answer}")
                continue
            if isinstance(answer, BaseException):
                raise answer
            masters: dict[str, Any] = answer  # type: ignore[assignment,unused-ignore]  # a dict
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):
                epoch = int(state.get("config-epoch", 0))
                if newest is None or epoch > newest[0]:
                    newest = (epoch, (state["ip"], int(state["port"])))
        if newest is None:
            raise rsentinel.MasterNotFoundError(
                f"no sentinel names a primary for {service_name!r}"
                + (f" ({'; '.join(errors)})" if errors else "")
            )
        return newest[1]


class _SentinelRedis(aioredis.Redis):
    """The client of a service's primary: closing it closes the sentinels' clients too."""

    manager: Sentinel
    service: str
    listen_kwargs: dict[str, Any]
    """How to reach a sentinel to listen to it: no read timeout, announcements are rare."""

    async def watch_failovers(self, switched: Callable[[], None]) -> None:
        """Call *switched* each time a sentinel announces a new primary of the service.

        Listens to one sentinel at a time, the next one when it is lost; runs until
        cancelled.
        """
        pause = 0.1
        while True:
            for host, port in [
                (
                    s.connection_pool.connection_kwargs["host"],
                    s.connection_pool.connection_kwargs["port"],
                )
                for s in self.manager.sentinels
            ]:
                listener = aioredis.Redis(host=host, port=port, **self.listen_kwargs)
                pubsub = listener.pubsub()
                try:
                    await pubsub.subscribe("+switch-master")
                    while True:
                        message = await pubsub.get_message(timeout=None)
                        if message is None or message["type"] != "message":
                            continue
                        pause = 0.1
                        if message["data"].split(b" ", 1)[0] == self.service.encode():
                            switched()
                except (rexc.RedisError, OSError):
                    # Gone, or refusing (a password, a permission): the next one.  The
                    # READONLY replies and lost connections still follow a failover.
                    pause = 2.0
                finally:
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
                    await listener.aclose()
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool=True)
        finally:
            for client in self.manager.sentinels:
                await client.aclose()


def sentinel_client(
    address: SentinelAddress,
    *,
    username: str | None,
    password: str | None,
    sentinel_password: str | None,
    socket_timeout: float,
    connect_timeout: float,
    tls: dict[str, Any],
) -> aioredis.Redis:
    """Return a client whose pool makes connections to the primary Sentinel names now.

    Nothing is reached yet: each new connection asks the sentinels first.

    Args:
        address: What the URL names.
        username, password: The data servers' credentials.
        sentinel_password: The sentinels' password, if they want one.
        socket_timeout, connect_timeout: Seconds, for sentinels and servers alike.
        tls: The TLS keywords (``ssl=True`` and the ``ssl_*`` options), or empty.
    """
    # conveyor's own budget decides, in RedisConnection.call (NoBackoff is untyped in 5.0).
    no_retry = Retry(NoBackoff(), 0)  # type: ignore[no-untyped-call,unused-ignore]
    sentinel = _NewestSentinel(  # type: ignore[no-untyped-call,unused-ignore]
        address.sentinels,
        sentinel_kwargs={
            "password": sentinel_password,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "retry": no_retry,
            **tls,
        },
    )
    pool = SentinelConnectionPool(  # type: ignore[no-untyped-call,unused-ignore]
        address.service,
        sentinel,
        db=address.db,
        username=username,
        password=password,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=no_retry,
        decode_responses=False,
        **tls,
    )
    client = _SentinelRedis(connection_pool=pool)
    client.manager = sentinel
    client.service = address.service
    client.listen_kwargs = {
        "password": sentinel_password,
        "socket_timeout": None,
        "socket_connect_timeout": connect_timeout,
        "socket_keepalive": True,
        "retry": no_retry,
        **tls,
    }
    return client
