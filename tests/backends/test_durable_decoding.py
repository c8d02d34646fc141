"""Items that cannot be encoded or decoded: a ``SerializationError``, nothing lost.

Runs for every durable backend in ``durable_fixtures``.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from conveyor import SerializationError
from tests.backends.durable_fixtures import durable_url, open_durable, queue_name

__all__ = ["durable_url", "open_durable", "queue_name"]


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
