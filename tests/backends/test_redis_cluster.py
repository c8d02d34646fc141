"""Redis Cluster: the URL, the slot's primary, redirections, sharded wake-ups.

Against the session's cluster (3 primaries, 3 replicas: ``cluster_backend.py``), except
the URL checks, which reach nothing, and the refusals, made on a plain server.  The
resharding of a busy queue and the failovers with processes mid-run are in
``test_cluster_faults.py``.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import conveyor
from conveyor._stores import list_queues
from conveyor.backends.redis import RedisStore, open_store, queue_keys
from conveyor.backends.redis._cluster import parse_nodes, pick_owner
from tests.backends.cluster_backend import ClusterSetup, cluster_setup, healthy_cluster
from tests.backends.redis_backend import (
    RedisServer,
    assert_never_shown,
    free_port,
    redis_server,
)
from tests.backends.test_redis_tls import TLSRedisServer

__all__ = ["cluster_setup", "healthy_cluster", "redis_server"]  # fixtures, used by name

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
    assert_never_shown("s3cret", caught.value)


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


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture
def tls_cluster_url(tmp_path: Path) -> Iterator[str]:
    """A TLS-only cluster of one node serving every slot; its URL, trusting its CA."""
    server = TLSRedisServer(tmp_path)
    server.extra_args = [
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",
        "--cluster-port", str(free_port()),
        "--tls-cluster", "yes",
    ]  # fmt: skip
    server.start()
    try:
        # Any: redis-py's sync return types are unions of the sync and async ones.
        client: Any = redis.Redis(
            port=server.port,
            socket_timeout=5.0,
            ssl=True,
            ssl_ca_certs=str(server.ca),
            ssl_check_hostname=False,
        )
        try:
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            deadline = time.monotonic() + 10
            while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                assert time.monotonic() < deadline, "the one-node cluster did not come up"
                time.sleep(0.02)
        finally:
            client.close()  # type: ignore[no-untyped-call,unused-ignore]
        yield f"rediss+cluster://127.0.0.1:{server.port}?{server.trust()}"
    finally:
        server.stop()


async def test_rediss_cluster_talks_tls_to_the_nodes(tls_cluster_url: str) -> None:
    # No plain port: a queue that works found the slot's primary, and used it, over TLS.
    async with conveyor.open_queue(tls_cluster_url, name="tls") as queue:
        await queue.put("over TLS")
        assert await queue.get() == "over TLS"
        queue.task_done()
        await queue.join()


# -- the slot's primary ---------------------------------------------------------------


async def test_each_queue_lives_on_the_primary_of_its_slot(cluster_setup: ClusterSetup) -> None:
    names = [cluster_setup.name_in_slot_of(node, "spread") for node in cluster_setup.primaries()]
    for name in names:
        async with conveyor.open_queue(cluster_setup.url(), name=name) as queue:
            await queue.put(name)
    for name in names:
        slot = cluster_setup.slot_of(name)
        owner = cluster_setup.owner_of(slot)
        assert cluster_setup.client(owner).exists(queue_keys("conveyor", name)["meta"])
        for node in cluster_setup.primaries():  # the keys each primary holds, of the slot
            held = cluster_setup.client(node).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)
            assert bool(held) == (node is owner), (name, node.port)
    # Listed from every primary, and each read back from the node that holds it.
    listed = await list_queues(cluster_setup.url())
    assert set(names) <= set(listed)
    for name in names:
        async with conveyor.open_queue(cluster_setup.url(), name=name) as queue:
            assert await queue.get() == name
            queue.task_done()


async def test_wake_ups_are_sharded_on_the_queue_s_slot(cluster_setup: ClusterSetup) -> None:
    name = cluster_setup.name_in_slot_of(cluster_setup.primaries()[1], "sharded")
    channel = queue_keys("conveyor", name)["changed"]
    async with (
        conveyor.open_queue(cluster_setup.url(), name=name) as getter,
        conveyor.open_queue(cluster_setup.url(), name=name) as putter,
    ):
        owner = cluster_setup.owner_of(cluster_setup.slot_of(name))
        assert channel in cluster_setup.client(owner).execute_command("PUBSUB", "SHARDCHANNELS")
        for node in cluster_setup.nodes:  # nothing on the cluster-wide pub/sub
            assert channel not in cluster_setup.client(node).execute_command("PUBSUB", "CHANNELS")
        waiting = asyncio.ensure_future(getter.get())
        await asyncio.sleep(0.1)  # parked: only a message can wake it before its poll
        started = time.monotonic()
        await putter.put("wake")
        assert await asyncio.wait_for(waiting, 5.0) == "wake"
        assert time.monotonic() - started < 0.5
        getter.task_done()


async def test_a_redis_url_at_a_node_that_does_not_serve_the_slot_says_so(
    cluster_setup: ClusterSetup,
) -> None:
    elsewhere = cluster_setup.primaries()[0]
    name = cluster_setup.name_in_slot_of(cluster_setup.primaries()[1], "plain")
    url = f"redis://127.0.0.1:{elsewhere.port}/0"
    with pytest.raises(conveyor.BackendError, match="node of a Redis Cluster") as caught:
        await asyncio.wait_for(conveyor.open_queue(url, name=name), 5.0)
    assert "redis+cluster://" in str(caught.value)


# -- failover and resharding, one process -------------------------------------------------


async def test_receipts_and_the_incarnation_survive_a_failover(
    healthy_cluster: ClusterSetup,
) -> None:
    # The replica had every change (WAIT), so the promoted one holds the same queue: the
    # same epoch (no reset), the same leases (a receipt of before acknowledges once).
    name = healthy_cluster.name_in_slot_of(healthy_cluster.primaries()[0], "failover")
    url = healthy_cluster.url(query="durability=replicated&retry_timeout=20")
    store = await open_store(urllib.parse.urlsplit(url), name)
    try:
        assert await store.put([b"1", b"2", b"3"])
        (first,) = await store.claim(1, 30.0, None)
        old, new = await asyncio.to_thread(healthy_cluster.failover, healthy_cluster.slot_of(name))
        acked = await store.ack([first.receipt])
        again = await store.ack([first.receipt])
        counts = await store.counts()
    finally:
        await store.aclose()
    assert healthy_cluster.owner_of(healthy_cluster.slot_of(name)) is new is not old
    assert acked == [True]
    assert again == [False]
    assert (counts.ready, counts.leased) == (2, 0)


async def test_a_wiped_primary_is_a_new_incarnation_not_a_failover(
    healthy_cluster: ClusterSetup,
) -> None:
    name = healthy_cluster.name_in_slot_of(healthy_cluster.primaries()[2], "wiped")
    store = await open_store(urllib.parse.urlsplit(healthy_cluster.url()), name)
    try:
        assert await store.put([b"1"])
        (delivery,) = await store.claim(1, 30.0, None)
        owner = healthy_cluster.owner_of(healthy_cluster.slot_of(name))
        await asyncio.to_thread(healthy_cluster.client(owner).flushall)
        with pytest.raises(conveyor.StoreResetError, match="vanished"):
            await store.put([b"2"])
        assert await store.ack([delivery.receipt]) == [False]
        assert await store.put([b"3"])
        assert (await store.counts()).ready == 1
    finally:
        await store.aclose()


@pytest.mark.parametrize("how", ["redis-cli", "key by key"])
async def test_blocked_getters_and_putters_wake_across_a_resharding(
    healthy_cluster: ClusterSetup, how: str
) -> None:
    source, target = healthy_cluster.primaries()[0], healthy_cluster.primaries()[1]
    if how == "redis-cli":
        slot = healthy_cluster.lowest_slot(source)  # what redis-cli --cluster reshard moves
        name = healthy_cluster.name_for_slot(slot, "reshard")
    else:
        # A slot of the queue's own: moved key by key, it is its keys that take the time
        # (a queue's scripts wait from its first key's move until the slot is handed over).
        name = healthy_cluster.name_in_slot_of(source, f"reshard-{os.urandom(3).hex()}")
        slot = healthy_cluster.slot_of(name)
    url = healthy_cluster.url(query="retry_timeout=30")
    async with (
        conveyor.open_queue(url, name=name, maxsize=2) as queue,
        conveyor.open_queue(url, name=name) as other,
    ):
        await queue.put_many(["a", "b"])  # full: the next put waits for room
        blocked_put = asyncio.ensure_future(queue.put("c"))
        moving = asyncio.ensure_future(
            asyncio.to_thread(healthy_cluster.reshard, slot, target)
            if how == "redis-cli"
            else asyncio.to_thread(healthy_cluster.migrate_slot_slowly, slot, target, 0.3)
        )
        got = [await other.get() for _ in range(3)]
        await asyncio.wait_for(blocked_put, 10.0)  # woken by a get, mid-move
        # Busy through the whole move (key by key, some of the queue's keys are on
        # each side for a while, then all of them on the target before it owns the slot).
        sent = 0
        while not moving.done():
            await queue.put(sent)
            got.append(await other.get())
            sent += 1
        for _ in got:
            other.task_done()
        await moving
        assert healthy_cluster.owner_of(slot) is target
        blocked_get = asyncio.ensure_future(other.get())
        await asyncio.sleep(0.1)  # parked, subscribed again on the new primary
        await queue.put("d")
        assert await asyncio.wait_for(blocked_get, 10.0) == "d"
        other.task_done()
        await other.join()
        assert got == ["a", "b", "c", *range(sent)]


async def test_ask_is_followed_while_the_slot_is_half_moved(healthy_cluster: ClusterSetup) -> None:
    # Every key of the queue on the target, the slot not handed over yet: the source
    # answers ASK, and the target takes the command only right after ASKING (it answers
    # TRYAGAIN while a key the script names exists on neither side, and the call waits).
    source, target = healthy_cluster.primaries()[0], healthy_cluster.primaries()[1]
    name = healthy_cluster.name_in_slot_of(source, "asking")
    slot = healthy_cluster.slot_of(name)
    ids = {node.port: healthy_cluster.client(node).execute_command("CLUSTER", "MYID")
           for node in healthy_cluster.primaries()}  # fmt: skip
    async with conveyor.open_queue(healthy_cluster.url(), name=name) as queue:
        await queue.put("before")
        asks_before = _asking_calls(healthy_cluster, target)
        into, out_of = healthy_cluster.client(target), healthy_cluster.client(source)
        into.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
        out_of.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
        while keys := out_of.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            out_of.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        put = asyncio.ensure_future(queue.put("during"))
        await asyncio.sleep(0.5)
        assert not put.done()  # retried, not failed
        assert _asking_calls(healthy_cluster, target) > asks_before
        for node in (target, source, *healthy_cluster.primaries()):
            healthy_cluster.client(node).execute_command(
                "CLUSTER", "SETSLOT", slot, "NODE", ids[target.port]
            )
        await asyncio.wait_for(put, 10.0)
        assert [await queue.get(), await queue.get()] == ["before", "during"]
        queue.task_done()
        queue.task_done()
        await queue.join()
    assert healthy_cluster.owner_of(slot) is target


def _asking_calls(setup: ClusterSetup, node: RedisServer) -> int:
    stats = setup.client(node).info("commandstats")
    return int(stats.get("cmdstat_asking", {}).get("calls", 0))


# -- which primary the router believes ----------------------------------------------------


def test_the_router_believes_the_newest_epoch_then_a_node_s_word_of_itself() -> None:
    # Slot 42 was just moved by hand from bb to aa, which took epoch 7 for it; cc has not
    # heard yet and still lists bb (epoch 7 too, for a moment) as the slot's primary.
    told_by_cc = (
        "bb 127.0.0.1:7002@17002 master - 0 0 7 connected 0-5460\n"
        "cc 127.0.0.1:7003@17003 myself,master - 0 0 5 connected 5461-16383\n"
        "ee 127.0.0.1:7005@17005 master,fail - 0 0 9 connected 0-5460\n"
    )
    told_by_aa = (
        "aa :7001@17001 myself,master - 0 0 7 connected 42 [43->-bb]\n"
        "dd 127.0.0.1:7004@17004 slave aa 0 0 7 connected\n"
    )
    nodes = parse_nodes(told_by_cc, ("127.0.0.1", 7003))
    nodes += parse_nodes(told_by_aa, ("127.0.0.2", 7001))
    assert [n.address for n in nodes if n.own] == [("127.0.0.1", 7003), ("127.0.0.2", 7001)]
    assert nodes[2].failed  # a failed node serves nothing, whatever its epoch
    assert nodes[3].slots == [(42, 42)]  # a migration marker is not a slot
    assert not nodes[4].primary
    for ordered in (nodes, nodes[::-1]):
        owner = pick_owner(ordered, 42)
        assert owner is not None
        assert owner.address == ("127.0.0.2", 7001)  # ":7001": the host that was asked
        assert pick_owner(ordered, 1000).address == ("127.0.0.1", 7002)  # type: ignore[union-attr]
        assert pick_owner(ordered, 6000).address == ("127.0.0.1", 7003)  # type: ignore[union-attr]
    assert pick_owner([nodes[2]], 42) is None
