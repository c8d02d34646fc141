"""The cluster group's view of a Redis Cluster: which primary serves which slot, CPU time.

``read_topology()`` asks a seed node ``CLUSTER SHARDS`` for every shard's slot ranges and
nodes; ``pick_names()`` then finds queue names whose slot a given primary serves (a
queue's keys are ``conveyor:{name}:...``, so the name alone decides the slot).
``cpu_seconds()`` reads ``INFO cpu`` (``used_cpu_sys`` + ``used_cpu_user``) of each node,
``machine_ticks()`` how busy the whole machine was (Linux only), and
``delete_queues()`` removes what the benchmark made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from .._exceptions import InvalidURLError
from .._urls import redacted
from ..backends.redis._cluster import parse_cluster_url

__all__ = [
    "Address",
    "Topology",
    "cpu_seconds",
    "delete_queues",
    "machine_ticks",
    "pick_names",
    "read_topology",
    "refused",
    "slot_of",
]

Address = tuple[str, int]

_TIMEOUT = 5.0


def refused(url: str) -> str | None:
    """Return why ``--cluster`` *url* cannot be used (``None`` when it can).

    Only ``redis+cluster://host:port[,host:port,...]`` is taken: the group connects to
    each node itself to read its CPU time, without TLS.
    """
    shown = redacted(url)
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        return f"--cluster: {shown!r} is not a URL: {exc}"
    if "://" not in url or parts.scheme != "redis+cluster":
        tls = " (TLS is not supported here)" if parts.scheme == "rediss+cluster" else ""
        return (
            "--cluster takes the redis+cluster:// URL of a Redis Cluster,"
            f" e.g. redis+cluster://127.0.0.1:7000,127.0.0.1:7001, not {shown!r}{tls}"
        )
    try:
        parse_cluster_url(parts)
    except InvalidURLError as exc:
        return f"--cluster: {exc}"
    return None


def _credentials(url: str) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    if not at:
        return {}
    user, colon, password = userinfo.partition(":")
    return {
        "username": urllib.parse.unquote(user) or None,
        "password": urllib.parse.unquote(password) if colon else None,
    }


@contextlib.contextmanager
def _node(url: str, address: Address) -> Iterator[Any]:
    # Any: redis-py's sync return types are unions of the sync and async ones.
    client: Any = redis.Redis(
        host=address[0],
        port=address[1],
        socket_timeout=_TIMEOUT,
        socket_connect_timeout=_TIMEOUT,
        decode_responses=True,
        **_credentials(url),
    )
    try:
        yield client
    finally:
        client.close()


@dataclasses.dataclass(frozen=True)
class Topology:
    """Which primary serves which slots, and every node of the cluster.

    Attributes:
        url: The ``redis+cluster://`` URL it was read through.
        ranges: ``(first slot, last slot, primary)`` for every range served.
        primaries: The primaries serving slots, sorted.
        replicas: Their replicas, sorted.
    """

    url: str
    ranges: tuple[tuple[int, int, Address], ...]
    primaries: tuple[Address, ...]
    replicas: tuple[Address, ...]

    def primary_of(self, slot: int) -> Address | None:
        """Return the primary serving *slot*, or ``None`` when none does."""
        for first, last, primary in self.ranges:
            if first <= slot <= last:
                return primary
        return None

    @property
    def nodes(self) -> tuple[Address, ...]:
        """The primaries, then the replicas."""
        return self.primaries + self.replicas


def _mapping(value: Any) -> dict[str, Any]:
    # A shard and a node are maps; redis-py returns them as dicts or as flat lists.
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return {str(value[i]): value[i + 1] for i in range(0, len(value) - 1, 2)}


def read_topology(url: str) -> Topology:
    """Ask the seed nodes of *url*, in turn, for the cluster's shards (``CLUSTER SHARDS``).

    Raises:
        RuntimeError: No seed answered, or none names a primary serving slots.
    """
    errors = []
    for seed in parse_cluster_url(urllib.parse.urlsplit(url)).seeds:
        try:
            with _node(url, seed) as client:
                shards = client.execute_command("CLUSTER", "SHARDS")
        except redis.RedisError as exc:
            errors.append(f"{seed[0]}:{seed[1]}: {exc}")
            continue
        ranges: list[tuple[int, int, Address]] = []
        replicas: list[Address] = []
        for shard in map(_mapping, shards):
            slots = [int(s) for s in shard.get("slots", [])]
            primary = None
            for node in map(_mapping, shard.get("nodes", [])):
                if node.get("health") != "online":
                    continue
                host = str(node.get("endpoint") or "")
                if host in ("", "?"):
                    host = str(node.get("ip") or seed[0])
                address = (host, int(node["port"]))
                if node.get("role") == "master":
                    primary = address
                else:
                    replicas.append(address)
            if primary is not None and slots:
                ranges += [(slots[i], slots[i + 1], primary) for i in range(0, len(slots) - 1, 2)]
        primaries = sorted({primary for _, _, primary in ranges})
        if not primaries:
            raise RuntimeError(f"no node of {redacted(url)} names a primary serving slots")
        return Topology(url, tuple(sorted(ranges)), tuple(primaries), tuple(sorted(replicas)))
    raise RuntimeError(f"no seed node of {redacted(url)} answered: {'; '.join(errors)}")


def slot_of(name: str) -> int:
    """Return the slot of queue *name*'s keys (``conveyor:{name}:...``)."""
    return key_slot(f"conveyor:{{{name}}}:meta".encode())


def pick_names(topology: Topology, stem: str, wanted: Sequence[Address]) -> list[str]:
    """Return a queue name for each primary of *wanted*, whose slot that primary serves.

    The names are ``stem-0``, ``stem-1``, ... (those landing elsewhere skipped).
    """
    names: list[str] = []
    left = list(wanted)
    i = 0
    while left:
        name = f"{stem}-{i}"
        i += 1
        primary = topology.primary_of(slot_of(name))
        if primary in left:
            left.remove(primary)
            names.append(name)
        if i > 100_000 * len(wanted):  # pragma: no cover - each primary serves slots
            raise RuntimeError(f"no queue name found for {left[0][0]}:{left[0][1]}")
    return names


def cpu_seconds(topology: Topology) -> dict[Address, float]:
    """Return each node's CPU seconds so far (``used_cpu_sys`` + ``used_cpu_user``)."""
    used = {}
    for address in topology.nodes:
        with _node(topology.url, address) as client:
            info = client.info("cpu")
        used[address] = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    return used


def machine_ticks() -> tuple[int, int] | None:
    """Return the machine's busy and total CPU ticks so far (``None`` but on Linux)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(value) for value in fields[1:9]]  # user .. steal; guests are in user
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def delete_queues(url: str, names: Sequence[str]) -> None:
    """Delete the keys of the queues *names* (``conveyor:{name}:*``) where they live now."""
    topology = read_topology(url)
    for name in names:
        primary = topology.primary_of(slot_of(name))
        if primary is None:  # pragma: no cover - a slot without a primary: nothing to reach
            continue
        with _node(url, primary) as client:
            keys = list(client.scan_iter(match=f"conveyor:{{{name}}}:*", count=1000))
            if keys:
                client.delete(*keys)
