"""conveyor's thread queues and the two libraries users move from: janus and culsans.

The migration tests (``test_thread_migration.py``) run one body against each
:class:`Peer`, as the conformance suite runs its bodies against ``asyncio.Queue``.  A peer
that documents another behaviour *declares* it, with the reason, in ``differences``; the
body then skips on that peer (``peer.require("feature")``) instead of being edited.  A
peer that is not installed skips with its name (fails under ``CI=true``).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any

import pytest

KINDS = ("fifo", "lifo", "priority")


@dataclasses.dataclass(frozen=True)
class Peer:
    """A mixed sync/async queue library, seen through the names a user writes.

    Attributes:
        name: The package name (``conveyor``, ``janus``, ``culsans``).
        classes: Kind (``fifo``, ``lifo``, ``priority``) -> attribute of the package.
        sync_shutdown: Attribute naming what the sync face raises once shut down.
        async_shutdown: Attribute naming what the async face raises once shut down.
        differences: Feature -> why this peer does it differently (from its docs).
    """

    name: str
    classes: dict[str, str]
    sync_shutdown: str
    async_shutdown: str
    differences: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def module(self) -> Any:
        """The package, imported.

        Skips the test when it is not installed, except under ``CI=true``, where the
        ``dev`` extra installs both peers: there a missing one fails.
        """
        try:
            return importlib.import_module(self.name)
        except ImportError:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{self.name} is not installed; CI installs it with .[dev]")
            pytest.skip(f"{self.name} is not installed (pip install {self.name})")

    def make(self, maxsize: int = 0, kind: str = "fifo") -> Any:
        """Return a new queue of *kind* bounded to *maxsize* items."""
        return getattr(self.module, self.classes[kind])(maxsize)

    def exception(self, face: str) -> type[BaseException]:
        """Return the class the *face* (``sync`` or ``async``) raises once shut down."""
        name = self.sync_shutdown if face == "sync" else self.async_shutdown
        cls: type[BaseException] = getattr(self.module, name)
        return cls

    def require(self, feature: str) -> None:
        """Skip the calling test, with the declared reason, if this peer lacks *feature*."""
        if feature in self.differences:
            pytest.skip(f"{self.name} declares: {self.differences[feature]}")


PEERS = {
    "conveyor": Peer(
        "conveyor",
        {"fifo": "ThreadQueue", "lifo": "LifoThreadQueue", "priority": "PriorityThreadQueue"},
        "SyncQueueShutDown",
        "QueueShutDown",
    ),
    "janus": Peer(
        "janus",
        {"fifo": "Queue", "lifo": "LifoQueue", "priority": "PriorityQueue"},
        "SyncQueueShutDown",
        "AsyncQueueShutDown",
        differences={
            "one_shutdown_class": "SyncQueueShutDown and AsyncQueueShutDown are unrelated",
            "settable_maxsize": "maxsize is a read-only property",
            "queue_counters": "unfinished_tasks and is_shutdown exist on the faces only",
            "asyncio_repr": "the faces keep object's repr (<janus._AsyncQueueProxy object>)",
            "nan_timeout_raises": "a NaN timeout blocks forever, as queue.Queue's does",
            "many_loops": "the async face is bound to the first event loop that uses it",
        },
    ),
    "culsans": Peer(
        "culsans",
        {"fifo": "Queue", "lifo": "LifoQueue", "priority": "PriorityQueue"},
        "SyncQueueShutDown",
        "AsyncQueueShutDown",
        differences={
            "asyncio_repr": "the faces show culsans.AsyncQueueProxy(<culsans.Queue ...>)",
        },
    ),
}
