"""Redis behind Sentinel: the URL, following the primary, replicated durability.

Against the session's Sentinel setup (1 primary, 1 replica, 3 sentinels:
``sentinel_backend.py``); the failovers with processes mid-run are in
``test_sentinel_faults.py``.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import conveyor
from conveyor.backends.redis import open_store
from tests.backends.redis_backend import (
    RedisServer,
    assert_never_shown,
    free_port,
    redis_server,
    require_redis_server,
)
from tests.backends.sentinel_backend import SentinelSetup, healthy_setup, sentinel_setup
from tests.backends.test_redis_tls import TLSRedisServer

__all__ = ["healthy_setup", "redis_server", "sentinel_setup"]  # fixtures, used by name

# Long enough to outlast a failover and Sentinel's reconfiguration of the old primary
# (about 8 s after the switch), during which a replicated change has no replica to wait on.
RETRY = "retry_timeout=40"


# -- URLs: refused before connecting, secrets never shown ----------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+sentinel://127.0.0.1:26379", "service's name"),
        ("redis+sentinel://127.0.0.1:26379/", "service's name"),
        ("redis+sentinel://127.0.0.1:26379/svc/zero", "service's name"),
        ("redis+sentinel://127.0.0.1:26379/svc/0/1", "service's name"),
        ("redis+sentinel://127.0.0.1:26379,127.0.0.1:port/svc", "bad sentinel address"),
        ("redis+sentinel://127.0.0.1:26379,,127.0.0.1:1/svc", "bad sentinel address"),
        ("redis+sentinel://[::1]x:1/svc", "bad sentinel address"),
        ("redis://127.0.0.1:6379,127.0.0.1:6380/0", "redis+sentinel://host:26379"),
        ("rediss://127.0.0.1:6379,127.0.0.1:6380/0", "rediss+sentinel://host:26379"),
        ("redis+sentinel://127.0.0.1:26379/svc?durability=paper", "durability"),
        ("redis+sentinel://127.0.0.1:26379/svc?ssl_ca_certs=/ca.pem", "rediss+sentinel://"),
        ("redis://127.0.0.1:1/0?sentinel_password=x", "redis+sentinel:// URL only"),
    ],
)
async def test_bad_or_mixed_urls_are_refused_before_connecting(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as caught:
        await asyncio.wait_for(conveyor.open_queue(url, name="q"), 1.0)
    if "service" in words or "address" in words:
        assert "redis+sentinel://[[user]:password@]host:26379[,host:26380,...]" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:s3cret-pw@127.0.0.1:1,127.0.0.1:2/svc/zero",
        "redis+sentinel://user:s3cret-pw@127.0.0.1:port/svc",
        "redis+sentinel://127.0.0.1:1/svc/x?sentinel_password=s3cret-pw",
        "redis+sentinel://127.0.0.1:1/svc?sentinel_password=s3cret-pw&durability=no",
        "redis+cluster://:s3cret-pw@127.0.0.1:1/5",
        "redis://:s3cret-pw@127.0.0.1:1,127.0.0.1:2/0",
    ],
)
async def test_no_error_shows_a_password(url: str) -> None:
    with pytest.raises(ValueError, match=r"\w") as caught:
        await conveyor.open_queue(url, name="q")
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(caught.value)


async def test_unreachable_sentinels_are_named_without_the_password() -> None:
    url = (
        "redis+sentinel://:s3cret-pw@127.0.0.1:1/svc?retry_timeout=0.3&sentinel_password=s3cret-pw"
    )
    with pytest.raises(conveyor.BackendUnavailableError) as caught:
        await conveyor.open_queue(url, name="q")
    message = str(caught.value)
    assert "svc (Sentinel 127.0.0.1:1)" in message
    assert "s3cret" not in message
    assert_never_shown("s3cret", caught.value)


# -- following the primary ---------------------------------------------------------


async def test_a_queue_opened_through_sentinel_reaches_the_primary(
    sentinel_setup: SentinelSetup,
) -> None:
    async with conveyor.open_queue(sentinel_setup.url(), name="reach") as queue:
        await queue.put("one")
        assert await queue.get() == "one"
        queue.task_done()
        assert queue.statistics().backend == "redis"


async def test_receipts_and_the_incarnation_survive_a_failover(
    healthy_setup: SentinelSetup,
) -> None:
    # The replica had every change (WAIT), so the promoted one holds the same queue: the
    # same epoch (no reset), the same leases (a receipt of before acknowledges once).
    url = healthy_setup.url(query=f"durability=replicated&{RETRY}")
    store = await open_store(urllib.parse.urlsplit(url), "survives")
    try:
        assert await store.put([b"1", b"2", b"3"])
        (first,) = await store.claim(1, 30.0, None)
        await asyncio.to_thread(healthy_setup.failover)
        acked = await store.ack([first.receipt])
        again = await store.ack([first.receipt])
        counts = await store.counts()
    finally:
        await store.aclose()
    assert acked == [True]
    assert again == [False]
    assert (counts.ready, counts.leased) == (2, 0)


async def test_replicated_durability_on_one_server_without_replicas_fails(
    redis_server: RedisServer,
) -> None:
    # durability="replicated" holds for a plain redis:// URL too: nothing to wait for.
    url = f"{redis_server.url}?durability=replicated&retry_timeout=0.5&socket_timeout=0.5"
    store = await open_store(urllib.parse.urlsplit(url), "lonely")
    try:
        with pytest.raises(conveyor.BackendUnavailableError, match="no replica") as caught:
            await store.put([b"x"])
    finally:
        await store.aclose()
    assert caught.value.outcome_unknown


async def test_a_wiped_primary_is_a_new_incarnation_not_a_failover(
    healthy_setup: SentinelSetup,
) -> None:
    # The keys vanish on the primary (and so on its replica): that is a reset, as on one
    # server, and the failover above, whose data survived, is not.
    store = await open_store(urllib.parse.urlsplit(healthy_setup.url()), "wiped")
    try:
        assert await store.put([b"1"])
        (delivery,) = await store.claim(1, 30.0, None)
        primary = healthy_setup.primary()
        await asyncio.to_thread(_flushall, primary.port)
        with pytest.raises(conveyor.StoreResetError, match="vanished"):
            await store.put([b"2"])
        assert await store.ack([delivery.receipt]) == [False]
        assert await store.put([b"3"])
        assert (await store.counts()).ready == 1
    finally:
        await store.aclose()


def _flushall(port: int) -> None:
    client = redis.Redis(port=port)
    try:
        client.flushall()
    finally:
        client.close()  # type: ignore[no-untyped-call,unused-ignore]


async def test_replicated_durability_fails_as_outcome_unknown_without_a_replica(
    healthy_setup: SentinelSetup,
) -> None:
    url = healthy_setup.url(query="durability=replicated&retry_timeout=1&socket_timeout=0.5")
    store = await open_store(urllib.parse.urlsplit(url), "no-replica")
    replica = next(n for n in healthy_setup.nodes if n is not healthy_setup.primary())
    try:
        replica.pause()  # connected, and confirming nothing
        with pytest.raises(conveyor.BackendUnavailableError) as caught:
            await store.put([b"x"])
    finally:
        replica.resume()
        await store.aclose()
    assert caught.value.outcome_unknown
    assert "no replica to confirm" in str(caught.value)
    assert "may or may not" in str(caught.value)


@pytest.fixture
def tls_sentinel_url(tmp_path: Path) -> Iterator[str]:
    """A TLS-only primary and a TLS-only sentinel watching it; the service's URL."""
    binary = require_redis_server()
    (tmp_path / "node").mkdir()
    server = TLSRedisServer(tmp_path / "node")
    server.start()
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port 0\ntls-port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"tls-cert-file {server.cert}\ntls-key-file {server.key}\n"
        f"tls-ca-cert-file {server.ca}\ntls-auth-clients no\ntls-replication yes\n"
        f"sentinel monitor tls-service 127.0.0.1 {server.port} 1\n"
    )
    sentinel = subprocess.Popen(
        [binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield f"rediss+sentinel://127.0.0.1:{port}/tls-service/0?{server.trust()}"
    finally:
        sentinel.terminate()
        sentinel.wait(10)
        server.stop()


async def test_rediss_sentinel_talks_tls_to_the_sentinels_and_the_primary(
    tls_sentinel_url: str,
) -> None:
    # No plain port on either: a queue that works went through TLS both ways, trusting
    # the CA given in the URL (retried while the sentinel starts).
    async with conveyor.open_queue(tls_sentinel_url, name="tls") as queue:
        await queue.put("over TLS")
        assert await queue.get() == "over TLS"
        queue.task_done()
