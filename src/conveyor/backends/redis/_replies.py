"""Reading the Redis store's replies: claimed deliveries, stored bounds, refused commands.

Pure functions of a reply, shared by the store's parts and by the checks made at open.
"""

from __future__ import annotations

import redis.exceptions as rexc

from .._base import Delivery


def read_bound(stored: bytes | str | None) -> float | None:
    """Read a stored bound: ``None`` when none is stored, an ``int`` when it is whole."""
    if not stored:
        return None
    value = float(stored)
    return int(value) if value.is_integer() else value


def read_deliveries(epoch: str, deadline: float, numbers: bytes, payloads: bytes) -> list[Delivery]:
    """Read a claim script's reply: per item "id delivery attempts length", payloads joined."""
    fields = numbers.decode().split()
    deliveries: list[Delivery] = []
    offset = 0
    for i in range(0, len(fields), 4):
        item_id, length = fields[i], int(fields[i + 3])
        deliveries.append(
            Delivery(
                item_id=item_id,
                payload=payloads[offset : offset + length],
                receipt=f"{epoch}:{item_id}:{fields[i + 1]}",
                attempts=int(fields[i + 2]),
                lease_deadline=deadline,
            )
        )
        offset += length
    return deliveries


def denied_command(exc: rexc.ResponseError) -> str:
    """Name the command an ACL refused in *exc*, or return "" if it is another error."""
    text = str(exc)
    # "NOPERM this user has no permissions to run the 'evalsha' command"; redis-py
    # strips the code as it raises NoPermissionError.
    if isinstance(exc, rexc.NoPermissionError) or text.startswith("NOPERM"):
        quoted = text.split("'")
        return quoted[1] if len(quoted) >= 3 else "the command"
    if "can't run this command" in text:  # inside a script: the probe at open names it
        return "a command of the queue's scripts"
    return ""
