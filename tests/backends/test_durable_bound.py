"""``maxsize`` belongs to the queue: stored with it, used by every opener, changed for all.

Each queue object opened by ``open_durable`` has connections of its own, as another
process would.  Runs for every durable backend in ``durable_fixtures``; the real
multi-process test is in ``test_durable_processes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor import MaxsizeConflictError
from conveyor.backends.sqlite import SCHEMA_VERSION
from tests.backends.durable_fixtures import durable_url, open_durable, queue_name
from tests.backends.test_sqlite_files import SCHEMA_1

__all__ = ["durable_url", "open_durable", "queue_name"]


async def _fill(q: Any, n: int) -> None:
    for i in range(n):
        await q.put(i)


async def test_an_opener_without_maxsize_uses_the_stored_bound(open_durable: Any) -> None:
    a = await open_durable(maxsize=10)
    await _fill(a, 10)
    b = await open_durable()
    assert b.maxsize == 10
    assert b.statistics().max_size == 10
    with pytest.raises(TimeoutError):
        await b.put("eleventh", timeout=0.2)
    with pytest.raises(conveyor.QueueFull):
        b.put_nowait("eleventh")
    assert await a.aqsize() == 10
    assert await b.aqsize() == 10


async def test_a_conflicting_maxsize_is_refused_naming_both_and_the_way_out(
    open_durable: Any, queue_name: str
) -> None:
    await open_durable(maxsize=10)
    with pytest.raises(MaxsizeConflictError) as caught:
        await open_durable(maxsize=5)
    text = str(caught.value)
    assert "maxsize 10" in text
    assert "maxsize=5" in text
    assert "conveyor maxsize " in text
    assert f" {queue_name} 5" in text
    assert "set_maxsize(5)" in text
    # An explicit 0 asks for an unbounded queue: a conflict too.
    with pytest.raises(ValueError, match=r"maxsize=0 \(unbounded\)"):
        await open_durable(maxsize=0)
    same = await open_durable(maxsize=10)
    assert same.maxsize == 10


async def test_every_unbounded_value_is_the_same_bound(open_durable: Any) -> None:
    await open_durable(maxsize=0)
    q = await open_durable(maxsize=-1)
    assert q.maxsize <= 0
    await _fill(q, 20)
    with pytest.raises(MaxsizeConflictError):
        await open_durable(maxsize=3)


async def test_the_first_explicit_opener_stores_the_bound_for_all(open_durable: Any) -> None:
    unbounded = await open_durable()
    assert unbounded.maxsize == 0
    bounded = await open_durable(maxsize=3)
    assert bounded.maxsize == 3
    # The first opener's view still says unbounded; the store checks the stored bound.
    await _fill(unbounded, 3)
    with pytest.raises(TimeoutError):
        await unbounded.put("fourth", timeout=0.2)
    assert await unbounded.aqsize() == 3
    assert unbounded.maxsize == 3  # read with the counts


async def test_the_bound_outlives_every_opener(durable_url: str, queue_name: str) -> None:
    async with conveyor.open_queue(durable_url, name=queue_name, maxsize=4) as q:
        assert isinstance(q, conveyor.DurableQueue)
        await q.put("x")
    async with conveyor.open_queue(durable_url, name=queue_name) as again:
        assert isinstance(again, conveyor.DurableQueue)
        assert again.maxsize == 4
        assert await again.aqsize() == 1


async def test_set_maxsize_frees_a_put_blocked_in_another_process(open_durable: Any) -> None:
    a = await open_durable(maxsize=2)
    b = await open_durable()
    await _fill(a, 2)
    blocked = asyncio.ensure_future(b.put("third"))
    try:
        with pytest.raises(asyncio.TimeoutError):  # not the builtin one before 3.11
            await asyncio.wait_for(asyncio.shield(blocked), 0.2)
        await a.set_maxsize(3)
        assert a.maxsize == 3
        await asyncio.wait_for(blocked, 10)
    finally:
        blocked.cancel()
    assert await b.aqsize() == 3
    assert b.maxsize == 3
    # Openers now must agree with the new bound.
    with pytest.raises(MaxsizeConflictError):
        await open_durable(maxsize=2)
    assert (await open_durable(maxsize=3)).maxsize == 3


async def test_a_lowered_bound_holds_at_once_for_every_opener(open_durable: Any) -> None:
    a = await open_durable(maxsize=10)
    b = await open_durable()
    await _fill(b, 3)
    await a.set_maxsize(2)
    # b still believes 10: the store refuses by its own, stored bound.
    with pytest.raises(TimeoutError):
        await b.put("over", timeout=0.2)
    assert b.maxsize == 2
    # The three items stay; a put fits only once the queue is below the new bound.
    assert await b.get() == 0
    b.task_done()
    with pytest.raises(TimeoutError):
        await b.put("over", timeout=0.2)
    assert await b.get() == 1
    b.task_done()
    await asyncio.wait_for(b.put("fits"), 10)
    assert [await a.get(), await a.get()] == [2, "fits"]


async def test_set_maxsize_to_zero_makes_the_queue_unbounded(open_durable: Any) -> None:
    a = await open_durable(maxsize=1)
    b = await open_durable()
    await a.put(0)
    await a.set_maxsize(0)
    assert a.maxsize == 0
    await asyncio.wait_for(_fill(b, 5), 10)
    assert await b.aqsize() == 6
    assert (await open_durable(maxsize=0)).maxsize == 0


async def test_set_maxsize_checks_its_argument(open_durable: Any) -> None:
    q = await open_durable(maxsize=1)
    with pytest.raises(TypeError, match="maxsize"):
        await q.set_maxsize("3")
    with pytest.raises(ValueError, match="NaN"):
        await q.set_maxsize(float("nan"))
    assert (await q.refresh()).max_size == 1


# -- a file of schema version 1 --------------------------------------------------------


def _write_v1_file(path: Path) -> None:
    # What conveyor wrote before the bound was stored: one queue holding two items.
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for statement in SCHEMA_1:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("application", "conveyor"), ("schema_version", "1")],
        )
        conn.execute("INSERT INTO queues (name) VALUES ('jobs')")
        conn.executemany(
            "INSERT INTO items (queue, state, payload) VALUES (1, 0, ?)", [(b'"a"',), (b'"b"',)]
        )
        conn.commit()


async def test_a_schema_1_file_is_migrated_and_keeps_its_items(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _write_v1_file(path)
    url = f"sqlite:///{path}"
    async with conveyor.open_queue(url, name="jobs") as q:
        assert isinstance(q, conveyor.DurableQueue)
        assert q.maxsize == 0  # no bound stored yet
        assert await q.aqsize() == 2
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == str(SCHEMA_VERSION)
    # The first opener that gives a bound stores it, on the migrated file as on a new one.
    async with conveyor.open_queue(url, name="jobs", maxsize=2) as bounded:
        assert isinstance(bounded, conveyor.DurableQueue)
        with pytest.raises(TimeoutError):
            await bounded.put("c", timeout=0.2)
        assert [await bounded.get(), await bounded.get()] == ["a", "b"]
    async with conveyor.open_queue(url, name="jobs") as again:
        assert isinstance(again, conveyor.DurableQueue)
        assert again.maxsize == 2
