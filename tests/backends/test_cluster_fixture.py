"""The Redis Cluster fixture itself (``cluster_backend.py``), checked with redis-py alone.

What later tests lean on: the cluster comes up with 3 primaries and 3 synced replicas; the
slot of a queue is where Redis puts its keys; a reshard or a slow migration moves a slot
with its keys (and the slow one shows clients ``ASK`` and ``TRYAGAIN`` meanwhile); a killed
primary's replica takes over, and the killed node comes back as its replica.

The module's name leaves "redis" out on purpose, as ``cluster_backend.py`` explains.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis.cluster import RedisCluster
from redis.exceptions import AskError, MovedError, TryAgainError

from conveyor.backends.redis._scripts import queue_keys
from tests.backends.cluster_backend import SLOTS, ClusterSetup, cluster_setup, healthy_cluster

__all__ = ["cluster_setup", "healthy_cluster"]  # fixtures, used by name

# The keys these tests write are plain strings, not queues: under a prefix of their own,
# so that the operating commands' tests, listing the queues of the shared cluster, never
# meet them.
PREFIX = "fixture"


def _cluster_client(setup: ClusterSetup) -> Any:
    """A redis-py cluster client (Any: redis-py's sync types are unions with async ones)."""
    return RedisCluster(  # type: ignore[abstract,unused-ignore]
        host="127.0.0.1", port=setup.nodes[0].port, decode_responses=True
    )


@pytest.fixture
def cluster_client(healthy_cluster: ClusterSetup) -> Iterator[Any]:
    """A redis-py ``RedisCluster`` of the healthy cluster, closed after the test."""
    client = _cluster_client(healthy_cluster)
    yield client
    client.close()


def test_the_cluster_has_three_primaries_each_with_a_synced_replica(
    healthy_cluster: ClusterSetup, cluster_client: Any
) -> None:
    setup = healthy_cluster
    primaries = setup.primaries()
    replicas = [setup.replica_of(primary) for primary in primaries]
    assert len(primaries) == 3
    assert len(set(primaries + replicas)) == 6
    assert {node.port for node in cluster_client.get_primaries()} == {p.port for p in primaries}
    for primary, replica in zip(primaries, replicas, strict=True):
        assert "state=online" in primary.info("replication")["slave0"]
        assert replica.info("replication")["master_port"] == str(primary.port)
    owners = setup.slot_map()
    assert None not in owners
    assert owners[0] is setup.owner_of(0)
    assert all(setup.cluster_info(n)["cluster_slots_ok"] == str(SLOTS) for n in setup.nodes)
    seeds = ",".join(f"127.0.0.1:{node.port}" for node in setup.nodes[:3])
    assert setup.url() == f"redis+cluster://{seeds}"
    assert setup.url("rediss+cluster", "a=1") == f"rediss+cluster://{seeds}?a=1"


@pytest.mark.parametrize("name", ["plain", "a{b}c", "{", "}x{", "100%", "émoji-😀"])
def test_the_slot_of_a_queue_is_where_the_server_puts_its_keys(
    healthy_cluster: ClusterSetup, name: str
) -> None:
    setup = healthy_cluster
    node = setup.client(setup.nodes[0])
    for prefix in ("conveyor", "other{x}"):
        for key in queue_keys(prefix, name).values():
            assert node.execute_command("CLUSTER", "KEYSLOT", key) == setup.slot_of(name, prefix)


def test_names_can_be_chosen_by_slot_and_by_primary(
    healthy_cluster: ClusterSetup, cluster_client: Any
) -> None:
    setup = healthy_cluster
    node = setup.client(setup.nodes[0])
    for slot in (0, 1234, SLOTS - 1):
        name = setup.name_for_slot(slot, "stem")
        assert name.startswith("stem-")
        assert node.execute_command("CLUSTER", "KEYSLOT", queue_keys("conveyor", name)["meta"]) == (
            slot
        )
    for primary in setup.primaries():
        name = setup.name_in_slot_of(primary, "placed", PREFIX)
        key = queue_keys(PREFIX, name)["meta"]
        cluster_client.set(key, "here")
        assert setup.client(primary).get(key) == "here"  # no MOVED: the primary serves it


def test_reshard_moves_the_lowest_slot_of_a_primary_with_its_keys(
    healthy_cluster: ClusterSetup, cluster_client: Any
) -> None:
    setup = healthy_cluster
    source, target = setup.primaries()[:2]
    slot = setup.lowest_slot(source)
    keys = queue_keys(PREFIX, setup.name_for_slot(slot, "resharded", PREFIX))
    for key in keys.values():
        cluster_client.set(key, key)
    higher = next(s for s, owner in enumerate(setup.slot_map()) if owner is source and s > slot)
    with pytest.raises(ValueError, match="lowest slot"):
        setup.reshard(higher, target)

    setup.reshard(slot, target)

    assert setup.owner_of(slot) is target
    assert setup.lowest_slot(source) > slot
    for key in keys.values():
        assert cluster_client.get(key) == key  # follows the MOVED
        assert setup.client(target).get(key) == key
    with pytest.raises(MovedError):
        setup.client(source).get(keys["meta"])


def test_a_slow_migration_shows_ask_and_tryagain_until_it_ends(
    healthy_cluster: ClusterSetup, cluster_client: Any
) -> None:
    setup = healthy_cluster
    source, target = setup.primaries()[1:]
    name = setup.name_in_slot_of(source, "migrated", PREFIX)
    slot = setup.slot_of(name)
    keys = list(queue_keys(PREFIX, name).values())[:2]
    for key in keys:
        cluster_client.set(key, key)
    plain = setup.client(source)
    seen: set[str] = set()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        moving = pool.submit(setup.migrate_slot_slowly, slot, target, 0.2)
        deadline = time.monotonic() + 10
        while len(seen) < 2 and not moving.done() and time.monotonic() < deadline:
            left = plain.execute_command("CLUSTER", "GETKEYSINSLOT", slot, len(keys))
            present = [key for key in keys if key in left]
            if 0 < len(present) < len(keys):
                gone = next(key for key in keys if key not in present)
                with pytest.raises(AskError) as asked:
                    plain.get(gone)
                assert type(asked.value) is AskError  # not its subclass MovedError
                seen.add("ASK")
                try:
                    plain.mget(gone, present[0])
                except TryAgainError:
                    seen.add("TRYAGAIN")
                except AskError:
                    pass  # present[0] moved meanwhile: both keys are on the target now
                mine = setup.views(source)[0].open
                assert mine == (f"[{slot}->-{setup.ids[target.port]}]",)
                theirs = setup.views(target)[0].open
                assert theirs == (f"[{slot}-<-{setup.ids[source.port]}]",)
            time.sleep(0.01)
        assert moving.result(timeout=30) == len(keys)
    assert seen == {"ASK", "TRYAGAIN"}
    assert setup.owner_of(slot) is target
    assert setup.views(source)[0].open == setup.views(target)[0].open == ()
    assert [cluster_client.get(key) for key in keys] == keys


@pytest.mark.parametrize("forced", [False, True], ids=["detected", "forced"])
def test_a_killed_primary_comes_back_as_the_replica_of_its_replica(
    healthy_cluster: ClusterSetup, forced: bool
) -> None:
    setup = healthy_cluster
    primary = setup.primaries()[2]
    replica = setup.replica_of(primary)
    name = setup.name_in_slot_of(primary, "killed", PREFIX)
    key = queue_keys(PREFIX, name)["meta"]
    setup.client(primary).set(key, "kept")
    assert setup.client(primary).execute_command("WAIT", 1, 5000) == 1

    killed, promoted = setup.kill_primary_of(setup.slot_of(name), forced=forced)

    assert (killed, promoted) == (primary, replica)
    assert setup.owner_of(setup.slot_of(name)) is promoted
    assert setup.client(promoted).get(key) == "kept"
    setup.wait_healthy()
    assert setup.replica_of(promoted) is killed
    assert killed.info("replication")["master_port"] == str(promoted.port)
    client = _cluster_client(setup)
    try:
        assert client.get(key) == "kept"
    finally:
        client.close()


def test_a_graceful_failover_swaps_a_primary_and_its_replica(
    healthy_cluster: ClusterSetup,
) -> None:
    setup = healthy_cluster
    primary = setup.primaries()[0]
    replica = setup.replica_of(primary)
    slot = setup.lowest_slot(primary)

    assert setup.failover(slot) == (primary, replica)

    assert setup.owner_of(slot) is replica
    assert setup.replica_of(replica) is primary
    name = setup.name_for_slot(slot, "x", PREFIX)
    with pytest.raises(MovedError):
        setup.client(primary).get(queue_keys(PREFIX, name)["meta"])
