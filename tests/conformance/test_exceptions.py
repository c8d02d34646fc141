"""The exception classes: asyncio code's ``except`` clauses keep catching conveyor's errors."""

from __future__ import annotations

import asyncio
import importlib
import pickle
import pkgutil
import queue
import sys
import traceback

import pytest

import conveyor
from tests.conftest import MakeQueue


def test_queue_empty_and_full_are_the_asyncio_ones() -> None:
    assert issubclass(conveyor.QueueEmpty, asyncio.QueueEmpty)
    assert issubclass(conveyor.QueueFull, asyncio.QueueFull)


def test_except_asyncio_queue_empty_catches_conveyor_queue_empty() -> None:
    caught: Exception | None = None
    try:
        conveyor.Queue[int]().get_nowait()
    except asyncio.QueueEmpty as exc:
        caught = exc
    assert isinstance(caught, conveyor.QueueEmpty)


def test_except_asyncio_queue_full_catches_conveyor_queue_full() -> None:
    q = conveyor.Queue[int](maxsize=1)
    q.put_nowait(1)
    caught: Exception | None = None
    try:
        q.put_nowait(2)
    except asyncio.QueueFull as exc:
        caught = exc
    assert isinstance(caught, conveyor.QueueFull)


def test_queue_empty_and_full_are_also_the_queue_module_ones() -> None:
    assert issubclass(conveyor.QueueEmpty, queue.Empty)
    assert issubclass(conveyor.QueueFull, queue.Full)


@pytest.mark.skipif(sys.version_info < (3, 13), reason="asyncio.QueueShutDown is new in 3.13")
def test_queue_shut_down_is_asyncio_queue_shut_down() -> None:
    assert conveyor.QueueShutDown is asyncio.QueueShutDown  # type: ignore[attr-defined,unused-ignore]


def test_queue_shut_down_is_an_exception() -> None:
    assert issubclass(conveyor.QueueShutDown, Exception)
    assert not issubclass(conveyor.QueueShutDown, (asyncio.QueueEmpty, asyncio.QueueFull))


async def test_get_nowait_on_empty_raises_asyncio_queue_empty(make_queue: MakeQueue) -> None:
    q = await make_queue()
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


async def test_put_nowait_on_full_raises_asyncio_queue_full(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    await q.put(1)
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(2)


@pytest.mark.extras
async def test_timeouts_raise_what_both_timeout_clauses_catch(make_queue: MakeQueue) -> None:
    q = await make_queue(maxsize=1)
    for attempt in (q.get(timeout=0), q.get_many(1, timeout=0)):
        with pytest.raises(TimeoutError) as info:
            await attempt
        assert isinstance(info.value, asyncio.TimeoutError)
    await q.put(1)
    with pytest.raises(TimeoutError) as info:
        await q.put(2, timeout=0)
    assert isinstance(info.value, asyncio.TimeoutError)


def _conveyor_exception_classes() -> set[type[BaseException]]:
    """Every exception class conveyor exports, defines publicly, or derives from its own."""
    found: set[type[BaseException]] = set()
    modules = [conveyor]
    for info in pkgutil.walk_packages(conveyor.__path__, "conveyor."):
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:  # an optional extra (rich, uvloop...) that is not installed
            continue
    for module in modules:
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and not name.startswith("_")
            ):
                found.add(value)
    # Private subclasses of conveyor's own errors escape to users just the same.
    roots = [cls for cls in found if cls.__module__.partition(".")[0] == "conveyor"]
    while roots:
        for sub in roots.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                roots.append(sub)
    return found


def _resolve(dotted_module: str, qualname: str) -> object:
    target: object = importlib.import_module(dotted_module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def test_every_exception_conveyor_raises_shows_a_public_name() -> None:
    classes = _conveyor_exception_classes()
    assert conveyor.SerializationError in classes
    assert conveyor.QueueShutDown in classes
    for cls in classes:
        module = cls.__module__
        assert (
            module in ("conveyor", "builtins", "queue") or module.partition(".")[0] == "asyncio"
        ), f"{module}.{cls.__qualname__} is not a public name"
        assert _resolve(module, cls.__qualname__) is cls, f"{module}.{cls.__qualname__}"


def test_traceback_names_the_exception_conveyor_exports() -> None:
    q = conveyor.Queue[int]()
    q.shutdown()
    with pytest.raises(conveyor.QueueShutDown) as shut:
        q.put_nowait(1)
    thread_queue = conveyor.ThreadQueue[int]()
    thread_queue.shutdown()
    with pytest.raises(conveyor.SyncQueueShutDown) as sync_shut:
        thread_queue.sync_q.put_nowait(1)
    with pytest.raises(conveyor.QueueEmpty) as empty:
        conveyor.Queue[int]().get_nowait()
    for caught in (shut, sync_shut, empty):
        line = "".join(traceback.format_exception_only(caught.type, caught.value))
        assert "._" not in line.split(":")[0], line
        cls = caught.type
        assert _resolve(cls.__module__, cls.__qualname__) is cls


def test_exceptions_pickle_by_their_public_name() -> None:
    # Across processes (a worker pool, a multiprocessing queue) an exception travels pickled:
    # by reference to its class, which must resolve in the public module.
    for cls in _conveyor_exception_classes():
        if cls.__module__.partition(".")[0] != "conveyor":
            continue  # builtins, asyncio, queue: theirs
        error = cls("boom")
        assert pickle.dumps(error).find(b"conveyor._") == -1
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is cls
        assert again.args == ("boom",)
