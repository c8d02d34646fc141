"""The URL of an SQLite queue and its options: ``open_store()``, where opening starts."""

from __future__ import annotations

import urllib.parse
from typing import Any

from ..._exceptions import InvalidURLError
from ..._urls import redacted
from ._store import SQLiteStore

__all__ = ["open_store"]

_SYNCHRONOUS = {"process": "NORMAL", "power": "FULL"}


def _path_from_url(url: urllib.parse.SplitResult) -> str:
    if url.netloc:
        raise InvalidURLError(
            f"sqlite URL must have an empty host: sqlite:///relative.db or "
            f"sqlite:////absolute.db, not {redacted(url.geturl())!r}"
        )
    if url.query or url.fragment:
        raise InvalidURLError(
            f"sqlite URL takes no query or fragment (pass options as keyword arguments): "
            f"{redacted(url.geturl())!r}"
        )
    path = urllib.parse.unquote(url.path)
    if path.startswith("/"):
        path = path[1:]
    if not path or path == ":memory:" or path.endswith("/"):
        raise InvalidURLError(
            f"sqlite URL must name a file: sqlite:///relative.db or sqlite:////absolute.db "
            f"(use memory:// for an in-memory queue), not {redacted(url.geturl())!r}"
        )
    return path


async def open_store(url: urllib.parse.SplitResult, name: str, **options: Any) -> SQLiteStore:
    """Open (creating on first use) the queue *name* in the SQLite file *url* names.

    Args:
        url: ``sqlite:///relative.db`` or ``sqlite:////absolute.db``, split.
        name: The queue's name.
        **options: ``durability`` (``"process"``, the default, or ``"power"``; see
            ``conveyor.backends.sqlite``) and ``busy_timeout`` (seconds a write waits for
            the lock before retrying; default 5).

    Returns:
        The open store.

    Raises:
        InvalidURLError: The URL names no file.
        TypeError: An unknown option, or one of the wrong type.
        ValueError: An option has a wrong value.
        IncompatibleStoreError: The file is not a conveyor database, or a newer one.
        BackendError: The file cannot be opened or created (missing directory, no
            permission, a directory in its place...).
    """
    path = _path_from_url(url)
    durability = options.pop("durability", "process")
    busy_timeout = options.pop("busy_timeout", 5.0)
    if options:
        raise TypeError(
            f"unknown option(s) for sqlite queues: {', '.join(sorted(options))}; "
            "accepted: durability, busy_timeout, max_attempts"
        )
    if durability not in _SYNCHRONOUS:
        raise ValueError(f"durability must be 'process' or 'power', not {durability!r}")
    if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
        raise TypeError(f"busy_timeout must be a number of seconds, not {busy_timeout!r}")
    if not 0 <= busy_timeout < float("inf"):
        raise ValueError(f"busy_timeout must be a non-negative number, not {busy_timeout!r}")
    store = SQLiteStore(path, name, _SYNCHRONOUS[durability], float(busy_timeout))
    try:
        await store._start()
    except BaseException:
        await store.aclose()
        raise
    return store
