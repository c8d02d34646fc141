"""``retry_timeout`` bounds every call: at most ``retry_timeout`` plus one ``socket_timeout``.

The server is stopped (SIGSTOP): the kernel still accepts connections, nothing answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import conveyor
from tests.backends.redis_backend import RedisServer, private_server, unique_name

pytestmark = pytest.mark.timeout(120)

__all__ = ["private_server"]

RETRY = 1.0
SOCKET = 1.0
# Machines are noisy; the bound is what matters (before: 10 s for a call, 15 s for an open).
SLACK = 1.5


async def _elapsed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.monotonic()
    with pytest.raises(conveyor.BackendUnavailableError, match="retry_timeout"):
        await asyncio.wait_for(call(), 60)
    return time.monotonic() - started


@pytest.mark.parametrize("socket_timeout", [SOCKET, None], ids=["socket_1s", "socket_default"])
async def test_calls_on_a_stopped_server_give_up_within_the_budget(
    private_server: RedisServer, request: pytest.FixtureRequest, socket_timeout: float | None
) -> None:
    query = f"retry_timeout={RETRY:g}"
    if socket_timeout is not None:
        query += f"&socket_timeout={socket_timeout:g}"
    bound = RETRY + (socket_timeout or 5.0) + SLACK
    url = f"{private_server.url}?{query}"
    name = unique_name(request)
    q: Any = await conveyor.open_queue(url, name=name)
    try:
        await q.put("before")
        private_server.pause()
        timings = {
            "put": await _elapsed(lambda: q.put("after")),
            "aqsize": await _elapsed(q.aqsize),
            "get": await _elapsed(lambda: q.get()),
            "open_queue": await _elapsed(lambda: conveyor.open_queue(url, name=name)),
        }
        slow = {call: round(took, 2) for call, took in timings.items() if took > bound}
        assert not slow, f"over {bound:g} s: {slow} (all: {timings})"
    finally:
        private_server.resume()
        await q.aclose()
