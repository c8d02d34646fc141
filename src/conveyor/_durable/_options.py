"""The job options of a durable put (``delay``, ``priority``, ``key``, ``ttl``), checked.

A put given none of them takes the plain path, as fast as before they existed; one given
any carries a ``PutOptions`` per item to ``Store.put_jobs()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..backends._base import PutOptions

# A priority is a zset score in Redis (a double): exact below 2**53.
PRIORITY_LIMIT = 2**53


def _seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
    return float(value)


def check_priority(priority: object) -> int:
    """Return *priority* checked: an int (not a bool) within +-2**53.

    Raises:
        TypeError: It is not an int.
        ValueError: It is out of range.
    """
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int (lower is claimed first), not {priority!r}")
    if not -PRIORITY_LIMIT < priority < PRIORITY_LIMIT:
        raise ValueError(f"priority must be within +-2**53, not {priority}")
    return priority


def check_key(key: object) -> str:
    """Return *key* checked: a str.

    Raises:
        TypeError: It is not a str.
    """
    if not isinstance(key, str):
        raise TypeError(f"key must be a str (the item's deduplication key), not {key!r}")
    return key


def put_options(delay: object, priority: object, key: object, ttl: object) -> PutOptions | None:
    """Check the job options of one put; ``None`` when none is given (a plain put).

    Raises:
        TypeError: An option has the wrong type (a priority that is not an int, a key
            that is not a str, a delay or ttl that is not a number).
        ValueError: A negative or infinite delay or ttl, a priority out of range.
    """
    if delay is None and priority is None and key is None and ttl is None:
        return None
    return PutOptions(
        delay=_seconds("delay", delay) or 0.0,
        priority=0 if priority is None else check_priority(priority),
        key=None if key is None else check_key(key),
        ttl=_seconds("ttl", ttl),
    )


def many_options(
    items: list[Any],
    delay: object,
    priority: object,
    key: object,
    ttl: object,
) -> list[PutOptions] | None:
    """Check the job options of ``put_many()``: one ``PutOptions`` per item, or ``None``.

    *key* is a function of the item (as ``sorted()``'s), returning its key or ``None``.

    Raises:
        TypeError: As ``put_options()``; also *key* given and not callable.
        ValueError: As ``put_options()``.
    """
    if key is not None and not callable(key):
        raise TypeError(
            "put_many()'s key must be a function of the item returning its deduplication"
            f" key (as sorted()'s key), e.g. key=lambda job: job['id'], not {key!r}"
        )
    shared = put_options(delay, priority, None, ttl)
    if key is None:
        return None if shared is None else [shared] * len(items)
    keyof: Callable[[Any], object] = key
    base = shared or PutOptions()
    result = []
    for item in items:
        k = keyof(item)
        result.append(
            base if k is None else PutOptions(base.delay, base.priority, check_key(k), base.ttl)
        )
    return result
