"""Redis Cluster: the URL, the slot's primary, redirections, sharded wake-ups.

Against the session's cluster (3 primaries, 3 replicas: ``cluster_backend.py``), except
the URL checks, which reach nothing, and the refusals, made on a plain server.  The
resharding of a busy queue and the failovers with processes mid-run are in
``test_cluster_faults.py``.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse

import pytest

import conveyor
from conveyor.backends.redis import RedisStore, open_store
from tests.backends.redis_backend import RedisServer, redis_server

__all__ = ["redis_server"]  # fixtures, used by name

FORMS = "redis+cluster://[[user]:password@]host:port[,host:port,...]"


# -- URLs: refused before connecting, secrets never shown ----------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+cluster://127.0.0.1:7000/1", "database 0 only"),
        ("redis+cluster://127.0.0.1:7000/x", "database 0 only"),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:port", "bad node address"),
        ("redis+cluster://127.0.0.1:7000,,127.0.0.1:7001", "bad node address"),
        ("redis+cluster://[::1]x:7000", "bad node address"),
        ("redis+cluster://127.0.0.1:7000?durability=paper", "durability"),
        ("redis+cluster://127.0.0.1:7000?ssl_ca_certs=/ca.pem", "rediss+cluster://"),
        ("redis+cluster://127.0.0.1:7000?sentinel_password=x", "redis+sentinel:// URL only"),
        ("redis://127.0.0.1:7000,127.0.0.1:7001/0", "redis+cluster://host:port"),
    ],
)
async def test_bad_or_mixed_urls_are_refused_before_connecting(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as caught:
        await asyncio.wait_for(conveyor.open_queue(url, name="q"), 1.0)
    if "database" in words or "address" in words:
        assert FORMS in str(caught.value)


async def test_unreachable_nodes_are_named_without_the_password() -> None:
    url = "redis+cluster://:s3cret-pw@127.0.0.1:1,127.0.0.1:2?retry_timeout=0.3"
    with pytest.raises(conveyor.BackendUnavailableError) as caught:
        await conveyor.open_queue(url, name="q")
    message = str(caught.value)
    assert "Redis Cluster 127.0.0.1:1,127.0.0.1:2" in message
    assert "127.0.0.1:1: " in message  # what each node said
    assert "127.0.0.1:2: " in message
    chain: BaseException | None = caught.value
    while chain is not None:
        assert "s3cret" not in str(chain) + repr(chain)
        chain = chain.__cause__ or chain.__context__


# -- a cluster URL at a plain server, and a plain URL at a cluster node ----------------


async def test_a_server_not_in_cluster_mode_is_named(redis_server: RedisServer) -> None:
    url = f"redis+cluster://127.0.0.1:{redis_server.port}?retry_timeout=5"
    with pytest.raises(conveyor.BackendError, match="not a cluster node") as caught:
        await asyncio.wait_for(conveyor.open_queue(url, name="q"), 2.0)
    assert "redis://" in str(caught.value)


async def test_an_old_server_is_refused_naming_its_version(redis_server: RedisServer) -> None:
    # No Redis older than 7 is installed here: the check itself, asked for a version
    # this server is not, refuses it as it would refuse a 6.2 node of a cluster.
    store = await open_store(urllib.parse.urlsplit(redis_server.url), "versions")
    assert isinstance(store, RedisStore)
    try:
        with pytest.raises(conveyor.BackendError, match=r"is version \d+\.\d+.*needs Redis 99"):
            await store._identity.check_version((99, 0), "this check")
        await store._identity.check_version((7, 0), "sharded pub/sub")  # 7.0 or newer here
    finally:
        await store.aclose()
