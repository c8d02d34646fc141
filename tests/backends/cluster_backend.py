"""The ``cluster`` conformance backend: a Redis Cluster of 3 primaries and 3 replicas.

The tests start the six nodes themselves on free loopback ports (a port whose cluster bus
port, 10000 above it, is free too), each in a directory of its own under one temporary
directory where it keeps its ``nodes.conf`` and its AOF, and join them with ``redis-cli
--cluster create``, once per session: every Cluster test shares it, and a fault test
leaves it healthy again (every slot served, every primary with one synced replica, every
node agreeing) before the next one runs (``ClusterSetup.wait_healthy()``).  A killed node
started again rejoins as the replica of the node promoted in its place.  Without
``redis-server`` the tests skip with a reason, except under ``CI=true``, where they fail.

Everything is as quick as Redis allows, measured on 2 cores: the cluster is up in about
2.1 s (a new primary stays ``cluster_state:fail`` for 2 s after it starts: Redis's
``CLUSTER_WRITABLE_DELAY``); a killed primary's replica takes over in about 1.8 s (a
500 ms ``cluster-node-timeout``, stable with the CPUs and the disk saturated, then
Redis's 0.5-1 s election delay), or 0.1 s when forced; ``wait_healthy()`` brings the
killed node back in about 0.1 s; a graceful failover takes 0.3 s, a reshard 0.03 s.

Which primary serves a queue is chosen by its name: every key of a queue hashes to the
slot of its escaped name (``slot_of``), and ``name_for_slot``/``name_in_slot_of`` find a
name for a chosen slot or primary.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

import conveyor
from conveyor.backends.redis._scripts import queue_keys
from tests.backend_registry import BACKENDS, Backend, register
from tests.backends.redis_backend import (
    RedisServer,
    free_port,
    require_binary,
    session_setup,
    shared,
    unique_name,
)

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
SLOTS = 16384
BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000
NODE_TIMEOUT_MS = 500
HEALTHY_LIMIT = 60.0
POLL = 0.025
NODE_ARGS = [
    "--cluster-enabled", "yes",
    "--cluster-config-file", "nodes.conf",
    "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
    # A replica cut off from its primary for long may still be promoted.
    "--cluster-replica-validity-factor", "0",
    # The slots of other primaries stay served while one primary is down.
    "--cluster-require-full-coverage", "no",
    # A (re)joining replica syncs at once, not after the default 5 s wait for others.
    "--repl-diskless-sync-delay", "0",
]  # fmt: skip


def require_redis_cli() -> str:
    """Return the ``redis-cli`` binary, or skip (fail under ``CI=true``) without it."""
    return require_binary(REDIS_CLI, "redis-tools", "Redis Cluster tests")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_port(taken: set[int]) -> int:
    """Return a free port whose bus port (port + 10000) is free too, both not in *taken*."""
    for _ in range(1000):
        port = free_port()
        bus = port + BUS_OFFSET
        if bus > 65535 or {port, bus} & taken:
            continue
        if _port_free(bus):
            return port
    raise RuntimeError("found no free port with a free cluster bus port")


@dataclasses.dataclass(frozen=True)
class NodeView:
    """One line of ``CLUSTER NODES``: a node as the node asked sees it."""

    id: str
    port: int
    flags: frozenset[str]
    master: str  # the primary's id for a replica, "" for a primary
    epoch: int
    link: str
    ranges: tuple[tuple[int, int], ...]  # the slots it serves, first and last of each run
    open: tuple[str, ...]  # "[slot->-id]" (migrating) or "[slot-<-id]" (importing), own line

    @classmethod
    def parse(cls, line: str) -> NodeView:
        """Parse one line of ``CLUSTER NODES``."""
        fields = line.split()
        ranges = []
        opened = []
        for part in fields[8:]:
            if part.startswith("["):
                opened.append(part)
            else:
                first, _, last = part.partition("-")
                ranges.append((int(first), int(last or first)))
        return cls(
            id=fields[0],
            port=int(fields[1].split("@")[0].rsplit(":", 1)[1]),
            flags=frozenset(fields[2].split(",")),
            master="" if fields[3] == "-" else fields[3],
            epoch=int(fields[6]),
            link=fields[7],
            ranges=tuple(sorted(ranges)),
            open=tuple(opened),
        )

    @property
    def primary(self) -> bool:
        """Whether the node is a primary."""
        return "master" in self.flags

    def serves(self, slot: int) -> bool:
        """Whether the node serves *slot*."""
        return any(first <= slot <= last for first, last in self.ranges)


class ClusterSetup:
    """Six cluster nodes: 3 primaries, each with a replica; the roles move with failovers.

    ``nodes[:3]`` are the primaries ``redis-cli --cluster create`` made (slots 0-5460,
    5461-10922 and 10923-16383, in this order) and the URL's seeds; which replica follows
    which primary is ``redis-cli``'s choice.  The nodes' ports and ids stay the same across
    restarts.  Every method blocks: tests call the slow ones with ``asyncio.to_thread``.
    """

    def __init__(self, workdir: Path) -> None:
        require_redis_cli()
        self.workdir = workdir
        self.nodes: list[RedisServer] = []
        taken: set[int] = set()
        for i in range(6):
            where = workdir / f"node-{i}"
            where.mkdir()
            node = RedisServer(where, extra_args=NODE_ARGS)
            node.port = cluster_port(taken)  # RedisServer's own pick may have a busy bus port
            taken |= {node.port, node.port + BUS_OFFSET}
            self.nodes.append(node)
        self.ids: dict[int, str] = {}  # port -> node id, known once the cluster is created
        self._clients: dict[int, Any] = {}

    def url(self, scheme: str = "redis+cluster", query: str = "") -> str:
        """The URL of the cluster, the three first nodes as seeds, then *query* if given."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:3])
        return f"{scheme}://{hosts}" + (f"?{query}" if query else "")

    def client(self, node: RedisServer) -> Any:
        """A plain client of *node* (``decode_responses``, no retries: errors show at once).

        Any: redis-py's sync return types are unions of the sync and async ones.
        """
        client = self._clients.get(node.port)
        if client is None:
            made = redis.Redis(
                port=node.port,
                socket_timeout=5.0,
                socket_connect_timeout=1.0,
                decode_responses=True,
                retry=Retry(NoBackoff(), 0),  # type: ignore[no-untyped-call,unused-ignore]
            )
            client = self._clients.setdefault(node.port, made)  # one, across threads
            if client is not made:
                made.close()  # type: ignore[no-untyped-call,unused-ignore]
        return client

    def start(self) -> None:
        """Start the six nodes, create the cluster, and return once it is healthy."""
        for node in self.nodes:
            node.start()
        hosts = [f"127.0.0.1:{node.port}" for node in self.nodes]
        self._cli("--cluster", "create", *hosts, "--cluster-replicas", "1", "--cluster-yes")
        self.ids = {
            node.port: self.client(node).execute_command("CLUSTER MYID") for node in self.nodes
        }
        self.wait_healthy()

    def stop(self) -> None:
        """Stop every node (kill it if it does not stop)."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()  # all at once; stop() then waits for each
        for node in self.nodes:
            node.stop()

    def _cli(self, *args: str) -> str:
        """Run ``redis-cli`` with *args*; return its output, or raise with it on failure."""
        done = subprocess.run(
            [REDIS_CLI, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=HEALTHY_LIMIT,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"redis-cli {' '.join(args)} exited with {done.returncode}:\n"
                f"{done.stdout[-3000:]}{done.stderr[-2000:]}"
            )
        return done.stdout

    # -- what the nodes say ---------------------------------------------------------------

    def alive(self) -> list[RedisServer]:
        """The nodes whose process runs."""
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def views(self, node: RedisServer) -> list[NodeView]:
        """What *node* says of every node (``CLUSTER NODES``), itself first."""
        text: str = self.client(node).execute_command("CLUSTER", "NODES")
        views = [NodeView.parse(line) for line in text.splitlines() if line.strip()]
        views.sort(key=lambda view: "myself" not in view.flags)
        return views

    def cluster_info(self, node: RedisServer) -> dict[str, str]:
        """``CLUSTER INFO`` of *node* as a dict."""
        text: str = self.client(node).execute_command("CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def node_by_port(self, port: int) -> RedisServer:
        """The node listening on *port*."""
        return next(node for node in self.nodes if node.port == port)

    def node_by_id(self, node_id: str) -> RedisServer:
        """The node whose cluster id is *node_id*."""
        return next(node for node in self.nodes if self.ids.get(node.port) == node_id)

    def slot_map(self) -> list[RedisServer | None]:
        """The primary serving each slot now (``None`` for a slot nobody serves).

        Each running node is asked what it serves itself; when two claim a slot (one has
        not yet heard of a failover or a move), the one of the higher config epoch has it,
        as in the cluster.
        """
        owners: list[RedisServer | None] = [None] * SLOTS
        epochs = [-1] * SLOTS
        for node in self.alive():
            try:
                myself = self.views(node)[0]
            except (redis.RedisError, OSError):
                continue
            if not myself.primary:
                continue
            for first, last in myself.ranges:
                for slot in range(first, last + 1):
                    if myself.epoch > epochs[slot]:
                        owners[slot] = node
                        epochs[slot] = myself.epoch
        return owners

    def owner_of(self, slot: int) -> RedisServer:
        """The primary serving *slot* now (see ``slot_map``)."""
        owner = self.slot_map()[slot]
        if owner is None:
            raise LookupError(f"no running primary serves slot {slot}")
        return owner

    def primaries(self) -> list[RedisServer]:
        """The primaries serving slots now, in the order of their lowest slot."""
        return list(dict.fromkeys(owner for owner in self.slot_map() if owner is not None))

    def replica_of(self, primary: RedisServer) -> RedisServer:
        """The running node that says it replicates *primary*."""
        primary_id = self.ids[primary.port]
        for node in self.alive():
            if node is not primary and self.views(node)[0].master == primary_id:
                return node
        raise LookupError(f"no running replica of the primary on port {primary.port}")

    def lowest_slot(self, primary: RedisServer) -> int:
        """The lowest-numbered slot *primary* serves now (what ``reshard`` can move)."""
        return self.slot_map().index(primary)

    # -- queue names and slots ------------------------------------------------------------

    @staticmethod
    def slot_of(name: str, prefix: str = "conveyor") -> int:
        """The slot of every key of queue *name* (its hash tag is the escaped name).

        Queue names are never empty: with an empty one, ``{}`` would tag nothing and each
        key would hash whole, to a slot of its own.
        """
        if not name:
            raise ValueError("a queue name is never empty")
        return key_slot(queue_keys(prefix, name)["meta"].encode())

    @classmethod
    def name_for_slot(cls, slot: int, stem: str, prefix: str = "conveyor") -> str:
        """The first queue name ``f"{stem}-{n}"`` whose keys live in *slot*.

        About 16384 names are tried: each by the hash of its tag alone, the escaped stem
        (taken from a key of the stem's queue: a tag holds no braces) then ``-n``.
        """
        tag = queue_keys(prefix, stem)["meta"].split("{", 1)[1].split("}", 1)[0]
        for n in itertools.count():
            if key_slot(f"{tag}-{n}".encode()) == slot:
                name = f"{stem}-{n}"
                assert cls.slot_of(name, prefix) == slot
                return name
        raise AssertionError("unreachable")  # pragma: no cover

    def name_in_slot_of(self, primary: RedisServer, stem: str, prefix: str = "conveyor") -> str:
        """The first queue name ``f"{stem}-{n}"`` whose keys *primary* serves now."""
        owners = self.slot_map()
        for n in itertools.count():
            name = f"{stem}-{n}"
            if owners[self.slot_of(name, prefix)] is primary:
                return name
        raise AssertionError("unreachable")  # pragma: no cover

    # -- health ---------------------------------------------------------------------------

    def wait_healthy(self, timeout: float = HEALTHY_LIMIT) -> None:
        """Start again a node that was killed, and wait until the cluster can fail over.

        Healthy: every node runs and says ``cluster_state:ok`` with all 16384 slots
        served; all six agree on every node's role, primary and slots, see each other
        connected and none failing; no slot is migrating or importing; and each of the
        3 primaries has exactly one replica, online.
        """
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                if node.process is not None and node.process.stderr is not None:
                    node.process.stderr.close()
                node.start()
        self._wait("the cluster did not become healthy", self._unhealthy, timeout)

    def _wait(self, what: str, check: Callable[[], str], timeout: float = HEALTHY_LIMIT) -> None:
        """Poll ``check()`` (a reason to wait, or "") until it says nothing, or raise."""
        deadline = time.monotonic() + timeout
        why = ""
        while time.monotonic() < deadline:
            why = check()
            if not why:
                return
            time.sleep(POLL)
        raise AssertionError(f"{what} within {timeout:g} s: {why}")

    def _agreement(self, nodes: list[RedisServer], ignore: str = "") -> tuple[str, list[NodeView]]:
        """Whether *nodes* agree on a sound cluster: a reason they do not, or "" and the views.

        Each says ``cluster_state:ok``, sees every other node connected, none failing
        and no slot open, and all say the same of every node's role, primary and slots
        (the node of id *ignore*, one that was killed, left out).
        """
        agreed = set()
        views: list[NodeView] = []
        for node in nodes:
            info = self.cluster_info(node)
            if info.get("cluster_state") != "ok":
                return f"node {node.port}: cluster_state:{info.get('cluster_state')}", []
            views = [view for view in self.views(node) if view.id != ignore]
            for view in views:
                failing = view.flags & {"fail", "fail?", "handshake", "noaddr"}
                if failing or view.open or view.link != "connected":
                    return f"node {node.port} sees {view}", []
            agreed.add(frozenset((view.id, view.master, view.ranges) for view in views))
        if len(agreed) != 1:
            return "the nodes disagree on the roles or the slots", []
        return "", views

    def _unhealthy(self) -> str:
        try:
            why, views = self._agreement(self.nodes)
            if why:
                return why
            for node in self.nodes:
                if self.cluster_info(node).get("cluster_slots_ok") != str(SLOTS):
                    return f"node {node.port}: {self.cluster_info(node)}"
            primaries = [view for view in views if view.primary]
            if len(primaries) != 3:
                return f"primaries: {primaries}"
            if sum(last - first + 1 for p in primaries for first, last in p.ranges) != SLOTS:
                return f"slots: {primaries}"
            for primary in primaries:
                replicas = [view for view in views if view.master == primary.id]
                if len(replicas) != 1:
                    return f"replicas of {primary.port}: {replicas}"
                info = self.node_by_port(primary.port).info("replication")
                slave = info.get("slave0", "")
                if (
                    info.get("role") != "master"
                    or info.get("connected_slaves") != "1"
                    or "state=online" not in slave
                    or f"port={replicas[0].port}," not in slave
                ):
                    return f"the replication of {primary.port}: {info}"
        except (redis.RedisError, OSError, StopIteration, ValueError) as exc:
            return repr(exc)
        return ""

    # -- faults and moves -----------------------------------------------------------------

    def kill_primary_of(
        self, slot: int, *, forced: bool = False
    ) -> tuple[RedisServer, RedisServer]:
        """SIGKILL the primary serving *slot*; return it and its replica once promoted.

        The replica takes over once the cluster has seen the primary fail: after the
        node timeout, then Redis's election delay (0.5-1 s), about 1.8 s in all.  With
        *forced*, the replica is told ``CLUSTER FAILOVER FORCE`` right after the kill and
        takes over in about 0.1 s, before anyone saw the failure: what a test of the
        client's side of a crash needs, in a tenth of the time.

        Returns once the five others say ``cluster_state:ok`` and agree that the promoted
        replica serves the slot.  ``wait_healthy()`` starts the killed node again.
        """
        killed = self.owner_of(slot)
        killed_id = self.ids[killed.port]
        replica = self.replica_of(killed)  # LookupError without one: nobody would take over
        killed.kill()
        if forced:
            self.client(replica).execute_command("CLUSTER", "FAILOVER", "FORCE")
        survivors = [node for node in self.nodes if node is not killed]
        promoted: list[RedisServer] = []

        def check() -> str:
            try:
                why, views = self._agreement(survivors, ignore=killed_id)
            except (redis.RedisError, OSError) as exc:
                return repr(exc)
            if why:
                return why
            owner = next((v for v in views if v.primary and v.serves(slot)), None)
            if owner is None:
                return f"nobody serves slot {slot} yet"
            promoted.append(self.node_by_port(owner.port))
            return ""

        self._wait(f"no replica took slot {slot} over", check)
        return killed, promoted[-1]

    def failover(self, slot: int) -> tuple[RedisServer, RedisServer]:
        """Promote the replica of *slot*'s primary (``CLUSTER FAILOVER``, graceful).

        Returns the old primary and the new one once all six agree that the new one
        serves the slot, and the old one replicates it.
        """
        old = self.owner_of(slot)
        new = self.replica_of(old)
        new_id = self.ids[new.port]
        self.client(new).execute_command("CLUSTER", "FAILOVER")

        def check() -> str:
            try:
                why, views = self._agreement(self.nodes)
            except (redis.RedisError, OSError) as exc:
                return repr(exc)
            if why:
                return why
            owner = next((v.id for v in views if v.primary and v.serves(slot)), "")
            demoted = next(v.master for v in views if v.port == old.port)
            if owner != new_id or demoted != new_id:
                return f"slot {slot} is served by {owner!r}, {old.port} follows {demoted!r}"
            return ""

        self._wait(f"the failover to {new.port} did not finish", check)
        return old, new

    def wait_agreement(self, timeout: float = HEALTHY_LIMIT) -> None:
        """Wait until the running nodes agree on the roles and the slots, none open."""

        def check() -> str:
            try:
                return self._agreement(self.alive())[0]
            except (redis.RedisError, OSError) as exc:
                return repr(exc)

        self._wait("the nodes did not agree", check, timeout)

    def reshard(self, slot: int, to: RedisServer) -> None:
        """Move *slot* to the primary *to* with ``redis-cli --cluster reshard``.

        ``redis-cli`` chooses the slots it moves itself: asked for one slot of a source,
        it moves the source's lowest-numbered slot (``clusterManagerComputeReshardTable``
        walks the source's slots upwards).  So *slot* must be the lowest slot its
        primary serves (``lowest_slot``; a queue in it: ``name_for_slot``), or this raises
        ``ValueError``; any slot moves with ``migrate_slot_slowly(slot, to, 0)``.

        Returns once every node agrees that *to* serves the slot.
        """
        source = self.owner_of(slot)
        if source is to:
            raise ValueError(f"slot {slot} is served by port {to.port} already")
        lowest = self.lowest_slot(source)
        if slot != lowest:
            raise ValueError(
                f"redis-cli moves the lowest slot of port {source.port}, {lowest}, "
                f"not {slot}: use name_for_slot(lowest_slot(primary), ...)"
            )
        self.wait_agreement()  # redis-cli refuses to reshard while the nodes disagree
        self._cli(
            "--cluster", "reshard", f"127.0.0.1:{to.port}",
            "--cluster-from", self.ids[source.port],
            "--cluster-to", self.ids[to.port],
            "--cluster-slots", "1",
            "--cluster-yes",
        )  # fmt: skip
        self._wait_served_by(slot, to)

    def migrate_slot_slowly(self, slot: int, to: RedisServer, pause: float) -> int:
        """Move *slot* to the primary *to* key by key, waiting *pause* s after each step.

        The manual protocol: ``CLUSTER SETSLOT <slot> IMPORTING`` on *to*, ``MIGRATING``
        on the source, then each key of the slot ``MIGRATE``d alone, then ``SETSLOT
        <slot> NODE`` on *to*, the source and the other primaries.  The slot stays open
        (clients get ``ASK`` for a key already moved, ``TRYAGAIN`` for a command on keys
        on both sides) for at least *pause* s after opening and after each key.

        Returns the number of keys moved, once every node agrees that *to* serves the slot.
        """
        source = self.owner_of(slot)
        if source is to:
            raise ValueError(f"slot {slot} is served by port {to.port} already")
        source_id, to_id = self.ids[source.port], self.ids[to.port]
        self.client(to).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        self.client(source).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", to_id)
        moved = 0
        # Keys as bytes: a key needs not be UTF-8.
        raw: Any = redis.Redis(
            port=source.port,
            socket_timeout=30.0,
            retry=Retry(NoBackoff(), 0),  # type: ignore[no-untyped-call,unused-ignore]
        )
        try:
            while True:
                time.sleep(pause)
                keys = raw.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1)
                if not keys:
                    break
                raw.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 10000, "KEYS", keys[0])
                moved += 1
        finally:
            raw.close()
        # The target first: told first, the source alone would send clients nowhere.
        self.client(to).execute_command("CLUSTER", "SETSLOT", slot, "NODE", to_id)
        self.client(source).execute_command("CLUSTER", "SETSLOT", slot, "NODE", to_id)
        for node in self.primaries():
            if node is not to and node is not source:
                self.client(node).execute_command("CLUSTER", "SETSLOT", slot, "NODE", to_id)
        self._wait_served_by(slot, to)
        return moved

    def _wait_served_by(self, slot: int, to: RedisServer) -> None:
        to_id = self.ids[to.port]

        def check() -> str:
            try:
                why, views = self._agreement(self.alive())
            except (redis.RedisError, OSError) as exc:
                return repr(exc)
            owner = next((v for v in views if v.primary and v.serves(slot)), None)
            if why or owner is None or owner.id != to_id:
                return why or f"slot {slot} is served by {owner}"
            return ""

        self._wait(f"slot {slot} did not move to {to.port}", check)


def shared_setup(config: pytest.Config) -> ClusterSetup:
    """Return the session's cluster, healthy, starting it on first use."""
    return session_setup(config, "cluster", ClusterSetup)


@pytest.fixture(scope="session")
def cluster_setup(pytestconfig: pytest.Config) -> ClusterSetup:
    """The session's Redis Cluster (3 primaries, 3 replicas)."""
    return shared_setup(pytestconfig)


@pytest.fixture
def healthy_cluster(cluster_setup: ClusterSetup) -> ClusterSetup:
    """The Redis Cluster, healthy again after what the test before did to it."""
    cluster_setup.wait_healthy()
    return cluster_setup


async def make(request: pytest.FixtureRequest, maxsize: float, kind: str) -> Any:
    """Open a fresh queue of the Redis Cluster (FIFO only)."""
    if kind != "fifo":
        raise ValueError(f"Redis queues are FIFO only, not {kind!r}")
    setup = shared_setup(request.config)
    return await conveyor.open_queue(setup.url(), name=unique_name(request), maxsize=maxsize)


# The same queues as the redis backend's, spread over a cluster: the same differences.
# Named without "redis" so that CI's extra run against the oldest redis-py (-k redis) does
# not run the whole suite a second time through the cluster.  -k "not (conformance and
# cluster)" leaves out exactly the conformance runs on this backend ("not cluster" would
# also drop this fixture's own tests and some URL tests of test_redis_sentinel.py).
register(Backend("cluster", make, differences=dict(BACKENDS["redis"].differences), reports="redis"))


def primary_urls() -> list[str]:
    """The ``redis://`` URL of each primary of the session's cluster now."""
    setup: ClusterSetup = shared("cluster")
    return [node.url for node in setup.primaries()]


def owner_url(name: str, prefix: str = "conveyor") -> str:
    """The ``redis://`` URL of the primary serving queue *name*'s slot now."""
    setup: ClusterSetup = shared("cluster")
    return setup.owner_of(setup.slot_of(name, prefix)).url
