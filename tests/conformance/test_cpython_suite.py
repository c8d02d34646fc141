"""CPython's own asyncio queue tests, run with asyncio's queue classes swapped for conveyor's.

The test module ships with every CPython (``test.test_asyncio.test_queues``).  It is
executed under a private name with an ``__import__`` of its own, so that its
``import asyncio`` binds a namespace whose ``Queue``, ``LifoQueue`` and ``PriorityQueue``
are conveyor's *before* any of its classes is defined: a class attribute such as
``q_class = asyncio.Queue`` then names conveyor's class too.  Loading checks that no test
class still holds one of asyncio's queue classes, and each case checks it again before it
runs.  Each test then runs as one pytest case, on asyncio's event loop and on uvloop's.

Tests that read or write private attributes of asyncio's queue (``_putters``,
``_getters``, ``_unfinished_tasks``, ``_finished``, ``_get_loop``) are found by reading
their source and skipped, naming the attribute: they test asyncio's internals, not
behaviour.  Each behaviour they cover has a conformance test of its own.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib.util
import inspect
import os
import re
import sys
import types
import unittest
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

import conveyor
from conveyor._queue import PurePythonQueue

# A test that touches one of these reads asyncio's internals, not its behaviour.
PRIVATE = re.compile(r"\.(_getters|_putters|_unfinished_tasks|_finished|_get_loop)\b")

ASYNCIO_CLASSES = (asyncio.Queue, asyncio.LifoQueue, asyncio.PriorityQueue)


def _conveyor_names() -> dict[str, Any]:
    return {"LifoQueue": conveyor.LifoQueue, "PriorityQueue": conveyor.PriorityQueue}


IMPLEMENTATIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "memory": lambda: {"Queue": conveyor.Queue, **_conveyor_names()},
    # conveyor.Queue without its C accelerator.
    "memory-py": lambda: {"Queue": PurePythonQueue, **_conveyor_names()},
}
"""Implementation -> the names its asyncio namespace replaces."""


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
    f"{impl}:{name}": case for impl, module in MODULES.items() for name, case in iter_cases(module)
}
MISSING = "this Python install has no test.test_asyncio package"


def skip_or_fail_missing(reason: str) -> None:
    """Skip with *reason*; under ``CI=true`` (where the suite must run) fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run CPython's queue tests")
    pytest.skip(reason)


def test_every_test_class_uses_conveyors_classes() -> None:
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
    private = PRIVATE.search(inspect.getsource(getattr(case, case._testMethodName)))
    if private:
        pytest.skip(f"uses asyncio's private attribute {private.group(0)}")
    assert not any(getattr(case, "q_class", None) is cls for cls in ASYNCIO_CLASSES)
    result = unittest.TestResult()
    case.run(result)
    problems = result.errors + result.failures
    assert not problems, problems[0][1]
    assert not result.skipped or sys.version_info < (3, 13), result.skipped
