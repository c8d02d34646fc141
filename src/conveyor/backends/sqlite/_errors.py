"""What SQLite's errors mean to a user: their kind, and the ``BackendError`` that explains one.

Every message names the queue file, says whether the call changed anything, and says what
to do: free disk space, restore a corrupt file, fix a directory's permissions.  The
connection (``_connection.py``) and the schema checks (``_schema.py``) raise these at the
boundary, chained to the driver's error.
"""

from __future__ import annotations

import os
import sqlite3

from ..._exceptions import BackendError, IncompatibleStoreError

__all__ = ["error_kind", "failure", "is_lock_error", "open_error"]

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


def is_lock_error(exc: sqlite3.OperationalError) -> bool:
    """Return whether *exc* says another connection holds the lock."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def error_kind(exc: sqlite3.Error) -> str:
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


def open_error(path: str, exc: sqlite3.Error) -> BackendError:
    """Return the error that explains why the queue file *path* cannot be opened.

    Runs on the worker thread: the file checks it makes are blocking I/O.
    """
    text, kind = str(exc), error_kind(exc)
    directory = os.path.dirname(os.path.abspath(path))
    if kind in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        if not _has_sqlite_header(path):
            return IncompatibleStoreError(
                f"{path!r} is not a conveyor queue file (not an SQLite database: "
                f"{text}); it was left untouched"
            )
        return _corrupt(path, exc, "it was left untouched: ")
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
        return _full(path, exc)
    if kind == "SQLITE_CANTOPEN":
        return BackendError(
            f"cannot open SQLite queue file {path!r}: {text}; check that the file and "
            "its directory are readable and writable"
        )
    return BackendError(f"cannot open SQLite queue file {path!r}: {text}")


def failure(path: str, exc: sqlite3.Error) -> BackendError:
    """Return the error that explains why a transaction on the open file *path* failed."""
    kind = error_kind(exc)
    if kind in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return _corrupt(path, exc)
    if kind == "SQLITE_FULL":
        return _full(path, exc)
    return BackendError(f"SQLite database {path!r} failed: {exc}")


def _corrupt(path: str, exc: sqlite3.Error, untouched: str = "") -> BackendError:
    return BackendError(
        f"SQLite queue file {path!r} is corrupt ({exc}), e.g. truncated or "
        f"overwritten; {untouched}restore it from a backup, or copy what can still be "
        "read into a new file with the sqlite3 shell's .recover command"
    )


def _full(path: str, exc: sqlite3.Error) -> BackendError:
    directory = os.path.dirname(os.path.abspath(path))
    return BackendError(
        f"the disk holding SQLite queue file {path!r} is full ({exc}): this "
        f"call changed nothing; free space in {directory!r} (the queue works again as "
        "soon as there is room)"
    )


def _has_sqlite_header(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False
