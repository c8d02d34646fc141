"""``open_queue``: from a URL to a queue, loading the backend the URL names on demand.

Accepted URLs:

* ``memory://`` — an in-memory ``conveyor.Queue`` (``maxsize`` applies; nothing is
  shared or durable).
* ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` — the SQLAlchemy
  convention: what follows the third slash is the file path, so a fourth slash makes it
  absolute.  Many named queues share one file.
* ``redis://host:port/db`` and ``rediss://`` (TLS) — needs ``pip install 'conveyor[redis]'``.
* ``redis+sentinel://host:26379[,host:26380,...]/SERVICE[/db]`` and ``rediss+sentinel://``
  — the primary that Redis Sentinel names for SERVICE, followed through a failover.
* ``redis+cluster://host:port[,host:port,...]`` and ``rediss+cluster://`` — seed nodes of
  a Redis Cluster (7 or newer); each queue lives on the primary of its slot.

Backend modules live in ``conveyor.backends`` and are imported only when their scheme
is used, so the core never imports a driver it does not need.
"""

from __future__ import annotations

import importlib
import math
import urllib.parse
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any

from ._abc import AsyncQueue, check_maxsize
from ._durable import DurableQueue
from ._exceptions import InvalidURLError, MaxsizeConflictError, MissingDependencyError
from ._queue import Queue
from ._serializers import Serializer, resolve_serializer
from ._urls import redacted

__all__ = ["open_queue", "redacted"]

# scheme -> (backend module, the pip extra its driver comes with, or None)
_BACKENDS: dict[str, tuple[str, str | None]] = {
    "sqlite": ("conveyor.backends.sqlite", None),
    "redis": ("conveyor.backends.redis", "redis"),
    "rediss": ("conveyor.backends.redis", "redis"),
    "redis+sentinel": ("conveyor.backends.redis", "redis"),
    "rediss+sentinel": ("conveyor.backends.redis", "redis"),
    "redis+cluster": ("conveyor.backends.redis", "redis"),
    "rediss+cluster": ("conveyor.backends.redis", "redis"),
}
_ACCEPTED = (
    "memory://, sqlite:///relative.db, sqlite:////absolute.db, redis://host:port/db, rediss://,"
    " redis+sentinel://host:26379[,host:26380,...]/SERVICE[/db], rediss+sentinel://,"
    " redis+cluster://host:port[,host:port,...], rediss+cluster://"
)

# Schemes whose URL names several hosts, comma-separated: their backend reads the hosts.
_MANY_HOSTS = ("redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")

# Options the shared durable layer takes; every other option goes to the backend.
_QUEUE_OPTIONS = ("max_attempts", "renew_leases", "processing_timeout")


class _Opening:
    """What ``open_queue()`` returns: awaitable, and an async context manager."""

    __slots__ = ("_open", "_queue")

    def __init__(self, open_: Callable[[], Any]) -> None:
        self._open = open_
        self._queue: AsyncQueue[Any] | None = None

    def __await__(self) -> Generator[Any, None, AsyncQueue[Any]]:
        return self._open().__await__()  # type: ignore[no-any-return]

    async def __aenter__(self) -> AsyncQueue[Any]:
        self._queue = await self._open()
        return self._queue

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._queue is not None:
            queue, self._queue = self._queue, None
            await queue.aclose()


def open_queue(
    url: str,
    *,
    name: str = "default",
    maxsize: float | None = None,
    lease_timeout: float = 30.0,
    serializer: str | Serializer = "json",
    **options: Any,
) -> _Opening:
    """Open the queue *name* of the store at *url*; await it or use ``async with``.

    ``q = await open_queue(url)`` returns the queue (close it with ``await q.aclose()``);
    ``async with open_queue(url) as q:`` closes it on the way out.

    Args:
        url: Where the queue lives: ``memory://``, ``sqlite:///relative.db``,
            ``sqlite:////absolute.db``, ``redis://host:port/db``, ``rediss://...``, or
            ``redis+sentinel://host:26379[,host:26380,...]/SERVICE[/db]`` (and
            ``rediss+sentinel://``) for the primary Redis Sentinel names, or
            ``redis+cluster://host:port[,host:port,...]`` (and ``rediss+cluster://``)
            for a Redis Cluster.
        name: The queue's name; many named queues share one file or database.
        maxsize: Items allowed in the queue; ``<= 0`` means unbounded.  A durable queue
            stores its bound, shared by every process: ``None`` (the default) uses the
            stored one (unbounded while none is stored); a value is stored when the
            queue has none yet, and must equal the stored one otherwise (change that
            with ``await queue.set_maxsize(n)`` or ``conveyor maxsize URL NAME N``).
            For ``memory://``, ``None`` means unbounded.
        lease_timeout: Seconds a got item stays leased before it is delivered again
            (durable backends).  Leases renew themselves while the holding process
            lives, so this bounds how long a dead process's items stay away.
        serializer: ``"json"`` (the default), ``"pickle"`` (only when every writer is
            trusted) or a ``Serializer`` (durable backends).
        **options: ``max_attempts`` (deliveries before an item goes to the dead-letter
            list; default ``None``, no limit), ``renew_leases`` (default ``True``),
            ``processing_timeout`` (seconds a live holder keeps an item before it is
            delivered again; default ``None``, no bound), and options of the backend, e.g.
            SQLite's ``durability="process"|"power"`` and ``busy_timeout``, Redis's
            ``durability="primary"|"replicated"`` and ``retry_timeout``.

    Returns:
        An awaitable that is also an async context manager, giving the queue.

    Raises:
        InvalidURLError: The scheme is unknown or the URL malformed (a ``ValueError``).
        MissingDependencyError: The backend's driver is not installed (an ``ImportError``).
        TypeError: An option is unknown or of the wrong type.
        MaxsizeConflictError: *maxsize* differs from the bound stored with the queue (a
            ``ValueError``).
        IncompatibleStoreError: The store is not a conveyor store or is newer.
        BackendError: The store cannot be opened.
    """

    async def _open() -> AsyncQueue[Any]:
        return await _open_queue(url, name, maxsize, lease_timeout, serializer, options)

    return _Opening(_open)


def _parse(url: object) -> urllib.parse.SplitResult:
    if not isinstance(url, str):
        raise TypeError(f"url must be a str such as 'sqlite:///jobs.db', not {url!r}")
    scheme = url.partition(":")[0].lower()
    several = False
    try:
        parts = urllib.parse.urlsplit(url)
        several = scheme in ("redis", "rediss") and "," in parts.netloc
        if not several and scheme not in _MANY_HOSTS:
            parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        # Not chained: urllib's message quotes the netloc, and with a password holding
        # an unencoded "/" or ":" what it takes for a port is part of the password.
        raise InvalidURLError(
            f"malformed queue URL {redacted(url)!r}: {_malformed(exc)}; accepted: {_ACCEPTED}"
        ) from None
    if several:
        raise InvalidURLError(
            f"{redacted(url)!r} names several hosts: a {scheme}:// URL names one server;"
            f" for a primary that Redis Sentinel watches, give"
            f" {scheme}+sentinel://host:26379[,host:26380,...]/SERVICE[/db]; for a Redis"
            f" Cluster, {scheme}+cluster://host:port[,host:port,...]"
        )
    if not parts.scheme or "://" not in url:
        raise InvalidURLError(f"queue URL {redacted(url)!r} has no scheme; accepted: {_ACCEPTED}")
    if parts.netloc and "@" in parts.path + parts.query + parts.fragment:
        # The rest of a password holding an unencoded "/", "?" or "#" would otherwise
        # be read as the path or the query, and quoted by messages about them.
        raise InvalidURLError(
            f"queue URL {redacted(url)!r} has an '@' after its host: percent-encode "
            "'/', '?', '#', '@' and ':' in a user name or password (e.g. %2F for '/', "
            "%40 for '@') and '@' in a query value"
        )
    return parts


def _malformed(exc: ValueError) -> str:
    text = str(exc)
    if "Port" in text or "port" in text:
        return "the port is not a number from 0 to 65535 (percent-encode a ':' in a password)"
    if "IPv6" in text:
        return "the host has an unbalanced '[' or ']'"
    return "it cannot be split into scheme, host, path and query"


async def _open_queue(
    url: str,
    name: str,
    maxsize: float | None,
    lease_timeout: float,
    serializer: str | Serializer,
    options: dict[str, Any],
) -> AsyncQueue[Any]:
    parts = _parse(url)
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, not {name!r}")
    if maxsize is not None:
        check_maxsize(maxsize)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path or parts.query:
            raise InvalidURLError(
                f"memory:// takes nothing after the scheme, not {redacted(url)!r}"
            )
        if options:
            raise TypeError(f"memory:// queues take no options: {sorted(options)}")
        resolve_serializer(serializer)  # a wrong serializer is an error everywhere
        return Queue(0 if maxsize is None else maxsize)
    if scheme not in _BACKENDS:
        raise InvalidURLError(
            f"unknown queue URL scheme {parts.scheme!r} in {redacted(url)!r}; accepted: {_ACCEPTED}"
        )
    queue_options = {k: options.pop(k) for k in _QUEUE_OPTIONS if k in options}
    serializer = resolve_serializer(serializer)
    # Check the queue's own arguments before opening anything.
    DurableQueue(_NO_STORE, lease_timeout=lease_timeout, **queue_options)
    module = _import_backend(scheme)
    store = await module.open_store(parts, name, **options)
    try:
        stored = await store.bind_maxsize(maxsize)
    except BaseException:
        await store.aclose()
        raise
    if maxsize is not None and not _same_bound(maxsize, stored):
        await store.aclose()
        raise MaxsizeConflictError(_conflict(url, name, maxsize, stored))
    queue: DurableQueue[Any] = DurableQueue(
        store,
        maxsize=stored or 0,
        lease_timeout=lease_timeout,
        serializer=serializer,
        **queue_options,
    )
    try:
        await queue.refresh()  # start from the shared state, not from zero
    except BaseException:
        await queue.aclose()
        raise
    return queue


def _import_backend(scheme: str) -> Any:
    """Import the backend module of *scheme* (one of ``_BACKENDS``), naming a missing extra.

    Raises:
        MissingDependencyError: The backend's driver is not installed.
    """
    module_name, extra = _BACKENDS[scheme]
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        if extra is None or module_name.startswith(exc.name or "\0"):
            raise
        raise MissingDependencyError(
            f"{scheme}:// queues need the {extra} driver ({exc.name} is not installed): "
            f"pip install 'conveyor[{extra}]'"
        ) from exc


def _same_bound(asked: float, stored: float | None) -> bool:
    # Every unbounded value (0, -1, inf) is the same bound.
    def unbounded(bound: float) -> bool:
        return bound <= 0 or math.isinf(bound)

    if stored is None:
        return False
    return asked == stored or (unbounded(asked) and unbounded(stored))


def _conflict(url: str, name: str, asked: float, stored: float | None) -> str:
    def shown(bound: float | None) -> str:
        if bound is None or bound <= 0 or math.isinf(bound):
            return f"{bound!r} (unbounded)"
        return repr(bound)

    return (
        f"queue {name!r} at {redacted(url)} has maxsize {shown(stored)} stored with it, and"
        f" this open_queue() asked for maxsize={shown(asked)}: the bound belongs to the"
        " queue and holds for every process.  Open it without maxsize to use the stored"
        f" bound, or change the bound for everyone with `conveyor maxsize {redacted(url)}"
        f" {name} {asked!r}` or `await queue.set_maxsize({asked!r})`."
    )


class _NoStore:
    backend = "none"


_NO_STORE: Any = _NoStore()
