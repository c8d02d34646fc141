"""Fixtures shared by every test: the backend matrix and queue factories."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.backend_registry import BACKEND_MODULES, BACKENDS, Backend

for _module in BACKEND_MODULES:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise

MakeQueue = Callable[..., Awaitable[Any]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", list(BACKENDS), indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend under test, after skipping what it declares it does differently."""
    chosen = BACKENDS[request.param]
    if not chosen.extras and request.node.get_closest_marker("extras"):
        pytest.skip(f"{chosen.name}: the test uses conveyor's additions to the queue surface")
    for marker in request.node.iter_markers("needs"):
        for feature in marker.args:
            if feature in chosen.differences:
                pytest.skip(f"{chosen.name} declares: {chosen.differences[feature]}")
    return chosen


@pytest.fixture
async def make_queue(backend: Backend, request: pytest.FixtureRequest) -> AsyncIterator[MakeQueue]:
    """``await make_queue(maxsize=0, kind="fifo")`` returns a fresh queue of the backend."""
    made: list[Any] = []

    async def make(maxsize: float = 0, kind: str = "fifo") -> Any:
        queue = await backend.make(request, maxsize, kind)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        if backend.close is not None:
            await backend.close(queue)
        else:
            await queue.aclose()
