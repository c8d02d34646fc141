"""Placeholder: open_queue (owned by the SQLite work)."""

from __future__ import annotations

from typing import Any


async def open_queue(url: str, **options: Any) -> Any:  # placeholder
    raise NotImplementedError
