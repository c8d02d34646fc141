"""SQLite files as they are found: older layouts, damaged, foreign, unwritable, a full disk.

Every case uses a real file (and, where the case needs one, a real mount); a file that
conveyor refuses is left byte for byte as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import conveyor

# The first layout conveyor wrote (schema 1), kept here verbatim: files made by earlier
# versions look exactly like this.
SCHEMA_1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE queues (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " shutdown INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE items (id INTEGER PRIMARY KEY, queue INTEGER NOT NULL,"
    " state INTEGER NOT NULL, available_at REAL NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0, lease_token TEXT, lease_deadline REAL,"
    " error TEXT, failed_at REAL, payload BLOB NOT NULL)",
    "CREATE INDEX items_by_state ON items (queue, state, id)",
    "CREATE INDEX items_by_lease ON items (queue, lease_deadline) WHERE state = 1",
)


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _make_schema_1_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in SCHEMA_1:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)", [("application", "conveyor"), ("schema_version", "1")]
        )
        conn.execute("INSERT INTO queues (id, name) VALUES (1, 'jobs')")
        conn.executemany(
            "INSERT INTO items (id, queue, state, payload, attempts, error, failed_at)"
            " VALUES (?, 1, ?, ?, ?, ?, ?)",
            [
                (3, 0, b'"ready-3"', 0, None, None),
                (5, 2, b'"dead-5"', 2, "broken", 1.0),
                (9, 0, b'"ready-9"', 0, None, None),
            ],
        )
        conn.commit()
    finally:
        conn.close()


async def test_a_schema_1_file_keeps_its_items_and_never_reuses_an_id(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_schema_1_file(path)
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        assert isinstance(q, conveyor.DurableQueue)
        (dead,) = await q.dead_letters()
        assert (dead.item_id, dead.item, dead.error, dead.attempts) == ("5", "dead-5", "broken", 2)
        first = await q.get_with_receipt(timeout=30)
        second = await q.get_with_receipt(timeout=30)
        assert [(first.item_id, first.item), (second.item_id, second.item)] == [
            ("3", "ready-3"),
            ("9", "ready-9"),
        ]
        await q.ack(first)
        await q.ack(second)  # 9, the largest id, is gone: it must not be given again
        await q.put("new")
        third = await q.get_with_receipt(timeout=30)
        assert third.item == "new"
        assert int(third.item_id) > 9
        await q.ack(third)
    # Opened again (the upgrade is done once), and by a plain reader: still a valid file.
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        await q.put("again")
        assert await q.get(timeout=30) == "again"
        q.task_done()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'items'").fetchone()
        assert "AUTOINCREMENT" in sql
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"items_by_state", "items_by_lease"} <= indexes


async def test_many_openers_of_a_schema_1_file_at_once(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "old.db"
    _make_schema_1_file(path)
    openers = [conveyor.open_queue(_url(path), name="jobs") for _ in range(6)]
    queues = await asyncio.gather(*(o.__aenter__() for o in openers))
    try:
        got = await asyncio.gather(queues[0].get(timeout=30), queues[1].get(timeout=30))
        assert sorted(got) == ["ready-3", "ready-9"]
    finally:
        for q in queues:
            await q.aclose()
