"""What ``open_queue`` checks of a Redis server before it hands out a queue.

Real servers with the settings under test: an eviction policy that may delete the queue's
keys (``allkeys-*``), and ACL users that lack a permission the queue needs.
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import conveyor
from tests.backends.redis_backend import RedisServer, unique_name

pytestmark = pytest.mark.timeout(60)

PASSWORD = "pw-9f3a1c"
# Every command a queue runs, on its keys and channels only: the least a queue user needs.
NEEDED = (
    "+evalsha +script|load +subscribe +publish +del +time +expire +hset +hsetnx +hget +hmget"
    " +hgetall +hincrby +hdel +zadd +zcard +zcount +zrange +zrangebyscore +zscore +zmscore +zrem"
    " +rpush +lpop +llen +lindex +lset +sadd +srem +scard +sismember"
)


@pytest.fixture
def start_server() -> Iterator[Any]:
    """``start_server(*redis_server_args)``: a private server, stopped after the test."""
    started: list[RedisServer] = []

    def start(*args: str) -> RedisServer:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="conveyor-redis-")), extra_args=args)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def admin(server: RedisServer, *args: str) -> bytes:
    """Run one command as the default user (no password) and return its raw reply."""
    command = b"*%d\r\n" % len(args)
    for arg in args:
        data = arg.encode()
        command += b"$%d\r\n%b\r\n" % (len(data), data)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as sock:
        sock.sendall(command)
        reply = sock.recv(65536)
    assert not reply.startswith(b"-"), reply
    return reply


def acl_user(server: RedisServer, user: str, rules: str) -> str:
    """Create *user* (password ``PASSWORD``) with *rules*; return its URL."""
    admin(server, "ACL", "SETUSER", user, "on", f">{PASSWORD}", *rules.split())
    return f"redis://{user}:{PASSWORD}@127.0.0.1:{server.port}/0"


def key_count(server: RedisServer) -> int:
    return int(admin(server, "DBSIZE")[1:].strip())


async def round_trip(url: str, name: str) -> None:
    async with conveyor.open_queue(url, name=name) as q:
        await q.put({"n": 1})
        assert await q.get(timeout=10) == {"n": 1}
        q.task_done()
        await q.join(timeout=10)


# -- eviction policy (#11 item 6) --------------------------------------------------------


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
async def test_a_server_that_evicts_any_key_is_refused(
    start_server: Any, request: pytest.FixtureRequest, policy: str
) -> None:
    server = start_server("--maxmemory-policy", policy)
    with pytest.raises(conveyor.BackendError) as caught:
        await conveyor.open_queue(server.url, name=unique_name(request))
    text = str(caught.value)
    assert f"maxmemory-policy {policy}" in text
    assert "noeviction" in text
    assert not isinstance(caught.value, conveyor.BackendUnavailableError)
    assert key_count(server) == 0  # refused before writing anything


async def test_the_policy_is_read_from_info_when_config_is_disabled(
    start_server: Any, request: pytest.FixtureRequest
) -> None:
    server = start_server("--maxmemory-policy", "allkeys-lru", "--rename-command", "CONFIG", "")
    with pytest.raises(conveyor.BackendError, match="maxmemory-policy allkeys-lru"):
        await conveyor.open_queue(server.url, name=unique_name(request))


async def test_the_policy_is_read_from_info_when_the_acl_forbids_config(
    start_server: Any, request: pytest.FixtureRequest
) -> None:
    server = start_server("--maxmemory-policy", "allkeys-lfu")
    url = acl_user(server, "app", "~* &* +@all -config")
    with pytest.raises(conveyor.BackendError, match="maxmemory-policy allkeys-lfu") as caught:
        await conveyor.open_queue(url, name=unique_name(request))
    assert PASSWORD not in str(caught.value)


async def test_volatile_and_noeviction_policies_open(
    start_server: Any, request: pytest.FixtureRequest
) -> None:
    for policy in ("volatile-lru", "noeviction"):
        server = start_server("--maxmemory-policy", policy)
        await round_trip(server.url, unique_name(request))


async def test_an_unreadable_policy_opens_with_a_warning(
    start_server: Any, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    url = acl_user(start_server(), "app", "~* &* +@all -config -info")
    with caplog.at_level(logging.WARNING, logger="conveyor"):
        await round_trip(url, unique_name(request))
    assert any("maxmemory-policy" in r.getMessage() for r in caplog.records)
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


# -- ACL permissions (#11 item 14) -------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "missing"),
    [
        ("~* &* +@all -subscribe", ["subscribe"]),
        ("~* &* +@all -publish", ["publish"]),
        ("~* &* +@all -publish -subscribe", ["publish", "subscribe"]),
        ("~* &* +@all -lpop -hincrby", ["hincrby", "lpop"]),
        ("~* &* +@all -evalsha", ["evalsha"]),
    ],
)
async def test_a_user_without_a_needed_permission_is_refused_at_open(
    start_server: Any, request: pytest.FixtureRequest, rules: str, missing: list[str]
) -> None:
    url = acl_user(start_server(), "app", rules)
    started = time.monotonic()
    with pytest.raises(conveyor.BackendError) as caught:
        await conveyor.open_queue(url, name=unique_name(request))
    assert time.monotonic() - started < 3  # told at once, not after a silent wait
    text = str(caught.value)
    assert "'app'" in text
    for command in missing:
        assert f"+{command}" in text
    assert PASSWORD not in text
    assert not isinstance(caught.value, conveyor.BackendUnavailableError)


async def test_a_user_limited_to_the_channel_pattern_of_other_queues_is_refused(
    start_server: Any, request: pytest.FixtureRequest
) -> None:
    url = acl_user(start_server(), "app", "~* resetchannels &other:* +@all")
    with pytest.raises(conveyor.BackendError, match=r"\+publish") as caught:
        await conveyor.open_queue(url, name=unique_name(request))
    assert "subscribe" in str(caught.value)


async def test_a_user_with_just_the_needed_permissions_works(
    start_server: Any, request: pytest.FixtureRequest
) -> None:
    url = acl_user(start_server(), "app", f"resetchannels ~conveyor:* &conveyor:* {NEEDED}")
    await round_trip(url, unique_name(request))
