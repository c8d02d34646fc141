"""What a benchmark scenario is: one workload, run by conveyor and by what users pick instead.

Scenario modules (``memory``, ``thread``, ``sqlite``, ``redis``, ``cluster`` in this
package) each expose ``scenarios(options: BenchOptions) -> list[Scenario]``.  The runner
alternates the contenders of a scenario round by round in one process, so that machine
noise hits all of them alike, and reports the median throughput ratio of conveyor to each
other one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["BenchOptions", "Contender", "Scenario"]


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """Settings every scenario module receives.

    Attributes:
        loop: ``"asyncio"`` (the default event loop) or ``"uvloop"``.
        scale: Multiplies every scenario's item count (``< 1`` for a quick run).
        workdir: A fresh directory for database files.
        redis_url: A Redis server to use, or ``None`` to leave Redis scenarios out.
        cluster_url: A Redis Cluster (``redis+cluster://``) to use, or ``None`` to leave
            the cluster scenarios out.
    """

    loop: str = "asyncio"
    scale: float = 1.0
    workdir: Path = Path(".")
    redis_url: str | None = None
    cluster_url: str | None = None


@dataclasses.dataclass(frozen=True)
class Contender:
    """One implementation running a scenario's workload.

    Attributes:
        name: What the table calls it, e.g. ``"conveyor"``, ``"asyncio.Queue"``, ``"janus"``.
        run: ``run(n)`` performs the workload on *n* items from a fresh setup (new queue,
            new event loop of ``BenchOptions.loop`` where it uses one) and returns the
            seconds the measured part took.
    """

    name: str
    run: Callable[[int], float]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One workload and its contenders; the first contender is conveyor's.

    Attributes:
        group: ``"memory"``, ``"thread"``, ``"sqlite"``, ``"redis"`` or ``"cluster"``.
        name: What is measured, e.g. ``"put_nowait + get_nowait"``.
        n: Items per round before ``BenchOptions.scale`` is applied.
        contenders: conveyor first, then the alternatives that are installed.
        goals: Contender name -> the throughput ratio conveyor aims for against it.
        missing: Contender name -> why it is left out (e.g. "not installed").
        unit: How the tables show a contender's rate (``n`` / the seconds its ``run``
            returned; higher is better, so ratios read the same way everywhere):
            ``"items/s"`` as it is; ``"latency"``, whose ``run`` returns a latency times
            ``n``, as milliseconds; ``"memory"``, whose ``run`` returns ``n`` times the
            bytes per item / 1e6, as bytes per item.
        remarks: Called once the scenario was measured: lines for the run's notes about
            what the rows alone do not show (e.g. the CPU each server used meanwhile).
    """

    group: str
    name: str
    n: int
    contenders: Sequence[Contender]
    goals: Mapping[str, float] = dataclasses.field(default_factory=dict)
    missing: Mapping[str, str] = dataclasses.field(default_factory=dict)
    unit: str = "items/s"
    remarks: Callable[[], list[str]] | None = None
