"""One Redis queue shared by processes in separate network namespaces of this machine.

The module builds four network namespaces: ``srv`` runs a private ``redis-server``, and
each of ``prod``, ``cons`` and ``watch`` is joined to ``srv`` by a veth pair of its own
(10.77.N.2 on the client side, 10.77.N.1 on the server side, one /24 per pair).  Nothing
is added to the machine's own namespace, and every name carries a random token, so runs
side by side do not clash.  Producers run in ``prod``, consumers in ``cons``, and the
process that waits in ``join()`` in ``watch``: each reaches the server at another address,
over a network stack of its own, as separate machines would.

Network namespaces need root (``CAP_SYS_ADMIN``) and the ``ip`` command.  Where they cannot
be made, the test skips with the exact reason, under ``CI=true`` too: separate namespaces
are optional in issue #5, and ``test_redis_processes.py`` covers the same sharing between
processes that see one network.  A missing ``redis-server`` follows the rule of
``redis_backend.py`` (skip, but fail under ``CI=true``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.backends.redis_backend import START_LIMIT, require_redis_server

pytestmark = pytest.mark.timeout(60)

MAXSIZE = 5
PRODUCERS = 3
TOTAL = 200
HELD = TOTAL - 1  # the last item of the last producer; its consumer holds it unacknowledged
PORT = 6379  # the server namespace is private, so Redis's own port is free there
CLIENTS = ("prod", "cons", "watch")

# One program for every role, run as ``python peer.py ROLE URL NAME [FIRST COUNT]``.
# Every line is flushed at once: the test follows each process by what it printed.
PEER = """
import asyncio, dataclasses, json, os, sys, urllib.parse

import conveyor
from conveyor.backends.redis import open_store

MAXSIZE = int(os.environ["PEER_MAXSIZE"])
HELD = int(os.environ["PEER_HELD"])


def say(*parts):
    print(*parts, flush=True)


async def depth(store):
    counts = await store.counts()
    return counts.ready + counts.delayed  # what maxsize bounds


async def produce(q, store, first, count):
    for i in range(first, first + count):
        await q.put(i)
    say("done")


async def consume(q, store):
    got, peak = [], 0
    async for item in q:
        got.append(item)
        peak = max(peak, await depth(store))
        if item == HELD:
            say("holding", item)
            await asyncio.to_thread(sys.stdin.readline)  # until the test says "release"
        q.task_done()
    await q.flush()
    say("result", json.dumps({"got": got, "peak": peak}))


async def watch(q, store):
    size = await depth(store)
    while size < MAXSIZE:
        await asyncio.sleep(0.005)
        size = await depth(store)
    say("full", size)
    await asyncio.to_thread(sys.stdin.readline)  # until the test says "join"
    say("joining", (await store.counts()).unfinished)
    await q.join()
    say("joined", json.dumps(dataclasses.asdict(await store.counts())))
    q.shutdown()


async def main(role, url, name, *numbers):
    store = await open_store(urllib.parse.urlsplit(url), name)
    try:
        async with conveyor.open_queue(url, name=name, maxsize=MAXSIZE) as q:
            say("ready", os.readlink("/proc/self/ns/net"))
            if role == "produce":
                await produce(q, store, *map(int, numbers))
            elif role == "consume":
                await consume(q, store)
            else:
                await watch(q, store)
    finally:
        await store.aclose()


asyncio.run(main(*sys.argv[1:]))
"""


@dataclasses.dataclass
class Network:
    """The namespaces of one module run, and where each client reaches the server."""

    server: str
    clients: dict[str, str]  # role -> namespace
    addresses: dict[str, str]  # role -> the server's address on that role's link
    password: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)

    def url(self, role: str) -> str:
        """The URL by which the client namespace of *role* reaches the server."""
        return f"redis://:{self.password}@{self.addresses[role]}:{PORT}/0"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def _build(token: str, made: list[str]) -> Network:
    """Create the namespaces and links; record each namespace in *made* as it exists."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_SYS_ADMIN); this test runs as a user")
    if shutil.which("ip") is None:
        pytest.skip("network namespaces need the ip command (apt install iproute2)")
    server = f"cv-{token}-srv"
    done = _ip("netns", "add", server)
    if done.returncode != 0:
        pytest.skip(f"cannot create a network namespace: ip netns add: {done.stderr.strip()}")
    made.append(server)
    network = Network(server, {}, {})
    steps: list[tuple[str, ...]] = [("-n", server, "link", "set", "lo", "up")]
    for n, role in enumerate(CLIENTS, start=1):
        client, near, far = f"cv-{token}-{role}", f"cv{token}s{n}", f"cv{token}c{n}"
        done = _ip("netns", "add", client)
        if done.returncode != 0:
            raise RuntimeError(f"ip netns add {client}: {done.stderr.strip()}")
        made.append(client)
        network.clients[role] = client
        network.addresses[role] = f"10.77.{n}.1"
        steps += [
            ("link", "add", near, "netns", server, "type", "veth", "peer", "name", far,
             "netns", client),
            ("-n", server, "addr", "add", f"10.77.{n}.1/24", "dev", near),
            ("-n", server, "link", "set", near, "up"),
            ("-n", client, "addr", "add", f"10.77.{n}.2/24", "dev", far),
            ("-n", client, "link", "set", far, "up"),
            ("-n", client, "link", "set", "lo", "up"),
        ]  # fmt: skip
    for step in steps:
        done = _ip(*step)
        if done.returncode == 0:
            continue
        if any(s in done.stderr for s in ("not supported", "Unknown device type", "permitted")):
            pytest.skip(f"cannot link network namespaces: ip {' '.join(step)}: {done.stderr}")
        raise RuntimeError(f"ip {' '.join(step)} failed: {done.stderr.strip()}")
    return network


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """The namespaces and a ``redis-server`` in ``srv``; all removed at the end, even on failure."""
    binary = require_redis_server()
    made: list[str] = []
    server: subprocess.Popen[bytes] | None = None
    try:
        network = _build(uuid.uuid4().hex[:6], made)
        workdir = tmp_path_factory.mktemp("redis-netns")
        log = workdir / "redis.log"
        args = [
            "ip", "netns", "exec", network.server, binary,
            "--port", str(PORT),
            "--bind", *network.addresses.values(),
            "--requirepass", network.password,  # clients from other hosts need one
            "--dir", str(workdir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(log),
        ]  # fmt: skip
        server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The test's own namespace cannot reach the server, so its log says when it is up.
        deadline = time.monotonic() + START_LIMIT
        while "Ready to accept connections" not in (log.read_text() if log.exists() else ""):
            if server.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server in {network.server} did not start: {text}")
            time.sleep(0.02)
        yield network
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        for namespace in reversed(made):  # deleting a namespace deletes its veth ends too
            _ip("netns", "del", namespace)


class Peer:
    """One process of the peer program inside a namespace, and the lines it printed."""

    def __init__(self, process: asyncio.subprocess.Process, label: str) -> None:
        self.process = process
        self.label = label
        self.lines: list[tuple[str, str]] = []  # (first word, the rest)
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, namespace: str, script: Path, *args: object) -> Peer:
        """Run ``peer.py ARGS`` in *namespace* with this test's Python."""
        env = dict(os.environ, PEER_MAXSIZE=str(MAXSIZE), PEER_HELD=str(HELD))
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", namespace, sys.executable, str(script), *map(str, args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )  # fmt: skip
        return cls(process, f"{args[0]} in {namespace}")

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            word, _, rest = line.decode().strip().partition(" ")
            self.lines.append((word, rest))
            self._changed.set()
        self._changed.set()

    def said(self, word: str) -> list[str]:
        """The rest of each line that starts with *word*."""
        return [rest for first, rest in self.lines if first == word]

    async def wait_for(self, word: str, timeout: float = 30) -> str:
        """Return the rest of the first line starting with *word*; fail if the process ends."""

        async def first() -> str:
            while True:
                found = self.said(word)
                if found:
                    return found[0]
                if self._reader.done():
                    raise AssertionError(f"{self.label} ended: {self.lines} {await self.errors()}")
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)

    async def tell(self, line: str) -> None:
        """Write *line* to the process's standard input."""
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def finish(self, timeout: float = 30) -> None:
        """Wait for a normal exit."""
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await self._reader
        assert code == 0, f"{self.label} failed with {code}: {await self.errors()}"

    async def errors(self) -> str:
        """What the process wrote to standard error, once it has ended."""
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except asyncio.TimeoutError:
            return "(still running)"
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode(errors="replace")[-3000:]

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()


async def _all(peers: list[Peer], step: Callable[[Peer], Awaitable[None]]) -> None:
    """Run *step* for every peer at once; raise the first failure once all are over."""
    outcomes = await asyncio.gather(*(step(peer) for peer in peers), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def test_join_and_maxsize_hold_across_network_namespaces(
    network: Network, tmp_path: Path
) -> None:
    script = tmp_path / "peer.py"
    script.write_text(PEER)
    name = f"netns-{uuid.uuid4().hex[:12]}"

    per_producer = -(-TOTAL // PRODUCERS)
    peers: list[Peer] = []
    try:
        watcher = await Peer.start(
            network.clients["watch"], script, "watch", network.url("watch"), name
        )
        peers.append(watcher)
        producers = [
            await Peer.start(
                network.clients["prod"], script, "produce", network.url("prod"), name,
                first, min(per_producer, TOTAL - first),
            )
            for first in range(0, TOTAL, per_producer)
        ]  # fmt: skip
        peers += producers
        # The producers fill the shared queue to maxsize and stay blocked in put().
        assert await watcher.wait_for("full") == str(MAXSIZE)
        assert all(p.process.returncode is None for p in producers), "producers were not held"
        consumers = [
            await Peer.start(network.clients["cons"], script, "consume", network.url("cons"), name)
            for _ in range(2)
        ]
        peers += consumers
        await _all(producers, lambda p: p.finish())
        holder = await _first_to_say("holding", consumers)
        # Every item is put now, and HELD is still unacknowledged: join() must wait for it.
        await watcher.tell("join")
        assert int(await watcher.wait_for("joining")) >= 1
        # Give a join() that does not wait time to return (not a speed measurement).
        await asyncio.sleep(0.3)
        assert not watcher.said("joined"), "join() returned while an item was unacknowledged"
        await holder.tell("release")
        after = json.loads(await watcher.wait_for("joined"))
        await _all([watcher, *consumers], lambda p: p.finish())
    finally:
        await _all(peers, lambda p: p.kill())

    namespaces = {peer.label.split()[0]: peer.said("ready")[0] for peer in peers}
    assert len(set(namespaces.values())) == len(CLIENTS), namespaces  # three network stacks
    assert namespaces["produce"] != os.readlink("/proc/self/ns/net")
    assert after == {
        "ready": 0,
        "delayed": 0,
        "leased": 0,
        "dead": 0,
        "is_shutdown": False,
        "maxsize": MAXSIZE,
    }
    results = [json.loads(c.said("result")[0]) for c in consumers]
    assert all(r["peak"] <= MAXSIZE for r in results), results
    everything = sorted(item for r in results for item in r["got"])
    assert everything == list(range(TOTAL))  # every item once: no loss, no duplicate
    assert all(r["got"] for r in results), "both consumers took part"


async def _first_to_say(word: str, peers: list[Peer], timeout: float = 30) -> Peer:
    """Return the peer that prints a line starting with *word* first."""
    waits = {asyncio.ensure_future(p.wait_for(word, timeout)): p for p in peers}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        winner = next(iter(done))
        winner.result()
        return waits[winner]
    finally:
        for wait in waits:
            wait.cancel()
