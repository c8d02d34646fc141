"""The ``sentinel`` conformance backend: Redis behind 1 primary, 1 replica, 3 sentinels.

The tests start the whole setup themselves on free loopback ports, each process in a
directory of its own under one temporary directory (the sentinels' configuration files are
written there, and the sentinels rewrite them as they learn the topology), once per
session: every Sentinel test shares it, and a fault test leaves it healthy again (a
primary, a synced replica, three sentinels agreeing) before the next one runs
(``SentinelSetup.wait_healthy()``).  Failovers are made quick with
``down-after-milliseconds`` and ``failover-timeout``.  Without ``redis-server`` the tests
skip with a reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

import conveyor
from tests.backend_registry import BACKENDS, Backend, register
from tests.backends.redis_backend import (
    START_LIMIT,
    RedisServer,
    free_port,
    require_redis_server,
    session_setup,
    shared,
    unique_name,
)

SERVICE = "conveyor-test"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
HEALTHY_LIMIT = 60.0


class SentinelProcess:
    """One ``redis-server --sentinel`` watching the service, its config file its own."""

    def __init__(self, workdir: Path, primary_port: int) -> None:
        self.binary = require_redis_server()
        self.workdir = workdir
        self.port = free_port()
        self.config = workdir / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            "daemonize no\n"
            f"dir {workdir}\n"
            f"logfile {workdir / 'sentinel.log'}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None
        # Any: redis-py's sync return types are unions of the sync and async ones.
        self.client: Any = redis.Redis(port=self.port, socket_timeout=5.0, decode_responses=True)

    def start(self) -> None:
        """Start the sentinel and return once it answers ``PING``."""
        self.process = subprocess.Popen(
            [self.binary, str(self.config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_LIMIT
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.workdir / "sentinel.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis sentinel did not start: {log}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop the sentinel (kill it if it does not stop)."""
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class SentinelSetup:
    """A primary, its replica and three sentinels; the roles move with each failover."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        first = workdir / "node-a"
        second = workdir / "node-b"
        first.mkdir()
        second.mkdir()
        self.nodes = [RedisServer(first)]
        self.nodes.append(
            RedisServer(second, extra_args=["--replicaof", "127.0.0.1", str(self.nodes[0].port)])
        )
        self.sentinels: list[SentinelProcess] = []
        for i in range(3):
            where = workdir / f"sentinel-{i}"
            where.mkdir()
            self.sentinels.append(SentinelProcess(where, self.nodes[0].port))

    def url(self, scheme: str = "redis+sentinel", query: str = "") -> str:
        """The URL of the service: every sentinel, database 0, then *query* if given."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"{scheme}://{hosts}/{SERVICE}/0" + (f"?{query}" if query else "")

    def start(self) -> None:
        """Start every process and return once the setup is healthy."""
        for node in self.nodes:
            node.start()
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_healthy()

    def stop(self) -> None:
        """Stop every process."""
        for sentinel in self.sentinels:
            sentinel.stop()
        for node in self.nodes:
            node.stop()

    def primary(self) -> RedisServer:
        """The node the sentinels name as the primary now."""
        _, port = self.sentinels[0].client.sentinel_get_master_addr_by_name(SERVICE)
        return next(node for node in self.nodes if node.port == int(port))

    def wait_healthy(self, timeout: float = HEALTHY_LIMIT) -> RedisServer:
        """Start again a node that was killed, and wait until the setup can fail over.

        Healthy: every node runs, every sentinel names the same primary, knows the two
        other sentinels and an up replica, and the primary's replica is online.

        Returns:
            The primary.
        """
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                node.start()
        deadline = time.monotonic() + timeout
        why = ""
        while time.monotonic() < deadline:
            why = self._unhealthy()
            if not why:
                return self.primary()
            time.sleep(0.05)
        raise AssertionError(f"the Sentinel setup did not become healthy: {why}")

    def _unhealthy(self) -> str:
        try:
            named = set()
            for sentinel in self.sentinels:
                master: dict[str, Any] = sentinel.client.sentinel_master(SERVICE)
                if master["flags"] != "master" or master["num-other-sentinels"] != 2:
                    return f"sentinel {sentinel.port} sees {master}"
                replicas = sentinel.client.sentinel_slaves(SERVICE)
                up = [
                    r for r in replicas if r["flags"] == "slave" and r["master-link-status"] == "ok"
                ]
                if len(up) != 1:
                    return f"sentinel {sentinel.port} sees replicas {replicas}"
                named.add(int(master["port"]))
            if len(named) != 1:
                return f"the sentinels name different primaries: {named}"
            primary = next(node for node in self.nodes if node.port in named)
            info = primary.info("replication")
            if info.get("role") != "master" or "state=online" not in info.get("slave0", ""):
                return f"the primary's replication: {info}"
        except (redis.RedisError, OSError, StopIteration) as exc:
            return repr(exc)
        return ""

    def failover(self) -> RedisServer:
        """Make the sentinels promote the replica (``SENTINEL FAILOVER``); return the new primary.

        Returns once every sentinel names the new primary.
        """
        old = self.primary()
        self.sentinels[0].client.execute_command("SENTINEL", "FAILOVER", SERVICE)
        return self.wait_primary_other_than(old)

    def wait_primary_other_than(
        self, old: RedisServer, timeout: float = HEALTHY_LIMIT
    ) -> RedisServer:
        """Wait until every sentinel names a primary other than *old*; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                named = {
                    int(s.client.sentinel_get_master_addr_by_name(SERVICE)[1])
                    for s in self.sentinels
                }
            except (redis.RedisError, OSError):
                named = set()
            if len(named) == 1 and old.port not in named:
                port = named.pop()
                return next(node for node in self.nodes if node.port == port)
            time.sleep(0.05)
        raise AssertionError(f"no sentinel named a new primary within {timeout:g} s")


def shared_setup(config: pytest.Config) -> SentinelSetup:
    """Return the session's Sentinel setup, healthy, starting it on first use."""
    return session_setup(config, "sentinel", SentinelSetup)


def primary_url() -> str:
    """The ``redis://`` URL of the session's primary now, for what talks to it directly."""
    setup: SentinelSetup = shared("sentinel")
    return setup.primary().url


@pytest.fixture(scope="session")
def sentinel_setup(pytestconfig: pytest.Config) -> SentinelSetup:
    """The session's Sentinel setup (1 primary, 1 replica, 3 sentinels)."""
    return shared_setup(pytestconfig)


@pytest.fixture
def healthy_setup(sentinel_setup: SentinelSetup) -> SentinelSetup:
    """The Sentinel setup, healthy again after what the test before did to it."""
    sentinel_setup.wait_healthy()
    return sentinel_setup


async def make(request: pytest.FixtureRequest, maxsize: float, kind: str) -> Any:
    """Open a fresh queue of the service behind Sentinel (FIFO only)."""
    if kind != "fifo":
        raise ValueError(f"Redis queues are FIFO only, not {kind!r}")
    setup = shared_setup(request.config)
    return await conveyor.open_queue(setup.url(), name=unique_name(request), maxsize=maxsize)


# The same queues as the redis backend's, reached through Sentinel: the same differences.
# Named without "redis" so that CI's extra run against the oldest redis-py (-k redis) does
# not run the whole suite a second time through Sentinel (test_redis_sentinel.py runs there).
register(
    Backend("sentinel", make, differences=dict(BACKENDS["redis"].differences), reports="redis")
)
