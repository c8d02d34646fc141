"""A fault mid-run on busy queues, producers and consumers in processes of their own.

Shared by the failover tests of Sentinel (``test_sentinel_faults.py``) and of a Redis
Cluster (``test_cluster_faults.py``): for each queue (one per ``durability``), a producer
process puts ``ITEMS`` items and a consumer process gets them; the fault comes a quarter of
the way in; then a drain takes what is left, and the test counts the items whose ``put()``
returned and that no consumer ever got (lost), and the items got more than once
(at-least-once delivery allows them).  The figures are printed (``-s`` shows what README
quotes).
"""

from __future__ import annotations

from collections.abc import Callable

from tests.backends._processes import Worker

LEASE = 1.0
ITEMS = 600
DURABILITIES = ("primary", "replicated")


def _at_least(n: int, tag: str) -> Callable[[list[str]], bool]:
    return lambda lines: sum(line.startswith(tag + " ") for line in lines) >= n


def run_with_fault(
    queues: dict[str, tuple[str, str]], fault: Callable[[], object], lossless: bool = False
) -> None:
    """Put ITEMS into each queue, get them elsewhere, *fault* mid-run; count what it cost.

    Args:
        queues: For each durability, the URL (with that durability) and the queue's name.
        fault: What happens to the server a quarter of the way in.
        lossless: Whether ``durability="primary"`` must lose nothing either
            (``"replicated"`` must, always).
    """
    runs: dict[str, tuple[str, str, Worker, Worker]] = {}
    for durability, (url, name) in queues.items():
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
