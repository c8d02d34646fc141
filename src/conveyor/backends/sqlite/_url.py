"""The URL of an SQLite queue and its options: ``open_store()``, where opening starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import urllib.parse
from typing import Any

from ..._exceptions import InvalidURLError, QueueNotFoundError
from ..._urls import redacted
from ._errors import open_error
from ._schema import read_queue_names
from ._store import SQLiteStore

__all__ = ["list_queues", "open_existing_store", "open_store"]

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


async def list_queues(url: urllib.parse.SplitResult, **options: Any) -> list[str]:
    """Return the names of the queues in the SQLite file *url* names, sorted.

    The file is only read: nothing is created, migrated or written.

    Args:
        url: ``sqlite:///relative.db`` or ``sqlite:////absolute.db``, split.
        **options: As for ``open_store()`` (checked, then unused: reading needs none).

    Raises:
        InvalidURLError: The URL names no file.
        QueueNotFoundError: No file exists at that path.
        IncompatibleStoreError: The file is not a conveyor database, or a newer one.
        BackendError: The file cannot be read.
    """
    path = _path_from_url(url)
    _check_options(dict(options))
    return await asyncio.to_thread(_read_names, path)


async def open_existing_store(
    url: urllib.parse.SplitResult, name: str, **options: Any
) -> SQLiteStore:
    """Open the queue *name* of the SQLite file *url* names, if both exist.

    As ``open_store()``, except that a missing file or queue is refused and nothing is
    created.  (A file removed between the check and the open is created again by the
    open, empty: a race only a concurrent deletion can lose.)

    Raises:
        QueueNotFoundError: No file exists at that path, or it holds no queue *name*.
        InvalidURLError, TypeError, ValueError, IncompatibleStoreError, BackendError:
            As for ``open_store()``.
    """
    path = _path_from_url(url)
    _check_options(dict(options))
    names = await asyncio.to_thread(_read_names, path)
    if name not in names:
        listed = ", ".join(repr(n) for n in names) or "none"
        raise QueueNotFoundError(
            f"SQLite queue file {path!r} has no queue {name!r} (its queues: {listed})"
        )
    return await open_store(url, name, **options)


def _check_options(options: dict[str, Any]) -> None:
    options.pop("durability", None)
    options.pop("busy_timeout", None)
    if options:
        raise TypeError(
            f"unknown option(s) for sqlite queues: {', '.join(sorted(options))}; "
            "accepted: durability, busy_timeout, max_attempts"
        )


def _read_names(path: str) -> list[str]:
    # mode=rw never creates the file: a missing one fails to open, with no race.
    if not os.path.exists(path):
        raise QueueNotFoundError(f"no SQLite queue file at {path!r}")
    if os.path.isdir(path):
        raise QueueNotFoundError(f"{path!r} is a directory, not an SQLite queue file")
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=rw"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None)
    except sqlite3.Error as exc:
        if not os.path.exists(path):
            raise QueueNotFoundError(f"no SQLite queue file at {path!r}") from None
        raise open_error(path, exc) from exc
    try:
        return read_queue_names(conn, path)
    except sqlite3.Error as exc:
        raise open_error(path, exc) from exc
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
