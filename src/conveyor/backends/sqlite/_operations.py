"""The SQL of each store operation: one function an operation, on a connection.

Each function runs inside a transaction the caller opened (``SQLiteStore`` runs it through
``SQLiteConnection.transaction()`` on the worker thread), takes plain values and returns
plain values; none commits, sleeps or touches the event loop.  The queue is named by its
row id in ``queues`` (*qid*); the states of ``items.state`` are ``_schema``'s.

Receipts are ``"<incarnation>-<queue id>:<item id>:<lease token>"`` (see ``Receipts``):
another queue's (in this file or another) raises ``ForeignReceiptError`` and changes
nothing.  Names from ``put_ids()`` are ``"<item id>:<token of the put>"``: the token waits
in the item's ``lease_token`` until a claim replaces it, so an item still holding it was
never delivered.
"""

from __future__ import annotations

import functools
import math
import secrets
import sqlite3
import time
from typing import Any

from ..._exceptions import ForeignReceiptError, QueueShutDown
from .._base import (
    DeadLetter,
    Delivery,
    PeekedItem,
    Purgeable,
    PutOptions,
    StoreCounts,
    StoreTotals,
)
from ._schema import DEAD, DELAYED, READY

__all__ = [
    "Receipts",
    "ack",
    "bind_maxsize",
    "claim",
    "claim_ids",
    "counts",
    "dead_letters",
    "extend",
    "extend_many",
    "fail",
    "next_due",
    "peek",
    "purge",
    "put",
    "put_ids",
    "put_jobs",
    "release",
    "requeue_dead",
    "resume",
    "retract",
    "retry",
    "oldest_ready_age",
    "set_maxsize",
    "shutdown",
    "take_snapshot",
    "totals",
]

_INSERT_CHUNK = 256
_DELETE_CHUNK = 500  # ids per statement, under SQLite's oldest limit of 999 variables
_HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35)


class Receipts:
    """Write and read the receipts of one queue, in the file open now.

    Attributes:
        ident: ``"<incarnation of the file>-<queue id>"``: receipts name it, so that one of
            another queue, or of a file since replaced, is told apart and acknowledges
            nothing.
    """

    def __init__(self, name: str, path: str) -> None:
        self._name = name
        self._path = path
        self.ident = ""
        self._past: set[str] = set()

    def retire(self) -> None:
        """Make the receipts given so far acknowledge nothing (their file was replaced)."""
        self._past.add(self.ident)

    def make(self, item_id: int, token: str) -> str:
        """Return the receipt of a lease of item *item_id* under *token*."""
        return f"{self.ident}:{item_id}:{token}"

    def parse(self, receipt: str) -> tuple[int, str] | None:
        """Return the (item id, lease token) a receipt names; None for a stale one.

        Raises:
            ForeignReceiptError: The receipt is another queue's (here or in another file).
        """
        ident, _, lease = receipt.partition(":")
        if ident != self.ident:
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


# -- putting ---------------------------------------------------------------------------


def put(conn: sqlite3.Connection, qid: int, payloads: list[bytes]) -> bool:
    """Append *payloads* as ready items if the queue has room for all; return whether."""
    if not _has_room(conn, qid, len(payloads)):
        return False
    now = time.time()
    rows = [(qid, p, now) for p in payloads]
    # One multi-row INSERT per chunk: a quarter faster than executemany per commit.
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        conn.execute(_insert_sql(len(chunk)), [value for row in chunk for value in row])
    return True


def put_ids(
    conn: sqlite3.Connection, qid: int, payloads: list[bytes], token: str
) -> list[int] | None:
    """Append *payloads* as ``put()`` does, each holding *token*; return their ids.

    Returns:
        The new ids in the order of *payloads* (empty when they cannot be known), or
        ``None`` when there was no room and nothing was stored.
    """
    if not _has_room(conn, qid, len(payloads)):
        return None
    now = time.time()
    rows = [(qid, p, token, now) for p in payloads]
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


def put_jobs(
    conn: sqlite3.Connection,
    qid: int,
    payloads: list[bytes],
    options: list[PutOptions],
    token: str,
) -> list[int | None] | None:
    """Store *payloads* with their job options, as ``Store.put_jobs()`` says.

    Returns:
        ``None`` when there was no room and nothing was stored; otherwise per payload
        its new id, or ``None`` where an unfinished item held its key.
    """
    # Keys held by unfinished items, read through the partial unique index; a key given
    # twice in this call keeps the first.  Under the write lock, nobody else puts
    # meanwhile: the unique index is the guard all the same (INSERT OR IGNORE below).
    wanted = list({o.key for o in options if o.key is not None})
    taken: set[str] = set()
    for start in range(0, len(wanted), _DELETE_CHUNK):
        chunk = wanted[start : start + _DELETE_CHUNK]
        taken.update(
            row[0]
            for row in conn.execute(
                "SELECT dedup_key FROM items WHERE queue = ? AND dedup_key IS NOT NULL"
                f" AND state <> {DEAD} AND dedup_key IN ({','.join(['?'] * len(chunk))})",
                (qid, *chunk),
            )
        )
    keep: list[bool] = []
    for option in options:
        fresh = option.key is None or option.key not in taken
        if fresh and option.key is not None:
            taken.add(option.key)
        keep.append(fresh)
    count = sum(keep)
    if count == 0:
        _has_room(conn, qid, 1)  # only for its shutdown check: nothing needs room
        return [None] * len(payloads)
    if not _has_room(conn, qid, count):
        return None
    now = time.time()
    ids: list[int | None] = []
    for payload, option, fresh in zip(payloads, options, keep, strict=True):
        if not fresh:
            ids.append(None)
            continue
        delayed = option.delay > 0
        cursor = conn.execute(
            "INSERT OR IGNORE INTO items (queue, state, available_at, priority, dedup_key,"
            " expires_at, payload, lease_token, put_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                qid,
                DELAYED if delayed else READY,
                now + option.delay if delayed else 0,
                option.priority,
                option.key,
                None if option.ttl is None else now + option.ttl,
                payload,
                token,
                now,
            ),
        )
        ids.append(cursor.lastrowid if cursor.rowcount == 1 else None)
    return ids


def retract(conn: sqlite3.Connection, qid: int, items: list[tuple[int, str]]) -> list[bool]:
    """Delete the (item id, put token) *items*, all or none, if each is still unclaimed."""
    rows = [(qid, item_id, token) for item_id, token in items]
    # Still holding the put's token: no claim ever replaced it, so never delivered.
    # Waiting, that is ready or delayed (a put with a delay).
    where = " WHERE queue = ? AND id = ? AND state IN (0, 3) AND lease_token = ?"
    found = sum(
        conn.execute("SELECT COUNT(*) FROM items" + where, row).fetchone()[0] for row in rows
    )
    if found != len(rows):
        return [False] * len(rows)
    for row in rows:
        conn.execute("DELETE FROM items" + where, row)
    return [True] * len(rows)


def _has_room(conn: sqlite3.Connection, qid: int, count: int) -> bool:
    # The counters the triggers keep: one row read, whatever the backlog.
    shutdown, maxsize, ready, delayed = conn.execute(
        "SELECT shutdown, maxsize, ready, delayed FROM queues JOIN counters ON queue = id"
        " WHERE id = ?",
        (qid,),
    ).fetchone()
    if shutdown:
        raise QueueShutDown
    # As asyncio: an item fits while the size before it is below maxsize.
    return maxsize is None or not 0 < maxsize < math.inf or ready + delayed + count - 1 < maxsize


@functools.lru_cache(maxsize=64)
def _ack_sql(rows: int, returning: bool) -> str:
    return (
        "DELETE FROM items WHERE state = 1 AND lease_token = ? AND id IN ("
        + ",".join(["?"] * rows)
        + (") RETURNING id" if returning else ")")
    )


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    # put_at: the put's time, for oldest_ready_age().
    return "INSERT INTO items (queue, state, payload, put_at) VALUES " + ",".join(
        ["(?, 0, ?, ?)"] * rows
    )


@functools.lru_cache(maxsize=64)
def _insert_token_sql(rows: int) -> str:
    # The put's token waits in lease_token (unused while an item was never claimed).
    return "INSERT INTO items (queue, state, payload, lease_token, put_at) VALUES " + ",".join(
        ["(?, 0, ?, ?, ?)"] * rows
    )


# -- claiming --------------------------------------------------------------------------


def claim(
    conn: sqlite3.Connection,
    qid: int,
    receipts: Receipts,
    max_items: int,
    lease_timeout: float,
    max_attempts: int | None,
) -> list[Delivery]:
    """Expire past leases and ttls, make due delayed items ready, lease up to *max_items*.

    The ready items leased are the first by (priority, id).  The first steps read the
    partial indexes of leased, expiring and delayed items only, whatever the backlog of
    ready ones; the lease reads the ready items' index from its start.

    Raises:
        QueueShutDown: The queue is shut down and no item is ready.
    """
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
    # Never claimed within its ttl: dead, saying so (a claim ends the ttl, see below).
    conn.execute(
        "UPDATE items SET state = 2, lease_token = NULL, failed_at = ?, error = 'expired',"
        " expires_at = NULL WHERE queue = ? AND expires_at <= ? AND state IN (0, 3)",
        (now, qid, now),
    )
    conn.execute(
        "UPDATE items SET state = 0 WHERE queue = ? AND state = 3 AND available_at <= ?",
        (qid, now),
    )
    token = secrets.token_hex(8)
    deadline = now + lease_timeout
    if _HAS_RETURNING:
        rows = conn.execute(
            "UPDATE items SET state = 1, attempts = attempts + 1, lease_token = ?,"
            " lease_deadline = ?, expires_at = NULL WHERE id IN (SELECT id FROM items"
            " WHERE queue = ? AND state = 0 ORDER BY priority, id LIMIT ?)"
            " RETURNING id, payload, attempts, priority",
            (token, deadline, qid, max_items),
        ).fetchall()
    else:  # SQLite before 3.35: the same in two statements, in the same transaction
        found = conn.execute(
            "SELECT id, payload, attempts + 1, priority FROM items WHERE queue = ?"
            " AND state = 0 ORDER BY priority, id LIMIT ?",
            (qid, max_items),
        ).fetchall()
        conn.executemany(
            "UPDATE items SET state = 1, attempts = attempts + 1, lease_token = ?,"
            " lease_deadline = ?, expires_at = NULL WHERE id = ?",
            [(token, deadline, row[0]) for row in found],
        )
        rows = found
    if not rows:
        (shutdown,) = conn.execute("SELECT shutdown FROM queues WHERE id = ?", (qid,)).fetchone()
        if shutdown:
            raise QueueShutDown
        return []
    rows.sort(key=lambda row: (row[3], row[0]))
    return [
        Delivery(str(item_id), payload, receipts.make(item_id, token), attempts, deadline)
        for item_id, payload, attempts, _ in rows
    ]


def next_due(conn: sqlite3.Connection, qid: int) -> float | None:
    """Return when the first delayed item becomes ready (``time.time()``), if any."""
    (due,) = conn.execute(
        "SELECT MIN(available_at) FROM items WHERE queue = ? AND state = 3", (qid,)
    ).fetchone()
    return None if due is None else float(due)


def claim_ids(
    conn: sqlite3.Connection,
    qid: int,
    receipts: Receipts,
    items: list[tuple[int, str] | None],
    lease_timeout: float,
) -> list[Delivery | None]:
    """Lease each (item id, put token) of *items* that is still ready and never claimed."""
    token = secrets.token_hex(8)
    deadline = time.time() + lease_timeout
    result: list[Delivery | None] = []
    for row in items:
        if row is None:
            result.append(None)
            continue
        item_id, put_token = row
        # Still holding the put's token: ready and never claimed (see retract).
        found = conn.execute(
            "SELECT payload, attempts + 1 FROM items WHERE queue = ? AND id = ?"
            " AND state = 0 AND lease_token = ?",
            (qid, item_id, put_token),
        ).fetchone()
        if found is None:
            result.append(None)
            continue
        conn.execute(
            "UPDATE items SET state = 1, attempts = attempts + 1, lease_token = ?,"
            " lease_deadline = ?, expires_at = NULL WHERE id = ?",
            (token, deadline, item_id),
        )
        receipt = receipts.make(item_id, token)
        result.append(Delivery(str(item_id), found[0], receipt, found[1], deadline))
    return result


# -- settling a lease ------------------------------------------------------------------


def ack(conn: sqlite3.Connection, receipts: Receipts, settled: list[str]) -> list[bool]:
    """Delete the items whose current lease each receipt of *settled* names."""
    parsed = [receipts.parse(receipt) for receipt in settled]
    if not _HAS_RETURNING:  # SQLite before 3.35: one statement a receipt
        return [
            lease is not None
            and conn.execute(
                "DELETE FROM items WHERE id = ? AND lease_token = ? AND state = 1", lease
            ).rowcount
            == 1
            for lease in parsed
        ]
    # One DELETE for the receipts of each claim (they share its token), not one each.
    by_token: dict[str, list[int]] = {}
    for lease in parsed:
        if lease is not None:
            by_token.setdefault(lease[1], []).append(lease[0])
    deleted: set[tuple[int, str]] | None = None  # None: every lease named was deleted
    for token, ids in by_token.items():
        for start in range(0, len(ids), _DELETE_CHUNK):
            chunk = ids[start : start + _DELETE_CHUNK]
            # The common case, every receipt current and given once, needs no RETURNING
            # (which cost about a fifth of an acknowledgement of 100): the count of rows
            # deleted says it.  Otherwise the chunk is undone and done again, returning.
            conn.execute("SAVEPOINT ack")
            if conn.execute(_ack_sql(len(chunk), False), (token, *chunk)).rowcount == len(chunk):
                conn.execute("RELEASE ack")
                continue
            conn.execute("ROLLBACK TO ack")
            conn.execute("RELEASE ack")
            if deleted is None:
                deleted = {lease for lease in parsed if lease is not None}
                deleted.difference_update((i, token) for i in chunk)
            rows = conn.execute(_ack_sql(len(chunk), True), (token, *chunk))
            deleted.update((item_id, token) for (item_id,) in rows)
    if deleted is None:
        return [lease is not None for lease in parsed]
    results = []
    for lease in parsed:
        # A receipt given twice acknowledges once, as its second DELETE would find nothing.
        results.append(lease in deleted)
        deleted.discard(lease)
    return results


def release(conn: sqlite3.Connection, receipts: Receipts, settled: list[str]) -> list[bool]:
    """Make leased items ready at once, without counting the attempt."""
    return [
        _settle_one(
            conn,
            receipts,
            receipt,
            "UPDATE items SET state = 0, lease_token = NULL, lease_deadline = NULL,"
            " available_at = 0, attempts = MAX(attempts - 1, 0)",
            (),
        )
        for receipt in settled
    ]


def retry(conn: sqlite3.Connection, receipts: Receipts, receipt: str, available: float) -> bool:
    """Make a leased item ready from *available* on (0: at once; later: delayed till then)."""
    return _settle_one(
        conn,
        receipts,
        receipt,
        "UPDATE items SET state = ?, lease_token = NULL, lease_deadline = NULL, available_at = ?",
        (DELAYED if available > 0 else READY, available),
    )


def fail(
    conn: sqlite3.Connection, receipts: Receipts, receipt: str, error: str, now: float
) -> bool:
    """Make a leased item dead, for *error*."""
    return _settle_one(
        conn,
        receipts,
        receipt,
        "UPDATE items SET state = 2, lease_token = NULL, lease_deadline = NULL,"
        " error = ?, failed_at = ?",
        (str(error), now),
    )


def extend(conn: sqlite3.Connection, receipts: Receipts, receipt: str, deadline: float) -> bool:
    """Move a lease's deadline to *deadline*."""
    return _settle_one(conn, receipts, receipt, "UPDATE items SET lease_deadline = ?", (deadline,))


def extend_many(
    conn: sqlite3.Connection, receipts: Receipts, settled: list[str], deadline: float
) -> list[bool]:
    """Move the deadline of every lease *settled* names to *deadline*."""
    return [
        _settle_one(conn, receipts, receipt, "UPDATE items SET lease_deadline = ?", (deadline,))
        for receipt in settled
    ]


def _settle_one(
    conn: sqlite3.Connection, receipts: Receipts, receipt: str, sql: str, args: tuple[Any, ...]
) -> bool:
    parsed = receipts.parse(receipt)
    if parsed is None:
        return False
    cursor = conn.execute(sql + " WHERE id = ? AND lease_token = ? AND state = 1", (*args, *parsed))
    return cursor.rowcount == 1


# -- the queue as a whole --------------------------------------------------------------


def counts(conn: sqlite3.Connection, qid: int) -> StoreCounts:
    """Read the queue's counters and flags.

    One row, whatever the backlog; delayed items whose time came, which the next claim
    makes ready, count as ready already (a range of the delayed items' index).
    """
    ready, delayed, leased, dead, shutdown, maxsize = conn.execute(
        "SELECT ready, delayed, leased, dead, shutdown, maxsize FROM queues"
        " JOIN counters ON queue = id WHERE id = ?",
        (qid,),
    ).fetchone()
    if delayed:
        (due,) = conn.execute(
            "SELECT COUNT(*) FROM items WHERE queue = ? AND state = 3 AND available_at <= ?",
            (qid, time.time()),
        ).fetchone()
        ready, delayed = ready + due, delayed - due
    return StoreCounts(ready, delayed, leased, dead, bool(shutdown), _bound(maxsize) or 0)


def shutdown(conn: sqlite3.Connection, qid: int, immediate: bool) -> int:
    """Mark the queue shut down; with *immediate*, delete its ready and delayed items."""
    conn.execute("UPDATE queues SET shutdown = 1 WHERE id = ?", (qid,))
    if not immediate:
        return 0
    return conn.execute("DELETE FROM items WHERE queue = ? AND state IN (0, 3)", (qid,)).rowcount


def resume(conn: sqlite3.Connection, qid: int) -> None:
    """Clear the queue's shutdown mark."""
    conn.execute("UPDATE queues SET shutdown = 0 WHERE id = ?", (qid,))


def bind_maxsize(conn: sqlite3.Connection, qid: int, maxsize: float | None) -> float | None:
    """Store *maxsize* unless a bound is stored already; return the stored one."""
    if maxsize is not None:
        conn.execute(
            "UPDATE queues SET maxsize = ? WHERE id = ? AND maxsize IS NULL", (maxsize, qid)
        )
    (stored,) = conn.execute("SELECT maxsize FROM queues WHERE id = ?", (qid,)).fetchone()
    return _bound(stored)


def set_maxsize(conn: sqlite3.Connection, qid: int, maxsize: float) -> None:
    """Store *maxsize* as the queue's bound."""
    conn.execute("UPDATE queues SET maxsize = ? WHERE id = ?", (maxsize, qid))


def dead_letters(conn: sqlite3.Connection, qid: int, limit: int) -> list[DeadLetter]:
    """Return up to *limit* dead items, oldest first."""
    rows = conn.execute(
        "SELECT id, payload, attempts, error, failed_at FROM items"
        " WHERE queue = ? AND state = 2 ORDER BY id LIMIT ?",
        (qid, limit),
    ).fetchall()
    return [DeadLetter(str(i), p, a, e or "", f or 0.0) for i, p, a, e, f in rows]


def requeue_dead(conn: sqlite3.Connection, qid: int, item_ids: list[int] | None) -> int:
    """Make the dead items *item_ids* (``None``: all) ready again; return how many."""
    # The key was freed when the item died and may be another item's now: it stays free.
    sql = (
        "UPDATE items SET state = 0, attempts = 0, error = NULL, failed_at = NULL,"
        " available_at = 0, dedup_key = NULL, expires_at = NULL WHERE queue = ? AND state = 2"
    )
    if item_ids is None:
        return conn.execute(sql, (qid,)).rowcount
    return sum(conn.execute(sql + " AND id = ?", (qid, i)).rowcount for i in item_ids)


# -- operating the queue from outside -------------------------------------------------


# Waiting: ready, or delayed (schema 3), which a claim makes ready once its time comes.
_WAITING = f"state IN ({READY}, {DELAYED})"


def peek(conn: sqlite3.Connection, qid: int, limit: int) -> list[PeekedItem]:
    """Return up to *limit* ready items (delay passed), in claim order; change nothing."""
    if limit <= 0:
        return []
    # The ready items' index and the delayed items' index, each read from its start,
    # merged here: one query over both states would sort the whole backlog.
    rows = conn.execute(
        "SELECT priority, id, payload, attempts FROM items WHERE queue = ? AND state = 0"
        " ORDER BY priority, id LIMIT ?",
        (qid, limit),
    ).fetchall()
    rows += conn.execute(
        "SELECT priority, id, payload, attempts FROM items WHERE queue = ? AND state = 3"
        " AND available_at <= ? LIMIT ?",
        (qid, time.time(), limit),
    ).fetchall()
    rows.sort(key=lambda row: (row[0], row[1]))
    return [PeekedItem(str(i), p, a) for _, i, p, a in rows[:limit]]


_PURGED = {
    "ready": _WAITING,
    "dead": f"state = {DEAD}",
    "all": f"({_WAITING} OR state = {DEAD})",
}


def purge(conn: sqlite3.Connection, qid: int, which: Purgeable) -> int:
    """Delete the queue's waiting items, dead letters or both; return how many."""
    return conn.execute(f"DELETE FROM items WHERE queue = ? AND {_PURGED[which]}", (qid,)).rowcount


# How many priorities oldest_ready_age() looks into: one index lookup each.
_AGE_PRIORITIES = 64


def oldest_ready_age(conn: sqlite3.Connection, qid: int) -> float | None:
    """Return the seconds since the put of the ready item that has waited longest.

    Index lookups, whatever the backlog: ids grow with put times, so that item is the
    ready one of lowest id.  The index of ready items is by ``(queue, state, priority,
    id)`` (claims' order), so the first item of each priority is looked up in turn, up
    to ``_AGE_PRIORITIES`` priorities (with more, the age is the oldest among the items
    of the lowest ones: a lower bound); among delayed items whose time came (which count
    as ready) the one of lowest id.  ``0.0`` when none is ready; ``None`` when that item
    was put before the file recorded put times (schema 3).
    """
    now = time.time()
    found: list[tuple[int, float | None]] = []
    priority = None
    for _ in range(_AGE_PRIORITIES):
        row = conn.execute(
            f"SELECT priority, id, put_at FROM items WHERE queue = ? AND state = {READY}"
            + ("" if priority is None else " AND priority > ?")
            + " ORDER BY priority, id LIMIT 1",
            (qid,) if priority is None else (qid, priority),
        ).fetchone()
        if row is None:
            break
        priority = row[0]
        found.append((row[1], row[2]))
    due = conn.execute(
        f"SELECT id, put_at FROM items WHERE queue = ? AND state = {DELAYED}"
        " AND available_at <= ? ORDER BY id LIMIT 1",
        (qid, now),
    ).fetchone()
    if due is not None:
        found.append((due[0], due[1]))
    if not found:
        return 0.0
    _, put_at = min(found)
    return None if put_at is None else max(0.0, now - put_at)


# Rates are over the newest snapshot at least RATE_WINDOW seconds old; one is taken at
# most every SNAPSHOT_EVERY seconds, so the span is 60 to 75 s on a queue in use.
RATE_WINDOW = 60.0
SNAPSHOT_EVERY = 15.0


def take_snapshot(conn: sqlite3.Connection, qid: int, now: float) -> None:
    """Record the queue's totals as of *now*, unless a snapshot is under 15 s old.

    Keeps the newest snapshot at least a minute old and those after it: a handful of rows.
    """
    (last,) = conn.execute("SELECT MAX(taken_at) FROM snapshots WHERE queue = ?", (qid,)).fetchone()
    if last is not None and now - last < SNAPSHOT_EVERY:
        return
    conn.execute(
        "INSERT OR IGNORE INTO snapshots (queue, taken_at, put_total, finished_total)"
        " SELECT queue, ?, put_total, finished_total FROM counters WHERE queue = ?",
        (now, qid),
    )
    conn.execute(
        "DELETE FROM snapshots WHERE queue = ?1 AND taken_at < (SELECT MAX(taken_at)"
        " FROM snapshots WHERE queue = ?1 AND taken_at <= ?2)",
        (qid, now - RATE_WINDOW),
    )


def totals(conn: sqlite3.Connection, qid: int) -> StoreTotals:
    """Read the queue's totals, and its rates since the newest snapshot a minute old."""
    now = time.time()
    put, delivered, finished = conn.execute(
        "SELECT put_total, delivered_total, finished_total FROM counters WHERE queue = ?",
        (qid,),
    ).fetchone()
    before = conn.execute(
        "SELECT taken_at, put_total, finished_total FROM snapshots WHERE queue = ?"
        " AND taken_at <= ? ORDER BY taken_at DESC LIMIT 1",
        (qid, now - RATE_WINDOW),
    ).fetchone()
    if before is None:
        return StoreTotals(put, delivered, finished)
    taken_at, put_then, finished_then = before
    minutes = (now - taken_at) / 60.0
    return StoreTotals(
        put,
        delivered,
        finished,
        put_per_minute=max(0, put - put_then) / minutes,
        finished_per_minute=max(0, finished - finished_then) / minutes,
        rate_span=now - taken_at,
    )


def _bound(stored: float | None) -> float | None:
    # REAL gives 10.0 back for 10: shown as the int it was given as.
    if stored is None:
        return None
    return int(stored) if float(stored).is_integer() else float(stored)
