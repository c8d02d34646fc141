"""CPython's own asyncio queue tests, run with asyncio's queue classes swapped for conveyor's.

The test module ships with every CPython (``test.test_asyncio.test_queues``).  It is
imported under a private name, its ``asyncio`` global replaced by a namespace whose
``Queue``, ``LifoQueue`` and ``PriorityQueue`` are conveyor's, and each of its tests runs
as one pytest case.  Tests that read or write private attributes of asyncio's queue
(``_putters``, ``_getters``, ``_unfinished_tasks``, ``_finished``, ``_get_loop``) are
found by reading their source and skipped, naming the attribute: they test asyncio's
internals, not behaviour.  Each behaviour they cover has a conformance test of its own.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import re
import sys
import types
import unittest
from collections.abc import Iterator
from typing import Any

import pytest

import conveyor
from conveyor._queue import PurePythonQueue

# A test that touches one of these reads asyncio's internals, not its behaviour.
PRIVATE = re.compile(r"\.(_getters|_putters|_unfinished_tasks|_finished|_get_loop)\b")


IMPLEMENTATIONS: dict[str, type[Any]] = {
    "memory": conveyor.Queue,
    "memory-py": PurePythonQueue,  # conveyor.Queue without its C accelerator
}


def _load_cpython_module(fifo: type[Any]) -> types.ModuleType | None:
    spec = importlib.util.find_spec("test.test_asyncio.test_queues")
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shim = types.ModuleType("asyncio_with_conveyor_queues")
    shim.__dict__.update(vars(asyncio))
    shim.Queue = fifo  # type: ignore[attr-defined]
    shim.LifoQueue = conveyor.LifoQueue  # type: ignore[attr-defined]
    shim.PriorityQueue = conveyor.PriorityQueue  # type: ignore[attr-defined]
    module.asyncio = shim  # type: ignore[attr-defined]
    return module


def _cases() -> Iterator[tuple[str, unittest.TestCase]]:
    for impl, fifo in IMPLEMENTATIONS.items():
        module = _load_cpython_module(fifo)
        if module is None:
            return
        suite = unittest.defaultTestLoader.loadTestsFromModule(module)
        stack: list[unittest.TestSuite | unittest.TestCase] = [suite]
        while stack:
            entry = stack.pop()
            if isinstance(entry, unittest.TestSuite):
                stack.extend(entry)
            else:
                test_id = entry.id().rsplit(".", 2)
                yield f"{impl}:{test_id[-2]}.{test_id[-1]}", entry


CASES = dict(_cases())


@pytest.mark.skipif(not CASES, reason="this Python has no test.test_asyncio package")
@pytest.mark.parametrize("name", sorted(CASES) or ["none"])
def test_cpython_asyncio_queue_suite(name: str) -> None:
    case = CASES[name]
    private = PRIVATE.search(inspect.getsource(getattr(case, case._testMethodName)))
    if private:
        pytest.skip(f"uses asyncio's private attribute {private.group(0)}")
    result = unittest.TestResult()
    case.run(result)
    problems = result.errors + result.failures
    assert not problems, problems[0][1]
    assert not result.skipped or sys.version_info < (3, 13), result.skipped
