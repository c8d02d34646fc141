"""Prometheus metrics of conveyor queues (``pip install 'conveyor[metrics]'``).

Two collectors, both for ``prometheus_client``:

* ``QueueCollector`` exports one running program's queue as it sees it: its
  ``statistics()`` (no I/O, so a scrape never waits on a store).  Five lines::

      from prometheus_client import REGISTRY, start_http_server
      from conveyor.metrics import QueueCollector

      REGISTRY.register(QueueCollector(queue, "jobs"))
      start_http_server(9808)  # serves /metrics from a thread

* ``StoreCollector`` exports the shared state of a store's queues, as ``conveyor
  metrics URL`` serves it: it calls a function that reads the stores (see
  ``conveyor.cli._metrics``) on each scrape.

The core never imports this module: ``import conveyor`` stays free of ``prometheus_client``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

try:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - the extra is missing
    from ._exceptions import MissingDependencyError

    raise MissingDependencyError(
        "conveyor.metrics needs prometheus-client: pip install 'conveyor[metrics]'"
    ) from exc

from ._stores import QueueSnapshot

__all__ = ["QueueCollector", "StoreCollector"]

_LABELS = ("queue", "backend")


class QueueCollector(Collector):
    """Export a running program's queue: what its ``statistics()`` says, at each scrape.

    Metrics (labels ``queue`` and ``backend``), all ``conveyor_process_queue_*``:
    ``size``, ``maxsize`` (0: unbounded), ``peak_size``, ``waiting_getters``,
    ``waiting_putters``, ``unfinished_tasks``, ``leased`` and ``dead`` (durable queues:
    this process's last view of the shared counts), ``shutdown`` (1 or 0), and the
    counters ``put_total`` and ``got_total`` (items this process moved).

    ``statistics()`` does no I/O and takes no lock, so a scrape from the exporter's thread
    never waits on the queue and never blocks its event loop.

    Args:
        queue: Any conveyor queue (``Queue``, ``ThreadQueue``'s faces, a durable queue),
            or anything with a ``statistics()`` returning ``QueueStatistics``.
        name: The ``queue`` label's value.
    """

    def __init__(self, queue: Any, name: str) -> None:
        if not callable(getattr(queue, "statistics", None)):
            raise TypeError(f"{queue!r} has no statistics(): give a conveyor queue")
        self._queue = queue
        self._name = name

    def collect(self) -> Iterator[Any]:
        """Yield the metric families of the queue's current ``statistics()``."""
        stats = self._queue.statistics()
        labels = [self._name, stats.backend]
        prefix = "conveyor_process_queue_"
        gauges: Sequence[tuple[str, str, float]] = (
            ("size", "Items waiting to be got (qsize()).", stats.current_size),
            ("maxsize", "The queue's bound; 0 means unbounded.", _bound(stats.max_size)),
            ("peak_size", "The largest size this process observed.", stats.peak_size),
            ("waiting_getters", "Tasks of this process blocked in a get.", stats.tasks_waiting_get),
            ("waiting_putters", "Tasks of this process blocked in a put.", stats.tasks_waiting_put),
            ("unfinished_tasks", "Items put and not yet marked done.", stats.unfinished_tasks),
            ("leased", "Items delivered and not yet acknowledged.", stats.current_leased),
            ("dead", "Items in the dead-letter list.", stats.current_dead),
            ("shutdown", "1 when the queue is shut down.", int(stats.is_shutdown)),
        )
        for suffix, text, value in gauges:
            gauge = GaugeMetricFamily(prefix + suffix, text, labels=_LABELS)
            gauge.add_metric(labels, value)
            yield gauge
        for suffix, text, value in (
            ("put", "Items this process put since the queue was made.", stats.total_put),
            ("got", "Items this process got since the queue was made.", stats.total_got),
        ):
            counter = CounterMetricFamily(prefix + suffix, text, labels=_LABELS)
            counter.add_metric(labels, value)
            yield counter


class StoreCollector(Collector):
    """Export the shared state of a store's queues, read at each scrape.

    Metrics (labels ``queue`` and ``backend``), all ``conveyor_queue_*``: ``ready``,
    ``delayed``, ``leased``, ``dead``, ``maxsize`` (0: unbounded), ``shutdown`` (1 or 0),
    ``oldest_ready_age_seconds`` (for stores that record put times), and the counters
    ``put_total``, ``delivered_total`` and ``finished_total`` (acknowledged or dead; for
    stores that keep them: ``rate()`` over these gives the throughput in and out).  ``conveyor_up``
    is 1 when the read succeeded, 0 when it failed (the queues' metrics are then left
    out rather than shown stale).

    Args:
        read: Returns a snapshot of each queue to export; it may block (the exporter's
            HTTP thread calls it) and raises when the store cannot be read.
    """

    def __init__(self, read: Callable[[], list[QueueSnapshot]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Any]:
        """Read the queues, and yield their metric families."""
        up = GaugeMetricFamily("conveyor_up", "1 when the store could be read, else 0.")
        try:
            snapshots = self._read()
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families(snapshots)


def families(snapshots: Sequence[QueueSnapshot]) -> Iterator[Any]:
    """Yield the ``conveyor_queue_*`` metric families of *snapshots*."""
    prefix = "conveyor_queue_"
    gauges: Sequence[tuple[str, str, Callable[[QueueSnapshot], float | None]]] = (
        ("ready", "Items waiting to be claimed now.", lambda s: s.counts.ready),
        ("delayed", "Items waiting for a retry delay to pass.", lambda s: s.counts.delayed),
        ("leased", "Items claimed and not yet acknowledged.", lambda s: s.counts.leased),
        ("dead", "Items in the dead-letter list.", lambda s: s.counts.dead),
        ("maxsize", "The stored bound; 0 means unbounded.", lambda s: _bound(s.counts.maxsize)),
        ("shutdown", "1 when the queue is shut down.", lambda s: int(s.counts.is_shutdown)),
        (
            "oldest_ready_age_seconds",
            "Seconds since the oldest ready item was put.",
            lambda s: s.oldest_ready_age,
        ),
    )
    for suffix, text, value_of in gauges:
        gauge = GaugeMetricFamily(prefix + suffix, text, labels=_LABELS)
        for snapshot in snapshots:
            value = value_of(snapshot)
            if value is not None:
                gauge.add_metric([snapshot.name, snapshot.backend], value)
        if gauge.samples:
            yield gauge
    counters: Sequence[tuple[str, str, Callable[[QueueSnapshot], int | None]]] = (
        ("put", "Items ever put into the queue.", lambda s: s.totals.put),
        ("delivered", "Deliveries ever made (redeliveries count).", lambda s: s.totals.delivered),
        (
            "finished",
            "Items ever acknowledged or made dead.",
            lambda s: s.totals.finished,
        ),
    )
    for suffix, text, count_of in counters:
        counter = CounterMetricFamily(prefix + suffix, text, labels=_LABELS)
        for snapshot in snapshots:
            count = count_of(snapshot)
            if count is not None:
                counter.add_metric([snapshot.name, snapshot.backend], count)
        if counter.samples:
            yield counter


def _bound(maxsize: float) -> float:
    return 0 if maxsize <= 0 or math.isinf(maxsize) else maxsize
