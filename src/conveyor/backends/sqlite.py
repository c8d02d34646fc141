"""The SQLite store: durable queues shared by the processes of one machine, in one file.

URL: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the SQLAlchemy
convention: the path is what follows the third slash).  Many named queues share one file;
the file and its schema are created on first use.

Where the work happens: each store owns one connection and one worker thread; every
statement runs on that thread and the event loop only awaits futures, so no disk I/O ever
blocks the loop.  Writes take the lock up front (``BEGIN IMMEDIATE``) and wait for it
(``busy_timeout``), then retry a bounded number of times, so "database is locked" never
reaches a user; past the budget they raise ``BackendUnavailableError``.

Durability (option ``durability``): the file is in WAL mode.

* ``"process"`` (the default, ``synchronous=NORMAL``): a committed ``put``/``ack`` survives
  the crash or kill of any process; a power loss or OS crash may lose the last commits
  (never corrupts the file).
* ``"power"`` (``synchronous=FULL``): every commit is flushed to the disk before it
  returns, so it also survives a power loss, at a large cost in speed.

A full disk makes writes fail with a ``BackendError`` that says so and names
the directory to free space in (the failed call changed nothing).  The store then empties
the WAL into the file as soon as a write fits again, so that the queue works again once
some space is free, rather than filling it back up with WAL.

Wake-ups across processes: while a task waits in ``SQLiteStore.wait_changed()``, the
worker thread checks ``PRAGMA data_version`` (which changes when another connection
commits) every 20 ms; with nobody waiting it sleeps.  Changes made through stores of this
process wake their waiters at once.

Schema (version 2): ``meta`` (key/value: ``application = conveyor``, ``schema_version``,
``incarnation``: random, written with the file, or on first open of a file made before),
``queues`` (one row per queue name, with its shutdown flag and its stored ``maxsize``: NULL
until an opener or ``set_maxsize`` records one, <= 0: none) and ``items`` (one row per item,
its id never given twice in the file; ``state`` 0 = ready from ``available_at`` on,
1 = leased until ``lease_deadline`` under ``lease_token``, 2 = dead; a ready item never
claimed may keep there the token of the put that stored it, for
``SQLiteStore.retract()``).  A file that is not a conveyor database,
or whose schema is newer, raises ``IncompatibleStoreError`` and is left untouched.
A file of an older schema is migrated when opened, in one transaction (version 1 to 2 adds
``queues.maxsize``, NULL for the queues it holds: no bound stored yet), and an items table
made before ids were never reused (no ``AUTOINCREMENT``) is rebuilt once, likewise.

Receipts are ``"<incarnation>-<queue id>:<item id>:<lease token>"``: another queue's (in this
file or another) raises ``ForeignReceiptError`` and changes nothing.  A file
deleted or replaced under an open store would go on taking this process's writes unseen:
each transaction first checks (one ``stat()``) that the path still names the file opened;
if not, the store opens the file now there and raises ``StoreResetError``
once, and receipts of the old file acknowledge nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import math
import os
import secrets
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

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
from ._worker import ThreadWorker, resolve

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "open_store"]

R = TypeVar("R")

_log = logging.getLogger("conveyor")

SCHEMA_VERSION = 2
APPLICATION = "conveyor"
_WATCH_INTERVAL = 0.02
_LOCK_RETRIES = 8
_SYNCHRONOUS = {"process": "NORMAL", "power": "FULL"}

_READY, _LEASED, _DEAD = 0, 1, 2

# AUTOINCREMENT: an id is never given twice in a file, so an id read earlier (a dead
# letter listed, then requeued by id) can never name another item.  Files made before it
# have their items table rebuilt once (see SQLiteStore._upgrade); the columns are the
# same, so conveyor versions without it still read and write the file.
_ITEMS_TABLE = (
    "CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, queue INTEGER NOT NULL,"
    " state INTEGER NOT NULL, available_at REAL NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0, lease_token TEXT, lease_deadline REAL,"
    " error TEXT, failed_at REAL, payload BLOB NOT NULL)"
)
_ITEMS_COLUMNS = (
    "id, queue, state, available_at, attempts, lease_token, lease_deadline, error,"
    " failed_at, payload"
)
_ITEMS_INDEXES = (
    "CREATE INDEX items_by_state ON items (queue, state, id)",
    "CREATE INDEX items_by_lease ON items (queue, lease_deadline) WHERE state = 1",
)

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE queues (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " shutdown INTEGER NOT NULL DEFAULT 0)",
    _ITEMS_TABLE.format(table="items"),
    *_ITEMS_INDEXES,
)

# The statements that take a file from the version before each key to that version.  A new
# file is created at version 1 and migrated, so that every file goes the same way.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE queues ADD COLUMN maxsize REAL",),
}

_INSERT_CHUNK = 256
_HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35)


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    return "INSERT INTO items (queue, state, payload) VALUES " + ",".join(["(?, 0, ?)"] * rows)


@functools.lru_cache(maxsize=64)
def _insert_token_sql(rows: int) -> str:
    # The put's token waits in lease_token (unused while an item was never claimed).
    return "INSERT INTO items (queue, state, payload, lease_token) VALUES " + ",".join(
        ["(?, 0, ?, ?)"] * rows
    )


# Stores of this process by database file, so that a commit wakes the waiters of every
# store on the same file at once instead of at their next data_version check.  Tuples
# replaced under the lock, so that the worker threads read them without taking it.
_peers: dict[str, tuple[SQLiteStore, ...]] = {}
_peers_lock = threading.Lock()


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
        **options: ``durability`` (``"process"``, the default, or ``"power"``; see the
            module docstring) and ``busy_timeout`` (seconds a write waits for the lock
            before retrying; default 5).

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


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


_SQLITE_MAGIC = b"SQLite format 3\x00"

# Primary result codes by the words of their messages, for Pythons whose exceptions do
# not carry sqlite_errorname (before 3.11).
_ERROR_WORDS = (
    ("malformed", "SQLITE_CORRUPT"),
    ("not a database", "SQLITE_NOTADB"),
    ("disk is full", "SQLITE_FULL"),
    ("readonly", "SQLITE_READONLY"),
    ("unable to open", "SQLITE_CANTOPEN"),
)


def _error_kind(exc: sqlite3.Error) -> str:
    """Return the primary SQLite result code of *exc*, e.g. ``"SQLITE_FULL"``, or ``""``."""
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str) and name.startswith("SQLITE_"):
        # Extended codes name their primary one first: SQLITE_CORRUPT_INDEX, ...
        for _, kind in _ERROR_WORDS:
            if name == kind or name.startswith(kind + "_"):
                return kind
        return name
    text = str(exc).lower()
    return next((kind for words, kind in _ERROR_WORDS if words in text), "")


def _has_sqlite_header(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


class SQLiteStore(Store):
    """One named queue in one SQLite file, worked on by a private thread.

    Get one with ``open_store()`` (through ``conveyor.open_queue()``).
    """

    def __init__(self, path: str, name: str, synchronous: str, busy_timeout: float) -> None:
        self._path = path
        self._key = os.path.realpath(path)
        self._name = name
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._loop = asyncio.get_running_loop()
        self._conn: sqlite3.Connection | None = None
        self._qid = 0
        # "<incarnation of the file>-<queue id>": receipts name it, so that one of another
        # queue, or of a file since replaced, is told apart and acknowledges nothing.
        self._ident = ""
        self._past: set[str] = set()
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of the file opened
        self._last_counts: StoreCounts | None = None
        # Put tokens: random per store, then counted, so no syscall per put.
        self._token_prefix = secrets.token_hex(8)
        self._token_count = itertools.count()
        self._data_version = 0
        self._waiters: set[asyncio.Future[None]] = set()
        self._closed = False
        self._disk_was_full = False  # until the WAL could be emptied again (_make_room)
        self._worker = ThreadWorker(
            f"conveyor-sqlite:{name}",
            check=self._check_data_version,
            interval=_WATCH_INTERVAL,
            finish=self._close_connection,
        )

    @property
    def backend(self) -> str:
        """``"sqlite"``."""
        return "sqlite"

    def __repr__(self) -> str:
        return f"<SQLiteStore {self._path!r} queue={self._name!r}>"

    # -- the worker thread -------------------------------------------------------------

    def _close_connection(self) -> None:
        # On the worker thread, as it stops.
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _check_data_version(self) -> None:
        # On the worker thread, between jobs, while someone waits for a change.
        if self._conn is None:
            return
        try:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return
        if version != self._data_version:
            self._data_version = version
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake_waiters)

    async def _call(
        self,
        fn: Callable[..., R],
        *args: Any,
        orphan: Callable[[R], None] | None = None,
    ) -> R:
        if self._closed:
            raise BackendError(f"{self!r} is closed")
        return await self._worker.call(fn, *args, orphan=orphan)

    def _notify_peers(self) -> None:
        # Called on the worker thread after a commit.  The queue on top of this store
        # knows its own changes; only the other stores on the file need telling, and
        # only those with someone waiting (the rest re-check before they wait).
        for peer in _peers.get(self._key, ()):
            if peer is not self and peer._waiters:
                with contextlib.suppress(RuntimeError):
                    peer._loop.call_soon_threadsafe(peer._wake_waiters)

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            resolve(waiter, None)

    def _file_at_path(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _replaced(self) -> StoreResetError:
        """Open the file now at the path, and return the error that reports the loss.

        A connection keeps working on a file deleted (or renamed away) under it, unseen
        by every other process: what this process wrote there would be lost in silence.
        """
        before = self._ident
        old = self._conn
        self._conn = None
        if old is not None:
            with contextlib.suppress(sqlite3.Error):
                old.close()
        self._past.add(before)
        self._open_db()
        seen = last_seen(self._last_counts)
        text = (
            f"SQLite queue file {self._path!r} was deleted or replaced while queue"
            f" {self._name!r} was open: the items it held are lost to this process ({seen}),"
            " and receipts of earlier deliveries acknowledge nothing; this call changed"
            " nothing, and the queue goes on in the file now at that path"
        )
        _log.warning("conveyor: %s", text)
        return StoreResetError(text)

    def _transaction(self, work: Callable[[sqlite3.Connection], R], write: bool = True) -> R:
        # One stat() a transaction (about a microsecond) finds a file replaced under us.
        if self._file is not None and self._file_at_path() != self._file:
            raise self._replaced()
        conn = self._conn
        assert conn is not None
        delay = 0.01
        made_room = False
        for attempt in range(_LOCK_RETRIES + 1):
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if _is_lock_error(exc) and attempt < _LOCK_RETRIES:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                if _is_lock_error(exc):
                    raise BackendUnavailableError(
                        f"SQLite database {self._path!r} stayed locked by another process: {exc}"
                    ) from exc
                if not made_room and _error_kind(exc) == "SQLITE_FULL":
                    made_room = True
                    self._disk_was_full = True
                    if self._make_room(conn):
                        continue
                raise self._failure(exc) from exc
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            if write:
                if self._disk_was_full:
                    # The first commit that fits again: empty the WAL while there is
                    # room to, before it fills what was freed.
                    self._disk_was_full = not self._make_room(conn)
                self._notify_peers()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _make_room(self, conn: sqlite3.Connection) -> bool:
        # On a full disk the WAL keeps growing and is never copied back: the automatic
        # checkpoint runs only after a commit, only past 1000 pages, and needs room to
        # grow the main file.  Copying it and truncating it to zero gives its space back.
        # Returns whether the WAL is now empty.  Never waits for other processes' readers
        # (a busy timeout of 0): when they hold the WAL, the next commit tries again.
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        except sqlite3.Error:
            return False
        return not busy

    # -- opening -----------------------------------------------------------------------

    async def _start(self) -> None:
        self._worker.start()
        await self._call(self._open_db)
        with _peers_lock:
            _peers[self._key] = (*_peers.get(self._key, ()), self)

    def _open_db(self) -> None:
        path = self._path
        if os.path.isdir(path):
            raise BackendError(f"cannot open SQLite queue file {path!r}: it is a directory")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise BackendError(
                f"cannot create SQLite queue file {path!r}: directory {directory!r} does not exist"
            )
        try:
            conn = sqlite3.connect(
                path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
            )
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        self._conn = conn
        self._file = self._file_at_path()
        delay = 0.01
        for attempt in range(_LOCK_RETRIES + 1):
            try:
                self._prepare(conn)
                return
            except sqlite3.OperationalError as exc:
                # Processes opening a new file together race to switch it to WAL.
                if not _is_lock_error(exc) or attempt == _LOCK_RETRIES:
                    raise self._open_error(exc) from exc
            except sqlite3.Error as exc:
                raise self._open_error(exc) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        self._check_or_create(conn)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise BackendError(f"SQLite queue file {self._path!r} cannot use WAL mode ({mode})")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        self._qid = self._transaction(self._queue_id)
        self._ident = f"{self._transaction(self._incarnation)}-{self._qid}"
        self._data_version = conn.execute("PRAGMA data_version").fetchone()[0]

    def _open_error(self, exc: sqlite3.Error) -> BackendError:
        # Called on the worker thread: the file checks below are blocking I/O.
        path, text, kind = self._path, str(exc), _error_kind(exc)
        directory = os.path.dirname(os.path.abspath(path))
        if kind in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            if not _has_sqlite_header(path):
                return IncompatibleStoreError(
                    f"{path!r} is not a conveyor queue file (not an SQLite database: "
                    f"{text}); it was left untouched"
                )
            return self._corrupt(exc, "it was left untouched: ")
        if not os.access(directory, os.W_OK | os.X_OK):
            return BackendError(
                f"cannot use SQLite queue file {path!r}: its directory {directory!r} is not "
                "writable, and SQLite keeps a queue's -wal and -shm files next to it; make "
                f"the directory writable or move the file to one that is ({text}); the file "
                "was left untouched"
            )
        if kind == "SQLITE_READONLY" or (os.path.exists(path) and not os.access(path, os.W_OK)):
            return BackendError(
                f"cannot write SQLite queue file {path!r}: the file is read-only ({text}); "
                "it was left untouched"
            )
        if kind == "SQLITE_FULL":
            return self._full(exc)
        if kind == "SQLITE_CANTOPEN":
            return BackendError(
                f"cannot open SQLite queue file {path!r}: {text}; check that the file and "
                "its directory are readable and writable"
            )
        return BackendError(f"cannot open SQLite queue file {path!r}: {text}")

    def _corrupt(self, exc: sqlite3.Error, untouched: str = "") -> BackendError:
        return BackendError(
            f"SQLite queue file {self._path!r} is corrupt ({exc}), e.g. truncated or "
            f"overwritten; {untouched}restore it from a backup, or copy what can still be "
            "read into a new file with the sqlite3 shell's .recover command"
        )

    def _full(self, exc: sqlite3.Error) -> BackendError:
        directory = os.path.dirname(os.path.abspath(self._path))
        return BackendError(
            f"the disk holding SQLite queue file {self._path!r} is full ({exc}): this "
            f"call changed nothing; free space in {directory!r} (the queue works again as "
            "soon as there is room)"
        )

    def _failure(self, exc: sqlite3.Error) -> BackendError:
        kind = _error_kind(exc)
        if kind in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            return self._corrupt(exc)
        if kind == "SQLITE_FULL":
            return self._full(exc)
        return BackendError(f"SQLite database {self._path!r} failed: {exc}")

    def _check_or_create(self, conn: sqlite3.Connection) -> None:
        # Read-only checks first: nothing is written to a file that is not ours.
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_lock_error(exc):
                raise
            raise self._open_error(exc) from exc
        if tables:
            self._check_meta(conn, tables)
            if not self._ids_never_reused(conn):
                self._transaction(self._upgrade)
            return

        def create(conn: sqlite3.Connection) -> None:
            # Another process may have created it since the check above.
            existing = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if existing:
                version = self._read_version(conn, existing)
                if version < SCHEMA_VERSION:
                    self._migrate(conn, version)
                return
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("application", APPLICATION),
                    ("schema_version", "1"),
                    ("incarnation", secrets.token_hex(8)),
                ],
            )
            self._migrate(conn, 1)

        self._transaction(create)

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        # In the caller's write transaction: a process killed meanwhile leaves the file
        # wholly at its old version.
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target]:
                conn.execute(statement)
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )

    def _check_meta(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        version = self._read_version(conn, tables)
        if version < SCHEMA_VERSION:

            def migrate(conn: sqlite3.Connection) -> None:
                # Another process may have migrated it since the check above.
                current = self._read_version(conn, tables)
                if current < SCHEMA_VERSION:
                    self._migrate(conn, current)

            self._transaction(migrate)

    def _read_version(self, conn: sqlite3.Connection, tables: set[str]) -> int:
        if "meta" not in tables:
            raise IncompatibleStoreError(
                f"{self._path!r} is an SQLite database of another application (no conveyor "
                "meta table); it was left untouched"
            )
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError as exc:  # e.g. no such column: key
            if _is_lock_error(exc):
                raise
            raise IncompatibleStoreError(
                f"{self._path!r} is an SQLite database of another application (its meta "
                f"table is not conveyor's: {exc}); it was left untouched"
            ) from exc
        if meta.get("application") != APPLICATION:
            raise IncompatibleStoreError(
                f"{self._path!r} is an SQLite database of another application "
                f"({meta.get('application')!r}); it was left untouched"
            )
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            version = -1
        if version > SCHEMA_VERSION:
            raise IncompatibleStoreError(
                f"{self._path!r} was written by a newer conveyor (schema {version}; this one "
                f"reads up to {SCHEMA_VERSION}): upgrade conveyor; the file was left untouched"
            )
        if version < 1:
            raise IncompatibleStoreError(
                f"{self._path!r} has an unknown conveyor schema version "
                f"{meta.get('schema_version')!r}; it was left untouched"
            )
        return version

    @staticmethod
    def _ids_never_reused(conn: sqlite3.Connection) -> bool:
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'items'"
        ).fetchone()
        return row is not None and "AUTOINCREMENT" in str(row[0]).upper()

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        # Under the write lock: another process may have rebuilt it since the check.
        if self._ids_never_reused(conn):
            return
        # Ids already freed by acknowledged items are unknown: numbering goes on from
        # the largest id still stored, and never back from then on.
        conn.execute(_ITEMS_TABLE.format(table="items_rebuilt"))
        conn.execute(
            f"INSERT INTO items_rebuilt ({_ITEMS_COLUMNS}) SELECT {_ITEMS_COLUMNS} FROM items"
        )
        conn.execute("DROP TABLE items")
        conn.execute("ALTER TABLE items_rebuilt RENAME TO items")
        for statement in _ITEMS_INDEXES:
            conn.execute(statement)

    def _incarnation(self, conn: sqlite3.Connection) -> str:
        # Files of schema 1 made before incarnations existed get theirs on first open.
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('incarnation', ?)",
            (secrets.token_hex(8),),
        )
        row = conn.execute("SELECT value FROM meta WHERE key = 'incarnation'").fetchone()
        return str(row[0])

    def _queue_id(self, conn: sqlite3.Connection) -> int:
        conn.execute("INSERT OR IGNORE INTO queues (name) VALUES (?)", (self._name,))
        row = conn.execute("SELECT id FROM queues WHERE name = ?", (self._name,)).fetchone()
        return int(row[0])

    # -- the Store interface -----------------------------------------------------------

    async def put(self, payloads: Sequence[bytes]) -> bool:
        """Append *payloads* as ready items, all or none, if the queue has room for all.

        Room is judged against the queue's stored bound, read in the put's transaction.

        Args:
            payloads: Serialized items, in order; never empty.

        Returns:
            ``True`` if stored; ``False`` if there was no room and nothing was stored.

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: The store failed; nothing was stored.
        """
        rows = [(self._qid, bytes(p)) for p in payloads]
        return await self._call(self._transaction, lambda c: self._put(c, rows))

    async def put_returning_ids(self, payloads: Sequence[bytes]) -> tuple[bool, list[str] | None]:
        """Append *payloads* as ``put()`` does, and name the items it stored.

        Each name is ``"<item id>:<token of this put>"``: the token shows that the item
        was never claimed since.  It waits in the item's ``lease_token``, which every
        claim replaces.

        Args:
            payloads: Serialized items, in order; never empty.

        Returns:
            Whether the items were stored, and their names in the order of *payloads*
            (``None`` when nothing was stored).

        Raises:
            QueueShutDown: The queue is shut down; nothing was stored.
            BackendError: The store failed; nothing was stored.
        """
        token = f"{self._token_prefix}{next(self._token_count):x}"
        rows = [(self._qid, bytes(p), token) for p in payloads]
        ids = await self._call(self._transaction, lambda c: self._put_ids(c, rows))
        if ids is None:
            return False, None
        return True, [f"{item_id}:{token}" for item_id in ids] if ids else None

    def _put_ids(
        self, conn: sqlite3.Connection, rows: list[tuple[int, bytes, str]]
    ) -> list[int] | None:
        if not self._has_room(conn, len(rows)):
            return None
        ids: list[int] | None = []
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            cursor = conn.execute(
                _insert_token_sql(len(chunk)), [value for row in chunk for value in row]
            )
            # Under the write lock each new row gets the next id (AUTOINCREMENT), so the
            # chunk ends at lastrowid, in VALUES order.  The token still guards retract()
            # against a name that would be wrong for any other reason.
            last = cursor.lastrowid
            if ids is not None and last is not None:
                ids.extend(range(last - len(chunk) + 1, last + 1))
            else:
                ids = None
        return ids or []

    def _has_room(self, conn: sqlite3.Connection, count: int) -> bool:
        qid = self._qid
        shutdown, maxsize = conn.execute(
            "SELECT shutdown, maxsize FROM queues WHERE id = ?", (qid,)
        ).fetchone()
        if shutdown:
            raise QueueShutDown
        if maxsize is not None and 0 < maxsize < math.inf:
            (size,) = conn.execute(
                "SELECT COUNT(*) FROM items WHERE queue = ? AND state = 0", (qid,)
            ).fetchone()
            # As asyncio: an item fits while the size before it is below maxsize.
            if size + count - 1 >= maxsize:
                return False
        return True

    async def retract(self, item_ids: Sequence[str]) -> list[bool]:
        """Delete items just put, all or none, if every one is still ready and unclaimed.

        Args:
            item_ids: Names from ``put_returning_ids()``.

        Returns:
            For each name, ``True`` if its item was deleted: all ``True`` or all ``False``.

        Raises:
            BackendError: The store failed; nothing was retracted.
        """
        rows: list[tuple[int, int, str]] = []
        for name in item_ids:
            item_id, _, token = name.partition(":")
            try:
                rows.append((self._qid, int(item_id), token))
            except ValueError:
                return [False] * len(item_ids)
        if not rows or any(not token for _, _, token in rows):
            return [False] * len(rows)
        return await self._call(self._transaction, lambda c: self._retract(c, rows))

    def _retract(self, conn: sqlite3.Connection, rows: list[tuple[int, int, str]]) -> list[bool]:
        # Still holding the put's token: no claim ever replaced it, so never delivered.
        where = " WHERE queue = ? AND id = ? AND state = 0 AND lease_token = ?"
        found = sum(
            conn.execute("SELECT COUNT(*) FROM items" + where, row).fetchone()[0] for row in rows
        )
        if found != len(rows):
            return [False] * len(rows)
        for row in rows:
            conn.execute("DELETE FROM items" + where, row)
        return [True] * len(rows)

    def _put(self, conn: sqlite3.Connection, rows: list[tuple[int, bytes]]) -> bool:
        if not self._has_room(conn, len(rows)):
            return False
        # One multi-row INSERT per chunk: a quarter faster than executemany per commit.
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            conn.execute(_insert_sql(len(chunk)), [value for row in chunk for value in row])
        return True

    claims_by_id = True

    async def claim_ids(
        self, item_ids: Sequence[str], lease_timeout: float
    ) -> list[Delivery | None]:
        """Lease the items named, each one if it is still ready and was never claimed.

        Args:
            item_ids: Names from ``put_returning_ids()``.
            lease_timeout: Seconds until each lease expires unless acknowledged.

        Returns:
            For each name, the delivery of its item, or ``None`` if it was not leased.

        Raises:
            BackendError: The store failed; nothing was leased.
        """
        rows: list[tuple[int, str] | None] = []
        for name in item_ids:
            item_id, _, token = name.partition(":")
            rows.append((int(item_id), token) if item_id.isdigit() and token else None)
        return await self._call(
            self._transaction,
            lambda c: self._claim_ids(c, rows, lease_timeout),
            orphan=lambda found: self._release_orphans([d for d in found if d is not None]),
        )

    def _claim_ids(
        self, conn: sqlite3.Connection, rows: list[tuple[int, str] | None], lease_timeout: float
    ) -> list[Delivery | None]:
        token = secrets.token_hex(8)
        deadline = time.time() + lease_timeout
        result: list[Delivery | None] = []
        for row in rows:
            if row is None:
                result.append(None)
                continue
            item_id, put_token = row
            # Still holding the put's token: ready and never claimed (see retract).
            found = conn.execute(
                "SELECT payload, attempts + 1 FROM items WHERE queue = ? AND id = ?"
                " AND state = 0 AND lease_token = ?",
                (self._qid, item_id, put_token),
            ).fetchone()
            if found is None:
                result.append(None)
                continue
            conn.execute(
                "UPDATE items SET state = 1, attempts = attempts + 1, lease_token = ?,"
                " lease_deadline = ? WHERE id = ?",
                (token, deadline, item_id),
            )
            receipt = f"{self._ident}:{item_id}:{token}"
            result.append(Delivery(str(item_id), found[0], receipt, found[1], deadline))
        return result

    async def claim(
        self, max_items: int, lease_timeout: float, max_attempts: int | None
    ) -> list[Delivery]:
        """Lease up to *max_items* of the oldest ready items, in FIFO order.

        Expired leases are made ready again first (dead when the item already had
        *max_attempts* deliveries).

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
        return await self._call(
            self._transaction,
            lambda c: self._claim(c, max_items, lease_timeout, max_attempts),
            orphan=self._release_orphans,
        )

    async def ack_and_claim(
        self,
        receipts: Sequence[str],
        max_items: int,
        lease_timeout: float,
        max_attempts: int | None,
    ) -> tuple[list[bool], list[Delivery]]:
        """Acknowledge *receipts*, then lease items as ``claim()`` does, in one transaction.

        Returns:
            The acknowledgement results and the leased items.

        Raises:
            QueueShutDown: The queue is shut down and no item is ready (the receipts
                were acknowledged).
            BackendError: The store failed; nothing was acknowledged or leased.
        """
        receipts = list(receipts)

        def work(conn: sqlite3.Connection) -> tuple[list[bool], list[Delivery] | None]:
            acked = self._ack(conn, receipts)
            try:
                return acked, self._claim(conn, max_items, lease_timeout, max_attempts)
            except QueueShutDown:
                return acked, None  # commit the acknowledgements, then raise

        acked, deliveries = await self._call(
            self._transaction, work, orphan=lambda r: self._release_orphans(r[1] or [])
        )
        if deliveries is None:
            raise QueueShutDown
        return acked, deliveries

    def _release_orphans(self, deliveries: list[Delivery]) -> None:
        if deliveries and not self._closed:
            receipts = [d.receipt for d in deliveries]
            self._worker.submit(self._transaction, lambda c: self._release(c, receipts))

    def _claim(
        self,
        conn: sqlite3.Connection,
        max_items: int,
        lease_timeout: float,
        max_attempts: int | None,
    ) -> list[Delivery]:
        qid = self._qid
        now = time.time()
        if max_attempts is not None:
            conn.execute(
                "UPDATE items SET state = 2, lease_token = NULL, failed_at = ?,"
                " error = 'lease expired after ' || attempts || ' attempts'"
                " WHERE queue = ? AND state = 1 AND lease_deadline <= ? AND attempts >= ?",
                (now, qid, now, max_attempts),
            )
        conn.execute(
            "UPDATE items SET state = 0, lease_token = NULL, lease_deadline = NULL,"
            " available_at = 0 WHERE queue = ? AND state = 1 AND lease_deadline <= ?",
            (qid, now),
        )
        token = secrets.token_hex(8)
        deadline = now + lease_timeout
        if _HAS_RETURNING:
            rows = conn.execute(
                "UPDATE items SET state = 1, attempts = attempts + 1, lease_token = ?,"
                " lease_deadline = ? WHERE id IN (SELECT id FROM items WHERE queue = ?"
                " AND state = 0 AND available_at <= ? ORDER BY id LIMIT ?)"
                " RETURNING id, payload, attempts",
                (token, deadline, qid, now, max_items),
            ).fetchall()
        else:  # SQLite before 3.35: the same in two statements, in the same transaction
            found = conn.execute(
                "SELECT id, payload, attempts + 1 FROM items WHERE queue = ? AND state = 0"
                " AND available_at <= ? ORDER BY id LIMIT ?",
                (qid, now, max_items),
            ).fetchall()
            conn.executemany(
                "UPDATE items SET state = 1, attempts = attempts + 1, lease_token = ?,"
                " lease_deadline = ? WHERE id = ?",
                [(token, deadline, row[0]) for row in found],
            )
            rows = found
        if not rows:
            (shutdown,) = conn.execute(
                "SELECT shutdown FROM queues WHERE id = ?", (qid,)
            ).fetchone()
            if shutdown:
                raise QueueShutDown
            return []
        rows.sort()
        ident = self._ident
        return [
            Delivery(str(item_id), payload, f"{ident}:{item_id}:{token}", attempts, deadline)
            for item_id, payload, attempts in rows
        ]

    def _parse_receipt(self, receipt: str) -> tuple[int, str] | None:
        """Return the (item id, lease token) a receipt names; None for a stale one.

        Raises:
            ForeignReceiptError: The receipt is another queue's (here or in another file).
        """
        ident, _, lease = receipt.partition(":")
        if ident != self._ident:
            if ident in self._past:
                return None  # of a file since replaced: its ids may name other items now
            raise ForeignReceiptError(
                f"this receipt is not one of queue {self._name!r} in SQLite file"
                f" {self._path!r}: it comes from another queue (or from a file since"
                " replaced at that path) and acknowledges nothing here; nothing was changed"
            )
        item_id, _, token = lease.partition(":")
        try:
            return int(item_id), token
        except ValueError:
            return None

    async def ack(self, receipts: Sequence[str]) -> list[bool]:
        """Acknowledge deliveries: their items are done and removed.

        A receipt acknowledges as long as its item was not delivered again, even when
        its deadline passed meanwhile.

        Returns:
            For each receipt, whether it named the current lease of its item.

        Raises:
            BackendError: The store failed; nothing was acknowledged.
        """
        receipts = list(receipts)
        return await self._call(self._transaction, lambda c: self._ack(c, receipts))

    def _ack(self, conn: sqlite3.Connection, receipts: list[str]) -> list[bool]:
        results = []
        for receipt in receipts:
            parsed = self._parse_receipt(receipt)
            if parsed is None:
                results.append(False)
                continue
            cursor = conn.execute(
                "DELETE FROM items WHERE id = ? AND lease_token = ? AND state = 1", parsed
            )
            results.append(cursor.rowcount == 1)
        return results

    def _settle_one(
        self, conn: sqlite3.Connection, receipt: str, sql: str, args: tuple[Any, ...]
    ) -> bool:
        parsed = self._parse_receipt(receipt)
        if parsed is None:
            return False
        cursor = conn.execute(
            sql + " WHERE id = ? AND lease_token = ? AND state = 1", (*args, *parsed)
        )
        return cursor.rowcount == 1

    async def retry(self, receipt: str, delay: float) -> bool:
        """Release a lease so the item is delivered again after *delay* seconds.

        Returns:
            ``False`` if the receipt no longer names the current lease.

        Raises:
            BackendError: The store failed.
        """
        available = time.time() + delay if delay > 0 else 0.0
        return await self._call(
            self._transaction,
            lambda c: self._settle_one(
                c,
                receipt,
                "UPDATE items SET state = 0, lease_token = NULL, lease_deadline = NULL,"
                " available_at = ?",
                (available,),
            ),
        )

    async def release(self, receipts: Sequence[str]) -> list[bool]:
        """Give back undelivered leases, ready at once, without counting the attempt.

        Returns:
            For each receipt, ``False`` if it no longer names the current lease.

        Raises:
            BackendError: The store failed.
        """
        receipts = list(receipts)
        return await self._call(self._transaction, lambda c: self._release(c, receipts))

    def _release(self, conn: sqlite3.Connection, receipts: list[str]) -> list[bool]:
        return [
            self._settle_one(
                conn,
                receipt,
                "UPDATE items SET state = 0, lease_token = NULL, lease_deadline = NULL,"
                " available_at = 0, attempts = MAX(attempts - 1, 0)",
                (),
            )
            for receipt in receipts
        ]

    async def fail(self, receipt: str, error: str) -> bool:
        """Move a leased item to the dead-letter list with *error* as the reason.

        Returns:
            ``False`` if the receipt no longer names the current lease.

        Raises:
            BackendError: The store failed.
        """
        now = time.time()
        return await self._call(
            self._transaction,
            lambda c: self._settle_one(
                c,
                receipt,
                "UPDATE items SET state = 2, lease_token = NULL, lease_deadline = NULL,"
                " error = ?, failed_at = ?",
                (str(error), now),
            ),
        )

    async def extend(self, receipt: str, lease_timeout: float) -> float | None:
        """Push a lease's deadline to *lease_timeout* seconds from now.

        Returns:
            The new deadline, or ``None`` if the receipt no longer names the current lease.

        Raises:
            BackendError: The store failed.
        """
        deadline = time.time() + lease_timeout
        ok = await self._call(
            self._transaction,
            lambda c: self._settle_one(
                c, receipt, "UPDATE items SET lease_deadline = ?", (deadline,)
            ),
        )
        return deadline if ok else None

    async def counts(self) -> StoreCounts:
        """Read the shared counters in one atomic step.

        Raises:
            BackendError: The store failed.
        """
        return await self._call(self._transaction, self._counts, False)

    def _counts(self, conn: sqlite3.Connection) -> StoreCounts:
        now = time.time()
        ready = delayed = leased = dead = 0
        for state, later, count in conn.execute(
            "SELECT state, available_at > ?, COUNT(*) FROM items WHERE queue = ? GROUP BY 1, 2",
            (now, self._qid),
        ):
            if state == _READY:
                if later:
                    delayed += count
                else:
                    ready += count
            elif state == _LEASED:
                leased += count
            else:
                dead += count
        shutdown, maxsize = conn.execute(
            "SELECT shutdown, maxsize FROM queues WHERE id = ?", (self._qid,)
        ).fetchone()
        self._last_counts = StoreCounts(
            ready, delayed, leased, dead, bool(shutdown), _bound(maxsize) or 0
        )
        return self._last_counts

    async def shutdown(self, immediate: bool) -> int:
        """Mark the queue shut down for every process; with *immediate*, empty it.

        Returns:
            How many items were deleted.

        Raises:
            BackendError: The store failed.
        """
        return await self._call(self._transaction, lambda c: self._shutdown(c, immediate))

    def _shutdown(self, conn: sqlite3.Connection, immediate: bool) -> int:
        conn.execute("UPDATE queues SET shutdown = 1 WHERE id = ?", (self._qid,))
        if not immediate:
            return 0
        return conn.execute(
            "DELETE FROM items WHERE queue = ? AND state = 0", (self._qid,)
        ).rowcount

    async def resume(self) -> None:
        """Clear the queue's shutdown mark for every process.

        Raises:
            BackendError: The store failed; the mark is unchanged.
        """

        def resume(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE queues SET shutdown = 0 WHERE id = ?", (self._qid,))

        await self._call(self._transaction, resume)

    async def bind_maxsize(self, maxsize: float | None) -> float | None:
        """Fill ``queues.maxsize`` if it is NULL, then read it (see ``Store.bind_maxsize()``)."""

        def bind(conn: sqlite3.Connection) -> float | None:
            if maxsize is not None:
                conn.execute(
                    "UPDATE queues SET maxsize = ? WHERE id = ? AND maxsize IS NULL",
                    (maxsize, self._qid),
                )
            (stored,) = conn.execute(
                "SELECT maxsize FROM queues WHERE id = ?", (self._qid,)
            ).fetchone()
            return _bound(stored)

        return await self._call(self._transaction, bind, maxsize is not None)

    async def set_maxsize(self, maxsize: float) -> None:
        """Overwrite ``queues.maxsize`` (see ``Store.set_maxsize()``)."""

        def store(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE queues SET maxsize = ? WHERE id = ?", (maxsize, self._qid))

        await self._call(self._transaction, store)

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Return up to *limit* dead items, oldest first.

        Raises:
            BackendError: The store failed.
        """

        def read(conn: sqlite3.Connection) -> list[DeadLetter]:
            rows = conn.execute(
                "SELECT id, payload, attempts, error, failed_at FROM items"
                " WHERE queue = ? AND state = 2 ORDER BY id LIMIT ?",
                (self._qid, limit),
            ).fetchall()
            return [DeadLetter(str(i), p, a, e or "", f or 0.0) for i, p, a, e, f in rows]

        return await self._call(self._transaction, read, False)

    async def requeue_dead(self, item_ids: Sequence[str] | None) -> int:
        """Make dead items ready again, with their attempts reset; ``None`` means all.

        Returns:
            How many items were requeued.

        Raises:
            BackendError: The store failed.
        """
        ids = None
        if item_ids is not None:
            ids = []
            for item_id in item_ids:
                with contextlib.suppress(ValueError):
                    ids.append(int(item_id))

        def requeue(conn: sqlite3.Connection) -> int:
            sql = (
                "UPDATE items SET state = 0, attempts = 0, error = NULL, failed_at = NULL,"
                " available_at = 0 WHERE queue = ? AND state = 2"
            )
            if ids is None:
                return conn.execute(sql, (self._qid,)).rowcount
            return sum(conn.execute(sql + " AND id = ?", (self._qid, i)).rowcount for i in ids)

        return await self._call(self._transaction, requeue)

    async def wait_changed(self, timeout: float) -> None:
        """Return once this queue may have changed in any process, or after *timeout*.

        Changes through this process's stores wake at once; other processes' within about
        20 ms (the worker thread checks ``PRAGMA data_version`` only while someone waits).
        """
        if self._closed:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.add(future)
        self._worker.watching += 1
        if self._worker.watching == 1:
            self._worker.wake()  # so that it starts checking
        handle = self._loop.call_later(max(0.0, timeout), resolve, future, None)
        try:
            await future
        finally:
            handle.cancel()
            self._waiters.discard(future)
            self._worker.watching -= 1

    async def aclose(self) -> None:
        """Close the connection and stop the worker thread.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake_waiters()
        with _peers_lock:
            peers = tuple(p for p in _peers.get(self._key, ()) if p is not self)
            if peers:
                _peers[self._key] = peers
            else:
                _peers.pop(self._key, None)
        await self._worker.stop()


def _bound(stored: float | None) -> float | None:
    # REAL gives 10.0 back for 10: shown as the int it was given as.
    if stored is None:
        return None
    return int(stored) if float(stored).is_integer() else float(stored)
