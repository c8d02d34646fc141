"""How a store reaches its file: one connection, used only on the store's worker thread.

It opens the file (checking or creating its schema, in WAL mode), finds the queue's row,
and runs each operation in a transaction.  Writes take the lock up front
(``BEGIN IMMEDIATE``) and wait for it (``busy_timeout``), then retry a bounded number of
times, so "database is locked" never reaches a user; past the budget they raise
``BackendUnavailableError``.  Driver errors leave here translated (``_errors.py``).

A full disk makes writes fail with a ``BackendError`` that says so and names
the directory to free space in (the failed call changed nothing).  The connection then
empties the WAL into the file as soon as a write fits again, so that the queue works again
once some space is free, rather than filling it back up with WAL.

A file deleted or replaced under an open store would go on taking this process's writes
unseen: each transaction first checks (one ``stat()``) that the path still names the file
opened; if not, the connection opens the file now there and raises ``StoreResetError``
once, and receipts of the old file acknowledge nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from ..._exceptions import BackendError, BackendUnavailableError, StoreResetError
from .._base import StoreCounts, last_seen
from ._errors import error_kind, failure, is_lock_error, open_error
from ._operations import Receipts
from ._schema import check_or_create, incarnation, queue_id

__all__ = ["SQLiteConnection"]

R = TypeVar("R")

_log = logging.getLogger("conveyor")

_LOCK_RETRIES = 8

# Free pages given back to the file system: checked after this many write commits, and
# then given back, this many a step, between operations (incremental auto-vacuum).  Up to
# one step's worth stays free, for the next puts to reuse without growing the file again.
_TIDY_COMMITS = 64
_VACUUM_PAGES = 64


class SQLiteConnection:
    """The connection of one store to queue *name* in the file at *path*.

    Every method runs on the store's worker thread.

    Args:
        path: The file's path, as given.
        name: The queue's name.
        synchronous: ``PRAGMA synchronous``'s value (``"NORMAL"`` or ``"FULL"``).
        busy_timeout: Seconds a write waits for the lock before retrying.
        on_commit: Called after each write transaction that changed rows commits.

    Attributes:
        qid: The queue's row id in the file open now.
        receipts: The queue's receipts, in the file open now.
        last_counts: The counts last read (``SQLiteStore.counts()`` records them), for the
            message that reports the file lost.
    """

    def __init__(
        self,
        path: str,
        name: str,
        synchronous: str,
        busy_timeout: float,
        on_commit: Callable[[], None],
    ) -> None:
        self._path = path
        self._name = name
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._on_commit = on_commit
        self._conn: sqlite3.Connection | None = None
        self.qid = 0
        self.receipts = Receipts(name, path)
        self.last_counts: StoreCounts | None = None
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of the file opened
        self._data_version = 0
        self._disk_was_full = False  # until the WAL could be emptied again (_make_room)
        self._writes = 0  # write commits since free pages were last looked at

    def open(self) -> None:
        """Open the file (creating it on first use) and find the queue's row.

        Raises:
            IncompatibleStoreError: The file is not a conveyor database, or a newer one.
            BackendError: The file cannot be opened or created.
        """
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
            raise open_error(path, exc) from exc
        self._conn = conn
        self._file = self._file_at_path()
        delay = 0.01
        for attempt in range(_LOCK_RETRIES + 1):
            try:
                self._prepare(conn)
                return
            except sqlite3.OperationalError as exc:
                # Processes opening a new file together race to switch it to WAL.
                if not is_lock_error(exc) or attempt == _LOCK_RETRIES:
                    raise open_error(path, exc) from exc
            except sqlite3.Error as exc:
                raise open_error(path, exc) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # A new file gives its free pages back (see give_back_space); a file made before
        # is switched once, after its migration (see _switch_to_incremental_vacuum).  Only
        # an empty file gets the pragma: on others it may write, and a file that is not
        # ours is left untouched (check_or_create reports what it is).
        with contextlib.suppress(sqlite3.Error):
            if conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None:
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        check_or_create(conn, self._path, self.transaction)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise BackendError(f"SQLite queue file {self._path!r} cannot use WAL mode ({mode})")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        self._switch_to_incremental_vacuum(conn)
        self.qid = self.transaction(lambda c: queue_id(c, self._name))
        self.receipts.ident = f"{self.transaction(incarnation)}-{self.qid}"
        self._data_version = conn.execute("PRAGMA data_version").fetchone()[0]

    def _switch_to_incremental_vacuum(self, conn: sqlite3.Connection) -> None:
        # A file made before conveyor gave space back: VACUUM rewrites it whole, once (the
        # first open of a 39 MB file of 1e6 small items, migration included: 1.05 s, then
        # 5 ms; the lock is held meanwhile).  Another process at work
        # on the file (or a disk without room for the copy) makes it fail: then the next
        # opener tries again.
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 0:
            return
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                conn.execute("VACUUM")
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        except sqlite3.Error as exc:  # busy, or no room for the copy: the file still works
            _log.info("conveyor: %s stays without auto-vacuum for now: %s", self._path, exc)

    def give_back_space(self) -> bool:
        """Give some free pages back to the file system; return whether more are left.

        Called on the worker thread when no job waits: each step is bounded (64 pages, a
        fraction of a millisecond to 2 ms) and never waits for the lock, so that puts
        are not stalled behind it.
        """
        conn = self._conn
        if conn is None or self._writes < _TIDY_COMMITS:
            return False
        try:
            (free,) = conn.execute("PRAGMA freelist_count").fetchone()
            if free < _VACUUM_PAGES:
                self._writes = 0
                return False
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                # execute() would free one page: the pragma frees one a step, and the
                # driver steps a statement without result rows once.
                conn.executescript(f"PRAGMA incremental_vacuum({_VACUUM_PAGES});")
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        except sqlite3.Error:
            self._writes = 0  # busy, or failing: look again after more commits
            return False
        return True

    def close(self) -> None:
        """Close the connection.  Idempotent."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def changed(self) -> bool:
        """Return whether another connection committed to the file since the last call."""
        if self._conn is None:
            return False
        try:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return False
        if version == self._data_version:
            return False
        self._data_version = version
        return True

    def transaction(self, work: Callable[[sqlite3.Connection], R], write: bool = True) -> R:
        """Run ``work(connection)`` in one transaction, and return what it returns.

        Args:
            work: The operation; it raises to roll back.
            write: Take the write lock up front (``BEGIN IMMEDIATE``), and tell the other
                stores on the file after the commit.

        Raises:
            StoreResetError: The file was replaced under the store; *work* did not run.
            BackendUnavailableError: The file stayed locked by another process.
            BackendError: The transaction failed; it changed nothing.
        """
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
                changes = conn.total_changes
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if is_lock_error(exc) and attempt < _LOCK_RETRIES:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                if is_lock_error(exc):
                    raise BackendUnavailableError(
                        f"SQLite database {self._path!r} stayed locked by another process: {exc}"
                    ) from exc
                if not made_room and error_kind(exc) == "SQLITE_FULL":
                    made_room = True
                    self._disk_was_full = True
                    if self._make_room(conn):
                        continue
                raise failure(self._path, exc) from exc
            except sqlite3.Error as exc:
                raise failure(self._path, exc) from exc
            if write:
                if self._disk_was_full:
                    # The first commit that fits again: empty the WAL while there is
                    # room to, before it fills what was freed.
                    self._disk_was_full = not self._make_room(conn)
                self._writes += 1
                if conn.total_changes != changes:
                    # A write that changed nothing (a claim that found no item) tells
                    # nobody: each such claim woke the queue's other waiting getters,
                    # who claimed in vain in turn.
                    self._on_commit()
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
        self.close()
        self.receipts.retire()
        self.open()
        seen = last_seen(self.last_counts)
        text = (
            f"SQLite queue file {self._path!r} was deleted or replaced while queue"
            f" {self._name!r} was open: the items it held are lost to this process ({seen}),"
            " and receipts of earlier deliveries acknowledge nothing; this call changed"
            " nothing, and the queue goes on in the file now at that path"
        )
        _log.warning("conveyor: %s", text)
        return StoreResetError(text)
