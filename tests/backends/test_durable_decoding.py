"""Items a reader cannot decode: a ``SerializationError``, the dead letters at once, never a loop.

Runs for every durable backend in ``durable_fixtures``.  The bad payloads are written as
they would be by another process: valid JSON beyond this process's limits (written with
other limits), stored through a serializer that passes bytes through.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from conveyor import QueueEmpty, SerializationError
from tests.backends.durable_fixtures import durable_url, open_durable, queue_name

__all__ = ["durable_url", "open_durable", "queue_name"]


class _Raw:
    """What another process wrote: these bytes, whatever they hold."""

    name = "raw"

    def dumps(self, item: bytes) -> bytes:
        return item

    def loads(self, data: bytes) -> bytes:
        return data


class _Broken:
    """A custom serializer that fails with something other than SerializationError."""

    name = "broken"

    def dumps(self, item: Any) -> bytes:
        return b"x"

    def loads(self, data: bytes) -> Any:
        raise KeyError("no codec")


async def _wait_until(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.005)


UNREADABLE = {
    "deep list": (b"[" * 100_000 + b"]" * 100_000, "recursion limit"),
    "deep object": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "recursion limit"),
    "long int": (b"9" * 5000, "digits"),
    "long int inside": (b'[1,{"n":' + b"9" * 5000 + b"}]", "digits"),
}


@pytest.mark.parametrize(("payload", "reason"), UNREADABLE.values(), ids=list(UNREADABLE))
async def test_undecodable_item_goes_dead_at_once_and_dead_letters_show_it_raw(
    open_durable: Any, payload: bytes, reason: str
) -> None:
    if reason == "digits" and not 0 < sys.get_int_max_str_digits() < 5000:
        pytest.skip("this interpreter reads ints of 5000 digits")
    writer = await open_durable(serializer=_Raw())
    reader = await open_durable()  # no max_attempts: without burying, it would loop forever
    await writer.put(payload)
    await writer.put(b'"fine"')
    with pytest.raises(SerializationError, match=reason):
        await reader.get(timeout=30)
    assert await reader.get(timeout=30) == "fine"
    reader.task_done()
    await _wait_until(lambda: reader.statistics().current_leased == 0, "the bad item is buried")
    (dead,) = await reader.dead_letters()
    assert dead.item == payload
    assert dead.attempts == 1
    assert reason in dead.error
    assert "cannot decode" in dead.error
    await reader.join(timeout=30)
    assert await reader.aqsize() == 0
    with pytest.raises(asyncio.TimeoutError):
        await reader.get(timeout=0.2)  # never delivered again


async def test_a_custom_serializer_failing_otherwise_is_a_serialization_error(
    open_durable: Any,
) -> None:
    reader = await open_durable(serializer=_Broken())
    await reader.put("anything")
    with pytest.raises(SerializationError, match="KeyError") as caught:
        await reader.get(timeout=30)
    assert isinstance(caught.value.__cause__, KeyError)
    await _wait_until(lambda: reader.statistics().current_leased == 0, "the bad item is buried")
    (dead,) = await reader.dead_letters()
    assert dead.item == b"x"
    assert "KeyError" in dead.error


_WRITER = """
import asyncio, sys
import conveyor

async def main(url, name):
    q = await conveyor.open_queue(url, name=name)
    await q.put(10 ** 6000)
    await q.put("after")
    await q.aclose()

sys.set_int_max_str_digits(0)
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_an_int_written_by_a_process_without_the_digit_limit(
    durable_url: str, open_durable: Any, queue_name: str
) -> None:
    if not 0 < sys.get_int_max_str_digits() < 6000:
        pytest.skip("this interpreter reads ints of 6000 digits")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    written = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _WRITER, durable_url, queue_name],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert written.returncode == 0, written.stderr.decode()
    reader = await open_durable()
    with pytest.raises(SerializationError, match="digits"):
        await reader.get(timeout=30)
    assert await reader.get(timeout=30) == "after"
    reader.task_done()
    await _wait_until(lambda: reader.statistics().current_leased == 0, "the bad item is buried")
    (dead,) = await reader.dead_letters()
    assert isinstance(dead.item, bytes)
    assert dead.item == b"1" + b"0" * 6000
    await reader.join(timeout=30)


async def test_put_of_an_int_too_long_is_refused_and_nothing_is_stored(
    open_durable: Any,
) -> None:
    if not sys.get_int_max_str_digits():
        pytest.skip("this interpreter converts ints of any length")
    q = await open_durable()
    with pytest.raises(SerializationError, match="digits"):
        await q.put(2**100_000)
    with pytest.raises(SerializationError, match="digits"):
        q.put_nowait(2**100_000)
    with pytest.raises(SerializationError, match="digits"):
        await q.put_many([1, 2**100_000])
    assert await q.aqsize() == 0
    await q.join(timeout=30)


async def test_an_undecodable_item_put_nowait_here_is_not_lost_on_its_way_to_a_getter(
    open_durable: Any,
) -> None:
    # get_nowait() may take a put_nowait() item of this process before it is committed.
    # One that does not decode must still reach the store, and the dead letters.
    queue = await open_durable(serializer=_Broken())
    queue.put_nowait("anything")
    with pytest.raises(QueueEmpty):  # not handed out: it must go through the store
        queue.get_nowait()
    await queue.flush()
    with pytest.raises(SerializationError, match="KeyError"):
        await queue.get(timeout=30)
    await _wait_until(lambda: queue.statistics().current_leased == 0, "the bad item is buried")
    (dead,) = await queue.dead_letters()
    assert dead.item == b"x"
    await queue.join(timeout=30)
