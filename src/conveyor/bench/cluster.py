"""Benchmark scenarios for scale-out on a Redis Cluster (run only with ``--cluster URL``).

Each queue lives on the primary of its slot, so queues spread over several primaries may
go further together than on one.  The scenarios, on the cluster ``--cluster`` names:

* 12 queues, each with 8 producer tasks putting and 8 consumer tasks getting and
  acknowledging (``get()`` + ``task_done()``), driven by 4 client processes (3 queues
  each, all 16 tasks of a queue in one process): the 12 queues on 3 primaries (4 on each;
  fewer primaries if the cluster has fewer) against the same on 1 primary.  Both layouts
  use the same cluster: the queues' names are picked by the slot they hash to, from the
  slot -> primary map the cluster gives (``CLUSTER SHARDS``).  Goal: 3 primaries at least
  as fast as 1; not 3x, which takes a core for each primary and for the clients (a note
  of the run says so on a host with fewer).
* 1 queue, 8 producer + 8 consumer tasks in one process: the ceiling of one queue (one
  slot, on one primary), against the same 16 tasks shared out among 4 processes (2
  producers and 2 consumers in each, so that most items cross from one process to
  another).

A round ends once every acknowledgement is written (``flush()`` in each process).  Around
each round's timed part the benchmark reads every node's ``INFO cpu`` and each client
process its own CPU time (and, on Linux, how busy the whole machine was): the notes give,
for each layout, the cores each primary, the other nodes and the clients kept busy, the
CPU time per item, and what capped the throughput: one primary's core (Redis runs a
primary's commands on one thread) or the machine's cores, which the nodes and the clients
share when they run on one host.  Every queue's keys are deleted after its round.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import conveyor

from ._cluster_nodes import (
    Address,
    cpu_seconds,
    delete_queues,
    machine_ticks,
    pick_names,
    read_topology,
)
from ._common import new_loop, run_processes, split
from ._scenario import BenchOptions, Contender, Scenario

__all__ = ["scenarios"]

QUEUES = 12
TASKS = 8  # producers, and as many consumers, per queue
PROCESSES = 4
SPREAD = 3  # primaries the queues are spread on
N = 24_000
SATURATED = 0.85  # of a core: a primary this busy is what capped the throughput

Work = list[tuple[str, list[int], list[int]]]
"""One process's share: (queue name, its producers' item counts, its consumers')."""


# -- a client process --------------------------------------------------------------------


def _client_main(options: BenchOptions, url: str, work: Work, go: Any, out: Any) -> None:
    async def produce(queue: conveyor.DurableQueue[int], count: int) -> None:
        for i in range(count):
            await queue.put(i)

    async def consume(queue: conveyor.DurableQueue[int], count: int) -> None:
        for _ in range(count):
            await queue.get()
            queue.task_done()

    async def main() -> None:
        queues: dict[str, conveyor.DurableQueue[int]] = {}
        try:
            for name, _, _ in work:
                opened = await conveyor.open_queue(url, name=name)
                assert isinstance(opened, conveyor.DurableQueue)
                queues[name] = opened
            out.put(("ready", 0.0, 0.0))
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            cpu = time.process_time()
            start = time.perf_counter()
            tasks = []
            for name, puts, gets in work:
                tasks += [produce(queues[name], count) for count in puts]
                tasks += [consume(queues[name], count) for count in gets]
            await asyncio.gather(*tasks)
            for queue in queues.values():
                await queue.flush()  # every acknowledgement written
            end = time.perf_counter()
            out.put((time.process_time() - cpu, start, end))
        finally:
            for queue in queues.values():
                await queue.aclose()

    loop = new_loop(options)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def _share(names: Sequence[str], n: int, processes: int) -> list[Work]:
    # n items over the queues; each queue's 8 producers and 8 consumers in one process
    # when there are queues enough for every process, else shared out among them.
    shares: list[dict[str, tuple[list[int], list[int]]]] = [{} for _ in range(processes)]
    for q, (name, items) in enumerate(zip(names, split(n, len(names)), strict=True)):
        counts = split(items, TASKS)
        for t, count in enumerate(counts):
            share = shares[q % processes if len(names) >= processes else t % processes]
            puts, gets = share.setdefault(name, ([], []))
            puts.append(count)
            gets.append(count)
    return [[(name, puts, gets) for name, (puts, gets) in share.items()] for share in shares]


# -- what a round used -------------------------------------------------------------------


@dataclasses.dataclass
class _Usage:
    """CPU seconds one contender's timed rounds used, summed over the rounds."""

    rounds: int = 0
    items: int = 0
    seconds: float = 0.0  # wall clock, from before the start to after the last end
    nodes: dict[Address, float] = dataclasses.field(default_factory=dict)
    primaries: list[Address] = dataclasses.field(default_factory=list)
    clients: float = 0.0
    busy: int = 0  # the machine's ticks, when known
    ticks: int = 0

    def cores(self, cpu: float) -> float:
        return cpu / self.seconds if self.seconds > 0 else 0.0


class _Layout:
    """One contender: its queues on which primaries, in how many processes."""

    def __init__(self, options: BenchOptions, queues: int, primaries: int, processes: int):
        self.options = options
        self.url = options.cluster_url or ""
        self.queues = queues
        self.primaries = primaries
        self.processes = processes
        self.calls = 0
        self.usage = _Usage()

    def run(self, n: int) -> float:
        topology = read_topology(self.url)
        used = list(topology.primaries[: self.primaries])
        wanted = [used[q % len(used)] for q in range(self.queues)]
        names = pick_names(topology, f"bench-cluster-{uuid.uuid4().hex[:8]}", wanted)
        # At least 2 items for each task, whatever the scale.
        items = max(n, 2 * TASKS * self.queues)
        works = _share(names, items, self.processes)
        self.calls += 1
        timed = self.calls > 1  # the runner's first call is its untimed warm-up
        usage = self.usage

        @contextlib.contextmanager
        def around() -> Iterator[None]:
            before, ticks = cpu_seconds(topology), machine_ticks()
            start = time.perf_counter()
            yield
            seconds = time.perf_counter() - start
            after, ticks_after = cpu_seconds(topology), machine_ticks()
            if not timed:
                return
            usage.rounds += 1
            usage.items += items
            usage.seconds += seconds
            usage.primaries = used
            for node, cpu in after.items():
                usage.nodes[node] = usage.nodes.get(node, 0.0) + cpu - before.get(node, cpu)
            if ticks is not None and ticks_after is not None:
                usage.busy += ticks_after[0] - ticks[0]
                usage.ticks += ticks_after[1] - ticks[1]

        try:
            done = run_processes(
                _client_main, [(self.options, self.url, work) for work in works], around
            )
        finally:
            delete_queues(self.url, names)
        if timed:
            usage.clients += sum(cpu for cpu, _, _ in done)
        span = max(end for _, _, end in done) - min(start for _, start, _ in done)
        # Whole tasks' worth only: what the processes did, scaled to the n the runner
        # divides by.
        return float(span * n / items)


def _remark(label: str, layout: _Layout) -> str | None:
    usage = layout.usage
    if usage.rounds == 0:
        return None
    cpus = os.cpu_count() or 1
    primaries = {node: usage.nodes.get(node, 0.0) for node in usage.primaries}
    others = sum(cpu for node, cpu in usage.nodes.items() if node not in primaries)
    shown = ", ".join(
        f"{host}:{port} {usage.cores(cpu):.2f}" for (host, port), cpu in primaries.items()
    )
    text = (
        f"{label}: cores busy (CPU s / s) over its {usage.rounds} timed"
        f" round{'s' if usage.rounds > 1 else ''}, {usage.seconds:.1f} s:"
        f" primar{'ies' if len(primaries) > 1 else 'y'} {shown};"
        f" the other nodes (replicas, other primaries) {usage.cores(others):.2f} together;"
        f" {layout.processes} client process{'es' if layout.processes > 1 else ''}"
        f" {usage.cores(usage.clients):.2f} together"
    )
    machine = usage.busy / usage.ticks * cpus if usage.ticks else None
    if machine is not None:
        text += f"; the whole machine {machine:.2f} of its {cpus} cores"
    servers = sum(usage.nodes.values())
    text += (
        f"; CPU per item: {servers / usage.items * 1e6:.0f} us in the nodes,"
        f" {usage.clients / usage.items * 1e6:.0f} us in the clients"
    )
    busiest = max(primaries.values(), default=0.0)
    if usage.cores(busiest) >= SATURATED:
        text += ". Capped by one primary's core (a primary runs its commands on one thread)"
    elif machine is not None and machine >= SATURATED * cpus:
        text += f". Capped by the machine's {cpus} cores, shared by the nodes and the clients"
    elif layout.processes == 1 and usage.cores(usage.clients) >= SATURATED:
        text += ". Capped by the one client process's core"
    else:
        text += ". Capped by round trips (no core saturated)"
    return text


def scenarios(options: BenchOptions) -> list[Scenario]:
    """Return the cluster scenarios (see the module docstring).

    Args:
        options: The run's settings; ``options.cluster_url`` names the cluster.

    Returns:
        The 12 queues on 3 primaries against 1, and the one queue's ceiling; none when
        no cluster was given.

    Raises:
        RuntimeError: The cluster cannot be reached, or serves no slot.
    """
    url = options.cluster_url
    if url is None:
        return []
    topology = read_topology(url)  # refused now if unreachable, before any round
    spread = min(SPREAD, len(topology.primaries))
    where = f"{spread} primar{'ies' if spread > 1 else 'y'}"
    wide = _Layout(options, QUEUES, spread, PROCESSES)
    narrow = _Layout(options, QUEUES, 1, PROCESSES)
    many = f"{QUEUES} queues x {TASKS}+{TASKS} tasks"
    contenders = [Contender("conveyor", wide.run)]
    missing = {}
    if spread > 1:
        contenders.append(Contender("conveyor, 1 primary", narrow.run))
    else:
        missing["conveyor, 1 primary"] = "the cluster has one primary: nothing to compare"
    tag = options.loop

    def spread_remarks() -> list[str]:
        found = [
            _remark(f"cluster, {many}, on {where} ({tag})", wide),
            _remark(f"cluster, {many}, on 1 primary ({tag})", narrow),
        ]
        cpus = os.cpu_count() or 1
        needed = spread * 2 + PROCESSES  # primaries, their replicas, the client processes
        if cpus < needed:
            found.append(
                f"cluster: {spread} primaries take up to {spread}x the load of 1 only with a"
                f" core for each (Redis runs a primary's commands on one thread) and cores"
                f" for the clients too; on a host with {cpus} cores running the nodes"
                f" (primaries and replicas) and the {PROCESSES} client processes together,"
                f" the 3-primaries layout is held to what those {cpus} cores give: hence"
                f" the goal of >= 1.0x against 1 primary, not {spread}x"
            )
        return [line for line in found if line is not None]

    alone = _Layout(options, 1, 1, 1)
    shared = _Layout(options, 1, 1, PROCESSES)

    def one_remarks() -> list[str]:
        found = [
            _remark(f"cluster, 1 queue x {TASKS}+{TASKS} tasks, 1 process ({tag})", alone),
            _remark(
                f"cluster, 1 queue x {TASKS}+{TASKS} tasks, {PROCESSES} processes ({tag})", shared
            ),
        ]
        return [line for line in found if line is not None]

    return [
        Scenario(
            "cluster",
            f"{many}, {PROCESSES} processes: {where}",
            N,
            contenders,
            goals={"conveyor, 1 primary": 1.0},
            missing=missing,
            remarks=spread_remarks,
        ),
        Scenario(
            "cluster",
            f"1 queue x {TASKS}+{TASKS} tasks: one queue's ceiling",
            N // 2,
            [
                Contender("conveyor", alone.run),
                Contender(f"conveyor, {PROCESSES} processes", shared.run),
            ],
            remarks=one_remarks,
        ),
    ]
