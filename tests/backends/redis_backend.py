"""The ``redis`` conformance backend, and private ``redis-server`` processes for the tests.

Every test talks to a ``redis-server`` the tests start themselves, on a free port, in a
temporary directory, with AOF on — never to a Redis the machine already runs.  Without the
binary the Redis tests skip with a reason, except under ``CI=true``, where they fail: CI
must not pass by testing nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

import conveyor
from conveyor.backends._base import Store
from tests.backend_registry import Backend, register

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_LIMIT = 15.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def assert_never_shown(secret: str, error: BaseException) -> None:
    """Check that *secret* is in no message or repr of *error* and the errors behind it."""
    chain: BaseException | None = error
    while chain is not None:
        assert secret not in str(chain) + repr(chain)
        chain = chain.__cause__ or chain.__context__


def require_binary(path: str, package: str, tests: str) -> str:
    """Return *path*, or skip (fail under ``CI=true``) without it.

    Args:
        path: The program's path.
        package: The Debian package that installs it, for the message.
        tests: Which tests need it, for the message.
    """
    if os.path.exists(path):
        return path
    reason = f"{os.path.basename(path)} is not installed (apt install {package})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run the {tests}")
    pytest.skip(reason)


def require_redis_server() -> str:
    """Return the ``redis-server`` binary, or skip (fail under ``CI=true``) without it."""
    return require_binary(REDIS_SERVER, "redis-server", "Redis tests")


class RedisServer:
    """One private ``redis-server`` process that a test can kill and start again.

    The port and the data directory stay the same across restarts, so an AOF written
    before a ``kill()`` is what the next ``start()`` loads.
    """

    def __init__(
        self, workdir: Path, *, password: str | None = None, extra_args: Sequence[str] = ()
    ) -> None:
        self.binary = require_redis_server()
        self.workdir = workdir
        self.port = free_port()
        self.password = password
        self.extra_args = list(extra_args)  # more redis-server options, e.g. rename-command
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0, with the password if there is one."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and return once it answers ``PING``."""
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_LIMIT
        while not self.answers():
            if self.process.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.02)

    def answers(self) -> bool:
        """Return whether the server answers ``PING`` (``-NOAUTH`` counts as an answer)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, and nothing answers on them."""
        assert self.process is not None
        assert self.process.poll() is None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server: it goes on with what queued up meanwhile."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server politely (or kill it if it does not stop)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def info(self, section: str) -> dict[str, str]:
        """Return the ``INFO`` *section* as a dict (through a plain socket, no client)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5.0) as sock:
            if self.password:
                sock.sendall(f"AUTH {self.password}\r\n".encode())
                sock.recv(64)
            sock.sendall(f"INFO {section}\r\n".encode())
            data = b""
            header_end = -1
            while header_end < 0:
                data += sock.recv(65536)
                header_end = data.find(b"\r\n")
            length = int(data[1:header_end])
            while len(data) < header_end + 2 + length:
                data += sock.recv(65536)
        body = data[header_end + 2 : header_end + 2 + length].decode()
        return dict(
            line.split(":", 1) for line in body.splitlines() if ":" in line and line[0] != "#"
        )


class Startable(Protocol):
    """What a session's shared servers are: started once, stopped at the session's end."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)

_SHARED: dict[str, Any] = {}


def session_setup(
    config: pytest.Config,
    key: str,
    build: Callable[[Path], S],
    usable: Callable[[S], bool] = lambda setup: True,
) -> S:
    """Return the session's setup *key*, built in a new temporary directory on first use.

    It is started here, and stopped (its directory removed) when the session ends, or at
    once if it fails to start.  One that is no longer *usable* is replaced.  A plain
    function as well as the fixtures, because backend modules are imported by
    ``conftest.py`` rather than loaded as pytest plugins.
    """
    found: S | None = _SHARED.get(key)
    if found is not None and usable(found):
        return found
    workdir = Path(tempfile.mkdtemp(prefix=f"conveyor-{key}-"))
    setup: S | None = None
    try:
        setup = build(workdir)
        setup.start()
    except BaseException:
        if setup is not None:
            setup.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    _SHARED[key] = made = setup

    def cleanup() -> None:
        made.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    config.add_cleanup(cleanup)
    return made


def shared(key: str) -> Any:
    """The session's setup *key*, started already (``session_setup``)."""
    return _SHARED[key]


def shared_server(config: pytest.Config) -> RedisServer:
    """Return the session's shared server, starting it (again, if it died) on first use."""
    return session_setup(
        config,
        "redis",
        RedisServer,
        lambda server: server.process is not None and server.process.poll() is None,
    )


@pytest.fixture(scope="session")
def redis_server(pytestconfig: pytest.Config) -> RedisServer:
    """The session's private ``redis-server`` (AOF on); tests use unique queue names."""
    return shared_server(pytestconfig)


@pytest.fixture
def private_server() -> Iterator[RedisServer]:
    """A server of the test's own, which it may kill, pause and start again."""
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
    server = RedisServer(workdir)
    server.start()
    yield server
    server.resume()  # a paused server would ignore the polite stop
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def unique_name(request: pytest.FixtureRequest) -> str:
    """Return a queue name no other test uses on the shared server."""
    return f"{request.node.name[:60]}-{uuid.uuid4().hex[:12]}"


async def make(request: pytest.FixtureRequest, maxsize: float, kind: str) -> Any:
    """Open a fresh Redis queue on the shared server (FIFO only)."""
    if kind != "fifo":
        raise ValueError(f"Redis queues are FIFO only, not {kind!r}")
    server = shared_server(request.config)
    return await conveyor.open_queue(
        f"redis://127.0.0.1:{server.port}/0", name=unique_name(request), maxsize=maxsize
    )


register(
    Backend(
        "redis",
        make,
        differences={
            "lifo": "durable queues are FIFO: a shared log of work, not a stack",
            "priority": "durable queues are FIFO: a shared log of work, not a heap",
            "any_item": "items cross machines as JSON by default (pickle is opt-in only)",
            "asyncio_repr": (
                "the items live in Redis: repr() shows the last known size and counts, "
                "not the items"
            ),
            "none_maxsize_refused": "the bound is stored with the queue: open_queue(maxsize=None),"
            " the default, uses the stored one",
            "exact_sync_view": (
                "qsize()/empty()/full() and the _nowait methods cannot do network I/O; they "
                "use the last known shared state"
            ),
        },
    )
)


OpenStore = Callable[..., Awaitable["Store"]]
"""``await open_named(name=None, **options)``: what the ``open_named`` fixture gives."""


@pytest.fixture
async def open_named(redis_server: RedisServer) -> AsyncIterator[OpenStore]:
    """``await open_named(name=None)``: a store on the shared server (a new name by default)."""
    from conveyor.backends.redis import open_store

    opened: list[Store] = []

    async def opener(name: str | None = None, **options: object) -> Store:
        store = await open_store(
            urllib.parse.urlsplit(redis_server.url), name or uuid.uuid4().hex, **options
        )
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.aclose()
