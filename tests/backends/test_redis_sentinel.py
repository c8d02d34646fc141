"""Redis behind Sentinel: the URL, following a failover, and what a failover loses.

The fault tests run producers and consumers in processes of their own against the
session's Sentinel setup (1 primary, 1 replica, 3 sentinels: ``sentinel_backend.py``),
fail the primary over mid-run (``SENTINEL FAILOVER``, or SIGKILL of the primary), and
count the items whose ``put()`` returned and that no consumer ever got (lost), and the
items got more than once (duplicated: at-least-once delivery allows them).  With
``durability="replicated"`` nothing acknowledged may be lost; with the default, what was
lost is printed (run with ``-s`` to see the figures the README quotes).
"""

from __future__ import annotations

import asyncio
import os
import re
import urllib.parse
from collections.abc import Callable

import pytest
import redis

import conveyor
from conveyor.backends.redis import open_store
from tests.backends._processes import Worker
from tests.backends.sentinel_backend import SentinelSetup, healthy_setup, sentinel_setup

__all__ = ["healthy_setup", "sentinel_setup"]  # fixtures, used by name

# Long enough to outlast a failover and Sentinel's reconfiguration of the old primary
# (about 8 s after the switch), during which a replicated change has no replica to wait on.
RETRY = "retry_timeout=40"
LEASE = 1.0
ITEMS = 600


def _at_least(n: int, tag: str) -> Callable[[list[str]], bool]:
    return lambda lines: sum(line.startswith(tag + " ") for line in lines) >= n


# -- URLs: refused before connecting, secrets never shown ----------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+sentinel://127.0.0.1:26379", "service's name"),
        ("redis+sentinel://127.0.0.1:26379/", "service's name"),
        ("redis+sentinel://127.0.0.1:26379/svc/zero", "service's name"),
        ("redis+sentinel://127.0.0.1:26379/svc/0/1", "service's name"),
        ("redis+sentinel://127.0.0.1:26379,127.0.0.1:port/svc", "bad sentinel address"),
        ("redis+sentinel://127.0.0.1:26379,,127.0.0.1:1/svc", "bad sentinel address"),
        ("redis+sentinel://[::1]x:1/svc", "bad sentinel address"),
        ("redis://127.0.0.1:6379,127.0.0.1:6380/0", "redis+sentinel://host:26379"),
        ("rediss://127.0.0.1:6379,127.0.0.1:6380/0", "rediss+sentinel://host:26379"),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", "Cluster is not supported yet"),
        ("rediss+cluster://127.0.0.1:7000", "Cluster is not supported yet"),
        ("redis+sentinel://127.0.0.1:26379/svc?durability=paper", "durability"),
        ("redis+sentinel://127.0.0.1:26379/svc?ssl_ca_certs=/ca.pem", "rediss+sentinel://"),
        ("redis://127.0.0.1:1/0?sentinel_password=x", "redis+sentinel:// URL only"),
    ],
)
async def test_bad_or_mixed_urls_are_refused_before_connecting(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as caught:
        await asyncio.wait_for(conveyor.open_queue(url, name="q"), 1.0)
    if "service" in words or "address" in words:
        assert "redis+sentinel://[[user]:password@]host:26379[,host:26380,...]" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:s3cret-pw@127.0.0.1:1,127.0.0.1:2/svc/zero",
        "redis+sentinel://user:s3cret-pw@127.0.0.1:port/svc",
        "redis+sentinel://127.0.0.1:1/svc/x?sentinel_password=s3cret-pw",
        "redis+sentinel://127.0.0.1:1/svc?sentinel_password=s3cret-pw&durability=no",
        "redis+cluster://:s3cret-pw@127.0.0.1:1",
        "redis://:s3cret-pw@127.0.0.1:1,127.0.0.1:2/0",
    ],
)
async def test_no_error_shows_a_password(url: str) -> None:
    with pytest.raises(ValueError, match=r"\w") as caught:
        await conveyor.open_queue(url, name="q")
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(caught.value)


async def test_unreachable_sentinels_are_named_without_the_password() -> None:
    url = (
        "redis+sentinel://:s3cret-pw@127.0.0.1:1/svc?retry_timeout=0.3&sentinel_password=s3cret-pw"
    )
    with pytest.raises(conveyor.BackendUnavailableError) as caught:
        await conveyor.open_queue(url, name="q")
    message = str(caught.value)
    assert "svc (Sentinel 127.0.0.1:1)" in message
    assert "s3cret" not in message
    chain: BaseException | None = caught.value
    while chain is not None:
        assert "s3cret" not in str(chain) + repr(chain)
        chain = chain.__cause__ or chain.__context__


# -- following the primary ---------------------------------------------------------


async def test_a_queue_opened_through_sentinel_reaches_the_primary(
    sentinel_setup: SentinelSetup,
) -> None:
    async with conveyor.open_queue(sentinel_setup.url(), name="reach") as queue:
        await queue.put("one")
        assert await queue.get() == "one"
        queue.task_done()
        assert queue.statistics().backend == "redis"


async def test_receipts_and_the_incarnation_survive_a_failover(
    healthy_setup: SentinelSetup,
) -> None:
    # The replica had every change (WAIT), so the promoted one holds the same queue: the
    # same epoch (no reset), the same leases (a receipt of before acknowledges once).
    url = healthy_setup.url(query=f"durability=replicated&{RETRY}")
    store = await open_store(urllib.parse.urlsplit(url), "survives")
    try:
        assert await store.put([b"1", b"2", b"3"])
        (first,) = await store.claim(1, 30.0, None)
        await asyncio.to_thread(healthy_setup.failover)
        acked = await store.ack([first.receipt])
        again = await store.ack([first.receipt])
        counts = await store.counts()
    finally:
        await store.aclose()
    assert acked == [True]
    assert again == [False]
    assert (counts.ready, counts.leased) == (2, 0)


async def test_a_wiped_primary_is_a_new_incarnation_not_a_failover(
    healthy_setup: SentinelSetup,
) -> None:
    # The keys vanish on the primary (and so on its replica): that is a reset, as on one
    # server, and the failover above, whose data survived, is not.
    store = await open_store(urllib.parse.urlsplit(healthy_setup.url()), "wiped")
    try:
        assert await store.put([b"1"])
        (delivery,) = await store.claim(1, 30.0, None)
        primary = healthy_setup.primary()
        await asyncio.to_thread(_flushall, primary.port)
        with pytest.raises(conveyor.StoreResetError, match="vanished"):
            await store.put([b"2"])
        assert await store.ack([delivery.receipt]) == [False]
        assert await store.put([b"3"])
        assert (await store.counts()).ready == 1
    finally:
        await store.aclose()


def _flushall(port: int) -> None:
    client = redis.Redis(port=port)
    try:
        client.flushall()
    finally:
        client.close()


async def test_replicated_durability_fails_as_outcome_unknown_without_a_replica(
    healthy_setup: SentinelSetup,
) -> None:
    url = healthy_setup.url(query="durability=replicated&retry_timeout=1&socket_timeout=0.5")
    store = await open_store(urllib.parse.urlsplit(url), "no-replica")
    replica = next(n for n in healthy_setup.nodes if n is not healthy_setup.primary())
    try:
        replica.pause()  # connected, and confirming nothing
        with pytest.raises(conveyor.BackendUnavailableError) as caught:
            await store.put([b"x"])
    finally:
        replica.resume()
        await store.aclose()
    assert caught.value.outcome_unknown
    assert "no replica to confirm" in str(caught.value)
    assert "may or may not" in str(caught.value)


# -- failovers mid-run, producers and consumers in processes of their own --------------


def _run_with_fault(setup: SentinelSetup, durability: str, fault: Callable[[], object]) -> str:
    """Put ITEMS from one process, get from another, *fault* mid-run; return the figures."""
    name = f"fault-{durability}-{os.urandom(4).hex()}"
    url = setup.url(query=f"durability={durability}&{RETRY}")
    producer = Worker("produce", url, name, "--count", str(ITEMS))
    # The consumer stops on its own once idle, its acknowledgements written: what it
    # got twice was delivered twice, not left unacknowledged by the test.
    consumer = Worker(
        "consume", url, name, "--lease", str(LEASE), "--work", "0.002", "--idle", str(LEASE * 3)
    )
    producer.wait_for(_at_least(ITEMS // 4, "put"))
    consumer.wait_for(_at_least(10, "got"))
    fault()
    producer.finish(timeout=120)
    consumer.finish(timeout=120)
    drain = Worker("consume", url, name, "--lease", str(LEASE), "--idle", str(LEASE * 3))
    drain.finish(timeout=120)
    confirmed = set(producer.values("put"))
    got = consumer.values("got") + drain.values("got")
    lost = confirmed - set(got)
    duplicated = len(got) - len(set(got))
    figures = (
        f"durability={durability}: {len(confirmed)} puts returned, {len(lost)} lost,"
        f" {duplicated} got twice"
    )
    print(figures)
    assert len(confirmed) == ITEMS
    if durability == "replicated":
        assert not lost, f"{figures}: {sorted(lost)[:10]}"
    return figures


@pytest.mark.parametrize("durability", ["primary", "replicated"])
def test_sentinel_failover_mid_run(healthy_setup: SentinelSetup, durability: str) -> None:
    _run_with_fault(healthy_setup, durability, healthy_setup.failover)


@pytest.mark.parametrize("durability", ["primary", "replicated"])
def test_primary_killed_mid_run(healthy_setup: SentinelSetup, durability: str) -> None:
    def kill_primary() -> None:
        old = healthy_setup.primary()
        old.kill()
        healthy_setup.wait_primary_other_than(old)
        # As a supervisor would: the node comes back (with its AOF), and Sentinel makes it
        # the new primary's replica; until then a replicated change has nothing to wait on.
        old.start()

    _run_with_fault(healthy_setup, durability, kill_primary)
