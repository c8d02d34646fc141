"""The per-queue counters of an SQLite file: exact after every operation, crash and race.

Each queue's counts (ready, delayed, leased, dead) live in the file's ``counters`` table,
kept by triggers in the transaction of each change, so that reading them costs the same
at any backlog.  These tests hold them against a count of the items themselves, read
with a plain ``sqlite3`` connection: after each kind of operation, after processes
SIGKILLed in the middle of their work, with two processes racing, and after a version 2
file is migrated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import conveyor
from conveyor import DurableQueue
from conveyor.backends.sqlite import SCHEMA_VERSION

from ._processes import ROOT

STATES = {"ready": 0, "leased": 1, "dead": 2, "delayed": 3}


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _counters_and_counts(path: Path) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Return each queue's counters and its items counted by state, read in one snapshot."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None, timeout=30)) as conn:
        conn.execute("BEGIN")
        names = dict(conn.execute("SELECT id, name FROM queues").fetchall())
        kept = {
            names[row[0]]: dict(zip(STATES, row[1:], strict=True))
            for row in conn.execute(
                "SELECT queue, " + ", ".join(STATES) + " FROM counters"
            ).fetchall()
        }
        counted = {name: dict.fromkeys(STATES, 0) for name in names.values()}
        by_state = {v: k for k, v in STATES.items()}
        for queue, state, count in conn.execute(
            "SELECT queue, state, COUNT(*) FROM items GROUP BY 1, 2"
        ):
            counted[names[queue]][by_state[state]] = count
        conn.execute("COMMIT")
    return kept, counted


def _assert_exact(path: Path) -> dict[str, dict[str, int]]:
    kept, counted = _counters_and_counts(path)
    assert kept == counted
    return counted


async def test_the_counters_follow_every_operation(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    async with (
        # Not renewed: leases left to expire are part of what is counted.
        conveyor.open_queue(
            _url(path), name="jobs", lease_timeout=0.5, max_attempts=2, renew_leases=False
        ) as q,
        conveyor.open_queue(_url(path), name="other") as other,
    ):
        assert isinstance(q, DurableQueue)
        await other.put("elsewhere")
        await q.put_many(range(20))
        await q.put("one")
        assert _assert_exact(path)["jobs"] == {"ready": 21, "leased": 0, "dead": 0, "delayed": 0}
        first = await q.get_with_receipt()
        second = await q.get_with_receipt()
        third = await q.get_with_receipt()
        await q.flush()
        _assert_exact(path)
        await q.ack(first)
        await q.retry(second, delay=30)  # delayed
        await q.fail(third, "broken")  # dead
        counted = _assert_exact(path)["jobs"]
        assert (counted["delayed"], counted["dead"]) == (1, 1)
        # A delayed item waits in the queue (as in version 2): 21 - 3 + 1.
        assert (await q.aqsize(), q.statistics().current_dead) == (19, 1)
        fourth = await q.get_with_receipt()
        await q.extend(fourth, 10)
        await q.retry(fourth)  # ready again at once
        assert await q.requeue_dead() == 1
        _assert_exact(path)
        got = await q.get_many(100)  # claimed in batches, some held for nobody, released
        for _ in got:
            q.task_done()
        await q.flush()
        _assert_exact(path)
        # Leases left to expire: ready again, then dead after max_attempts.
        await q.put_many(["a", "b"])
        for _ in range(2):
            await q.get_with_receipt()
            await q.get_with_receipt()
            await asyncio.sleep(0.6)
        await q.put("c")
        await q.get_with_receipt()  # its claim expires the leases first
        assert _assert_exact(path)["jobs"]["dead"] == 2
        q.shutdown(immediate=True)
    final = _assert_exact(path)
    assert (final["jobs"]["ready"], final["jobs"]["delayed"]) == (0, 0)
    assert final["other"] == {"ready": 1, "leased": 0, "dead": 0, "delayed": 0}


async def test_a_delayed_item_counts_as_delayed_until_its_time(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        assert isinstance(q, DurableQueue)
        await q.put("later")
        receipt = await q.get_with_receipt()
        await q.retry(receipt, delay=0.3)
        assert _assert_exact(path)["jobs"]["delayed"] == 1
        with pytest.raises(conveyor.QueueTimeoutError):
            await q.get(timeout=0.1)  # not ready before its time
        assert await q.aqsize() == 1  # but waiting in the queue
        assert await q.get(timeout=30) == "later"
        q.task_done()
        await q.join()
    assert _assert_exact(path)["jobs"] == dict.fromkeys(STATES, 0)


def _churner(path: Path, name: str, seed: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.backends.sqlite_churn", _url(path), name, str(seed)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _wait_working(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "working", f"churner ended early: {line!r}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_counters_stay_exact_through_kills(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "q.db"
    rng = random.Random(seed)
    for round_ in range(3):
        churners = [_churner(path, "jobs", seed * 10 + round_ * 2 + i) for i in range(2)]
        for process in churners:
            _wait_working(process)
        time.sleep(rng.uniform(0.0, 0.3))
        for process in churners:
            process.kill()  # SIGKILL, in the middle of whatever it was writing
            process.wait(30)
        kept, counted = _counters_and_counts(path)
        assert kept == counted
        assert sum(counted["jobs"].values()) > 0


def test_two_processes_racing_keep_the_counters_exact(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    churners = [_churner(path, "jobs", seed) for seed in (7, 8)]
    for process in churners:
        _wait_working(process)
    time.sleep(1.0)
    for process in churners:
        process.terminate()
        process.wait(30)
    _assert_exact(path)


# Version 2, as conveyor wrote it before the counters: files made then look like this.
SCHEMA_2 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE queues (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " shutdown INTEGER NOT NULL DEFAULT 0, maxsize REAL)",
    "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, queue INTEGER NOT NULL,"
    " state INTEGER NOT NULL, available_at REAL NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0, lease_token TEXT, lease_deadline REAL,"
    " error TEXT, failed_at REAL, payload BLOB NOT NULL)",
    "CREATE INDEX items_by_state ON items (queue, state, id)",
    "CREATE INDEX items_by_lease ON items (queue, lease_deadline) WHERE state = 1",
)


def _make_schema_2_file(path: Path) -> None:
    now = time.time()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for statement in SCHEMA_2:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("application", "conveyor"), ("schema_version", "2"), ("incarnation", "ab12")],
        )
        conn.execute("INSERT INTO queues (id, name, maxsize) VALUES (1, 'jobs', 10)")
        conn.execute("INSERT INTO queues (id, name) VALUES (2, 'other')")
        rows = [
            (1, 0, 0.0, None, None, b'"ready-1"'),
            (1, 0, now + 3600, None, None, b'"delayed-2"'),  # v2: ready, later
            (1, 0, now - 5, None, None, b'"due-3"'),  # v2: ready, its delay over
            (1, 1, 0.0, "tok", now + 3600, b'"leased-4"'),
            (1, 2, 0.0, None, None, b'"dead-5"'),
            (2, 0, 0.0, None, None, b'"other-6"'),
        ]
        conn.executemany(
            "INSERT INTO items (queue, state, available_at, lease_token, lease_deadline,"
            " payload) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.commit()


async def test_a_schema_2_file_is_migrated_with_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _make_schema_2_file(path)
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        assert isinstance(q, DurableQueue)
        assert q.maxsize == 10
        assert await q.aqsize() == 3  # the delayed item waits in the queue
        stats = q.statistics()
        assert (stats.current_dead, stats.current_leased) == (1, 1)
        counted = _assert_exact(path)
        assert counted["jobs"] == {"ready": 2, "leased": 1, "dead": 1, "delayed": 1}
        assert counted["other"] == {"ready": 1, "leased": 0, "dead": 0, "delayed": 0}
        assert [await q.get(timeout=30), await q.get(timeout=30)] == ["ready-1", "due-3"]
        q.task_done()
        q.task_done()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
    _assert_exact(path)


async def test_a_migrated_file_takes_the_job_options(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _make_schema_2_file(path)
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        assert isinstance(q, DurableQueue)
        assert await q.put("urgent", priority=-1, key="k") is True
        assert await q.put("again", key="k") is False
        # The items of before have priority 0, in their order, after the urgent one.
        assert [await q.get(timeout=30) for _ in range(3)] == ["urgent", "ready-1", "due-3"]
        for _ in range(3):
            q.task_done()
    _assert_exact(path)


async def test_openers_of_a_schema_2_file_at_once_count_it_once(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _make_schema_2_file(path)
    openers = [conveyor.open_queue(_url(path), name="jobs") for _ in range(6)]
    queues = await asyncio.gather(*(o.__aenter__() for o in openers))
    try:
        sizes = []
        for q in queues:
            assert isinstance(q, DurableQueue)
            sizes.append(await q.aqsize())
        assert sizes == [3] * 6
    finally:
        for q in queues:
            await q.aclose()
    _assert_exact(path)


async def test_get_many_takes_a_hundred_in_one_claim_and_acks_them_together(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.db"
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        assert isinstance(q, DurableQueue)
        await q.put_many(range(250))
        first = await q.get_many(100)
        second = await q.get_many(100)
        assert (first, second) == (list(range(100)), list(range(100, 200)))
        for _ in range(200):  # receipts of two claims, written in one transaction
            q.task_done()
        _assert_exact(path)
        receipt = await q.get_with_receipt()
        await q.ack(receipt)
        with pytest.raises(conveyor.LeaseExpiredError):
            await q.ack(receipt)  # acknowledged once only
    counted = _assert_exact(path)["jobs"]
    assert counted["ready"] + counted["leased"] == 49
