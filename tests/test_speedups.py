"""The C accelerator: built where CI runs, and switched off by ``CONVEYOR_PURE_PYTHON=1``.

Its behaviour is tested by the conformance suite and the stress tests, which run every
body against ``conveyor.Queue`` (accelerated) and ``PurePythonQueue`` (the fallback).
"""

from __future__ import annotations

import asyncio
import copy
import gc
import inspect
import os
import pickle
import subprocess
import sys
import traceback
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, ClassVar, cast

import pytest

import conveyor
from conveyor._queue import SPEEDUPS, PurePythonQueue
from tests.conformance._helpers import settle

_REPORT = (
    "import conveyor, conveyor._queue as m; "
    "print(m.SPEEDUPS, conveyor.Queue is m.PurePythonQueue, type(conveyor.Queue().get()).__name__)"
)


def _report(**env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-W", "ignore::RuntimeWarning", "-c", _REPORT],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="only CI must build the accelerator")
def test_ci_builds_the_accelerator() -> None:
    # A machine with a compiler (CI's) must not fall back silently: the suite would then
    # test the pure-Python queue twice.
    assert SPEEDUPS


@pytest.mark.skipif(not SPEEDUPS, reason="the C accelerator is not built here")
def test_the_accelerated_queue_is_the_pure_one_with_c_hot_paths() -> None:
    assert issubclass(conveyor.Queue, PurePythonQueue)
    assert conveyor.Queue is not PurePythonQueue
    assert _report() == ["True", "False", "QueueOperation"]


def test_conveyor_pure_python_switches_it_off() -> None:
    assert _report(CONVEYOR_PURE_PYTHON="1") == ["False", "True", "coroutine"]


def test_both_are_named_queue() -> None:
    assert conveyor.Queue.__name__ == PurePythonQueue.__name__ == "Queue"
    assert repr(PurePythonQueue(3)).startswith("<Queue at ")
    assert str(conveyor.Queue(3)) == "<Queue maxsize=3>"


# -- what both implementations share -------------------------------------------------------
#
# The bodies below run against conveyor.Queue (C hot paths where built) and PurePythonQueue:
# the C version must match the pure one, whose put()/get() are real coroutines.

QueueClass = type[PurePythonQueue[Any]]

IMPLEMENTATIONS = [
    pytest.param(conveyor.Queue, id="accelerated"),
    pytest.param(PurePythonQueue, id="pure"),
]

ROUNDS = 50
"""Repetitions of each operation: a reference leaked per operation shows as >= 50."""


class _Item:
    """An object nothing else refers to, whose reference count the tests watch."""


def _refcount(obj: object) -> int:
    gc.collect()
    return sys.getrefcount(obj)


async def _nowait(q: Any, item: object) -> None:
    q.put_nowait(item)
    assert q.get_nowait() is item


async def _awaited(q: Any, item: object) -> None:
    await q.put(item)
    assert await q.get() is item


async def _parked_get_woken(q: Any, item: object) -> None:
    getter = asyncio.create_task(q.get())
    await settle()
    q.put_nowait(item)
    assert await getter is item


async def _parked_put_woken(q: Any, item: object) -> None:
    q.put_nowait(item)
    putter = asyncio.create_task(q.put(item))
    await settle()
    assert q.get_nowait() is item
    await putter
    assert q.get_nowait() is item


async def _cancelled_get(q: Any, item: object) -> None:
    getter = asyncio.create_task(q.get())
    await settle()
    getter.cancel()
    await asyncio.gather(getter, return_exceptions=True)
    assert getter.cancelled()


async def _cancelled_put(q: Any, item: object) -> None:
    q.put_nowait(item)
    putter = asyncio.create_task(q.put(item))
    await settle()
    putter.cancel()
    await asyncio.gather(putter, return_exceptions=True)
    assert putter.cancelled()
    assert q.get_nowait() is item
    assert q.empty()


async def _woken_get_cancelled(q: Any, item: object) -> None:
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await settle()
    q.put_nowait(item)  # wakes the first, which leaves: the second takes the item
    first.cancel()
    assert await second is item
    await asyncio.gather(first, return_exceptions=True)


async def _timed_out(q: Any, item: object) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await q.get(timeout=0)
    q.put_nowait(item)
    with pytest.raises(asyncio.TimeoutError):
        await q.put(item, timeout=0)
    assert q.get_nowait() is item


async def _closed_while_waiting(q: Any, item: object) -> None:
    getter = q.get()
    getter.send(None)  # parks on a future
    getter.close()
    q.put_nowait(item)
    putter = q.put(item)
    putter.send(None)
    putter.close()
    assert q.get_nowait() is item
    assert q.empty()


async def _dropped_while_waiting(q: Any, item: object) -> None:
    getter = q.get()
    getter.send(None)
    del getter  # the finalizer leaves the waiters
    q.put_nowait(item)
    putter = q.put(item)
    putter.send(None)
    del putter
    assert q.get_nowait() is item


async def _never_awaited(q: Any, item: object) -> None:
    with pytest.warns(RuntimeWarning, match="was never awaited"):
        q.put(item)  # dropped at once
    assert q.empty()


SCENARIOS = {
    "nowait": _nowait,
    "awaited": _awaited,
    "parked get woken": _parked_get_woken,
    "parked put woken": _parked_put_woken,
    "cancelled get": _cancelled_get,
    "cancelled put": _cancelled_put,
    "woken get cancelled": _woken_get_cancelled,
    "timed out": _timed_out,
    "closed while waiting": _closed_while_waiting,
    "dropped while waiting": _dropped_while_waiting,
    "never awaited": _never_awaited,
}


async def _run_rounds(scenario: str, item: object, q: Any) -> None:
    for _ in range(ROUNDS):
        await SCENARIOS[scenario](q, item)


# The priority and LIFO queues run the same hot paths over a buffer of their own (the C
# code calls heapq on the priority queue's directly).
WITH_KINDS = [
    *IMPLEMENTATIONS,
    pytest.param(conveyor.PriorityQueue, id="priority"),
    pytest.param(conveyor.LifoQueue, id="lifo"),
]


@pytest.mark.parametrize("cls", WITH_KINDS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_no_reference_is_leaked(cls: QueueClass, scenario: str) -> None:
    item = _Item()
    q = cls(1)
    await _run_rounds(scenario, item, q)  # warm-up: caches, free lists
    items, queues = _refcount(item), _refcount(q)
    await _run_rounds(scenario, item, q)
    assert (_refcount(item), _refcount(q)) == (items, queues)
    assert q.statistics().tasks_waiting_get == q.statistics().tasks_waiting_put == 0


async def _shutdown_wakes_parked(cls: QueueClass, item: object) -> None:
    q = cls(1)
    q.put_nowait(item)
    putter = asyncio.create_task(q.put(item))
    other = cls()
    getter = asyncio.create_task(other.get())
    await settle()
    q.shutdown(immediate=True)
    other.shutdown(immediate=True)
    for task in (putter, getter):
        with pytest.raises(conveyor.QueueShutDown):
            await task


@pytest.mark.parametrize("cls", WITH_KINDS)
async def test_shutdown_immediate_waking_parked_ops_leaks_nothing(cls: QueueClass) -> None:
    item = _Item()
    await _shutdown_wakes_parked(cls, item)
    items = _refcount(item)
    for _ in range(ROUNDS):
        await _shutdown_wakes_parked(cls, item)
    assert _refcount(item) == items


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_a_finished_op_does_not_keep_its_queue_alive(cls: QueueClass) -> None:
    # A done task keeps its coroutine; a finished async def drops its frame, and with it
    # the queue and what is buffered in it.  The C op must let go of its queue too.
    q = cls()
    getter = asyncio.create_task(q.get())
    await settle()
    q.put_nowait("item")
    assert await getter == "item"
    q.put_nowait(_Item())
    ref = weakref.ref(q)
    del q
    gc.collect()
    assert ref() is None
    assert getter.done()


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
def test_queues_take_weak_references(cls: QueueClass) -> None:
    q = cls()
    ref = weakref.ref(q)
    assert ref() is q
    del q
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_a_subclass_overriding_put_and_get_calls_super(cls: QueueClass) -> None:
    class Counting(cls):  # type: ignore[valid-type,misc]
        calls: ClassVar[list[str]] = []

        async def put(self, item: Any, timeout: float | None = None) -> None:
            self.calls.append("put")
            await super().put(item, timeout)

        async def get(self, timeout: float | None = None) -> Any:
            self.calls.append("get")
            return await super().get(timeout)

    q = Counting(1)
    getter = asyncio.create_task(q.get())  # parks: the queue is empty
    await settle()
    await q.put("a")
    await q.put("b")
    putter = asyncio.create_task(q.put("c"))  # parks: the queue is full
    await settle()
    assert await getter == "a"
    assert await q.get() == "b"
    await putter
    assert await q.get(timeout=1) == "c"
    assert Counting.calls == ["get", "put", "put", "put", "get", "get"]
    assert q.statistics().total_got == 3


class _LoggingDeque(deque[Any]):
    def __init__(self, log: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.log = log

    def append(self, item: Any) -> None:
        self.log.append(("append", item))
        super().append(item)

    def popleft(self) -> Any:
        item = super().popleft()
        self.log.append(("popleft", item))
        return item


class _Buffer:
    """Not a deque: what put and get need of a buffer, and nothing more."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def append(self, item: Any) -> None:
        self.items.append(item)

    def popleft(self) -> Any:
        return self.items.pop(0)


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_a_subclass_may_replace_the_buffer_in_init_alone(cls: QueueClass) -> None:
    # Only _init() is overridden, so the fast paths stay, and they use the buffer's own
    # append() and popleft(): the C version must not call deque's on something else.
    log: list[tuple[str, Any]] = []

    class Logged(cls):  # type: ignore[valid-type,misc]
        def _init(self, maxsize: float) -> None:
            self._queue = _LoggingDeque(log)

    class Custom(cls):  # type: ignore[valid-type,misc]
        def _init(self, maxsize: float) -> None:
            self._queue = _Buffer()

    for q in (Logged(), Custom()):
        q.put_nowait(1)
        await q.put(2)
        getter = asyncio.create_task(q.get(timeout=None))
        assert q.get_nowait() == 1
        assert await getter == 2
        assert q.statistics().total_got == 2
    log.clear()
    logged = Logged()
    logged.put_nowait("x")
    await logged.put("y")
    assert [logged.get_nowait(), await logged.get()] == ["x", "y"]
    assert log == [("append", "x"), ("append", "y"), ("popleft", "x"), ("popleft", "y")]


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_methods_before_init_raise_attribute_error(cls: QueueClass) -> None:
    q = cls.__new__(cls)
    with pytest.raises(AttributeError, match="_queue"):
        q.put_nowait(1)
    with pytest.raises(AttributeError, match="_queue"):
        q.get_nowait()
    with pytest.raises(AttributeError, match="_queue"):
        q.qsize()
    with pytest.raises(AttributeError, match="_queue"):
        await q.put(1)
    with pytest.raises(AttributeError, match="_queue"):
        await q.get()


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
def test_a_subclass_may_add_slots(cls: QueueClass) -> None:
    class Slotted(cls):  # type: ignore[valid-type,misc]
        __slots__ = ("label",)

    q = Slotted(2)
    q.label = "named"
    q.put_nowait(1)
    assert (q.label, q.get_nowait()) == ("named", 1)


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
def test_a_maxsize_beyond_a_float_is_unbounded(cls: QueueClass) -> None:
    q = cls(10**400)
    for i in range(3):
        q.put_nowait(i)
    assert not q.full()
    assert q.statistics().max_size == 10**400


@pytest.mark.skipif(not SPEEDUPS, reason="the C accelerator is not built here")
@pytest.mark.parametrize("duplicate", [pickle.dumps, copy.copy, copy.deepcopy])
def test_the_accelerated_queue_refuses_pickle_and_copy(duplicate: Callable[[Any], Any]) -> None:
    # Its state lives in C fields that the default reduce cannot see: a clean TypeError,
    # not a half-made queue.  (The pure class, as conveyor.Queue, pickles and copies.)
    q: conveyor.Queue[str] = conveyor.Queue()
    q.put_nowait("item")
    with pytest.raises(TypeError, match="cannot pickle"):
        duplicate(q)


# -- the coroutine protocol of put() and get() ---------------------------------------------


async def _parked_get(q: Any) -> Coroutine[Any, Any, Any]:
    getter = q.get()
    waiter = getter.send(None)
    assert isinstance(waiter, asyncio.Future)
    return cast("Coroutine[Any, Any, Any]", getter)


def _traceback() -> TracebackType | None:
    try:
        raise KeyError("for its traceback")
    except KeyError as exc:
        return exc.__traceback__


THROWN: dict[str, tuple[tuple[Any, ...], type[BaseException]]] = {
    "instance": ((ValueError("x"),), ValueError),
    "class": ((ValueError,), ValueError),
    "class and value": ((ValueError, "v"), ValueError),
    "class, None, traceback": ((ValueError, None, _traceback()), ValueError),
    "instance and value": ((ValueError("x"), "v"), TypeError),
    "not an exception": ((1,), TypeError),
    "traceback not a traceback": ((ValueError, None, 3), TypeError),
}


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
@pytest.mark.parametrize("form", list(THROWN))
@pytest.mark.filterwarnings("ignore:the \\(type, exc, tb\\) signature of throw:DeprecationWarning")
async def test_throw_into_a_waiting_op_raises_there_and_leaves(cls: QueueClass, form: str) -> None:
    args, raised = THROWN[form]
    q = cls()
    getter = await _parked_get(q)
    assert q.statistics().tasks_waiting_get == 1
    with pytest.raises(raised):
        getter.throw(*args)
    assert q.statistics().tasks_waiting_get == 0
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        getter.send(None)
    q.put_nowait("kept")  # nobody took it
    assert q.get_nowait() == "kept"


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_throw_arguments_are_counted(cls: QueueClass) -> None:
    getter: Any = await _parked_get(cls())  # Any: called with what typing rejects
    with pytest.raises(TypeError, match="throw expected at least 1 argument, got 0"):
        getter.throw()
    with pytest.raises(TypeError, match="throw expected at most 3 arguments, got 4"):
        getter.throw(ValueError, None, None, None)
    getter.close()


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_the_thrown_traceback_is_kept(cls: QueueClass) -> None:
    tb = _traceback()
    assert tb is not None
    getter = await _parked_get(cls())
    with pytest.raises(ValueError, match="v") as caught:
        getter.throw(ValueError("v").with_traceback(tb))
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert "_traceback" in [frame.name for frame in frames]


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_throw_into_a_finished_op_says_it_cannot_be_reused(cls: QueueClass) -> None:
    q = cls()
    q.put_nowait("item")
    getter = q.get()
    assert await getter == "item"
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        getter.throw(KeyError("late"))
    assert getter.close() is None


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_throw_into_a_fresh_op_finishes_it_without_a_warning(cls: QueueClass) -> None:
    q = cls()
    q.put_nowait("kept")
    getter = q.get()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "never awaited"
        with pytest.raises(KeyError):
            getter.throw(KeyError("early"))
        del getter
        gc.collect()
    assert q.get_nowait() == "kept"


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_a_stop_iteration_thrown_in_becomes_a_runtime_error(cls: QueueClass) -> None:
    # A task would take a StopIteration leaving the coroutine for its return value.
    q = cls()
    getter = await _parked_get(q)
    if cls is PurePythonQueue:
        # The async def hands it to the future it waits on, whose iterator takes it for
        # its result: the get goes on waiting.  The C op raises as PEP 479 would.
        getter.close()
        pytest.skip("the pure version's quirk: Future.__await__ returns the value")
    with pytest.raises(RuntimeError, match="coroutine raised StopIteration") as caught:
        getter.throw(StopIteration("thrown"))
    assert isinstance(caught.value.__cause__, StopIteration)
    assert q.statistics().tasks_waiting_get == 0


_STOP_FROM_HOOK = """
import asyncio, sys
import conveyor
from conveyor._queue import PurePythonQueue

base = conveyor.Queue if sys.argv[1] == "accelerated" else PurePythonQueue


class Hooked(base):
    def _bind(self, loop):
        raise StopIteration("from _bind")


async def main():
    getter = asyncio.create_task(Hooked().get())
    await asyncio.wait({getter}, timeout=10)
    print(type(getter.exception()).__name__, getter.exception())


asyncio.run(main())
"""


def _run_script(script: str, implementation: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", script, implementation],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    return done.stdout.splitlines()


@pytest.mark.parametrize("implementation", ["accelerated", "pure"])
def test_a_stop_iteration_from_a_hook_fails_the_task(implementation: str) -> None:
    # In a subprocess: before the fix the C op let the StopIteration out; the task could
    # not store it ("interacts badly with generators") and never finished, nor could it
    # be cancelled.
    assert _run_script(_STOP_FROM_HOOK, implementation) == [
        "RuntimeError coroutine raised StopIteration"
    ]


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_an_error_in_abandon_chains_to_the_cancellation(cls: QueueClass) -> None:
    class Failing(cls):  # type: ignore[valid-type,misc]
        handled: ClassVar[list[Any]] = []

        def _abandon(self, waiters: Any, waiter: Any, blocked: Any) -> None:
            self.handled.append(type(sys.exc_info()[1]))
            super()._abandon(waiters, waiter, blocked)
            raise KeyError("in _abandon")

    q = Failing()
    getter = asyncio.create_task(q.get())
    await settle()
    getter.cancel()
    await asyncio.gather(getter, return_exceptions=True)
    error = getter.exception()
    assert isinstance(error, KeyError)
    assert isinstance(error.__context__, asyncio.CancelledError)
    # As in the except block of the Python version: the cancellation is being handled.
    assert Failing.handled == [asyncio.CancelledError]

    parked = await _parked_get(q)
    with pytest.raises(KeyError) as caught:
        parked.close()
    assert isinstance(caught.value.__context__, GeneratorExit)
    assert q.statistics().tasks_waiting_get == 0


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_resumed_before_its_future_is_done_an_op_fails_and_leaves(cls: QueueClass) -> None:
    q = cls()
    getter = await _parked_get(q)
    with pytest.raises(RuntimeError, match="await wasn't used with future"):
        getter.send(None)
    assert q.statistics().tasks_waiting_get == 0


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
async def test_a_waiting_op_is_suspended(cls: QueueClass) -> None:
    if sys.version_info < (3, 11) and cls is not PurePythonQueue:
        pytest.skip("inspect reads cr_suspended from 3.11; before, cr_frame, which the op lacks")
    getter = await _parked_get(cls())
    assert inspect.getcoroutinestate(getter) == inspect.CORO_SUSPENDED
    getter.close()
    assert inspect.getcoroutinestate(getter) == inspect.CORO_CLOSED


_REENTER = """
import asyncio, sys
import conveyor
from conveyor._queue import PurePythonQueue

base = conveyor.Queue if sys.argv[1] == "accelerated" else PurePythonQueue


class Reentrant(base):
    op = None

    def _bind(self, loop):
        # Python code the op runs, touching the op itself.
        for name, call in (
            ("send", lambda: self.op.send(None)),
            ("throw", lambda: self.op.throw(KeyError("k"))),
            ("close", self.op.close),
        ):
            try:
                call()
                print(name, "returned")
            except Exception as exc:
                print(name, type(exc).__name__, exc)
        super()._bind(loop)


async def main():
    q = Reentrant(1)
    q.put_nowait("a")
    q.op = q.put("b")
    putter = asyncio.ensure_future(q.op)
    await asyncio.sleep(0)
    print("got", q.get_nowait())
    await putter
    print("got", q.get_nowait())


asyncio.run(main())
"""


@pytest.mark.parametrize("implementation", ["accelerated", "pure"])
def test_an_op_cannot_be_reentered_while_it_runs(implementation: str) -> None:
    # In a subprocess: before the fix, close() from inside the running op finished it
    # and dropped its item, and the op went on to append NULL: a segmentation fault.
    assert _run_script(_REENTER, implementation) == [
        "send ValueError coroutine already executing",
        "throw ValueError coroutine already executing",
        "close ValueError coroutine already executing",
        "got a",
        "got b",
    ]
