"""Fixtures for tests of durable behaviour that every durable backend must show.

``durable_url`` is parametrized over the durable backends available here; each test gets
a fresh store (a new SQLite file) or at least a fresh queue name (``queue_name``), so
tests never see each other's items.  A backend adds itself to ``DURABLE_BACKENDS``: a
name mapped to a function that returns a URL for a test, or skips it with a reason.
Import the fixtures into a test module with
``from tests.backends.durable_fixtures import durable_url, open_durable, queue_name``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import conveyor
from conveyor._durable import DurableQueue

UrlFactory = Callable[[pytest.FixtureRequest], str]
OpenDurable = Callable[..., Awaitable[DurableQueue[Any]]]


def _sqlite_url(request: pytest.FixtureRequest) -> str:
    tmp_path = request.getfixturevalue("tmp_path")
    return f"sqlite:///{tmp_path / 'queue.db'}"


def _redis_url(request: pytest.FixtureRequest) -> str:
    # The session's private redis-server (skips, or fails under CI=true, without one).
    from tests.backends.redis_backend import shared_server

    return shared_server(request.config).url


def _sentinel_url(request: pytest.FixtureRequest) -> str:
    # The session's Sentinel setup, healthy (skips, or fails under CI=true, without Redis).
    from tests.backends.sentinel_backend import shared_setup

    return shared_setup(request.config).url()


def _cluster_url(request: pytest.FixtureRequest) -> str:
    # The session's Redis Cluster, healthy (skips, or fails under CI=true, without Redis).
    from tests.backends.cluster_backend import shared_setup

    return shared_setup(request.config).url()


DURABLE_BACKENDS: dict[str, UrlFactory] = {
    "sqlite": _sqlite_url,
    "redis": _redis_url,
    "sentinel": _sentinel_url,
    "cluster": _cluster_url,
}


@pytest.fixture(params=sorted(DURABLE_BACKENDS))
def durable_url(request: pytest.FixtureRequest) -> str:
    """A URL of a durable store, fresh or shared, one per durable backend."""
    return DURABLE_BACKENDS[request.param](request)


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def open_durable(durable_url: str, queue_name: str) -> AsyncIterator[OpenDurable]:
    """``await open_durable(maxsize=None, **options)``: the test's queue, opened once more.

    Every queue it opens is the same shared queue (one name, one store), each with
    connections of its own, as if in another process; all are closed after the test.
    As with ``open_queue``, ``maxsize=None`` uses the bound stored with the queue.
    """
    opened: list[DurableQueue[Any]] = []

    async def open_(maxsize: float | None = None, **options: Any) -> DurableQueue[Any]:
        queue = await conveyor.open_queue(durable_url, name=queue_name, maxsize=maxsize, **options)
        assert isinstance(queue, DurableQueue)
        opened.append(queue)
        return queue

    yield open_
    for queue in opened:
        await queue.aclose()
