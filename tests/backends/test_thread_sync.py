"""``ThreadQueue.sync_q`` against :class:`queue.Queue`: the standard library's queue tests.

The bodies follow CPython's ``Lib/test/test_queue.py`` (3.13), rewritten for pytest and
for synchronisation on state: instead of sleeping and hoping the other thread blocked, a
trigger waits until the queue *reports* a blocked getter or putter.  Each body runs
against ``queue.Queue`` (the oracle) and against ``ThreadQueue(...).sync_q``.  The oracle
has no ``shutdown`` before Python 3.13, so the shutdown bodies skip it there.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import conveyor

pytestmark = pytest.mark.timeout(60)

QUEUE_SIZE = 5
WAIT_LIMIT = 10.0

SHUT_DOWN: type[Exception] = getattr(queue, "ShutDown", conveyor.SyncQueueShutDown)
"""What the shutdown bodies catch: the oracle's class (3.13+), which conveyor's subclasses."""


class Subject:
    """Makes the queues under test, and tells how many threads are blocked in one."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, maxsize: int = 0) -> Any:
        if self.name == "queue.Queue":
            return queue.Queue(maxsize)
        return conveyor.ThreadQueue[Any](maxsize).sync_q

    @staticmethod
    def blocked(q: Any) -> tuple[int, int]:
        """Return (threads blocked in get, threads blocked in put)."""
        if isinstance(q, queue.Queue):
            # The oracle has no public view of its waiters; its conditions have one.
            return len(q.not_empty._waiters), len(q.not_full._waiters)  # type: ignore[attr-defined]
        stats = q.statistics()
        return stats.tasks_waiting_get, stats.tasks_waiting_put


@pytest.fixture(params=["queue.Queue", "ThreadQueue"])
def make(request: pytest.FixtureRequest) -> Subject:
    return Subject(request.param)


@pytest.fixture
def make_sd(make: Subject) -> Subject:
    """Like ``make``, for bodies that use ``shutdown`` (which the oracle lacks before 3.13)."""
    if make.name == "queue.Queue" and sys.version_info < (3, 13):
        pytest.skip("queue.Queue has shutdown() from Python 3.13")
    return make


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.001)


def do_blocking_test(
    q: Any,
    block_func: Callable[..., Any],
    block_args: tuple[Any, ...],
    trigger_func: Callable[..., Any],
    trigger_args: tuple[Any, ...],
    side: int,
) -> Any:
    """Run *block_func*, which must block until another thread runs *trigger_func*.

    *side* is 0 when *block_func* blocks in ``get``, 1 when it blocks in ``put``.
    """
    triggered = threading.Event()

    def trigger() -> None:
        wait_until(lambda: Subject.blocked(q)[side] >= 1, "the blocking call blocked")
        triggered.set()
        trigger_func(*trigger_args)

    thread = threading.Thread(target=trigger)
    thread.start()
    try:
        result = block_func(*block_args)
        assert triggered.is_set(), f"{block_func!r} appeared not to block"
        return result
    finally:
        thread.join()


def basic_queue_test(q: Any) -> None:
    assert q.qsize() == 0
    assert q.empty()
    assert not q.full()
    q.put(111)
    q.put(333)
    q.put(222)
    assert [q.get(), q.get(), q.get()] == [111, 333, 222]
    for i in range(QUEUE_SIZE - 1):
        q.put(i)
        assert q.qsize()
    assert q.qsize() != q.maxsize
    last = 2 * QUEUE_SIZE
    full = 3 * 2 * QUEUE_SIZE
    q.put(last)
    assert q.qsize() == q.maxsize
    assert not q.empty()
    assert q.full()
    with pytest.raises(queue.Full):
        q.put(full, block=0)
    with pytest.raises(queue.Full):
        q.put(full, timeout=0.01)
    do_blocking_test(q, q.put, (full,), q.get, (), side=1)
    do_blocking_test(q, q.put, (full, True, 10), q.get, (), side=1)
    for _ in range(QUEUE_SIZE):
        q.get()
    assert not q.qsize()
    with pytest.raises(queue.Empty):
        q.get(block=0)
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    assert do_blocking_test(q, q.get, (), q.put, ("empty",), side=0) == "empty"
    assert do_blocking_test(q, q.get, (True, 10), q.put, ("empty",), side=0) == "empty"


def test_basic(make: Subject) -> None:
    # Twice on the same queue, to check that it is reusable.
    q = make(QUEUE_SIZE)
    basic_queue_test(q)
    basic_queue_test(q)


def queue_join_test(q: Any) -> None:
    total = 0
    total_lock = threading.Lock()

    def worker() -> None:
        nonlocal total
        while True:
            x = q.get()
            if x < 0:
                q.task_done()
                return
            with total_lock:
                total += x
            q.task_done()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for i in range(100):
        q.put(i)
    q.join()
    assert total == sum(range(100)), "join() did not block until all tasks were done"
    for _ in threads:
        q.put(-1)
    q.join()
    for thread in threads:
        thread.join()


def test_task_done_too_many_times(make: Subject) -> None:
    q = make()
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_join(make: Subject) -> None:
    q = make()
    queue_join_test(q)
    queue_join_test(q)
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_negative_timeout_raises_value_error(make: Subject) -> None:
    q = make(QUEUE_SIZE)
    with pytest.raises(ValueError, match="non-negative"):
        q.put(1, timeout=-1)
    with pytest.raises(ValueError, match="non-negative"):
        q.get(1, timeout=-1)


def test_nowait(make: Subject) -> None:
    q = make(QUEUE_SIZE)
    for _ in range(QUEUE_SIZE):
        q.put_nowait(1)
    with pytest.raises(queue.Full):
        q.put_nowait(1)
    for _ in range(QUEUE_SIZE):
        q.get_nowait()
    with pytest.raises(queue.Empty):
        q.get_nowait()


def test_zero_timeout_does_not_wait(make: Subject) -> None:
    q = make(1)
    with pytest.raises(queue.Empty):
        q.get(timeout=0)
    q.put(1, timeout=0)
    with pytest.raises(queue.Full):
        q.put(2, timeout=0)


def test_unbounded_is_never_full(make: Subject) -> None:
    q = make(0)
    for i in range(1000):
        q.put_nowait(i)
    assert not q.full()
    assert q.qsize() == 1000
    assert [q.get_nowait() for _ in range(1000)] == list(range(1000))


# -- shutdown (3.13) -------------------------------------------------------------------


def test_shutdown_empty(make_sd: Subject) -> None:
    q = make_sd()
    q.shutdown()
    with pytest.raises(SHUT_DOWN):
        q.put("data")
    with pytest.raises(SHUT_DOWN):
        q.get()


def test_shutdown_nonempty(make_sd: Subject) -> None:
    q = make_sd()
    q.put("data")
    q.shutdown()
    q.get()
    with pytest.raises(SHUT_DOWN):
        q.get()


def test_shutdown_immediate(make_sd: Subject) -> None:
    q = make_sd()
    q.put("data")
    q.shutdown(immediate=True)
    with pytest.raises(SHUT_DOWN):
        q.get()


def test_shutdown_allowed_transitions(make_sd: Subject) -> None:
    q = make_sd()
    assert not q.is_shutdown
    q.shutdown()
    assert q.is_shutdown
    q.shutdown(immediate=True)
    assert q.is_shutdown
    q.shutdown(immediate=False)


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_all_methods_in_one_thread(make_sd: Subject, immediate: bool) -> None:
    q = make_sd(2)
    q.put("L")
    q.put_nowait("O")
    q.shutdown(immediate)
    with pytest.raises(SHUT_DOWN):
        q.put("E")
    with pytest.raises(SHUT_DOWN):
        q.put_nowait("W")
    if immediate:
        with pytest.raises(SHUT_DOWN):
            q.get()
        with pytest.raises(SHUT_DOWN):
            q.get_nowait()
        with pytest.raises(ValueError, match="too many times"):
            q.task_done()
        q.join()
    else:
        assert q.get() in "LO"
        q.task_done()
        assert q.get() in "LO"
        q.task_done()
        q.join()
        with pytest.raises(SHUT_DOWN):
            q.get()
        with pytest.raises(SHUT_DOWN):
            q.get_nowait()
        with pytest.raises(SHUT_DOWN):
            q.get(True, 1.0)


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_all_methods_in_many_threads(make_sd: Subject, immediate: bool) -> None:
    # Many producers and consumers; one producer shuts the queue down halfway.
    q = make_sd()
    res_puts: list[bool] = []
    res_gets: list[bool] = []
    res_shutdown: list[bool] = []
    write_threads, read_threads, join_threads = 4, 6, 2
    nb_msgs_w = 1024 * 16 // write_threads
    when_exec_shutdown = nb_msgs_w // 2
    barrier_start = threading.Barrier(
        write_threads + read_threads + (join_threads if immediate else 0)
    )
    ev_exec_shutdown = threading.Event()

    def write() -> None:
        for i in range(when_exec_shutdown // 2):
            q.put((i, "LOYD"))
        barrier_start.wait()
        for i in range(when_exec_shutdown // 2, nb_msgs_w):
            try:
                q.put((i, "YDLO"))
            except SHUT_DOWN:
                res_puts.append(False)
                break
            if i == when_exec_shutdown and not ev_exec_shutdown.is_set():
                ev_exec_shutdown.set()
                res_puts.append(True)

    def read() -> None:
        q.get(True)
        q.task_done()
        barrier_start.wait()
        while True:
            try:
                q.get(True, 0.01)
                q.task_done()
            except SHUT_DOWN:
                res_gets.append(True)
                break
            except queue.Empty:
                continue

    def shut() -> None:
        ev_exec_shutdown.wait()
        q.shutdown(immediate)
        res_shutdown.append(q.qsize() == 0)

    def join() -> None:
        barrier_start.wait()
        q.join()

    targets = [write] * write_threads + [read] * read_threads + [shut]
    if immediate:
        targets += [join] * join_threads
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert any(res_puts)
    assert res_gets.count(True) == read_threads
    if immediate:
        assert res_shutdown == [True]
        assert q.empty()


def _run_threads(*targets: Callable[[], None]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    return threads


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_blocked_getters(make_sd: Subject, immediate: bool) -> None:
    q = make_sd(2)
    results: list[object] = []

    def get() -> None:
        try:
            results.append(q.get())
        except SHUT_DOWN:
            results.append("shutdown")

    threads = _run_threads(get, get, get)
    wait_until(lambda: Subject.blocked(q)[0] == 3, "three getters blocked")
    q.shutdown(immediate)
    for thread in threads:
        thread.join()
    assert results == ["shutdown"] * 3


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_get(make_sd: Subject, immediate: bool) -> None:
    q = make_sd(2)
    q.put("Y")
    q.put("D")
    results: list[bool] = []
    go = threading.Event()

    def get() -> None:
        go.wait()
        try:
            q.get()
            results.append(True)
        except SHUT_DOWN:
            results.append(False)

    threads = _run_threads(*[get] * (2 if immediate else 3))
    q.shutdown(immediate)
    go.set()
    for thread in threads:
        thread.join()
    if immediate:
        assert results == [False, False]
    else:
        assert sorted(results) == [False, True, True]


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_put(make_sd: Subject, immediate: bool) -> None:
    q = make_sd(2)
    q.put("Y")
    q.put("D")
    results: list[bool] = []

    def put() -> None:
        try:
            q.put("E")
            results.append(False)
        except SHUT_DOWN:
            results.append(True)

    threads = _run_threads(put, put)
    wait_until(lambda: Subject.blocked(q)[1] == 2, "two putters blocked")
    q.shutdown(immediate)
    for thread in threads:
        thread.join()
    assert results == [True, True]


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_join(make_sd: Subject, immediate: bool) -> None:
    q = make_sd()
    q.put("Y")
    joined: list[bool] = []
    getter_results: list[object] = []
    go = threading.Event()

    def join() -> None:
        q.join()
        joined.append(True)

    def get_task_done() -> None:
        go.wait()
        try:
            getter_results.append(q.get())
            q.task_done()
        except SHUT_DOWN:
            getter_results.append("shutdown")

    threads = _run_threads(join, join)
    if not immediate:
        threads += _run_threads(get_task_done)
    q.shutdown(immediate)
    go.set()
    for thread in threads:
        thread.join()
    assert joined == [True, True]


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_put_join(make_sd: Subject, immediate: bool) -> None:
    q = make_sd(2)
    q.put("Y")
    results: list[bool] = []
    go = threading.Event()

    def put() -> None:
        go.wait()
        try:
            q.put("E")
            results.append(False)
        except SHUT_DOWN:
            results.append(True)

    def join() -> None:
        q.join()
        results.append(True)

    threads = _run_threads(put, join)
    assert q.unfinished_tasks == 1
    q.shutdown(immediate)
    go.set()
    if immediate:
        with pytest.raises(SHUT_DOWN):
            q.get_nowait()
    else:
        assert q.get() == "Y"
        q.task_done()
    for thread in threads:
        thread.join()
    assert results == [True, True]


def test_shutdown_get_task_done_join(make_sd: Subject) -> None:
    q = make_sd(2)
    q.put("Y")
    q.put("D")
    assert q.unfinished_tasks == q.qsize()
    results: list[bool] = []
    go = threading.Event()

    def get_task_done() -> None:
        go.wait()
        try:
            q.get()
            q.task_done()
            results.append(True)
        except SHUT_DOWN:
            results.append(False)

    def join() -> None:
        q.join()
        results.append(True)

    threads = _run_threads(get_task_done, get_task_done, join, join)
    go.set()
    q.shutdown(False)
    for thread in threads:
        thread.join()
    assert results == [True] * 4


def test_shutdown_pending_get(make_sd: Subject) -> None:
    q = make_sd()
    results: list[object] = []

    def get() -> None:
        try:
            results.append(q.get())
        except Exception as exc:
            results.append(exc)

    (thread,) = _run_threads(get)
    q.shutdown(immediate=False)
    thread.join(timeout=WAIT_LIMIT)
    assert not thread.is_alive()
    assert len(results) == 1
    assert isinstance(results[0], SHUT_DOWN)


# -- SimpleQueue-style many-thread bodies, on a bounded and an unbounded queue ----------


@pytest.mark.parametrize("maxsize", [0, 3])
@pytest.mark.parametrize("mode", ["block", "nonblock", "timeout"])
def test_many_threads_deliver_everything(make: Subject, maxsize: int, mode: str) -> None:
    q = make(maxsize)
    n_threads, per_thread = 4, 500
    sentinel = None
    results: list[int] = []
    results_lock = threading.Lock()

    def feed(start: int) -> None:
        for i in range(start, start + per_thread):
            q.put(i)

    def consume() -> None:
        while True:
            if mode == "block":
                item = q.get()
            else:
                try:
                    item = q.get_nowait() if mode == "nonblock" else q.get(timeout=1e-3)
                except queue.Empty:
                    time.sleep(1e-4 if mode == "nonblock" else 0)
                    continue
            if item is sentinel:
                return
            with results_lock:
                results.append(item)

    feeders = [
        threading.Thread(target=feed, args=(start,))
        for start in range(0, n_threads * per_thread, per_thread)
    ]
    for thread in feeders:
        thread.start()
    consumers = _run_threads(*[consume] * n_threads)
    for thread in feeders:
        thread.join()
    for _ in consumers:
        q.put(sentinel)
    for thread in consumers:
        thread.join()
    assert sorted(results) == list(range(n_threads * per_thread))


def test_shrinking_queue(make: Subject) -> None:
    # CPython's test_shrinking_queue: maxsize is assignable, as queue.Queue's is.
    q = make(3)
    q.put(1)
    q.put(2)
    q.put(3)
    with pytest.raises(queue.Full):
        q.put_nowait(4)
    assert q.full()
    q.maxsize = 2
    with pytest.raises(queue.Full):
        q.put_nowait(4)


def test_growing_queue_wakes_a_blocked_putter() -> None:
    # Unlike queue.Queue's, whose putters sleep on until a get notifies them.
    q = Subject("ThreadQueue")(1)
    q.put(1)
    putter = threading.Thread(target=q.put, args=(2,))
    putter.start()
    wait_until(lambda: Subject.blocked(q) == (0, 1), "the putter blocks")
    q.maxsize = 2
    putter.join(WAIT_LIMIT)
    assert not putter.is_alive()
    assert [q.get_nowait(), q.get_nowait()] == [1, 2]
