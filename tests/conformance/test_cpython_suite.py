"""CPython's own queue tests, run against conveyor's queues, as a user moving to them would.

Two test modules ship with every CPython: ``test.test_asyncio.test_queues`` (asyncio's
queues) and ``test.test_queue`` (the ``queue`` module's).  Each is executed afresh for
each implementation under test, with the standard classes swapped for that
implementation's, and each of its tests runs as one pytest case:

* the asyncio suite against ``conveyor.Queue`` (with and without its C accelerator) and
  against the async face (``.async_q``) of every thread queue kind, on asyncio's event
  loop and on uvloop's.  The module is executed with an ``__import__`` of its own, so its
  ``import asyncio`` binds a namespace whose ``Queue``, ``LifoQueue`` and
  ``PriorityQueue`` are the implementation's *before* any class is defined: a class
  attribute such as ``q_class = asyncio.Queue`` names the implementation's class too.
* the threading suite against the blocking face (``.sync_q``) of every thread queue
  kind: each test class's ``queue`` attribute (the ``queue`` module it tests) becomes a
  copy whose ``Queue``, ``LifoQueue``, ``PriorityQueue``, ``Full``, ``Empty`` and
  ``ShutDown`` are the implementation's.

Loading checks that no test class still holds one of the standard classes, and each case
checks it again before it runs.  The faces are made by stand-ins for the classes
(``Queue(maxsize)`` returns ``ThreadQueue(maxsize).async_q``); the one name adapted
beyond that is the class name ``test_queue``'s ``basic_queue_test`` looks up the
expected order by (``q.__class__.__name__``): the face it gets is of a subclass, with no
body, named after the standard class.

Skipped, each with its reason: tests that read or write private attributes (found by
reading their source, or, for a whole class, because it subclasses ``queue.Queue`` to
override its private ``_put``/``_get`` or tests the private ``_PySimpleQueue``), and
the test classes of the C ``_queue`` module.  They test CPython's internals, not
behaviour.

With ``CONVEYOR_PEER_SUITES=1`` the same cases also run against janus and culsans, for
the comparison README.md shows; their failures are theirs.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import importlib
import importlib.util
import inspect
import os
import queue
import re
import sys
import types
import unittest
from collections.abc import Callable, Iterator, Mapping
from types import GenericAlias
from typing import Any

import pytest

import conveyor
from conveyor._queue import PurePythonQueue

# A test that touches one of these reads asyncio's internals, not its behaviour.
PRIVATE = re.compile(r"\.(_getters|_putters|_unfinished_tasks|_finished|_get_loop)\b")
# The faces of thread queues (and janus's, culsans's) have no asyncio._format() either.
PRIVATE_OF_FACES = re.compile(PRIVATE.pattern.replace("_get_loop", "_get_loop|_format"))

ASYNCIO_CLASSES = (asyncio.Queue, asyncio.LifoQueue, asyncio.PriorityQueue)
QUEUE_CLASSES = (queue.Queue, queue.LifoQueue, queue.PriorityQueue)
PEER_SUITES = os.environ.get("CONVEYOR_PEER_SUITES") == "1"

THREAD_KINDS: dict[str, dict[str, str]] = {
    # implementation -> (standard class name -> the implementation's class name)
    "thread": {
        "Queue": "ThreadQueue",
        "LifoQueue": "LifoThreadQueue",
        "PriorityQueue": "PriorityThreadQueue",
    },
    "janus": {"Queue": "Queue", "LifoQueue": "LifoQueue", "PriorityQueue": "PriorityQueue"},
    "culsans": {"Queue": "Queue", "LifoQueue": "LifoQueue", "PriorityQueue": "PriorityQueue"},
}
"""Thread queue implementations -> the class of each kind, in their package."""

_RENAMED: dict[tuple[type, str], type] = {}


def face_maker(cls: type, face: str, name: str) -> type:
    """Return a stand-in for the standard class *name*: it makes ``cls(maxsize).<face>``.

    Subscripting it gives a ``types.GenericAlias``, as subscripting the standard class
    does.  The sync face it returns is of a body-less subclass named *name* (the name
    ``basic_queue_test`` looks the expected order up by).
    """

    def new(maker: type, maxsize: float = 0) -> Any:
        made = getattr(cls(maxsize), face)
        if face == "sync_q":
            key = (type(made), name)
            if key not in _RENAMED:
                _RENAMED[key] = type(name, (type(made),), {"__slots__": ()})
            made.__class__ = _RENAMED[key]
        return made

    return type(name, (), {"__new__": new, "__class_getitem__": classmethod(GenericAlias)})


def thread_names(impl: str, face: str) -> dict[str, Any]:
    """Return standard name -> stand-in making the *face* of *impl*'s queue of that kind."""
    package = conveyor if impl == "thread" else importlib.import_module(impl)
    return {
        name: face_maker(getattr(package, ours), face, name)
        for name, ours in THREAD_KINDS[impl].items()
    }


def _conveyor_names() -> dict[str, Any]:
    return {"LifoQueue": conveyor.LifoQueue, "PriorityQueue": conveyor.PriorityQueue}


IMPLEMENTATIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "memory": lambda: {"Queue": conveyor.Queue, **_conveyor_names()},
    # conveyor.Queue without its C accelerator.
    "memory-py": lambda: {"Queue": PurePythonQueue, **_conveyor_names()},
    "thread": lambda: thread_names("thread", "async_q"),
}
"""Implementation -> the names its asyncio namespace replaces."""

PEERS = [peer for peer in ("janus", "culsans") if PEER_SUITES]
for _peer in PEERS:
    IMPLEMENTATIONS[_peer] = lambda peer=_peer: thread_names(peer, "async_q")  # type: ignore[misc]

LOOPS = ["asyncio", "uvloop"]


def load_with_names(
    module_name: str, swapped: str, names: Mapping[str, Any]
) -> types.ModuleType | None:
    """Execute a fresh copy of *module_name* whose ``import {swapped}`` yields *names*.

    The namespace the module imports is a copy of the real module *swapped* with *names*
    replaced, bound before the module's first line runs, so class bodies see it too.

    Returns:
        The module, or ``None`` when this Python install lacks it (no ``test`` package).
    """
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        return None
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    shim = types.ModuleType(f"{swapped}_with_conveyor")
    shim.__dict__.update(vars(sys.modules[swapped]))
    shim.__dict__.update(names)
    real_import = builtins.__import__

    def import_(
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: tuple[str, ...] | list[str] = (),
        level: int = 0,
    ) -> types.ModuleType:
        if name == swapped and level == 0:
            return shim
        return real_import(name, globals, locals, fromlist, level)

    module.__dict__["__builtins__"] = {**vars(builtins), "__import__": import_}
    spec.loader.exec_module(module)
    return module


def originals_held(module: types.ModuleType, originals: tuple[object, ...]) -> list[str]:
    """Return ``Class.attribute`` for each test class attribute holding one of *originals*."""
    found = []
    for class_name, cls in vars(module).items():
        if not isinstance(cls, type):
            continue
        for klass in cls.__mro__:
            for attribute, value in vars(klass).items():
                if any(value is original for original in originals):
                    found.append(f"{class_name}.{attribute}")
    return found


def iter_cases(module: types.ModuleType) -> Iterator[tuple[str, unittest.TestCase]]:
    """Yield ``(Class.test_name, case)`` for every test of *module*."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    stack: list[unittest.TestSuite | unittest.TestCase] = [suite]
    while stack:
        entry = stack.pop()
        if isinstance(entry, unittest.TestSuite):
            stack.extend(entry)
        else:
            test_id = entry.id().rsplit(".", 2)
            yield f"{test_id[-2]}.{test_id[-1]}", entry


def _load_all() -> dict[str, types.ModuleType]:
    modules = {}
    for impl, names in IMPLEMENTATIONS.items():
        module = load_with_names("test.test_asyncio.test_queues", "asyncio", names())
        if module is None:
            return {}
        modules[impl] = module
    return modules


MODULES = _load_all()
CASES = {
    f"{impl}/{loop}:{name}": case
    for impl, module in MODULES.items()
    for name, case in iter_cases(module)
    for loop in LOOPS
}
MISSING = "this Python install has no test.test_asyncio package"


def skip_or_fail_missing(reason: str) -> None:
    """Skip with *reason*; under ``CI=true`` (where the suite must run) fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run CPython's queue tests")
    pytest.skip(reason)


def run_case(case: unittest.TestCase) -> None:
    """Run a new copy of *case*; fail with the first error or failure it reports."""
    result = unittest.TestResult()
    # A case keeps state (its asyncio runner, ...): each run gets its own.
    type(case)(case._testMethodName).run(result)
    problems = result.errors + result.failures
    assert not problems, problems[0][1]
    assert not result.skipped or sys.version_info < (3, 13), result.skipped


@contextlib.contextmanager
def event_loops(kind: str) -> Iterator[None]:
    """Make new event loops (those ``IsolatedAsyncioTestCase`` creates) of *kind*."""
    if kind == "asyncio":
        yield
        return
    uvloop = pytest.importorskip("uvloop")
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(None)


def test_every_asyncio_test_class_uses_the_implementations_classes() -> None:
    if not MODULES:
        skip_or_fail_missing(MISSING)
    for impl, module in MODULES.items():
        assert not originals_held(module, ASYNCIO_CLASSES), impl
    # The check itself finds a class bound before the swap.
    unswapped = types.ModuleType("unswapped")
    unswapped.Case = type("Case", (), {"q_class": asyncio.Queue})  # type: ignore[attr-defined]
    assert originals_held(unswapped, ASYNCIO_CLASSES) == ["Case.q_class"]


@pytest.mark.parametrize("name", sorted(CASES) or ["none"])
def test_cpython_asyncio_queue_suite(name: str) -> None:
    if not CASES:
        skip_or_fail_missing(MISSING)
    case = CASES[name]
    impl, loop = name.split(":", 1)[0].split("/")
    private_names = PRIVATE if impl.startswith("memory") else PRIVATE_OF_FACES
    private = private_names.search(inspect.getsource(getattr(case, case._testMethodName)))
    if private:
        pytest.skip(f"uses asyncio's private attribute {private.group(0)}")
    assert not any(getattr(case, "q_class", None) is cls for cls in ASYNCIO_CLASSES)
    with event_loops(loop):
        run_case(case)


# -- the threading suite (test_queue.py) on the sync faces ----------------------------------


def queue_module_of(impl: str) -> types.ModuleType:
    """Return a copy of :mod:`queue` whose classes and exceptions are *impl*'s."""
    package = conveyor if impl == "thread" else importlib.import_module(impl)
    shim = types.ModuleType(f"queue_of_{impl}")
    shim.__dict__.update(vars(queue))
    shim.__dict__.update(thread_names(impl, "sync_q"))
    if impl == "thread":
        shim.Full, shim.Empty = conveyor.QueueFull, conveyor.QueueEmpty  # type: ignore[attr-defined]
    else:
        shim.Full, shim.Empty = package.SyncQueueFull, package.SyncQueueEmpty  # type: ignore[attr-defined]
    shim.ShutDown = package.SyncQueueShutDown  # type: ignore[attr-defined]
    return shim


def load_thread_suite(impl: str) -> tuple[types.ModuleType, dict[str, str]] | None:
    """Load ``test.test_queue`` with every test class's ``queue`` module made *impl*'s.

    Returns:
        The module and, for each test class that must be skipped, the reason; ``None``
        when this Python install has no ``test`` package.
    """
    try:
        spec = importlib.util.find_spec("test.test_queue")
    except ModuleNotFoundError:
        return None
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shim = queue_module_of(impl)
    skipped = {}
    for name, cls in vars(module).items():
        tested = vars(cls).get("queue") if isinstance(cls, type) else None
        if not isinstance(tested, types.ModuleType):
            continue
        if tested is module.c_queue:
            skipped[name] = "tests the C _queue module"
        elif "SimpleQueue" in name:
            skipped[name] = "tests queue._PySimpleQueue, a private class"
        elif "Failing" in name:
            skipped[name] = "subclasses queue.Queue to override its private _put()/_get()"
        cls.queue = shim
    return module, skipped


THREAD_IMPLEMENTATIONS = ["thread", *PEERS]
THREAD_SUITES = {
    impl: loaded for impl in THREAD_IMPLEMENTATIONS if (loaded := load_thread_suite(impl))
}
THREAD_CASES = {
    f"{impl}:{name}": (case, skipped.get(name.split(".")[0]))
    for impl, (module, skipped) in THREAD_SUITES.items()
    for name, case in iter_cases(module)
}


def test_every_threading_test_class_uses_the_implementations_classes() -> None:
    if not THREAD_SUITES:
        skip_or_fail_missing("this Python install has no test.test_queue module")
    for impl, (module, _) in THREAD_SUITES.items():
        standard = tuple(m for m in (module.py_queue, module.c_queue) if m is not None)
        assert not originals_held(module, (*standard, queue, *QUEUE_CLASSES)), impl


@pytest.mark.parametrize("name", sorted(THREAD_CASES) or ["none"])
def test_cpython_threading_queue_suite(name: str) -> None:
    if not THREAD_CASES:
        skip_or_fail_missing("this Python install has no test.test_queue module")
    case, skipped = THREAD_CASES[name]
    if skipped:
        pytest.skip(skipped)
    assert not any(getattr(case, "queue", None) is m for m in (queue, *QUEUE_CLASSES))
    run_case(case)
