"""Failovers mid-run behind Sentinel, producers and consumers in processes of their own.

Each test fails the primary of the session's Sentinel setup (``sentinel_backend.py``) over
once (``SENTINEL FAILOVER``, or SIGKILL of the primary) while two queues are busy, one
opened with each ``durability``, and counts for each the items whose ``put()`` returned
and that no consumer ever got (lost), and the items got more than once (at-least-once
delivery allows them).  With ``durability="replicated"`` nothing acknowledged may be
lost; what the default lost is printed (``-s`` shows the figures README quotes).

The module's name leaves "redis" out on purpose: CI's extra run against the oldest
redis-py (``-k redis``) skips these slow tests; the same code paths run there in
``test_redis_sentinel.py``'s failover test.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from tests.backends._processes import Worker
from tests.backends.sentinel_backend import SentinelSetup, healthy_setup, sentinel_setup

__all__ = ["healthy_setup", "sentinel_setup"]  # fixtures, used by name

# Long enough to outlast a failover and Sentinel's reconfiguration of the old primary
# (about 8 s after the switch), during which a replicated change has no replica to wait on.
RETRY = "retry_timeout=40"
LEASE = 1.0
ITEMS = 600
DURABILITIES = ("primary", "replicated")


def _at_least(n: int, tag: str) -> Callable[[list[str]], bool]:
    return lambda lines: sum(line.startswith(tag + " ") for line in lines) >= n


def _run_with_fault(setup: SentinelSetup, fault: Callable[[], object]) -> None:
    """Put ITEMS into a queue of each durability, get them elsewhere, *fault* mid-run."""
    runs: dict[str, tuple[str, str, Worker, Worker]] = {}
    for durability in DURABILITIES:
        name = f"fault-{durability}-{os.urandom(4).hex()}"
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
        if durability == "replicated" and lost:
            failures.append(f"{figures}: {sorted(lost)[:10]}")
    assert not failures


def test_sentinel_failover_mid_run(healthy_setup: SentinelSetup) -> None:
    _run_with_fault(healthy_setup, healthy_setup.failover)


def test_primary_killed_mid_run(healthy_setup: SentinelSetup) -> None:
    def kill_primary() -> None:
        old = healthy_setup.primary()
        old.kill()
        healthy_setup.wait_primary_other_than(old)
        # As a supervisor would: the node comes back (with its AOF), and Sentinel makes it
        # the new primary's replica; until then a replicated change has nothing to wait on.
        old.start()

    _run_with_fault(healthy_setup, kill_primary)
