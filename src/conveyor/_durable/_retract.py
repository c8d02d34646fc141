"""Taking back a put cancelled while its commit was in the store's hands.

``put()`` and ``put_many()`` are all or none for a cancellation: a putter cancelled (or
timed out by ``asyncio.timeout()``) waits for the commit under way, withdraws what was
not sent and asks the store to retract what was stored; what cannot be taken back is
told in a note on the ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from .._compat import add_note
from ._state import QueueState

if TYPE_CHECKING:
    from ._writer import PutEntry, Writer

_log = logging.getLogger("conveyor")


async def settle_cancelled(
    state: QueueState, writer: Writer, entries: list[PutEntry], cancelled: asyncio.CancelledError
) -> None:
    """Settle a put cancelled while its items may be in the store's hands."""
    # A putter cancelled (or timed out by asyncio.timeout/wait_for) while its items
    # are in the store's hands cannot stop that commit: it waits for it (one round
    # trip), withdraws what was not sent, and asks the store to retract what was
    # stored.  The cancellation always propagates, since a task group or a timeout
    # that sees a cancelled put return keeps running; what stays stored is told in
    # a note on *cancelled*, for the caller to decide whether to put again.
    for entry in entries:
        entry.withdrawn = True
    mine = {id(entry) for entry in entries}
    if any(id(e) in mine for e in state.adopting) or any(id(o[2]) in mine for o in state.own):
        # get_nowait() must not hand out what may be retracted now, and what stays
        # of them is ready yet not in own.
        state.forget_own()
    while (landed := writer.commit_of(entries)) is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(landed)
    writer.withdraw(entries)
    # Items an immediate shutdown deleted right after their commit are gone already.
    stored = [entry for entry in entries if entry.stored and not entry.discarded]
    if not stored:
        return
    retracting = asyncio.ensure_future(_retract(state, stored))
    while not retracting.done():
        # Another cancellation must not leave the store's answer unknown.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(retracting)
    if retracting.cancelled():  # the loop is going away
        kept = sum(len(entry.payloads) for entry in stored)
        error: BaseException | None = RuntimeError("the event loop stopped first")
    else:
        kept, error = retracting.result()
    if not kept and error is None:
        return
    total = sum(len(entry.payloads) for entry in entries)
    what = "the item was" if total == 1 else f"{kept} of the {total} items were"
    them, they = ("it", "it") if kept == 1 else ("them", "they")
    if error is not None and getattr(error, "outcome_unknown", False):
        how = f"; taking {them} back may or may not have worked ({error}): if not,"
    elif error is not None:
        how = f" and could not be taken back ({error}):"
    else:
        how = f" and a consumer already claimed {them}:"
    add_note(
        cancelled,
        f"conveyor: {what} stored before the cancellation{how} {they} will be "
        f"delivered, and putting {them} again may deliver {them} twice (at-least-once)",
    )


async def _retract(state: QueueState, entries: list[PutEntry]) -> tuple[int, BaseException | None]:
    # Take back the stored items of a cancelled put, each entry all or none (a
    # put_many's items claimed meanwhile, the first ones, stay).  Returns how many
    # items stay stored (or may have: see the error) and the store's error if any.

    async def one(entry: PutEntry) -> bool:
        if entry.handed:
            return False  # get_nowait() of this process claimed one of them
        if entry.ids is None:  # the store did not name them: it cannot retract them
            raise NotImplementedError(f"the {state.store.backend} store cannot retract")
        if not entry.ids:  # a duplicate key skipped them all: nothing was stored
            return True
        return all(await state.store.retract(entry.ids))

    results = await asyncio.gather(*(one(entry) for entry in entries), return_exceptions=True)
    kept = 0
    error: BaseException | None = None
    count = 0
    for entry, result in zip(entries, results, strict=True):
        stored = len(entry.payloads) if entry.added is None else sum(entry.added)
        if result is True:
            count += stored
            continue
        kept += stored
        if isinstance(result, BaseException) and error is None:
            error = result
    if error is not None:
        _log.warning("conveyor: could not retract a cancelled put: %r", error)
    if count:
        state.view_edits += 1
        state.total_put -= count
        state.ready = max(0, state.ready - count)
        state.changed()
    return kept, error
