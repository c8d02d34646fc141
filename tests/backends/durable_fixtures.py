"""Fixtures for tests of durable behaviour that every durable backend must show.

``durable_url`` is parametrized over the durable backends available here; each test gets
a fresh store (a new SQLite file) or at least a fresh queue name (``queue_name``), so
tests never see each other's items.  A backend adds itself to ``DURABLE_BACKENDS``: a
name mapped to a function that returns a URL for a test, or skips it with a reason.
Import the fixtures into a test module with
``from tests.backends.durable_fixtures import durable_url, queue_name``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

UrlFactory = Callable[[pytest.FixtureRequest], str]


def _sqlite_url(request: pytest.FixtureRequest) -> str:
    tmp_path = request.getfixturevalue("tmp_path")
    return f"sqlite:///{tmp_path / 'queue.db'}"


def _redis_url(request: pytest.FixtureRequest) -> str:
    # The session's private redis-server (skips, or fails under CI=true, without one).
    from tests.backends.redis_backend import shared_server

    return shared_server(request.config).url


DURABLE_BACKENDS: dict[str, UrlFactory] = {"sqlite": _sqlite_url, "redis": _redis_url}


@pytest.fixture(params=sorted(DURABLE_BACKENDS))
def durable_url(request: pytest.FixtureRequest) -> str:
    """A URL of a durable store, fresh or shared, one per durable backend."""
    return DURABLE_BACKENDS[request.param](request)


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"
