"""A receipt names its queue: another queue refuses it and changes nothing (both backends)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import conveyor
from conveyor import ForeignReceiptError
from tests.backends.durable_fixtures import durable_url

pytestmark = pytest.mark.timeout(60)

__all__ = ["durable_url"]


# -- another queue's receipt (#11 item 8) -----------------------------------------------


async def test_another_queues_receipt_is_refused_and_changes_nothing(durable_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    a: Any = await conveyor.open_queue(durable_url, name=f"a-{suffix}")
    b: Any = await conveyor.open_queue(durable_url, name=f"b-{suffix}")
    try:
        await a.put("a's job")
        await b.put("b's job")
        # Both first items, both first deliveries: the same numbers in either queue.
        from_a = await a.get_with_receipt(timeout=10)
        from_b = await b.get_with_receipt(timeout=10)
        before = (await a.refresh(), await b.refresh())
        with pytest.raises(ForeignReceiptError) as caught:
            await b.ack(from_a)
        assert isinstance(caught.value, ValueError)
        assert f"b-{suffix}" in str(caught.value)
        with pytest.raises(ForeignReceiptError):
            await b.retry(from_a)
        with pytest.raises(ForeignReceiptError):
            await b.fail(from_a, "nope")
        with pytest.raises(ForeignReceiptError):
            await b.extend(from_a, 10)
        with pytest.raises(ForeignReceiptError):
            await a.ack(from_b)
        after = (await a.refresh(), await b.refresh())
        assert [(s.current_size, s.unfinished_tasks) for s in after] == [
            (s.current_size, s.unfinished_tasks) for s in before
        ]
        assert after[1].unfinished_tasks == 1
        await a.ack(from_a)  # each queue's own receipt still works
        await b.ack(from_b)
        await a.join(timeout=10)
        await b.join(timeout=10)
    finally:
        await a.aclose()
        await b.aclose()
