"""Changing one lease of a Redis queue by its receipt: retry, release, fail, extend.

Each is a script of its own, one round trip a call (``release()`` takes many receipts at
once).  A receipt of an earlier incarnation names nothing and needs no round trip; one of
another queue raises before anything is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ._connection import _Script
from ._runner import OperationContext
from ._scripts import _EXTEND, _EXTEND_MANY, _FAIL, _RELEASE, _RETRY, job_keys


class LeaseChanges:
    """End or extend the lease a receipt names.

    Args:
        context: Runs its scripts; its identity reads the lease each receipt names.
    """

    def __init__(self, context: OperationContext) -> None:
        self._runner, self._identity, self._listener, keys = context
        self._retry_script = self._runner.script(_RETRY)
        self._release_script = self._runner.script(_RELEASE)
        self._fail_script = self._runner.script(_FAIL)
        self._extend_script = self._runner.script(_EXTEND)
        self._extend_many_script = self._runner.script(_EXTEND_MANY)
        self._retry_keys = [
            keys[role] for role in ("meta", "ops", "ready", "delayed", "leased", "lease")
        ] + job_keys(keys)
        self._release_keys = [
            keys[role] for role in ("meta", "ops", "ready", "leased", "lease", "attempts")
        ] + job_keys(keys)
        self._fail_keys = [
            keys[role] for role in ("meta", "ops", "leased", "lease", "dead", "deadinfo")
        ] + job_keys(keys)
        self._extend_keys = [keys[role] for role in ("meta", "ops", "leased", "lease")]

    async def retry(self, receipt: str, delay: float) -> bool:
        """Release a lease so the item is delivered again after *delay* seconds.

        Args:
            receipt: The delivery's receipt.
            delay: Seconds before the item is ready again; ``0`` for at once.

        Returns:
            ``False`` if the receipt no longer names the current lease.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see ``_store``'s docstring).
            BackendError: The store failed.
        """
        return await self._change_lease(
            self._retry_script,
            self._retry_keys,
            receipt,
            repr(float(delay)),
            "the retry may or may not have been recorded",
        )

    async def release(self, receipts: Sequence[str]) -> list[bool]:
        """Give back leases whose items were never handed to a user, ready at once.

        The delivery the claim counted is undone, so the item's attempts are as before.

        Args:
            receipts: Receipts from ``claim()``.

        Returns:
            For each receipt, ``False`` if it no longer names the current lease.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see ``_store``'s docstring).
            BackendError: The store failed.
        """
        pairs, reply = await self._change_leases(
            self._release_script,
            self._release_keys,
            self._runner.head,
            receipts,
            "the leases may or may not have been given back (those kept expire)",
        )
        flags = iter(reply)
        return [bool(pair) and bool(next(flags)) for pair in pairs]

    async def fail(self, receipt: str, error: str) -> bool:
        """Move a leased item to the dead-letter list with *error* as the reason.

        Args:
            receipt: The delivery's receipt.
            error: Why the item failed, kept with the dead letter.

        Returns:
            ``False`` if the receipt no longer names the current lease.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see ``_store``'s docstring).
            BackendError: The store failed.
        """
        return await self._change_lease(
            self._fail_script,
            self._fail_keys,
            receipt,
            error,
            "the item may or may not have been moved to the dead letters",
        )

    async def extend(self, receipt: str, lease_timeout: float) -> float | None:
        """Push a lease's deadline to *lease_timeout* seconds from now.

        Args:
            receipt: The delivery's receipt.
            lease_timeout: Seconds from now until the lease expires.

        Returns:
            The new deadline (``time.time()`` based), or ``None`` if the receipt no longer
            names the current lease.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see ``_store``'s docstring).
            BackendError: The store failed.
        """
        changed = await self._change_lease(
            self._extend_script,
            self._extend_keys,
            receipt,
            repr(float(lease_timeout)),
            "the lease may or may not have been extended",
        )
        if not changed:
            return None
        return time.time() + float(lease_timeout)

    async def extend_many(
        self, receipts: Sequence[str], lease_timeout: float
    ) -> list[float | None]:
        """Push the deadline of every lease *receipts* name, in one script.

        A batch resent after a lost reply replays the reply the server kept instead of
        running again (its head draws a token, as acknowledgements' do).

        Args:
            receipts: Receipts from ``claim()``.
            lease_timeout: Seconds from now until each lease expires.

        Returns:
            For each receipt, the new deadline (``time.time()`` based), or ``None`` if
            it no longer names the current lease.

        Raises:
            ForeignReceiptError: A receipt is another queue's; nothing was changed.
            StoreResetError: The queue's keys vanished since (see ``_store``'s docstring).
            BackendError: The store failed.
        """
        pairs, reply = await self._change_leases(
            self._extend_many_script,
            self._extend_keys,
            lambda: [*self._runner.head("extend"), repr(float(lease_timeout))],
            receipts,
            "the leases may or may not have been extended",
        )
        deadline = time.time() + float(lease_timeout)
        flags = iter(reply[0] if reply else ())
        return [deadline if pair and next(flags) == 49 else None for pair in pairs]  # b"1"

    async def _change_leases(
        self,
        script: _Script,
        keys: list[str],
        head: Callable[[], list[str]],
        receipts: Sequence[str],
        doubt: str,
    ) -> tuple[list[list[str]], Any]:
        """Run *script* on the current leases *receipts* name, after *head()*'s arguments.

        Returns:
            The lease each receipt names (empty for one of an earlier incarnation),
            and the script's reply, or an empty list when no lease is current (nothing
            is sent, and *head* is not called: it may draw a token).
        """
        self._listener.touch()
        pairs = [self._identity.lease_of(receipt) for receipt in receipts]
        current = [pair for pair in pairs if pair]
        if not current:
            return pairs, []
        args: list[Any] = head()
        for pair in current:
            args += pair
        return pairs, await self._runner.change(script, keys, args, doubt)

    async def _change_lease(
        self, script: _Script, keys: list[str], receipt: str, last: str, doubt: str
    ) -> bool:
        """Run *script* on the lease *receipt* names, with *last* as its last argument.

        Returns:
            The script's flag; ``False`` when the receipt names a lease of an earlier
            incarnation (nothing is sent).
        """
        self._listener.touch()
        pair = self._identity.lease_of(receipt)
        if not pair:
            return False
        reply = await self._runner.change(script, keys, [*self._runner.head(), *pair, last], doubt)
        return bool(reply[0])
