"""SQLite files as they are found: older layouts, damaged, foreign, unwritable, a full disk.

Every case uses a real file (and, where the case needs one, a real mount); a file that
conveyor refuses is left byte for byte as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor import BackendError, IncompatibleStoreError

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


# -- files conveyor refuses: each failure says what it is, and the file is left untouched --


def _side_files(path: Path) -> list[Path]:
    return [p for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


async def _make_queue_file(path: Path, items: int = 300) -> bytes:
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        await q.put_many([{"n": i, "pad": "x" * 200} for i in range(items)])
    assert not _side_files(path)  # the last close checkpoints and removes them
    return await asyncio.to_thread(path.read_bytes)


@pytest.mark.parametrize("keep", [50, 4096, 0.5], ids=["header", "first-page", "half"])
async def test_a_truncated_queue_file_is_reported_corrupt(tmp_path: Path, keep: float) -> None:
    path = tmp_path / "q.db"
    whole = await _make_queue_file(path)
    truncated = whole[: int(len(whole) * keep) if keep < 1 else int(keep)]
    path.write_bytes(truncated)
    with pytest.raises(BackendError, match="is corrupt") as caught:
        await conveyor.open_queue(_url(path), name="jobs")
    assert not isinstance(caught.value, IncompatibleStoreError)
    assert "not an SQLite database" not in str(caught.value)
    assert "left untouched" in str(caught.value)
    assert path.read_bytes() == truncated
    assert not _side_files(path)


async def test_a_damaged_header_is_reported_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    content = b"SQLite format 3\x00" + b"\x07" * 200
    path.write_bytes(content)
    with pytest.raises(BackendError, match="is corrupt"):
        await conveyor.open_queue(_url(path))
    assert path.read_bytes() == content


async def test_a_meta_table_of_another_application_is_reported_foreign(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE meta (name TEXT, version INTEGER)")
        conn.execute("INSERT INTO meta VALUES ('settings', 3)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(IncompatibleStoreError, match="another application") as caught:
        await conveyor.open_queue(_url(path))
    assert "no such column" in str(caught.value)  # the cause, kept in the message
    assert path.read_bytes() == before
    assert not _side_files(path)


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} is not permitted here: {done.stderr.strip()}")


def _umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], capture_output=True, check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a read-only tmpfs holding an empty file ``q.db`` to bind a file on."""
    directory = tmp_path / "ro"
    directory.mkdir()
    _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory))
    try:
        (directory / "q.db").touch()
        _mount("-o", "remount,ro", str(directory))
        yield directory
    finally:
        _umount(directory / "q.db")  # if a test bound a file there
        _umount(directory)


async def test_a_writable_file_in_a_read_only_directory_names_the_directory(
    tmp_path: Path, read_only_dir: Path
) -> None:
    real = tmp_path / "real.db"
    before = await _make_queue_file(real)
    shown = read_only_dir / "q.db"
    # Root ignores permission bits, not a read-only mount: the file (bound from a
    # writable one) can be written, its directory cannot.
    _mount("--bind", str(real), str(shown))
    try:
        assert os.access(shown, os.W_OK)
        assert not os.access(read_only_dir, os.W_OK)
        with pytest.raises(BackendError, match="not writable") as caught:
            await conveyor.open_queue(_url(shown), name="jobs")
        message = str(caught.value)
        assert repr(str(read_only_dir)) in message
        assert "-wal" in message
        assert not isinstance(caught.value, IncompatibleStoreError)
    finally:
        _umount(shown)
    assert real.read_bytes() == before


async def test_a_new_file_in_a_read_only_directory_names_the_directory(
    read_only_dir: Path,
) -> None:
    with pytest.raises(BackendError, match="not writable") as caught:
        await conveyor.open_queue(_url(read_only_dir / "new.db"))
    assert repr(str(read_only_dir)) in str(caught.value)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 3 MiB tmpfs of its own, to fill up."""
    directory = tmp_path / "small"
    directory.mkdir()
    _mount("-t", "tmpfs", "-o", "size=3m", "tmpfs", str(directory))
    try:
        yield directory
    finally:
        _umount(directory)


async def _try(operation: Any, tries: int) -> Any:
    """Run *operation* until it succeeds, at most *tries* times; return its result."""
    for _ in range(tries - 1):
        with contextlib.suppress(BackendError):
            return await operation()
    return await operation()


async def _fill(q: Any) -> tuple[int, str]:
    """Put items until the disk is full; return how many were stored, and the error."""
    for n in range(100_000):
        try:
            await q.put({"n": n, "pad": "x" * 1000})
        except BackendError as exc:
            message = str(exc)
            break
    else:
        raise AssertionError("the disk never filled up")
    return n, message


async def test_a_full_disk_fails_clearly_and_recovers_once_space_is_freed(
    small_disk: Path,
) -> None:
    filler = small_disk / "filler"
    await asyncio.to_thread(filler.write_bytes, b"\0" * 512 * 1024)
    async with conveyor.open_queue(_url(small_disk / "q.db"), name="jobs") as q:
        assert isinstance(q, conveyor.DurableQueue)
        stored, message = await _fill(q)
        assert stored > 0
        assert "is full" in message
        assert "changed nothing" in message
        assert repr(str(small_disk)) in message  # where to free space
        assert await q.aqsize() == stored  # the failed put stored nothing

        await asyncio.to_thread(filler.unlink)
        # Each operation works again within a bounded number of tries: every item is
        # there, in order, and acknowledging frees room for new ones.
        for n in range(stored):
            receipt = await _try(lambda: q.get_with_receipt(timeout=30), tries=2)
            assert receipt.item["n"] == n
            await _try(lambda: q.ack(receipt), tries=2)  # noqa: B023 - awaited at once
        for n in range(stored):
            await _try(lambda: q.put(n), tries=2)  # noqa: B023 - awaited at once
        assert await q.aqsize() == stored
