"""The Redis key names of queues: every (prefix, name) pair its own keys, one hash tag a queue."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.backends.redis import open_store, queue_keys
from tests.backends.redis_backend import RedisServer, redis_server

pytestmark = pytest.mark.timeout(60)

__all__ = ["redis_server"]

# The characters that matter (braces, colons, the escape) often, and any other sometimes.
_TEXT = st.text(alphabet=st.sampled_from("{}:%7BDa") | st.characters(), min_size=1, max_size=12)


def hash_tag(key: str) -> str:
    """Return what Redis Cluster hashes for *key*: its hash tag's content, or the whole key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def all_keys(prefix: str, name: str) -> set[str]:
    return set(queue_keys(prefix, name, client="c0ffee").values())


@given(_TEXT, _TEXT, _TEXT, _TEXT)
def test_distinct_pairs_never_share_a_key_or_a_name_tag(
    prefix_a: str, name_a: str, prefix_b: str, name_b: str
) -> None:
    keys_a, keys_b = all_keys(prefix_a, name_a), all_keys(prefix_b, name_b)
    tags_a = {hash_tag(key) for key in keys_a}
    tags_b = {hash_tag(key) for key in keys_b}
    assert len(tags_a) == 1  # one queue, one slot
    assert len(tags_b) == 1
    if (prefix_a, name_a) != (prefix_b, name_b):
        assert not keys_a & keys_b
    # The tag is the (escaped) name: distinct names never share it.  The same name under
    # two prefixes does share it (and so a slot, harmlessly: their keys differ), since a
    # plain name must keep its tag whatever its prefix, or existing queues lose their keys.
    assert (tags_a == tags_b) == (name_a == name_b)


@given(
    _TEXT.filter(lambda s: not set(s) & set("{}%")), _TEXT.filter(lambda s: not set(s) & set("{}%"))
)
def test_plain_names_keep_the_keys_they_always_had(prefix: str, name: str) -> None:
    keys = queue_keys(prefix, name)
    assert keys["meta"] == f"{prefix}:{{{name}}}:meta"
    assert keys["changed"] == f"{prefix}:{{{name}}}:changed"


def test_the_default_keys_of_a_queue() -> None:
    keys = queue_keys("conveyor", "jobs", client="abc")
    assert keys["ready"] == "conveyor:{jobs}:ready"
    assert keys["ops"] == "conveyor:{jobs}:ops:abc"
    assert queue_keys("app:{x}", "a}b")["meta"] == "app:%7Bx%7D:{a%7Db}:meta"


async def test_queues_whose_keys_once_coincided_are_apart(redis_server: RedisServer) -> None:
    # Unescaped, both pairs were the keys "x:{a}:{b}:...": one queue's items were the other's.
    url = urllib.parse.urlsplit(redis_server.url)
    first = await open_store(url, "b", prefix="x:{a}")
    second = await open_store(url, "a}:{b", prefix="x")
    try:
        assert await first.put([b"mine"])
        assert (await second.counts()).ready == 0
        assert await second.claim(1, 30.0, None) == []
        (delivery,) = await first.claim(1, 30.0, None)
        assert delivery.payload == b"mine"
        assert await first.ack([delivery.receipt]) == [True]
    finally:
        await first.aclose()
        await second.aclose()
