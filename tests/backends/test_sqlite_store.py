"""What only the SQLite backend does: its file, its schema, its URL and its options."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import urllib.parse
from pathlib import Path

import pytest

import conveyor
from conveyor import BackendError, IncompatibleStoreError, InvalidURLError
from conveyor.backends.sqlite import SCHEMA_VERSION, open_store


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


async def test_file_and_schema_are_created_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "sub.db"
    async with conveyor.open_queue(_url(path), name="jobs") as q:
        await q.put(1)
    with sqlite3.connect(path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    incarnation = meta.pop("incarnation")
    assert meta == {"application": "conveyor", "schema_version": str(SCHEMA_VERSION)}
    assert len(incarnation) == 16  # random, hex: receipts name it


async def test_many_named_queues_share_one_file(tmp_path: Path) -> None:
    url = _url(tmp_path / "shared.db")
    async with conveyor.open_queue(url, name="a") as a, conveyor.open_queue(url, name="b") as b:
        assert isinstance(a, conveyor.DurableQueue)
        assert isinstance(b, conveyor.DurableQueue)
        await a.put("for a")
        await b.put_many(["for b", "also b"])
        assert await a.aqsize() == 1
        assert await b.aqsize() == 2
        assert await b.get() == "for b"
        assert await a.get() == "for a"
        a.task_done()
        b.task_done()
        await a.join(timeout=30)


async def test_relative_and_absolute_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with conveyor.open_queue("sqlite:///relative.db") as q:
        await q.put(1)
    assert (tmp_path / "relative.db").exists()
    absolute = tmp_path / "absolute.db"
    assert str(absolute).startswith("/")
    async with conveyor.open_queue(f"sqlite:///{absolute}") as q:  # four slashes
        await q.put(1)
    assert absolute.exists()


async def test_items_survive_closing_and_reopening(tmp_path: Path) -> None:
    url = _url(tmp_path / "q.db")
    async with conveyor.open_queue(url, durability="power") as q:
        await q.put_many([1, 2, 3])
    async with conveyor.open_queue(url) as q:
        assert q.qsize() == 3  # read when opened
        assert await q.get_many(5) == [1, 2, 3]


@pytest.mark.parametrize(
    "content",
    [b"this is a text file, not a database\n" * 100, b"\x07" * 4096],
    ids=["text", "binary"],
)
async def test_foreign_file_is_refused_and_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "foreign.db"
    path.write_bytes(content)
    with pytest.raises(IncompatibleStoreError, match="not a conveyor"):
        await conveyor.open_queue(_url(path))
    assert path.read_bytes() == content
    assert not (tmp_path / "foreign.db-wal").exists()


async def test_database_of_another_application_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(IncompatibleStoreError, match="another application"):
        await conveyor.open_queue(_url(path))
    assert path.read_bytes() == before


async def test_newer_schema_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    async with conveyor.open_queue(_url(path)) as q:
        await q.put("kept")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(IncompatibleStoreError, match="newer conveyor"):
        await conveyor.open_queue(_url(path))
    assert path.read_bytes() == before


async def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="does not exist"):
        await conveyor.open_queue(_url(tmp_path / "missing" / "q.db"))
    assert not (tmp_path / "missing").exists()


async def test_directory_in_place_of_the_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="is a directory"):
        await conveyor.open_queue(_url(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_read_only_directory_is_a_clear_error(tmp_path: Path) -> None:
    async def open_() -> None:
        await conveyor.open_queue(_url(tmp_path / "q.db"))

    tmp_path.chmod(0o500)
    try:
        with pytest.raises(BackendError, match=r"writable|unable to open"):
            asyncio.run(open_())
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://host/q.db",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite:///q.db?x=1",
        "ftp://x",
        "no-scheme",
        "http://[::1",
    ],
)
async def test_bad_urls(url: str) -> None:
    with pytest.raises(InvalidURLError):
        await conveyor.open_queue(url)


async def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown option"):
        await conveyor.open_queue(_url(tmp_path / "q.db"), colour="blue")
    with pytest.raises(ValueError, match="durability"):
        await conveyor.open_queue(_url(tmp_path / "q.db"), durability="maybe")
    with pytest.raises(ValueError, match="lease_timeout"):
        await conveyor.open_queue(_url(tmp_path / "q.db"), lease_timeout=0)
    with pytest.raises(TypeError, match="no options"):
        await conveyor.open_queue("memory://", colour="blue")


async def test_memory_url_gives_an_in_memory_queue() -> None:
    async with conveyor.open_queue("memory://", maxsize=3) as q:
        assert isinstance(q, conveyor.Queue)
        assert q.maxsize == 3


async def test_missing_redis_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for module in [name for name in sys.modules if name.startswith("conveyor.backends.redis")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    try:
        with pytest.raises(
            conveyor.MissingDependencyError, match=r"pip install 'conveyor\[redis\]'"
        ):
            await conveyor.open_queue("redis://localhost:6379/0")
    except ModuleNotFoundError as exc:  # pragma: no cover - before the redis backend exists
        if exc.name != "conveyor.backends.redis":
            raise
        pytest.skip("the redis backend module is not there yet")


async def test_work_runs_off_the_event_loop_thread(tmp_path: Path) -> None:
    # A write that has to wait for another connection's lock must not stall the loop.
    path = tmp_path / "q.db"
    async with conveyor.open_queue(_url(path), busy_timeout=10) as q:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        put = asyncio.create_task(q.put("waits for the lock"))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20
        assert not put.done()
        blocker.execute("COMMIT")
        blocker.close()
        await asyncio.wait_for(put, 30)
        assert await q.get() == "waits for the lock"


async def test_claims_work_without_update_returning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite before 3.35 (still shipped by some systems) has no UPDATE ... RETURNING.
    from conveyor.backends.sqlite import _operations as backend

    monkeypatch.setattr(backend, "_HAS_RETURNING", False)
    async with conveyor.open_queue(_url(tmp_path / "q.db")) as q:
        await q.put_many(range(10))
        assert await q.get_many(4) == [0, 1, 2, 3]
        assert await q.get_many(10) == [4, 5, 6, 7, 8, 9]
        for _ in range(10):
            q.task_done()
        await q.join(timeout=30)


async def test_many_openers_of_a_new_file_at_once(tmp_path: Path) -> None:
    url = _url(tmp_path / "new.db")
    queues = await asyncio.gather(*(conveyor.open_queue(url, name=f"q{i % 3}") for i in range(8)))
    try:
        await asyncio.gather(*(q.put(i) for i, q in enumerate(queues)))
        sizes = [await q.aqsize() for q in queues[:3] if isinstance(q, conveyor.DurableQueue)]
        assert sorted(sizes) == [2, 3, 3]
    finally:
        await asyncio.gather(*(q.aclose() for q in queues))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count fds")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_every_store_gives_back_its_descriptors(tmp_path: Path, loop: str) -> None:
    # Each store has a worker thread and a pipe its results come back through: opening,
    # using (a cancelled put included) and closing many stores leaves no descriptor open,
    # on either event loop.
    url = _url(tmp_path / "fds.db")

    async def cycles() -> None:
        for i in range(20):
            async with conveyor.open_queue(url, name="jobs") as q:
                assert isinstance(q, conveyor.DurableQueue)
                await q.put(i)
                stopped = asyncio.create_task(q.put("cancelled"))
                await asyncio.sleep(0)
                stopped.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stopped
                assert await q.get() == i
                q.task_done()
                await q.join(timeout=10)
                while await q.aqsize():
                    await q.get()
                    q.task_done()

    def run() -> None:
        if loop == "uvloop":
            uvloop = pytest.importorskip("uvloop")
            uvloop.run(cycles())
        else:
            asyncio.run(cycles())

    run()  # the first run opens what stays open for the process (the file's lock, ...)
    before = _open_fds()
    run()
    assert _open_fds() == before


async def test_an_acknowledgement_says_which_receipts_were_current(tmp_path: Path) -> None:
    # One claim's receipts share a token: its acknowledgement is one DELETE, which
    # counts what it removed and only when that falls short finds out which.
    store = await open_store(urllib.parse.urlsplit(_url(tmp_path / "q.db")), "jobs")
    try:
        assert await store.put([b"1", b"2", b"3", b"4"])
        first, second, third, fourth = await store.claim(4, 30.0, None)
        assert await store.ack([first.receipt, second.receipt]) == [True, True]
        # Given twice, current, acknowledged already: in one call, in any order.
        receipts = [third.receipt, first.receipt, third.receipt, fourth.receipt]
        assert await store.ack(receipts) == [True, False, False, True]
        assert await store.ack([fourth.receipt]) == [False]
        counts = await store.counts()
        assert (counts.ready, counts.leased) == (0, 0)
    finally:
        await store.aclose()
