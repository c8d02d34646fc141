"""``conveyor.work()`` and ``conveyor worker`` on every durable backend.

The worker runs in this process (``work()``) or as a real ``conveyor worker`` subprocess
with the handlers of ``tests.backends.work_handlers``, signalled with SIGTERM and SIGINT;
the tests wait for what the handlers print and for the store's counts, never for time.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import conveyor
from tests.backends._processes import ROOT
from tests.backends.durable_fixtures import OpenDurable, durable_url, open_durable, queue_name

__all__ = ["durable_url", "open_durable", "queue_name"]

LEASE = 0.5


class WorkerProcess:
    """``python -m conveyor worker URL NAME HANDLER ...`` and the lines its handlers print."""

    def __init__(
        self,
        url: str,
        name: str,
        handler: str,
        *args: str,
        seconds: float,
        changed: threading.Condition | None = None,
    ) -> None:
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]),
            WORK_SECONDS=str(seconds),
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "worker", url, name, handler, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.log: list[str] = []
        # Shared by several workers, it wakes a wait on any of them.
        self._changed = changed or threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.log)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    def _read(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._changed:
                into.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60) -> None:
        """Block until *condition()* holds (it reads ``lines`` and ``log``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not condition()):
                    raise AssertionError(f"not there: {self.lines[-5:]} {self.log[-5:]}")
                self._changed.wait(min(left, 0.5))

    def started(self, n: int) -> Callable[[], bool]:
        return lambda: sum(line.startswith("start ") for line in self.lines) >= n

    def logged(self, text: str) -> Callable[[], bool]:
        return lambda: any(text in line for line in self.log)

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(30)
        return code

    def values(self, tag: str) -> list[int]:
        return [int(line.split()[1]) for line in self.lines if line.startswith(tag + " ")]


async def _counts(queue: conveyor.DurableQueue[Any]) -> tuple[int, int]:
    """The shared (leased, waiting) counts, read from the store."""
    stats = await queue.refresh()
    return stats.current_leased, stats.current_size


async def test_a_handler_longer_than_the_lease_sees_its_item_once(
    open_durable: OpenDurable,
) -> None:
    # Two workers (as two processes would) on one queue; the one handler that gets the
    # item works three leases long: renewal keeps it from the other.
    seen: list[tuple[str, int]] = []
    stop = asyncio.Event()

    def handler_of(who: str) -> Callable[[int], Any]:
        async def handler(item: int) -> None:
            seen.append((who, item))
            await asyncio.sleep(3 * LEASE)
            stop.set()

        return handler

    first = await open_durable(lease_timeout=LEASE)
    second = await open_durable(lease_timeout=LEASE)
    await first.put(7)
    results = await asyncio.gather(
        conveyor.work(first, handler_of("first"), stop=stop),
        conveyor.work(second, handler_of("second"), stop=stop),
    )
    assert [item for _, item in seen] == [7]
    assert sum(stats.done for stats in results) == 1
    assert all(stats.clean for stats in results)
    await first.join(timeout=10)


async def test_a_failing_item_is_retried_then_dead_with_its_traceback(
    open_durable: OpenDurable,
) -> None:
    queue = await open_durable(lease_timeout=LEASE)
    stop = asyncio.Event()
    calls: list[int] = []

    async def handler(item: int) -> None:
        calls.append(item)
        if item == 13:
            raise KeyError(f"no such thing as {item}")

    await queue.put_many([1, 13, 2])

    async def stop_once_dead() -> None:
        while not await queue.dead_letters():
            await queue.refresh()
            await asyncio.sleep(0.05)  # a poll of the store's dead letters, not a guess
        stop.set()

    watcher = asyncio.create_task(stop_once_dead())
    stats = await conveyor.work(queue, handler, retries=2, backoff=0.01, stop=stop)
    await watcher
    assert calls.count(13) == 3  # the first attempt and 2 retries
    assert (stats.done, stats.failed, stats.retried) == (2, 1, 2)
    (dead,) = await queue.dead_letters()
    assert dead.item == 13
    assert dead.attempts == 3
    # What went wrong first (tables of dead letters show the start), then the traceback.
    assert dead.error.startswith("KeyError: 'no such thing as 13'\n")
    assert "Traceback (most recent call last)" in dead.error
    assert "in handler" in dead.error
    await queue.join(timeout=10)


async def test_a_queue_shut_down_stops_the_worker_once_drained(
    open_durable: OpenDurable,
) -> None:
    queue = await open_durable(lease_timeout=LEASE)
    done: list[int] = []

    async def handler(item: int) -> None:
        done.append(item)

    await queue.put_many(range(10))
    await queue.ashutdown()
    stats = await conveyor.work(queue, handler, concurrency=3)
    assert sorted(done) == list(range(10))
    assert stats.done == 10
    assert stats.clean
    assert await _counts(queue) == (0, 0)


async def test_cancelling_work_gives_the_items_back_at_once(open_durable: OpenDurable) -> None:
    queue = await open_durable(lease_timeout=30.0)  # a lease that never runs out here
    started = asyncio.Event()

    async def handler(item: int) -> None:
        started.set()
        await asyncio.Event().wait()

    await queue.put_many([1, 2])
    running = asyncio.create_task(conveyor.work(queue, handler, concurrency=2, grace=60))
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await _counts(queue) == (0, 2)  # ready again, not waiting for their leases


async def test_a_blocking_handler_runs_in_threads(open_durable: OpenDurable) -> None:
    queue = await open_durable(lease_timeout=LEASE)
    threads: set[str] = set()

    def handler(item: int) -> None:
        threads.add(threading.current_thread().name)

    with pytest.raises(TypeError, match="threads=True"):
        await conveyor.work(queue, handler)
    await queue.put_many(range(4))
    await queue.ashutdown()
    stats = await conveyor.work(queue, handler, threads=True, concurrency=2)
    assert stats.done == 4
    assert threads
    assert all(name.startswith("conveyor-work") for name in threads)


def test_sigterm_loses_nothing_and_leaves_nothing_leased(durable_url: str, queue_name: str) -> None:
    async def put() -> None:
        async with conveyor.open_queue(durable_url, name=queue_name) as queue:
            await queue.put_many(range(30))

    asyncio.run(put())
    worker = WorkerProcess(
        durable_url,
        queue_name,
        "tests.backends.work_handlers:sleep",
        "--concurrency",
        "4",
        "--lease-timeout",
        str(LEASE),
        seconds=0.2,
    )
    worker.wait_for(worker.started(6))
    worker.signal(signal.SIGTERM)
    assert worker.finish() == 0, worker.log[-5:]
    started, finished = worker.values("start"), worker.values("done")
    assert sorted(started) == sorted(finished)  # every running handler finished

    async def rest() -> list[int]:
        async with conveyor.open_queue(durable_url, name=queue_name) as queue:
            assert isinstance(queue, conveyor.DurableQueue)
            leased, waiting = await _counts(queue)
            assert leased == 0
            left = [await queue.get() for _ in range(waiting)]
            for _ in left:
                queue.task_done()
            await queue.join(timeout=10)
            return left

    assert sorted(finished + asyncio.run(rest())) == list(range(30))


@pytest.mark.parametrize(
    "handler",
    [
        ("tests.backends.work_handlers:sleep",),
        ("tests.backends.work_handlers:blocking", "--threads"),
    ],
    ids=["async", "threads"],
)
def test_a_second_sigint_stops_at_once_and_gives_the_items_back(
    durable_url: str, queue_name: str, handler: tuple[str, ...]
) -> None:
    async def put() -> None:
        async with conveyor.open_queue(durable_url, name=queue_name) as queue:
            await queue.put_many([1, 2, 3])

    asyncio.run(put())
    worker = WorkerProcess(
        durable_url,
        queue_name,
        *handler,
        "--grace",
        "600",
        "--lease-timeout",
        "600",  # nothing comes back by expiry within this test
        seconds=3600,
    )
    worker.wait_for(worker.started(3))
    worker.signal(signal.SIGINT)
    worker.wait_for(worker.logged("to finish"))
    worker.signal(signal.SIGINT)
    assert worker.finish(timeout=30) == 1  # stopped, not drained
    assert worker.values("done") == []

    async def check() -> None:
        async with conveyor.open_queue(durable_url, name=queue_name) as queue:
            assert isinstance(queue, conveyor.DurableQueue)
            assert await _counts(queue) == (0, 3)
            receipt = await queue.get_with_receipt()
            assert receipt.attempts == 1  # given back untried: the attempt uncounted
            await queue.release(receipt)

    asyncio.run(check())


def test_the_cli_worker_dead_letters_after_its_retries(durable_url: str, queue_name: str) -> None:
    async def put() -> None:
        async with conveyor.open_queue(durable_url, name=queue_name) as queue:
            await queue.put("poison")

    asyncio.run(put())
    worker = WorkerProcess(
        durable_url,
        queue_name,
        "tests.backends.work_handlers:fail",
        "--retries",
        "1",
        "--backoff",
        "0",
        seconds=0,
    )
    worker.wait_for(worker.logged("failed for good"))
    worker.signal(signal.SIGTERM)
    assert worker.finish() == 0
    assert worker.lines == ["start poison", "start poison"]
    assert sum("retrying" in line for line in worker.log) == 1

    async def check() -> None:
        async with conveyor.open_queue(durable_url, name=queue_name) as queue:
            assert isinstance(queue, conveyor.DurableQueue)
            (dead,) = await queue.dead_letters()
            assert "ValueError: cannot handle 'poison'" in dead.error
            assert "work_handlers.py" in dead.error

    asyncio.run(check())


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("tests.backends.no_such_module:run", "cannot import module"),
        ("tests.backends.work_handlers:nothing", "has no 'nothing'"),
        ("tests.backends.work_handlers:not_callable", "not callable"),
        ("tests.backends.work_handlers", "not of the form module:function"),
    ],
)
def test_the_cli_worker_names_a_handler_it_cannot_import(
    tmp_path: Any, handler: str, message: str
) -> None:
    worker = WorkerProcess(f"sqlite:///{tmp_path / 'q.db'}", "jobs", handler, seconds=0)
    assert worker.finish() == 2
    assert any(message in line for line in worker.log), worker.log
    assert not (tmp_path / "q.db").exists()  # nothing opened


def _readme_worker() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Workers") :]
    match = re.search(r"```python\n(# tasks\.py:.*?)```", section, flags=re.DOTALL)
    assert match, "README's Workers section starts with its tasks.py example"
    return match.group(1)


def test_the_readme_worker_runs_as_printed(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(_readme_worker(), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'jobs.db'}"

    async def put(items: list[dict[str, int]]) -> None:
        async with conveyor.open_queue(url, name="emails") as queue:
            assert isinstance(queue, conveyor.DurableQueue)
            await queue.resume()
            await queue.put_many(items)
            await queue.ashutdown()  # the workers drain it, then stop

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    asyncio.run(put([{"to": i} for i in range(5)]))
    ran = subprocess.run(
        [sys.executable, "tasks.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert "WorkStats(done=5, failed=0" in ran.stdout
    asyncio.run(put([{"to": i} for i in range(3)]))
    ran = subprocess.run(
        [sys.executable, "-m", "conveyor", "worker", "sqlite:///jobs.db", "emails", "tasks:send"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert "stopped: 3 done, 0 failed" in ran.stderr


async def test_a_killed_worker_gives_its_items_back_within_the_lease(
    durable_url: str, queue_name: str
) -> None:
    lease = 2.0
    async with conveyor.open_queue(durable_url, name=queue_name, lease_timeout=lease) as queue:
        assert isinstance(queue, conveyor.DurableQueue)
        await queue.put_many([1, 2, 3])
        worker = WorkerProcess(
            durable_url,
            queue_name,
            "tests.backends.work_handlers:sleep",
            "--lease-timeout",
            str(lease),
            seconds=3600,
        )
        try:
            await asyncio.to_thread(worker.wait_for, worker.started(3))
            with pytest.raises(TimeoutError):  # alive, it keeps them: renewed
                await queue.get(timeout=2 * lease)
        finally:
            worker.signal(signal.SIGKILL)
            worker.finish()
        killed = time.monotonic()
        got = sorted([await queue.get(timeout=30) for _ in range(3)])
        elapsed = time.monotonic() - killed
        assert got == [1, 2, 3]
        # (Slack for a loaded machine; renewed, they would never come back.)
        assert elapsed <= lease + 1.5, f"the items came back {elapsed:.2f}s after the kill"
        for _ in got:
            queue.task_done()
        await queue.join(timeout=10)


async def test_an_item_that_cannot_be_decoded_does_not_stop_the_worker(
    open_durable: OpenDurable,
) -> None:
    pickled = await open_durable(serializer="pickle")
    queue = await open_durable()
    await pickled.put({1, 2})  # the worker's JSON serializer cannot read it
    await queue.put(3)
    await queue.ashutdown()
    done: list[int] = []

    async def handler(item: int) -> None:
        done.append(item)

    stats = await conveyor.work(queue, handler)
    assert done == [3]
    assert (stats.done, stats.failed) == (1, 1)
    (dead,) = await queue.dead_letters()
    assert isinstance(dead.item, bytes)  # kept as stored: nothing is lost


def test_two_worker_processes_deliver_a_long_job_once(durable_url: str, queue_name: str) -> None:
    async def put() -> None:
        async with conveyor.open_queue(durable_url, name=queue_name) as queue:
            await queue.put(7)

    asyncio.run(put())
    changed = threading.Condition()
    workers = [
        WorkerProcess(
            durable_url,
            queue_name,
            "tests.backends.work_handlers:sleep",
            "--lease-timeout",
            str(LEASE),
            seconds=3 * LEASE,  # three leases long: renewed, never delivered again
            changed=changed,
        )
        for _ in range(2)
    ]
    try:
        workers[0].wait_for(lambda: any("done 7" in worker.lines for worker in workers))
    finally:
        for worker in workers:
            worker.signal(signal.SIGTERM)
        codes = [worker.finish() for worker in workers]
    assert codes == [0, 0]
    assert [line for worker in workers for line in worker.lines if line.startswith("start")] == [
        "start 7"
    ]
