"""Subclasses of the in-memory queues work as subclasses of asyncio's do.

Users subclass ``asyncio.Queue`` in two ways: overriding the storage seam
(``_init``/``_put``/``_get``, as ``LifoQueue`` and ``PriorityQueue`` do) and overriding
the non-blocking methods, which asyncio's blocking ones are built on.  Each body runs on
asyncio's class (the oracle) and on conveyor's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import conveyor
from conveyor._queue import PurePythonQueue

BASES = [
    pytest.param(asyncio.Queue, id="asyncio"),
    pytest.param(conveyor.Queue, id="memory"),
    pytest.param(PurePythonQueue, id="memory-py"),
]


def unique_queue(base: type[Any]) -> type[Any]:
    """Return a subclass of *base* whose storage drops an item equal to one it holds."""

    class UniqueQueue(base):  # type: ignore[misc]
        def _init(self, maxsize: float) -> None:
            self._queue: list[Any] = []

        def _put(self, item: Any) -> None:
            if item not in self._queue:
                self._queue.append(item)

        def _get(self) -> Any:
            return self._queue.pop(0)

    return UniqueQueue


@pytest.mark.parametrize("base", BASES)
async def test_storage_seam_is_used_by_every_method(base: type[Any]) -> None:
    q = unique_queue(base)()
    for item in [1, 1, 2]:
        q.put_nowait(item)
    for item in [2, 3, 3]:
        await q.put(item)
    assert q.qsize() == 3
    assert [q.get_nowait(), await q.get(), await q.get()] == [1, 2, 3]
    assert q.empty()


@pytest.mark.parametrize("base", BASES)
async def test_storage_seam_with_a_waiting_getter(base: type[Any]) -> None:
    q = unique_queue(base)(maxsize=2)
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.put_nowait("a")
    assert await getter == "a"
    await q.put("b")
    await q.put("b")
    assert q.qsize() == 1
    assert not q.full()


async def test_storage_seam_is_used_by_batches() -> None:
    q = unique_queue(conveyor.Queue)()
    await q.put_many([1, 1, 2, 3, 3])
    assert await q.get_many(10) == [1, 2, 3]


@pytest.mark.parametrize("base", BASES)
async def test_overridden_put_nowait_sees_every_put(base: type[Any]) -> None:
    seen: list[Any] = []

    class Recorded(base):  # type: ignore[misc]
        def put_nowait(self, item: Any) -> None:
            seen.append(item)
            super().put_nowait(item)

    q = Recorded()
    q.put_nowait(1)
    await q.put(2)
    assert seen == [1, 2]
    assert [q.get_nowait(), q.get_nowait()] == [1, 2]


@pytest.mark.parametrize("base", BASES)
async def test_overridden_get_nowait_sees_every_get(base: type[Any]) -> None:
    seen: list[Any] = []

    class Recorded(base):  # type: ignore[misc]
        def get_nowait(self) -> Any:
            item = super().get_nowait()
            seen.append(item)
            return item

    q = Recorded()
    q.put_nowait(1)
    q.put_nowait(2)
    assert q.get_nowait() == 1
    assert await q.get() == 2
    assert seen == [1, 2]
