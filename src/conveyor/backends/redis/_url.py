"""Opening a Redis queue: the URL and its options, the client, the checks at open."""

from __future__ import annotations

import ssl
import time
import urllib.parse
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..._exceptions import (
    InvalidURLError,
    QueueNotFoundError,
)
from ..._urls import redacted
from .._base import Store
from ._cluster import SCHEMES as _CLUSTER_SCHEMES
from ._cluster import ClusterRouter, cluster_client, parse_cluster_url
from ._connection import _CUTOFF
from ._replies import denied_command
from ._scripts import queue_keys
from ._sentinel import SCHEMES as _SENTINEL_SCHEMES
from ._sentinel import parse_sentinel_url, sentinel_client
from ._store import RedisStore

_DEFAULT_PORT = 6379


_SECONDS_OPTIONS = ("retry_timeout", "socket_timeout", "connect_timeout")


_TLS_OPTIONS = (
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_check_hostname",
)


_OPTIONS = {"prefix", "durability", "sentinel_password", *_SECONDS_OPTIONS, *_TLS_OPTIONS}


# durability -> the replicas that must have each change before it counts as done.
_DURABILITY = {"primary": 0, "replicated": 1}


_TLS_SCHEMES = ("rediss", "rediss+sentinel", "rediss+cluster")


_CERT_REQS = ("none", "optional", "required")


_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


async def open_store(url: urllib.parse.SplitResult, name: str, **options: Any) -> Store:
    """Open the queue *name* in the Redis database that *url* names.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db][?option=value&...]``, or
            ``rediss://`` for TLS.  The query may carry any option below, as redis-py's
            ``from_url`` accepts it, e.g. ``rediss://host:6380/0?ssl_ca_certs=/etc/ca.pem``.
            ``redis+sentinel://[[user]:password@]host:26379[,host:26380,...]/SERVICE[/db]``
            (``rediss+sentinel://`` for TLS) reaches the primary that the sentinels name
            for SERVICE, and follows a failover (see ``_sentinel.py``).
            ``redis+cluster://[[user]:password@]host:port[,host:port,...]``
            (``rediss+cluster://`` for TLS) names seed nodes of a Redis Cluster (7 or
            newer): the queue lives on the primary of its slot (see ``_cluster.py``).
        name: The queue's name; many queues share one database.
        options: ``prefix`` (key prefix, default ``"conveyor"``), ``retry_timeout``
            (seconds to keep retrying a lost connection, default 10), ``socket_timeout``
            (seconds to wait for one reply, default 5), ``connect_timeout`` (default 5),
            and for ``rediss://`` only: ``ssl_ca_certs`` (CA file to trust instead of the
            system's), ``ssl_certfile`` and ``ssl_keyfile`` (a client certificate),
            ``ssl_cert_reqs`` (``"required"``, the default, ``"optional"`` or ``"none"``),
            ``ssl_check_hostname`` (default true); ``durability``: ``"primary"`` (the
            default: a change is done once the primary applied it) or ``"replicated"``
            (once at least one replica has it too: each change is followed by ``WAIT``,
            and one no replica confirmed within ``retry_timeout`` raises
            ``BackendUnavailableError`` with ``outcome_unknown`` set); for a Sentinel URL,
            ``sentinel_password`` (the sentinels' own, when they require one).  An
            option may be given in the URL or as a keyword, not both.

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
    store, retry_timeout, socket_timeout = _new_store(url, name, options)
    await _check_at_open(store, retry_timeout, socket_timeout, url.scheme in _CLUSTER_SCHEMES)
    return store


async def open_existing_store(url: urllib.parse.SplitResult, name: str, **options: Any) -> Store:
    """Open the queue *name* in the Redis database *url* names, if it exists.

    As ``open_store()``, except that a queue whose keys do not exist (never opened, or
    wiped since) is refused, and nothing is written.

    Raises:
        QueueNotFoundError: The database holds no queue *name* under the prefix.
        InvalidURLError, TypeError, ValueError, BackendUnavailableError, BackendError,
            IncompatibleStoreError: As for ``open_store()``.
    """
    store, retry_timeout, socket_timeout = _new_store(url, name, options)
    try:
        if not await store.exists():
            raise QueueNotFoundError(
                f"Redis at {_location(url)} has no queue {name!r}"
                f" (`conveyor queues URL` lists the queues there)"
            )
    except BaseException:
        await store.aclose()
        raise
    await _check_at_open(store, retry_timeout, socket_timeout, url.scheme in _CLUSTER_SCHEMES)
    return store


async def list_queues(url: urllib.parse.SplitResult, **options: Any) -> list[str]:
    """Return the names of the queues in the Redis database *url* names, sorted.

    Only reads (``SCAN``, which never blocks the server): nothing is written.

    Raises:
        InvalidURLError, TypeError, ValueError, BackendUnavailableError: As for
            ``open_store()``.
        BackendError: The server failed, or the user may not run ``SCAN``.
    """
    store, _, _ = _new_store(url, "(listing)", options)
    try:
        return await store.queue_names()
    finally:
        await store.aclose()


def _new_store(
    url: urllib.parse.SplitResult, name: str, options: dict[str, Any]
) -> tuple[RedisStore, float, float]:
    """Return the store of queue *name* at *url*, not yet checked, and its two timeouts."""
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(
            f"unknown option(s) for a Redis queue: {', '.join(sorted(unknown))}"
            f" (known: {', '.join(sorted(_OPTIONS))})"
        )
    if url.scheme not in ("redis", "rediss", *_SENTINEL_SCHEMES, *_CLUSTER_SCHEMES):
        raise InvalidURLError(f"not a Redis URL: {redacted(url.geturl())!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a queue name must be a non-empty string, not {name!r}")
    sentinel = parse_sentinel_url(url) if url.scheme in _SENTINEL_SCHEMES else None
    cluster = parse_cluster_url(url) if url.scheme in _CLUSTER_SCHEMES else None
    if sentinel is None and cluster is None:
        host, port, db = _host_port_db(url)
    in_url = _url_options(url)
    twice = set(in_url) & set(options)
    if twice:
        raise ValueError(
            f"option(s) {', '.join(sorted(twice))} given both in the Redis URL and as keywords"
        )
    options = {**options, **in_url}
    retry_timeout = _seconds(options, "retry_timeout", 10.0)
    tls: dict[str, Any] = {}
    if url.scheme in _TLS_SCHEMES:
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
            f" {url.scheme.replace('redis', 'rediss', 1)}:// URL, not {url.scheme}://"
        )
    durability = options.get("durability", "primary")
    if durability not in _DURABILITY:
        raise ValueError(
            f"option durability must be one of {', '.join(_DURABILITY)}, not {durability!r}"
        )
    sentinel_password = options.get("sentinel_password")
    if sentinel_password is not None and (
        sentinel is None or not isinstance(sentinel_password, str)
    ):
        raise ValueError("option sentinel_password is a string, for a redis+sentinel:// URL only")
    socket_timeout = _seconds(options, "socket_timeout", 5.0)
    if socket_timeout <= 0:
        raise ValueError("option socket_timeout must be a positive number of seconds")
    connect_timeout = _seconds(options, "connect_timeout", 5.0)
    user = urllib.parse.unquote(url.username) if url.username else None
    password = urllib.parse.unquote(url.password) if url.password is not None else None
    prefix = str(options.get("prefix", "conveyor"))
    client: aioredis.Redis
    router: ClusterRouter | None = None
    if cluster is not None:
        where = cluster.where
        client, router = cluster_client(
            cluster,
            queue_keys(prefix, name)["meta"],
            username=user,
            password=password,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            tls=tls,
        )
        where = f"{where} (slot {router.slot})"
    elif sentinel is not None:
        where = sentinel.where
        client = sentinel_client(
            sentinel,
            username=user,
            password=password,
            sentinel_password=sentinel_password,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            tls=tls,
        )
    else:
        where = f"{host}:{port}"
        client = aioredis.Redis(
            host=host,
            port=port,
            db=db,
            username=user,
            password=password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            # conveyor's own budget decides, in _call (NoBackoff is untyped in redis-py 5.0).
            retry=Retry(NoBackoff(), 0),  # type: ignore[no-untyped-call,unused-ignore]
            decode_responses=False,
            **tls,
        )
    store = RedisStore(
        client,
        name,
        where=where,
        prefix=prefix,
        retry_timeout=retry_timeout,
        socket_timeout=socket_timeout,
        user=user,
        replicas=_DURABILITY[durability],
        follow_failover=sentinel is not None,
        router=router,
    )
    return store, retry_timeout, socket_timeout


def _host_port_db(url: urllib.parse.SplitResult) -> tuple[str, int, int]:
    """Return the host, port and database of a ``redis://`` or ``rediss://`` URL.

    Raises:
        InvalidURLError: A bad port, or a path that is not a database number.
    """
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
    return host, port, int(db_text)


def _location(url: urllib.parse.SplitResult) -> str:
    """Say where *url* points, for messages: server or service, and database."""
    if url.scheme in _SENTINEL_SCHEMES:
        address = parse_sentinel_url(url)
        return f"{address.where} (database {address.db})"
    if url.scheme in _CLUSTER_SCHEMES:
        return parse_cluster_url(url).where
    host, port, db = _host_port_db(url)
    return f"{host}:{port} (database {db})"


async def _check_at_open(
    store: RedisStore, retry_timeout: float, socket_timeout: float, cluster: bool = False
) -> None:
    """Make the checks of ``open_store()`` on *store*; close it and raise if one fails."""
    # One budget for all the steps: opening takes retry_timeout + socket_timeout at most.
    budget = _CUTOFF.set(time.monotonic() + retry_timeout + socket_timeout)
    try:
        await store.check_version()
        await store.check_eviction()
        missing = await store.check_format()
        await store.listen(wait=True)
        refused = store.subscribe_error()
        if refused is not None:
            subscribe = "ssubscribe" if cluster else "subscribe"
            denied = denied_command(refused) or subscribe
            missing.append(denied if denied in ("subscribe", "ssubscribe") else subscribe)
        if missing:
            raise store.permission_error(missing)
    except BaseException:
        await store.aclose()
        raise
    finally:
        _CUTOFF.reset(budget)


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
        elif key == "durability" and text not in _DURABILITY:
            value = None
        if value is None:
            raise InvalidURLError(f"bad value {text!r} for option {key} in a Redis URL")
        found[key] = value
    return found


def _seconds(options: dict[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"option {key} must be a non-negative number of seconds, not {value!r}")
    return float(value)
