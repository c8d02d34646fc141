"""The Redis store's Lua scripts (files in ``lua/``) and the keys of a queue."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping

# The leased zset's pin.  A zset of up to 128 short members is kept by Redis as a listpack,
# whose every insert scans the members, parsing each score: a claim of 50 items then costs
# about 0.5-1.3 ms in Redis.  One member longer than zset-max-listpack-value (64 bytes)
# keeps the zset a skiplist instead (about 40 us).  Scored +inf, it is never due, never
# counted (ZCOUNT up to "(inf") and never anybody's lease; it is not an id (not digits).
_LEASED_PIN = "~pin:" + "~" * 70


# The Lua scripts live in lua/*.lua, one a file; a script's first lines may name the
# shared parts it starts with ("--! include prelude current"), and "$LEASED_PIN$" stands
# for _LEASED_PIN.  Each file says which KEYS and ARGV it takes and what it replies.
_LUA = importlib.resources.files(__package__).joinpath("lua")


@functools.cache
def lua_script(name: str) -> str:
    """Return the Lua source of script *name*, the parts it includes first.

    Args:
        name: A file name in ``backends/lua/`` without ``.lua`` (``"put"``, ``"claim"``).
    """
    text = _LUA.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    included = []
    for line in text.splitlines():
        if not line.startswith("--! include "):
            break
        included += [lua_script(part) for part in line.split()[2:]]
    return "".join(included) + text.replace("$LEASED_PIN$", _LEASED_PIN)


_PUT = lua_script("put")


_CLAIM = lua_script("claim")


_CLAIM_IDS = lua_script("claim_ids")


_ACK = lua_script("ack")


_RETRY = lua_script("retry")


_RELEASE = lua_script("release")


_FAIL = lua_script("fail")


_EXTEND = lua_script("extend")


_EXTEND_MANY = lua_script("extend_many")


_SHUTDOWN = lua_script("shutdown")


_RESUME = lua_script("resume")


_SET_MAXSIZE = lua_script("set_maxsize")


_BIND_MAXSIZE = lua_script("bind_maxsize")


_REQUEUE = lua_script("requeue")


_RETRACT = lua_script("retract")


_COUNTS = lua_script("counts")


_DEAD_LETTERS = lua_script("dead_letters")


_CHECK_FORMAT = lua_script("check_format")


_PUT_JOBS = lua_script("put_jobs")


# The keys of the job options (layout 3; see lua/jobs.lua), passed last, in this order,
# to every script that includes jobs.lua (and to counts and peek).
JOB_KEY_PARTS = ("prio", "priority", "dedup", "keyof", "expires")

_KEY_PARTS = ("meta", "fresh", "holes", "items", "attempts", "ready", "delayed", "leased",
              "lease", "dead", "deadinfo", "waiters", "changed", "probe", "putat",
              *JOB_KEY_PARTS)  # fmt: skip


def job_keys(keys: Mapping[str, str]) -> list[str]:
    """Return the job options' keys of a queue, from its keys by role (``queue_keys()``)."""
    base = keys["meta"][: -len("meta")]
    return [keys.get(role, base + role) for role in JOB_KEY_PARTS]


# Braces decide a key's hash tag and "%" is the escape itself: with these three escaped, a
# key holds exactly one "{", so prefix, name and suffix read back unambiguously.  Colons
# need no escaping for that, and names without any of the three keep the keys they had.
_KEY_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D"})


def queue_keys(prefix: str, name: str, client: str = "") -> dict[str, str]:
    """Return the Redis keys of queue *name* under *prefix*, by role (see the module docstring).

    Every key is ``<prefix>:{<name>}:<role>`` with ``%``, ``{`` and ``}`` percent-escaped
    in prefix and name, so that distinct (prefix, name) pairs never share a key, and the
    hash tag of every key of one queue is its escaped name.

    Args:
        prefix: The key prefix (option ``prefix``).
        name: The queue's name.
        client: The id of one client, for its ``ops`` key (given only when non-empty).
    """
    base = f"{prefix.translate(_KEY_ESCAPES)}:{{{name.translate(_KEY_ESCAPES)}}}"
    keys = {part: f"{base}:{part}" for part in _KEY_PARTS}
    if client:
        keys["ops"] = f"{base}:ops:{client}"
        keys["inbox"] = f"{base}:inbox:{client}"
    return keys
