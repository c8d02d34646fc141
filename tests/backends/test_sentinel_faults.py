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

from tests.backends._faults import DURABILITIES, run_with_fault
from tests.backends.sentinel_backend import SentinelSetup, healthy_setup, sentinel_setup

__all__ = ["healthy_setup", "sentinel_setup"]  # fixtures, used by name

# Long enough to outlast a failover and Sentinel's reconfiguration of the old primary
# (about 8 s after the switch), during which a replicated change has no replica to wait on.
RETRY = "retry_timeout=40"


def _run_with_fault(setup: SentinelSetup, fault: Callable[[], object]) -> None:
    """Two busy queues of the service, one of each durability, *fault* mid-run."""
    stem = os.urandom(4).hex()
    queues = {
        d: (setup.url(query=f"durability={d}&{RETRY}"), f"fault-{d}-{stem}") for d in DURABILITIES
    }
    run_with_fault(queues, fault)


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
