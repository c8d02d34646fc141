"""An SQLite queue file gives the space of drained items back to the file system.

New files use incremental auto-vacuum: between operations, the store's thread gives free
pages back in bounded steps.  Files made before are switched once, when first opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import conveyor
from conveyor import DurableQueue

from .test_sqlite_counters import _make_schema_2_file


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _pages(path: Path) -> tuple[int, int, int]:
    """Return the file's (auto_vacuum mode, page count, free pages)."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        mode = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return mode, pages, free


async def test_the_file_shrinks_after_a_drain(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        assert isinstance(q, DurableQueue)
        for start in range(0, 30_000, 5_000):
            await q.put_many([{"n": i, "pad": "x" * 100} for i in range(start, start + 5_000)])
        _, full, _ = await asyncio.to_thread(_pages, path)
        while await q.aqsize():
            for _ in await q.get_many(100):
                q.task_done()
        await q.join()
        deadline = time.monotonic() + 30
        while True:  # given back between operations, a step at a time
            mode, pages, free = await asyncio.to_thread(_pages, path)
            if pages < full / 4 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert mode == 2  # incremental
        assert pages < full / 4, (full, pages, free)
        await q.put("still works")
        assert await q.get() == "still works"
        q.task_done()
    size = path.stat().st_size
    assert size < full * 4096 / 4, (full, size)


async def test_a_file_made_before_is_switched_to_auto_vacuum_once(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _make_schema_2_file(path)
    assert _pages(path)[0] == 0  # none
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        assert isinstance(q, DurableQueue)
        assert await q.aqsize() == 3
    assert _pages(path)[0] == 2
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
