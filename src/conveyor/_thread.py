"""Placeholder: ThreadQueue (owned by the ThreadQueue work)."""

from __future__ import annotations


class ThreadQueue:  # placeholder
    pass
