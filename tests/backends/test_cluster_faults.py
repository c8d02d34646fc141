"""A Redis Cluster's faults and moves mid-run, producers and consumers in processes of their own.

Each test does one thing to the primary of a busy queue's slot, in the session's cluster
(3 primaries, 3 replicas: ``cluster_backend.py``): SIGKILL it, fail it over to its replica
(``CLUSTER FAILOVER``), or move the slot to another primary (``redis-cli --cluster
reshard``).  Two queues run in that slot's primary, one opened with each ``durability``,
each with a producer and a consumer process, and for each the test counts the items whose
``put()`` returned and that no consumer ever got (lost), and the items got more than once
(at-least-once delivery allows them).  With ``durability="replicated"`` nothing
acknowledged may be lost; a resharding and a graceful failover lose nothing under either
setting.  The figures are printed (``-s`` shows what README quotes).

The module's name leaves "redis" out on purpose: CI's extra run against the oldest
redis-py (``-k redis``) skips these slow tests; the same code paths run there in
``test_redis_cluster.py``'s failover and resharding tests.
"""

from __future__ import annotations

import os

import pytest

from tests.backends._faults import DURABILITIES, run_with_fault
from tests.backends.cluster_backend import ClusterSetup, cluster_setup, healthy_cluster

__all__ = ["cluster_setup", "healthy_cluster"]  # fixtures, used by name

# Room for a failover (about 2 s) and for the killed node's return as a replica, during
# which a replicated change has no replica to wait on.
RETRY = "retry_timeout=40"


def _queues_in(setup: ClusterSetup, slot: int) -> dict[str, tuple[str, str]]:
    """Two queues in *slot*, one of each durability: their URLs and names."""
    stem = os.urandom(3).hex()
    queues = {}
    for durability in DURABILITIES:
        url = setup.url(query=f"durability={durability}&{RETRY}")
        queues[durability] = (url, setup.name_for_slot(slot, f"fault-{durability}-{stem}"))
    return queues


@pytest.mark.parametrize("forced", [False, True], ids=["detected", "forced"])
def test_primary_killed_mid_run(healthy_cluster: ClusterSetup, forced: bool) -> None:
    # Detected: the replica takes over once the others saw the primary fail (the node
    # timeout, then the election: about 2 s).  Forced: it is told to at once, as an
    # operator or an orchestrator would, and the old primary's last writes race it.
    slot = healthy_cluster.lowest_slot(healthy_cluster.primaries()[0])

    def kill_primary() -> None:
        killed, _ = healthy_cluster.kill_primary_of(slot, forced=forced)
        # As a supervisor would: the node comes back (with its AOF), as the new
        # primary's replica; until then a replicated change has nothing to wait on.
        killed.start()

    run_with_fault(_queues_in(healthy_cluster, slot), kill_primary)


def test_cluster_failover_mid_run(healthy_cluster: ClusterSetup) -> None:
    # A manual failover waits until the replica caught up, then switches: nothing lost.
    slot = healthy_cluster.lowest_slot(healthy_cluster.primaries()[1])
    run_with_fault(_queues_in(healthy_cluster, slot), lambda: healthy_cluster.failover(slot), True)


def test_busy_slot_resharded_mid_run(healthy_cluster: ClusterSetup) -> None:
    source, target = healthy_cluster.primaries()[2], healthy_cluster.primaries()[0]
    slot = healthy_cluster.lowest_slot(source)  # what redis-cli --cluster reshard moves
    moved = lambda: healthy_cluster.reshard(slot, target)  # noqa: E731
    run_with_fault(_queues_in(healthy_cluster, slot), moved, True)
    assert healthy_cluster.owner_of(slot) is target
