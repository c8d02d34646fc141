"""The layout of a queue file: its tables, its version, and how an older file is brought up.

Schema (version 5): ``meta`` (key/value: ``application = conveyor``, ``schema_version``,
``incarnation``: random, written with the file, or on first open of a file made before),
``queues`` (one row per queue name, with its shutdown flag and its stored ``maxsize``: NULL
until an opener or ``set_maxsize`` records one, <= 0: none), ``counters`` (one row per
queue: how many of its items are ``ready``, ``delayed``, ``leased``, ``dead``, and, from
version 4, the totals ``put_total``, ``delivered_total`` and ``finished_total``: items ever
put, deliveries ever made, items ever acknowledged or made dead; triggers on ``items``
keep them exact in the transaction of every change), ``snapshots`` (version 4: a few rows
per queue, its totals as they were at ``taken_at``, for rates over the last minute) and
``items`` (one row per item, its id never given twice in the file; ``put_at``, from version
4, the ``time.time()`` of the put that stored it, NULL for items put before; ``state`` 0 =
ready, 1 = leased until ``lease_deadline`` under ``lease_token``, 2 = dead, 3 = delayed
until ``available_at``, when a claim makes it ready; a ready item never claimed may keep
there the token of the put that stored it, for ``SQLiteStore.retract()``; the job options
of version 5: ``priority``, claims taking the lowest first, ``dedup_key``, unique among a
queue's unfinished items, and ``expires_at``, when an item never claimed goes dead as
"expired"). A file that is not a conveyor database, or whose schema is newer, raises
``IncompatibleStoreError`` and is left untouched. A file of an older schema is migrated
when opened, in one transaction (version 1 to 2 adds ``queues.maxsize``, NULL for the
queues it holds: no bound stored yet; 2 to 3 adds the counters, counted once, their
triggers and the delayed state; 3 to 4 adds ``items.put_at``, the totals and the
snapshots, and replaces the item triggers by ones that keep the totals too; 4 to 5 adds
the job options' columns, NULL or 0 for the items it holds, and their indexes: columns
added, never a table rewritten), and an items table made before ids were never reused (no
``AUTOINCREMENT``) is rebuilt once, likewise.

Everything here runs on the store's worker thread, on its connection; the writes go
through the *transaction* the connection lends (see ``Transaction``).
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from typing import Protocol, TypeVar

from ..._exceptions import IncompatibleStoreError
from ._errors import is_lock_error, open_error

__all__ = [
    "DEAD",
    "DELAYED",
    "LEASED",
    "READY",
    "SCHEMA_VERSION",
    "Transaction",
    "check_or_create",
    "incarnation",
    "queue_id",
    "read_queue_names",
]

R = TypeVar("R")

SCHEMA_VERSION = 5
APPLICATION = "conveyor"

# items.state
READY, LEASED, DEAD, DELAYED = 0, 1, 2, 3

# Each queue's counters (table counters: ready, delayed, leased, dead), kept by triggers
# on items in the transaction of every change, whichever statement makes it: an operation
# added later (purge, requeue, expiry) keeps them exact without knowing of them.  Measured
# (alternating rounds, raw SQL, a file in WAL): triggers cost 2-10% against an UPDATE
# written in each operation for single puts, batches of 100 and claim + ack of 100, once
# the counts live in a narrow table of their own (on the queues row, whose name is
# rewritten with each UPDATE, batches were 0.8x).
_COUNTERS = (("ready", READY), ("leased", LEASED), ("dead", DEAD), ("delayed", DELAYED))
_COUNTERS_TABLE = (
    "CREATE TABLE counters (queue INTEGER PRIMARY KEY, "
    + ", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c, _ in _COUNTERS)
    + ")"
)


def _count(row: str, sign: str) -> str:
    return ", ".join(f"{c} = {c} {sign} ({row}.state = {s})" for c, s in _COUNTERS)


_QUEUE_TRIGGERS = (
    "CREATE TRIGGER queues_counted AFTER INSERT ON queues BEGIN"
    " INSERT OR IGNORE INTO counters (queue) VALUES (NEW.id); END",
    "CREATE TRIGGER queues_uncounted AFTER DELETE ON queues BEGIN"
    " DELETE FROM counters WHERE queue = OLD.id; END",
)
_ITEM_TRIGGERS_V3 = (
    "CREATE TRIGGER items_counted_insert AFTER INSERT ON items BEGIN"
    f" UPDATE counters SET {_count('NEW', '+')} WHERE queue = NEW.queue; END",
    "CREATE TRIGGER items_counted_delete AFTER DELETE ON items BEGIN"
    f" UPDATE counters SET {_count('OLD', '-')} WHERE queue = OLD.queue; END",
    # One UPDATE for a change of state within a queue (every operation's case)...
    "CREATE TRIGGER items_counted_update AFTER UPDATE OF state, queue ON items"
    " WHEN NEW.queue = OLD.queue AND NEW.state <> OLD.state BEGIN UPDATE counters SET "
    + ", ".join(f"{c} = {c} + (NEW.state = {s}) - (OLD.state = {s})" for c, s in _COUNTERS)
    + " WHERE queue = NEW.queue; END",
    # ... and two for an item moved to another queue.
    "CREATE TRIGGER items_counted_move AFTER UPDATE OF queue ON items"
    " WHEN NEW.queue <> OLD.queue BEGIN"
    f" UPDATE counters SET {_count('OLD', '-')} WHERE queue = OLD.queue;"
    f" UPDATE counters SET {_count('NEW', '+')} WHERE queue = NEW.queue; END",
)
# Version 4: the same counts, and the totals in the same UPDATE, so that a put, a claim
# or an ack pays no statement of its own for them (an item moved to another queue keeps
# the version 3 trigger: it is neither put nor finished).  A delivery is a change to
# leased; an item finishes when it is deleted while leased (acknowledged) or made dead.
_TOTALED = ("items_counted_insert", "items_counted_delete", "items_counted_update")
_ITEM_TRIGGERS = (
    "CREATE TRIGGER items_counted_insert AFTER INSERT ON items BEGIN"
    f" UPDATE counters SET {_count('NEW', '+')}, put_total = put_total + 1"
    " WHERE queue = NEW.queue; END",
    "CREATE TRIGGER items_counted_delete AFTER DELETE ON items BEGIN"
    f" UPDATE counters SET {_count('OLD', '-')},"
    f" finished_total = finished_total + (OLD.state = {LEASED}) WHERE queue = OLD.queue; END",
    "CREATE TRIGGER items_counted_update AFTER UPDATE OF state, queue ON items"
    " WHEN NEW.queue = OLD.queue AND NEW.state <> OLD.state BEGIN UPDATE counters SET "
    + ", ".join(f"{c} = {c} + (NEW.state = {s}) - (OLD.state = {s})" for c, s in _COUNTERS)
    + f", delivered_total = delivered_total + (NEW.state = {LEASED}),"
    f" finished_total = finished_total + (NEW.state = {DEAD}) WHERE queue = NEW.queue; END",
    _ITEM_TRIGGERS_V3[3],
)
_TOTALS = ("put_total", "delivered_total", "finished_total")

# Delayed items (retry with a delay) wait in their own state; a claim makes those due ready.
_DELAYED_INDEX = "CREATE INDEX items_delayed ON items (queue, available_at) WHERE state = 3"

# AUTOINCREMENT: an id is never given twice in a file, so an id read earlier (a dead
# letter listed, then requeued by id) can never name another item.  Files made before it
# have their items table rebuilt once (see _upgrade); the columns are the
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
# Version 5, the job options.  Claims read the ready items by (priority, id): the index
# of items by state gets the priority before the id, replacing the one by (queue, state,
# id), so that a plain put still updates one index for it (a second index of the ready
# items measured +25% per put and +50% per claim and ack in raw SQL); the dead letters,
# listed by id, get a partial index of their own, which costs only an item's death.  A
# dedup key is unique among the queue's unfinished items (a put with a key taken inserts
# nothing: INSERT OR IGNORE), and free again once its item is deleted or dead.  The
# expiry index holds only the items put with a ttl and never claimed.
_JOB_COLUMNS = (
    ("priority", "INTEGER NOT NULL DEFAULT 0"),
    ("dedup_key", "TEXT"),
    ("expires_at", "REAL"),
)
# The columns migrations added, in the order ALTER TABLE ADD COLUMN put them (last), for
# _upgrade's rebuild: version 4's put time, then version 5's job options.
_ADDED_COLUMNS = (("put_at", "REAL"), *_JOB_COLUMNS)
_JOB_INDEXES = (
    "DROP INDEX IF EXISTS items_by_state",
    "CREATE INDEX items_by_state ON items (queue, state, priority, id)",
    "CREATE INDEX items_dead ON items (queue, id) WHERE state = 2",
    "CREATE UNIQUE INDEX items_dedup ON items (queue, dedup_key)"
    " WHERE dedup_key IS NOT NULL AND state <> 2",
    "CREATE INDEX items_expiry ON items (queue, expires_at) WHERE expires_at IS NOT NULL",
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
    3: (
        _COUNTERS_TABLE,
        # Version 2 kept delayed items ready, with available_at in the future.
        "UPDATE items SET state = 3 WHERE state = 0"
        " AND available_at > (julianday('now') - 2440587.5) * 86400.0",
        _DELAYED_INDEX,
        *_QUEUE_TRIGGERS,
        *_ITEM_TRIGGERS_V3,
        # Counted once here; the triggers keep the counts from now on.
        f"INSERT INTO counters (queue, {', '.join(c for c, _ in _COUNTERS)}) SELECT id, "
        + ", ".join(
            f"(SELECT COUNT(*) FROM items WHERE queue = queues.id AND state = {s})"
            for _, s in _COUNTERS
        )
        + " FROM queues",
    ),
    # Each an O(1) change of the schema: ALTER TABLE ADD COLUMN rewrites no row.  Items
    # put before keep put_at NULL (their put time is unknown); the totals count from here.
    4: (
        "ALTER TABLE items ADD COLUMN put_at REAL",
        *(f"ALTER TABLE counters ADD COLUMN {t} INTEGER NOT NULL DEFAULT 0" for t in _TOTALS),
        "CREATE TABLE snapshots (queue INTEGER NOT NULL, taken_at REAL NOT NULL,"
        " put_total INTEGER NOT NULL, finished_total INTEGER NOT NULL,"
        " PRIMARY KEY (queue, taken_at)) WITHOUT ROWID",
        *(f"DROP TRIGGER {name}" for name in _TOTALED),
        *_ITEM_TRIGGERS[:3],
    ),
    5: (
        *(f"ALTER TABLE items ADD COLUMN {name} {decl}" for name, decl in _JOB_COLUMNS),
        *_JOB_INDEXES,
    ),
}


class Transaction(Protocol):
    """Run *work* in one transaction on the connection, and return what it returns.

    ``SQLiteConnection.transaction()``: a write takes the lock up front; lock waits are
    retried and driver errors translated there.
    """

    def __call__(self, work: Callable[[sqlite3.Connection], R], write: bool = True) -> R: ...


def check_or_create(conn: sqlite3.Connection, path: str, transaction: Transaction) -> None:
    """Create the schema in a new file; check, migrate or upgrade an existing one.

    Raises:
        IncompatibleStoreError: The file is not a conveyor database, or a newer one.
        BackendError: The file cannot be read.
        sqlite3.OperationalError: The file is locked (the caller retries).
    """
    # Read-only checks first: nothing is written to a file that is not ours.
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and is_lock_error(exc):
            raise
        raise open_error(path, exc) from exc
    if tables:
        _check_meta(conn, path, tables, transaction)
        if not _ids_never_reused(conn):
            transaction(_upgrade)
        return

    def create(conn: sqlite3.Connection) -> None:
        # Another process may have created it since the check above.
        existing = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if existing:
            version = _read_version(conn, path, existing)
            if version < SCHEMA_VERSION:
                _migrate(conn, version)
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
        _migrate(conn, 1)

    transaction(create)


def incarnation(conn: sqlite3.Connection) -> str:
    """Return the file's incarnation, giving it one if it has none yet."""
    # Files of schema 1 made before incarnations existed get theirs on first open.
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('incarnation', ?)",
        (secrets.token_hex(8),),
    )
    row = conn.execute("SELECT value FROM meta WHERE key = 'incarnation'").fetchone()
    return str(row[0])


def queue_id(conn: sqlite3.Connection, name: str) -> int:
    """Return the id of the queue *name*, adding its row on first use."""
    conn.execute("INSERT OR IGNORE INTO queues (name) VALUES (?)", (name,))
    row = conn.execute("SELECT id FROM queues WHERE name = ?", (name,)).fetchone()
    return int(row[0])


def read_queue_names(conn: sqlite3.Connection, path: str) -> list[str]:
    """Return the names of the file's queues, sorted, reading only (no migration).

    Raises:
        IncompatibleStoreError: The file is not a conveyor database, or a newer one.
    """
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise open_error(path, exc) from exc
    if not tables:
        raise IncompatibleStoreError(
            f"{path!r} is an empty SQLite database, not a conveyor queue file; it was"
            " left untouched"
        )
    _read_version(conn, path, tables)
    return sorted(str(row[0]) for row in conn.execute("SELECT name FROM queues"))


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    # In the caller's write transaction: a process killed meanwhile leaves the file
    # wholly at its old version.
    for target in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[target]:
            conn.execute(statement)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _check_meta(
    conn: sqlite3.Connection, path: str, tables: set[str], transaction: Transaction
) -> None:
    version = _read_version(conn, path, tables)
    if version < SCHEMA_VERSION:

        def migrate(conn: sqlite3.Connection) -> None:
            # Another process may have migrated it since the check above.
            current = _read_version(conn, path, tables)
            if current < SCHEMA_VERSION:
                _migrate(conn, current)

        transaction(migrate)


def _read_version(conn: sqlite3.Connection, path: str, tables: set[str]) -> int:
    if "meta" not in tables:
        raise IncompatibleStoreError(
            f"{path!r} is an SQLite database of another application (no conveyor "
            "meta table); it was left untouched"
        )
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError as exc:  # e.g. no such column: key
        if is_lock_error(exc):
            raise
        raise IncompatibleStoreError(
            f"{path!r} is an SQLite database of another application (its meta "
            f"table is not conveyor's: {exc}); it was left untouched"
        ) from exc
    if meta.get("application") != APPLICATION:
        raise IncompatibleStoreError(
            f"{path!r} is an SQLite database of another application "
            f"({meta.get('application')!r}); it was left untouched"
        )
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        version = -1
    if version > SCHEMA_VERSION:
        raise IncompatibleStoreError(
            f"{path!r} was written by a newer conveyor (schema {version}; this one "
            f"reads up to {SCHEMA_VERSION}): upgrade conveyor; the file was left untouched"
        )
    if version < 1:
        raise IncompatibleStoreError(
            f"{path!r} has an unknown conveyor schema version "
            f"{meta.get('schema_version')!r}; it was left untouched"
        )
    return version


def _ids_never_reused(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'items'"
    ).fetchone()
    return row is not None and "AUTOINCREMENT" in str(row[0]).upper()


def _upgrade(conn: sqlite3.Connection) -> None:
    # Under the write lock: another process may have rebuilt it since the check.
    if _ids_never_reused(conn):
        return
    # Ids already freed by acknowledged items are unknown: numbering goes on from
    # the largest id still stored, and never back from then on.
    conn.execute(_ITEMS_TABLE.format(table="items_rebuilt"))
    # The columns migrations added (the file is at the current version by now) go along.
    columns = _ITEMS_COLUMNS
    for name, decl in _ADDED_COLUMNS:
        conn.execute(f"ALTER TABLE items_rebuilt ADD COLUMN {name} {decl}")
        columns += f", {name}"
    conn.execute(f"INSERT INTO items_rebuilt ({columns}) SELECT {columns} FROM items")
    conn.execute("DROP TABLE items")
    conn.execute("ALTER TABLE items_rebuilt RENAME TO items")
    for statement in (*_ITEMS_INDEXES, _DELAYED_INDEX, *_ITEM_TRIGGERS, *_JOB_INDEXES):
        conn.execute(statement)
