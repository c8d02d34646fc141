"""The in-memory queues keep asyncio's signatures: a job option passed to them is a TypeError.

``delay``, ``priority``, ``key`` and ``ttl`` belong to durable queues (see
``tests/backends/test_durable_jobs.py``); an in-memory queue given one must say so, not
ignore it.  Both the C accelerator's methods and the pure-Python ones, and both faces of
a ``ThreadQueue``, refuse through Python's own call machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import conveyor
from conveyor._queue import PurePythonQueue

MAKERS: dict[str, Callable[[], Any]] = {
    "Queue": conveyor.Queue,
    "LifoQueue": conveyor.LifoQueue,
    "PriorityQueue": conveyor.PriorityQueue,
    "Queue (pure Python)": PurePythonQueue,
    "ThreadQueue.async_q": lambda: conveyor.ThreadQueue().async_q,
}
OPTIONS = [{"delay": 1.0}, {"priority": 1}, {"key": "k"}, {"ttl": 1.0}]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: next(iter(o)))
@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
async def test_a_job_option_is_a_type_error_and_puts_nothing(
    make: Callable[[], Any], option: dict[str, Any]
) -> None:
    queue = make()
    name = next(iter(option))
    with pytest.raises(TypeError, match=f"'{name}'|no keyword"):
        await queue.put("x", **option)
    with pytest.raises(TypeError, match=f"'{name}'|no keyword"):
        queue.put_nowait("x", **option)
    with pytest.raises(TypeError, match=f"'{name}'"):
        await queue.put_many(["x"], **option)
    assert queue.qsize() == 0
    # The plain forms still work.
    assert await queue.put("x") is None
    assert queue.get_nowait() == "x"


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: next(iter(o)))
def test_a_job_option_on_the_sync_face_is_a_type_error(option: dict[str, Any]) -> None:
    queue: conveyor.ThreadQueue[str] = conveyor.ThreadQueue()
    name = next(iter(option))
    with pytest.raises(TypeError, match=f"'{name}'"):
        queue.sync_q.put("x", **option)
    with pytest.raises(TypeError, match=f"'{name}'"):
        queue.sync_q.put_nowait("x", **option)
    assert queue.sync_q.qsize() == 0
    queue.close()
