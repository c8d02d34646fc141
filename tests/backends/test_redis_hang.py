"""Redis queues against a server that stops answering (SIGSTOP), then resumes (SIGCONT).

A stopped server keeps its connections open and the kernel still accepts new ones, but
nothing is answered: every read times out.  Operations must give up within the retry
budget and say when a change may still be applied; a reply that comes late must never be
read as the answer to a later command; and once the server resumes, the same queue
objects work on, with nothing lost and nothing duplicated beyond what at-least-once
delivery allows.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import conveyor
from tests.backends.redis_backend import RedisServer, private_server, unique_name

pytestmark = pytest.mark.timeout(90)

__all__ = ["private_server"]

RETRY = 0.5  # retry_timeout: the budget each operation gets while the server is stopped
SOCKET = 0.2  # socket_timeout: how long one reply is waited for
LEASE = 2.0
# Far above RETRY + SOCKET + backoff, far below the test's timeout: exceeding it is a hang.
BOUND = 10.0
IN_DOUBT = "may or may not have been stored"
NOT_SENT = "never reached the server"


async def _open(server: RedisServer, name: str, lease: float = LEASE) -> conveyor.DurableQueue[Any]:
    queue = await conveyor.open_queue(
        server.url,
        name=name,
        retry_timeout=RETRY,
        socket_timeout=SOCKET,
        lease_timeout=lease,
    )
    assert isinstance(queue, conveyor.DurableQueue)
    return queue


@contextlib.asynccontextmanager
async def _timeout(seconds: float) -> AsyncIterator[None]:
    """``asyncio.timeout()`` (Python 3.11+): cancel the block's task after *seconds*."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            yield
        return
    pytest.skip("asyncio.timeout() needs Python 3.11")  # pragma: no cover
    yield  # pragma: no cover


async def _unavailable(operation: Any) -> conveyor.BackendUnavailableError:
    """Await *operation*, which must raise BackendUnavailableError in bounded time."""
    started = time.monotonic()
    with pytest.raises(conveyor.BackendUnavailableError) as caught:
        await asyncio.wait_for(operation, BOUND)
    assert time.monotonic() - started < BOUND
    return caught.value


async def _drain(
    queue: conveyor.DurableQueue[Any], observer: conveyor.DurableQueue[Any]
) -> tuple[list[Any], set[Any]]:
    """Get and acknowledge until the store holds nothing unfinished.

    Items leased by a claim that ran late (its client had given up) come back when
    their lease lapses, so this waits for those too.

    Returns:
        Every item got, in order, and the items whose lease lapsed before their ack
        (those may be delivered once more).
    """
    got: list[Any] = []
    lapsed: set[Any] = set()
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        try:
            receipt = await queue.get_with_receipt(timeout=0.2)
        except TimeoutError:
            if (await observer.refresh()).unfinished_tasks == 0:
                return got, lapsed
            continue
        got.append(receipt.item)
        try:
            await queue.ack(receipt)
        except conveyor.LeaseExpiredError:
            lapsed.add(receipt.item)
    raise AssertionError(f"items still unfinished after {BOUND} s; got {got}")


async def test_a_stopped_server_fails_operations_in_time_and_the_queue_works_on(
    private_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    name = unique_name(request)
    queue = await _open(private_server, name)
    observer = await _open(private_server, name)
    try:
        returned: set[int] = set()  # put() returned: these must never be lost
        in_doubt: set[int] = set()  # put() raised, saying the outcome is unknown
        for i in range(20):
            await queue.put(i)
            returned.add(i)
        acked: list[int] = []
        for _ in range(5):
            receipt = await queue.get_with_receipt(timeout=5)
            await queue.ack(receipt)
            acked.append(receipt.item)
        assert acked == [0, 1, 2, 3, 4]
        held = await queue.get_with_receipt(timeout=5)  # got before the stop, not acked
        assert held.item == 5
        seen = await observer.refresh()  # some may be leased ahead into queue's buffer
        assert seen.current_size + seen.current_leased == 15

        private_server.pause()
        try:
            error = await _unavailable(queue.put(100))
            assert IN_DOUBT in str(error)
            assert f"127.0.0.1:{private_server.port}" in str(error)
            in_doubt.add(100)
            # Concurrent puts share a batch.  Its command was sent (in doubt) or, when no
            # new connection could even be set up, never left this process (not stored).
            results = await asyncio.wait_for(
                asyncio.gather(*(queue.put(i) for i in range(101, 105)), return_exceptions=True),
                BOUND,
            )
            for i, result in zip(range(101, 105), results, strict=True):
                assert isinstance(result, conveyor.BackendUnavailableError)
                if IN_DOUBT in str(result):
                    in_doubt.add(i)
                else:
                    assert NOT_SENT in str(result)
            await _unavailable(queue.ack(held))
            await _unavailable(observer.aqsize())
            await _unavailable(observer.get())  # its claim gets no answer either
        finally:
            private_server.resume()

        # The same objects work on; each reply answers its own command (a late reply
        # read in its place would break these counts and items).
        for i in range(200, 210):
            await asyncio.wait_for(queue.put(i), BOUND)
            returned.add(i)
        got, lapsed = await _drain(queue, observer)
        assert await observer.aqsize() == 0
        counts = await observer.refresh()
        assert (counts.current_leased, counts.current_dead) == (0, 0)
        await asyncio.wait_for(queue.join(), BOUND)
    finally:
        private_server.resume()
        await queue.aclose()
        await observer.aclose()

    # Nothing whose put() returned is lost (the acked ones were done before the stop).
    assert set(got) >= returned - set(acked) - {held.item}
    # Nothing foreign: every item got was put, and nothing acked came back.
    assert set(got) <= (returned | in_doubt) - set(acked)
    # Duplicates at-least-once allows: the held item, whose ack's outcome was unknown
    # (if that ack never ran, its lease lapses and it is delivered again), and items whose
    # lease lapsed before their ack in the drain.  A put whose outcome was unknown runs
    # at most once: its resent copies replay its first run's reply, and a copy the server
    # finds only after a newer batch is stale and never runs.
    for item, times in collections.Counter(got).items():
        if item == held.item or item in lapsed:
            assert times <= 2, item
        else:
            assert times == 1, item


async def test_commands_cancelled_against_a_stopped_server_do_not_poison_connections(
    private_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    # A long lease: "a" stays leased across the stop, so its late ack must succeed.
    queue = await _open(private_server, unique_name(request), lease=30.0)
    try:
        await queue.put("a")
        receipt = await queue.get_with_receipt(timeout=5)
        assert receipt.item == "a"
        await queue.put("b")  # after the get: not leased ahead into the queue's buffer

        private_server.pause()
        try:
            # Cancelled in the middle of the command, by the caller's own timeout: each
            # reply arrives after the resume, on a connection that must be gone by then.
            # asyncio.TimeoutError: not the builtin TimeoutError before Python 3.11.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(queue.extend(receipt, 30.0), 0.05)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(queue.dead_letters(), 0.05)
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                # The put's commit is in the store's hands: cancelled, it waits for the
                # commit's outcome (the retry budget), then honours the cancellation.  The
                # commit may still run once the server resumes: "c" may then be stored.
                async with _timeout(0.05):
                    await queue.put("c")
            assert time.monotonic() - started < BOUND
        finally:
            private_server.resume()

        # Every command after the resume reads its own reply.
        assert await queue.dead_letters() == []
        assert await queue.aqsize() in (1, 2)  # "b", and "c" if its late commit ran
        await queue.ack(receipt)
        rest, lapsed = await _drain(queue, queue)
        assert rest in (["b"], ["b", "c"])
        assert not lapsed
        assert await queue.aqsize() == 0
    finally:
        private_server.resume()
        await queue.aclose()
