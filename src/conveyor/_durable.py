"""Placeholder: the shared durable layer (owned by the SQLite work)."""

from __future__ import annotations

from typing import Any


class DurableQueue:  # placeholder until the durable layer lands
    pass


class Receipt:  # placeholder until the durable layer lands
    pass


def _unused(*_: Any) -> None:
    pass
