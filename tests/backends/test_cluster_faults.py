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
from collections.abc import Callable

import pytest

from tests.backends._processes import Worker
from tests.backends.cluster_backend import ClusterSetup, cluster_setup, healthy_cluster

__all__ = ["cluster_setup", "healthy_cluster"]  # fixtures, used by name

# Room for a failover (about 2 s) and for the killed node's return as a replica, during
# which a replicated change has no replica to wait on.
RETRY = "retry_timeout=40"
LEASE = 1.0
ITEMS = 600
DURABILITIES = ("primary", "replicated")


def _at_least(n: int, tag: str) -> Callable[[list[str]], bool]:
    return lambda lines: sum(line.startswith(tag + " ") for line in lines) >= n


def _run_with_fault(
    setup: ClusterSetup, names: dict[str, str], fault: Callable[[], object], lossless: bool
) -> None:
    """Put ITEMS into a queue of each durability, get them elsewhere, *fault* mid-run.

    Args:
        names: The queue of each durability (in the slot *fault* acts on).
        lossless: Whether the default durability must lose nothing either.
    """
    runs: dict[str, tuple[str, str, Worker, Worker]] = {}
    for durability, name in names.items():
        url = setup.url(query=f"durability={durability}&{RETRY}")
        producer = Worker("produce", url, name, "--count", str(ITEMS))
        # The consumer stops on its own once idle, its acknowledgements written: what it
        # got twice was delivered twice, not left unacknowledged by the test.
        consumer = Worker(
            "consume", url, name, "--lease", str(LEASE), "--work", "0.002", "--idle", "3"
        )
        runs[durability] = (url, name, producer, consumer)
    for _, _, producer, consumer in runs.values():
        producer.wait_for(_at_least(ITEMS // 4, "put"))
        consumer.wait_for(_at_least(10, "got"))
    fault()
    failures = []
    for durability, (url, name, producer, consumer) in runs.items():
        producer.finish(timeout=120)
        consumer.finish(timeout=120)
        drain = Worker("consume", url, name, "--lease", str(LEASE), "--idle", "3")
        drain.finish(timeout=120)
        confirmed = set(producer.values("put"))
        got = consumer.values("got") + drain.values("got")
        lost = confirmed - set(got)
        figures = (
            f"durability={durability}: {len(confirmed)} puts returned, {len(lost)} lost,"
            f" {len(got) - len(set(got))} got twice"
        )
        print(figures)
        assert len(confirmed) == ITEMS
        if lost and (lossless or durability == "replicated"):
            failures.append(f"{figures}: {sorted(lost)[:10]}")
    assert not failures


def _names_on(setup: ClusterSetup, slot: int) -> dict[str, str]:
    stem = os.urandom(3).hex()
    return {d: setup.name_for_slot(slot, f"fault-{d}-{stem}") for d in DURABILITIES}


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

    _run_with_fault(healthy_cluster, _names_on(healthy_cluster, slot), kill_primary, False)


def test_cluster_failover_mid_run(healthy_cluster: ClusterSetup) -> None:
    # A manual failover waits until the replica caught up, then switches: nothing lost.
    slot = healthy_cluster.lowest_slot(healthy_cluster.primaries()[1])
    names = _names_on(healthy_cluster, slot)
    _run_with_fault(healthy_cluster, names, lambda: healthy_cluster.failover(slot), True)


def test_busy_slot_resharded_mid_run(healthy_cluster: ClusterSetup) -> None:
    source, target = healthy_cluster.primaries()[2], healthy_cluster.primaries()[0]
    slot = healthy_cluster.lowest_slot(source)  # what redis-cli --cluster reshard moves
    names = _names_on(healthy_cluster, slot)
    _run_with_fault(healthy_cluster, names, lambda: healthy_cluster.reshard(slot, target), True)
    assert healthy_cluster.owner_of(slot) is target
