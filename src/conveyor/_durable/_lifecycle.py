"""Shutting down, resuming and closing a durable queue.

A shutdown acts locally at once (blocked putters refused; with *immediate*, the local
buffer dropped and blocked getters woken) and is written to the store in the background;
``resume()`` clears it for every process; ``aclose()`` writes what is pending, gives
back undelivered leases and releases the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..backends._base import Delivery
from ._acknowledger import Acknowledger
from ._claimer import Claimer
from ._state import QueueState
from ._writer import Writer

_log = logging.getLogger("conveyor")


class Lifecycle:
    """Shutdown, resume and close, over the writer, the claimer and the acknowledger."""

    def __init__(
        self,
        state: QueueState,
        writer: Writer,
        claimer: Claimer[Any],
        acknowledger: Acknowledger[Any],
    ) -> None:
        self._state = state
        self._writer = writer
        self._claimer = claimer
        self._acknowledger = acknowledger

    def shutdown(self, immediate: bool) -> None:
        """Shut the queue down here at once, and in the store in the background."""
        state = self._state
        if state.is_shutdown and (state.immediate or not immediate):
            return
        state.shutdown_epoch += 1
        state.is_shutdown = True
        state.immediate = state.immediate or immediate
        self._writer.shut_down(immediate)
        buffered: list[Delivery] = []
        if immediate:
            buffered = self._claimer.shut_down_immediately()
        if state.loop is not None and not state.loop.is_closed():
            state.shutdown_task = state.spawn(self._shutdown_store(immediate, buffered))
        state.changed()

    async def _shutdown_store(
        self, immediate: bool, buffered: list[Delivery]
    ) -> BaseException | None:
        # Returns the failure (also kept for the next awaited call) for ashutdown().
        state = self._state
        error: BaseException | None = None
        try:
            await self._writer.drain()  # a write's error stays for the user's flush()
            await state.store.shutdown(immediate)
            if buffered:
                await state.store.ack([d.receipt for d in buffered])
        except Exception as exc:
            error = state.background_error = exc
            _log.error("conveyor: could not shut the queue down in the store: %r", exc)
        finally:
            if state.shutdown_task is asyncio.current_task():
                state.shutdown_task = None
        state.changed()
        return error

    async def ashutdown(self, immediate: bool) -> None:
        """Shut the queue down and wait until the store has it."""
        state = self._state
        state.bind_loop()
        before = state.shutdown_task
        self.shutdown(immediate)
        task = state.shutdown_task
        if task is None or task is before:
            # The local view said shut down already; it may be stale (a resume() in
            # another process), so the store is told again, which changes nothing if so.
            await self._writer.drain()  # a write's error stays for the user's flush()
            await state.store.shutdown(immediate)
            state.changed()
            return
        error = await asyncio.shield(task)
        if error is not None:
            if state.background_error is error:
                state.background_error = None
            raise error

    async def resume(self) -> None:
        """Clear the shutdown in the store and in the local view."""
        state = self._state
        state.bind_loop()
        pending = state.shutdown_task
        if pending is not None:
            await asyncio.shield(pending)  # a shutdown written after this would win
        await state.store.resume()
        state.shutdown_epoch += 1
        state.is_shutdown = state.immediate = state.claim_said_shutdown = False
        state.changed()

    async def aclose(self) -> None:
        """Write what is pending, give back undelivered leases, release the store."""
        state = self._state
        if state.closed:
            return
        state.closing = True
        state.changed()
        if state.loop is not None and state.loop is asyncio.get_running_loop():
            await self._acknowledger.renewer.stop()
            with contextlib.suppress(Exception):
                await self._writer.drain()
            with contextlib.suppress(Exception):
                await self._acknowledger.flush()
            await self._claimer.stop()
        state.closed = True
        self._claimer.refuse_getters()
        await state.store.aclose()
        self._writer.raise_write_error()
