"""Dead-letter ids: one read earlier never names another item, however much happened since.

Runs for every durable backend in ``durable_fixtures``.
"""

from __future__ import annotations

from typing import Any

from tests.backends.durable_fixtures import durable_url, open_durable, queue_name

__all__ = ["durable_url", "open_durable", "queue_name"]


async def _bury(q: Any, item: str) -> str:
    await q.put(item)
    receipt = await q.get_with_receipt(timeout=30)
    assert receipt.item == item
    await q.fail(receipt, "broken")
    (dead,) = await q.dead_letters()
    assert dead.item == item
    return str(dead.item_id)


async def test_a_stale_dead_letter_id_never_requeues_another_item(open_durable: Any) -> None:
    q = await open_durable()
    stale = await _bury(q, "first")
    assert await q.requeue_dead([stale]) == 1
    receipt = await q.get_with_receipt(timeout=30)
    assert receipt.item == "first"
    await q.ack(receipt)  # gone for good: its id must not come back
    second = await _bury(q, "second")
    assert second != stale
    assert await q.requeue_dead([stale]) == 0
    (dead,) = await q.dead_letters()
    assert (dead.item, dead.item_id) == ("second", second)


async def test_item_ids_keep_growing_after_the_queue_empties(open_durable: Any) -> None:
    q = await open_durable()
    seen: list[int] = []
    for round_ in range(3):
        await q.put_many([f"{round_}-{i}" for i in range(3)])
        for _ in range(3):
            receipt = await q.get_with_receipt(timeout=30)
            seen.append(int(receipt.item_id))
            await q.ack(receipt)
        assert await q.aqsize() == 0
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)
